"""Many bags (mp3d_ros.fleet): Ray and local workers, failures, SIGKILL and resume, real bags.

The inputs are cut from the bundled clip (mp3d_ros/data/demo_clip, real frames) with
mp3d.data.bags: ``long`` (30 frames), ``short`` (8 frames, one of them a cut JPEG), ``corrupt``
(random bytes over part of its only split: a disk error) and ``truncated`` (what a SIGKILLed
recorder leaves: no metadata.yaml, the split cut short). The reference for every output is a
serial ``mp3d replay IN OUT`` of the same bag with the same CPU threads (torch's CPU sums depend
on the thread count, so equal threads give byte-identical bags; docs/fleet.md).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from mp3d.data import bags

from mp3d_ros import fleet, replay

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
GOOD = ("long", "short")
ALL = ("long", "short", "corrupt", "truncated")
FRAMES = {"long": 30, "short": 8}
THREADS = ["--cpu-threads", "1"]  # the same in the fleet's workers and the serial reference


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four input bags (see the module docstring), each a rosbag2 folder."""
    root = tmp_path_factory.mktemp("fleet_inputs")
    msgs = list(bags.read_raw(CLIP))  # image, camera_info, image, ...
    store = bags.default_typestore()

    def cut(name: str, lo: int, hi: int, damage: int | None = None) -> Path:
        with bags.BagWriter(root / name) as writer:
            for i, (topic, msgtype, stamp, raw) in enumerate(msgs[lo:hi]):
                if i == damage:
                    msg = store.deserialize_cdr(raw, msgtype)
                    raw = bytes(store.serialize_cdr(dataclasses.replace(
                        msg, data=np.asarray(msg.data)[:200].copy()), msgtype))
                writer.write(topic, msgtype, raw, stamp)
        return root / name

    cut("long", 0, 60)
    cut("short", 60, 76, damage=4)  # its third image: a JPEG cut after 200 bytes
    corrupt = next(cut("corrupt", 76, 92).glob("*.mcap"))
    data = bytearray(corrupt.read_bytes())
    data[len(data) // 3: len(data) // 3 + 4096] = np.random.default_rng(0).integers(
        0, 256, 4096, dtype=np.uint8).tobytes()
    corrupt.write_bytes(bytes(data))
    truncated = cut("truncated", 92, 108)
    (truncated / "metadata.yaml").unlink()
    split = next(truncated.glob("*.mcap"))
    split.write_bytes(split.read_bytes()[: split.stat().st_size * 2 // 3])
    return {name: root / name for name in ALL}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    return env


def _fleet_cmd(inputs: dict[str, Path], names: tuple[str, ...], out: Path, *extra: str
               ) -> list[str]:
    return [sys.executable, "-m", "mp3d_ros.cli", "replay", *(str(inputs[n]) for n in names),
            "--out", str(out), *THREADS, *extra]


@pytest.fixture(scope="module")
def serial(inputs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each good bag by today's one-bag command, two processes at once."""
    root = tmp_path_factory.mktemp("fleet_serial")
    procs = {n: subprocess.Popen([sys.executable, "-m", "mp3d_ros.replay", str(inputs[n]),
                                  str(root / n), "--no-progress", *THREADS], env=_env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in GOOD}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert json.loads(out)["frames"] + json.loads(out)["skipped"].get("bad_image", 0) == \
            FRAMES[name]
    return {n: root / n for n in GOOD}


def _manifest(out: Path) -> dict:
    return json.loads((out / fleet.MANIFEST).read_text())


def _events(manifest: dict, name: str, kind: str | None = None) -> list[dict]:
    return [e for e in manifest["bags"].get(name, {}).get("events", [])
            if kind is None or e["event"] == kind]


def _wait_for(out: Path, test, proc: subprocess.Popen, timeout: float = 240.0) -> dict:
    """Poll the manifest until ``test(manifest)`` holds; returns that manifest."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the driver ended early: {proc.communicate()}"
        try:
            manifest = _manifest(out)
        except (OSError, ValueError):
            manifest = None
        if manifest is not None and test(manifest):
            return manifest
        time.sleep(0.05)
    raise AssertionError("timed out waiting on the manifest")


def _pid(event: dict) -> int:
    return int(event["worker"].rsplit(":", 1)[1])


def _same_people(a: Path, b: Path) -> tuple[int, int, float]:
    """(frames, people, max joint difference in m) of two replayed bags, after checking that
    their /people agree in stamps, frame ids and track ids."""
    pa = [m for _, _, _, m in bags.read_messages(a, ["/people"])]
    pb = [m for _, _, _, m in bags.read_messages(b, ["/people"])]
    assert len(pa) == len(pb) > 0
    worst = 0.0
    for x, y in zip(pa, pb):
        assert (x.header.stamp.sec, x.header.stamp.nanosec, x.header.frame_id) == (
            y.header.stamp.sec, y.header.stamp.nanosec, y.header.frame_id)
        assert [p.track_id for p in x.people] == [p.track_id for p in y.people]
        for p, q in zip(x.people, y.people):
            ja = np.array([[j.x, j.y, j.z] for j in p.joints])
            jb = np.array([[j.x, j.y, j.z] for j in q.joints])
            worst = max(worst, float(np.abs(ja - jb).max()))
    return len(pa), sum(len(m.people) for m in pa), worst


def _check_outputs(out: Path, serial: dict[str, Path]) -> None:
    for name in GOOD:
        assert list(bags.read_raw(out / name)) == list(bags.read_raw(serial[name])), name
        frames, people, worst = _same_people(out / name, serial[name])
        print(f"{name}: {frames} frames, {people} people, max joint difference {worst} m")
        assert worst == 0.0
    assert not (out / "corrupt").exists() and not (out / "truncated").exists()
    assert not (out / fleet.PARTIAL).exists()


def test_ray_two_workers_replays_reports_and_retries(inputs, serial, tmp_path):
    """A local Ray runtime with 2 actors; the actor replaying ``long`` is SIGKILLed mid-bag: the
    bag is retried on a new actor. The corrupt and the truncated bags are reported with their
    reasons and not retried; the outputs are byte for byte those of the serial command."""
    out = tmp_path / "out"
    proc = subprocess.Popen(_fleet_cmd(inputs, ALL, out, "--ray", "--workers", "2"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = _wait_for(out, lambda m: _events(m, "long", "start"), proc)[
            "bags"]["long"]["events"][0]
        time.sleep(0.5)
        os.kill(_pid(first), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr
    line = stdout.strip()
    assert "\n" not in line, stdout
    assert re.fullmatch(r"replay: 4 bags: 2 done, 0 skipped, 2 failed \((corrupt, truncated|"
                        r"truncated, corrupt)\); 37 frames, \d+ people; frames skipped: "
                        r"bad_image 1; .* on 2 Ray actors on a local Ray runtime \(1 CPU each\); "
                        rf"manifest {re.escape(str(out / fleet.MANIFEST))}", line), line
    assert "failed: corrupt: reading the input bag failed" in stderr, stderr
    assert "Chunk checksum mismatch" in stderr, stderr
    assert "failed: truncated: the input bag is truncated" in stderr, stderr
    assert "retrying: long (attempt 2 of 3): the Ray worker died" in stderr, stderr
    assert "frame/s" not in stderr and "\r" not in stderr  # no progress bar off a terminal

    manifest = _manifest(out)
    recs = manifest["bags"]
    assert {n: r["status"] for n, r in recs.items()} == {
        "long": "done", "short": "done", "corrupt": "failed", "truncated": "failed"}
    assert recs["long"]["attempts"] == 2 and recs["corrupt"]["attempts"] == 1
    assert [e["event"] for e in recs["long"]["events"]] == ["start", "retry", "start", "done"]
    assert recs["short"]["result"]["skipped"] == {"bad_image": 1}
    assert recs["short"]["input_fingerprint"] == fleet.input_fingerprint(inputs["short"])
    assert manifest["totals"] == {"bags": 4, "done": 2, "failed": 2, "frames": 37,
                                  "people": recs["long"]["result"]["people"]
                                  + recs["short"]["result"]["people"],
                                  "skipped_frames": {"bad_image": 1}}
    _check_outputs(out, serial)


def _winsize(fd: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))


def test_killed_run_restarted_finishes_everything_once(inputs, serial, tmp_path):
    """Local workers, one at a time. Run 1: the driver is SIGKILLed once ``short`` is done
    (``long`` is then being replayed); its worker dies with it. Run 2, the same command, on a
    terminal: ``long`` is redone (its worker SIGKILLed once mid-bag, so it is retried),
    ``short`` is skipped and not rewritten. Run 3: both skipped, no worker started."""
    out = tmp_path / "out"
    cmd = _fleet_cmd(inputs, ("short", "long"), out, "--workers", "1")
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(out, lambda m: m["bags"]["short"]["status"] == "done"
                  and _events(m, "long", "start"), proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    killed = _manifest(out)
    assert killed["bags"]["long"]["status"] == "running", killed["bags"]["long"]
    assert "finished" not in killed["runs"][-1]
    assert not (out / "long").exists()
    orphan = _pid(_events(killed, "long", "start")[0])  # the worker dies with its driver
    deadline = time.monotonic() + 10
    while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{orphan}").exists() or \
        Path(f"/proc/{orphan}/stat").read_text().split()[2] == "Z", "an orphan worker runs on"
    short = (out / "short" / "short_0.mcap").stat()

    master, slave = pty.openpty()
    _winsize(slave)
    screen = bytearray()
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    try:
        start = _wait_for(out, lambda m: len(_events(m, "long", "start")) == 2, proc)
        time.sleep(0.5)
        os.kill(_pid(_events(start, "long", "start")[-1]), signal.SIGKILL)
        stdout, _ = proc.communicate(timeout=300)
    finally:
        proc.kill()
    reader.join(timeout=10)
    text = screen.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "replay: bags 0/1 done" in text and "frame/s" in text, text  # bags, frames, rate
    assert "retrying: long (attempt 2 of 3): the worker process was killed by SIGKILL" in text
    assert stdout.startswith("replay: 2 bags: 1 done, 1 skipped, 0 failed; 30 frames"), stdout

    third = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert third.returncode == 0, third.stderr
    assert third.stdout.startswith("replay: 2 bags: 0 done, 2 skipped, 0 failed"), third.stdout
    assert "workers" not in _manifest(out)["runs"][-1]  # nothing to do: no worker started
    manifest = _manifest(out)
    assert [len(_events(manifest, n, "done")) for n in GOOD] == [1, 1]  # each done exactly once
    assert [e["event"] for e in _events(manifest, "long")] == [
        "start", "start", "retry", "start", "done"]
    assert len(manifest["runs"]) == 3 and manifest["runs"][2]["summary"]["skipped"] == 2
    now = (out / "short" / "short_0.mcap").stat()
    assert (now.st_ino, now.st_mtime_ns) == (short.st_ino, short.st_mtime_ns)  # not rewritten
    _check_outputs(out, serial)


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        into += chunk


def test_without_ray_one_line(inputs, tmp_path):
    argv = ["replay", str(inputs["short"]), "--out", str(tmp_path / "out"), "--ray"]
    code = ("import sys; sys.modules['ray'] = None; from mp3d_ros.cli import main; "
            f"sys.exit(main({argv!r}))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=_env())
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("error: --ray needs the ray package") and \
        res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "out").exists()


def _args(*argv: str):
    import argparse

    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    return parser.parse_args([*argv, "--no-progress"])


def test_start_up_errors_are_one_line(inputs, tmp_path, capsys):
    a, b = str(inputs["long"]), str(inputs["short"])
    assert replay.run(_args(a, b, str(tmp_path / "x"))) == 2
    assert capsys.readouterr().err.startswith("error: give IN_BAG OUT_BAG, or input bags with")
    assert replay.run(_args(a, str(tmp_path / "x"), "--workers", "2")) == 2
    assert "--out DIR" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    twin = tmp_path / "other" / "long"
    shutil.copytree(inputs["long"], twin)
    assert replay.run(_args(a, str(twin), "--out", str(tmp_path / "out"))) == 2
    assert "two inputs would write" in capsys.readouterr().err
    assert replay.run(_args(str(tmp_path / "none*"), "--out", str(tmp_path / "out"))) == 2
    assert capsys.readouterr().err == f"error: no bag matches '{tmp_path / 'none*'}'\n"
    assert replay.run(_args(a, "--out", str(inputs["long"].parent))) == 2
    assert "would overlap its input" in capsys.readouterr().err
    # a manifest with a done bag made with other options: refused, nothing started
    out = tmp_path / "out"
    out.mkdir()
    manifest = fleet.Manifest(out / fleet.MANIFEST)
    manifest.data["options"] = {"node_config": {}, "model_sha256": "0"}
    manifest.bags["long"] = {"status": "done", "result": {"frames": 1, "people": 1}}
    manifest.save()
    assert replay.run(_args(a, "--out", str(out))) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the outputs in {out} were made with other options") and \
        "--overwrite" in err and err.count("\n") == 1, err


def test_inputs_from_paths_globs_and_list_files(inputs, tmp_path, monkeypatch):
    root = inputs["long"].parent
    listing = tmp_path / "bags.txt"
    listing.write_text(f"# the fleet\n{root / 'long'}\n\n{root}/s*\n")
    bare = tmp_path / "bare" / "cam.mcap"
    bare.parent.mkdir()
    shutil.copy(next(inputs["short"].glob("*.mcap")), bare)
    monkeypatch.chdir(root)
    found = fleet.expand_inputs([str(listing), "long", str(tmp_path / "*/*.mcap"),
                                 str(root / "corrupt" / "metadata.yaml"), "missing"])
    assert found == [root / "long", root / "short", bare, root / "corrupt", root / "missing"]
    assert [fleet.output_name(p) for p in found[:3]] == ["long", "short", "cam"]
    assert fleet.input_fingerprint(root / "missing") is None
