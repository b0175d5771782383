"""The bag player and the training-data recorder: real processes over DDS, real bag files.

The source bag holds 20 random 160x120 images at 10 Hz, each after its CameraInfo. Recorders that
must take every frame subscribe reliably, so what they keep does not depend on transport luck.
The recorder's pure policy (mp3d_ros.recorder) is unit-tested at the end.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from builtin_interfaces.msg import Time
from conftest import REPO
from mp3d.data import bags
from mp3d_ros.image_conversion import rgb_to_compressed, rgb_to_image
from mp3d_ros.recorder import (
    MB,
    PARAMETERS,
    FramePolicy,
    RecorderConfig,
    mean_abs_diff,
    thumbnail_from_encoded,
    thumbnail_from_rgb,
)
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

FRAMES, HZ, W, H = 20, 10, 160, 120
T0 = 1_000 * 10**9  # stamp of frame 0 (ns); frame i is T0 + i / HZ
IMAGE, INFO = "/cam/image_raw", "/cam/camera_info"
CONFIG = REPO / "mp3d_ros" / "config" / "recorder.yaml"


def _stamp(i: int) -> int:
    return T0 + i * 10**9 // HZ


def _pictures(duplicates: tuple[int, ...] = ()) -> list[np.ndarray]:
    """Random pictures; a frame in ``duplicates`` is the previous one with +-1 noise."""
    pics: list[np.ndarray] = []
    for i in range(FRAMES):
        rng = np.random.default_rng(i)
        if i in duplicates:
            noise = rng.integers(-1, 2, (H, W, 3))
            pics.append(np.clip(pics[-1].astype(int) + noise, 0, 255).astype(np.uint8))
        else:
            pics.append(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    return pics


def _source_bag(path: Path, pictures: list[np.ndarray], compressed: bool = False) -> Path:
    """CameraInfo then Image (or PNG CompressedImage on IMAGE/compressed) for each picture."""
    with bags.BagWriter(path) as writer:
        for i, rgb in enumerate(pictures):
            ns = _stamp(i)
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam")
            info = CameraInfo(header=header, width=W, height=H, distortion_model="plumb_bob",
                              d=[0.0] * 5, k=[200.0, 0, 79.5, 0, 200.0, 59.5, 0, 0, 1],
                              r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                              p=[200.0, 0, 79.5, 0, 0, 200.0, 59.5, 0, 0, 0, 1, 0])
            writer.write(INFO, "sensor_msgs/msg/CameraInfo", serialize_message(info), ns)
            if compressed:
                writer.write(f"{IMAGE}/compressed", "sensor_msgs/msg/CompressedImage",
                             serialize_message(rgb_to_compressed(rgb, "png", header=header)), ns)
            else:
                writer.write(IMAGE, "sensor_msgs/msg/Image",
                             serialize_message(rgb_to_image(rgb, "rgb8", header=header)), ns)
    return path


def _param(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _recorder(out: Path, env: dict[str, str], **params: object) -> subprocess.Popen:
    params = {"image_topic": IMAGE, "camera_info_topic": INFO, "output_dir": str(out),
              "bag_name": "rec", "min_free_mb": 1.0, "stats_period_s": 0.0, **params}
    cmd = [sys.executable, "-m", "mp3d_ros.recorder_node", "--ros-args", "--params-file",
           str(CONFIG)]
    for name, value in params.items():
        cmd += ["-p", f"{name}:={_param(value)}"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _player(bag: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "mp3d_ros.player", str(bag),
                             "--wait-for-subscribers", "20", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 25.0) -> tuple[int, dict, str]:
    """Wait for a process; its exit status, JSON summary (last stdout line) and stderr."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        pytest.fail(f"{proc.args[2]} did not finish in {timeout} s:\n{stdout}\n{stderr}")
    lines = stdout.strip().splitlines()
    return proc.returncode, json.loads(lines[-1]) if lines else {}, stderr


def _wait_for_splits(bag: Path, n: int, procs: list[subprocess.Popen], timeout: float = 25.0
                     ) -> list[str]:
    """Wait until metadata.yaml lists at least n closed splits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        meta = bag / "metadata.yaml"
        if meta.exists():
            files = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"][
                "relative_file_paths"]
            if len(files) >= n:
                return files
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.02)
    pytest.fail(f"{bag}: fewer than {n} closed splits after {timeout} s")


def _recorded(bag: Path) -> tuple[list[tuple[int, int, np.ndarray]], list[tuple[int, list]]]:
    """(bag time, header stamp, pixels) of each recorded image; (bag time, K) of each info."""
    images, infos = [], []
    for topic, msgtype, t, msg in bags.read_messages(bag):
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if msgtype == "sensor_msgs/msg/CompressedImage":
            assert topic == f"{IMAGE}/compressed" and "png" in msg.format
            images.append((t, stamp, cv2.imdecode(np.asarray(msg.data), cv2.IMREAD_COLOR_RGB)))
        elif topic == IMAGE:
            assert (msg.encoding, msg.step) == ("rgb8", 3 * W)
            images.append((t, stamp, np.asarray(msg.data).reshape(H, W, 3)))
        else:
            infos.append((t, list(msg.k)))
    return images, infos


def _index(stamp: int) -> int:
    i, rest = divmod(stamp - T0, 10**9 // HZ)
    assert rest == 0 and 0 <= i < FRAMES, stamp
    return i


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "png"])
def test_duplicates_skipped_and_frames_recorded_pixel_exact(tmp_path, ros_env, compressed):
    pics = _pictures(duplicates=(5, 6, 13))
    src = _source_bag(tmp_path / "src", pics, compressed)
    topic = f"{IMAGE}/compressed" if compressed else IMAGE
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.0, duplicate_threshold=2.0,
                    idle_timeout_s=1.5, reliable=True, compressed=compressed, image_topic=topic)
    play = _player(src, ros_env)
    rc, played, err = _finish(play)
    assert rc == 0 and played["published"] == {topic: FRAMES, INFO: FRAMES}, err
    rc, summary, err = _finish(rec)
    assert rc == 0 and summary["stop"] == "idle_timeout", err

    # Topics are not ordered with each other: the first CameraInfo may come after a few images.
    counts = summary["counts"]
    assert counts["duplicate"] == 3 and counts["no_camera_info"] < 5, counts
    expected = [i for i in range(counts["no_camera_info"], FRAMES) if i not in (5, 6, 13)]
    images, infos = _recorded(Path(summary["bag"]))
    assert [_index(s) for _, s, _ in images] == expected == sorted(expected)
    for t, stamp, pixels in images:
        assert t == stamp  # bag time is the frame's own stamp
        np.testing.assert_array_equal(pixels, pics[_index(stamp)])
    assert [t for t, _ in infos] == [t for t, _, _ in images]  # newest CameraInfo per frame
    assert infos[0][1] == [200.0, 0, 79.5, 0, 200.0, 59.5, 0, 0, 1]


def test_min_interval_keeps_every_third_frame_until_max_frames(tmp_path, ros_env):
    src = _source_bag(tmp_path / "src", _pictures())
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.25, max_frames=5,
                    duplicate_threshold=0.0, reliable=True, camera_info_every_frame=False)
    play = _player(src, ros_env)
    rc, summary, err = _finish(rec)
    assert rc == 0 and summary["stop"] == "max_frames" and summary["kept"] == 5, err
    _finish(play)
    images, infos = _recorded(Path(summary["bag"]))
    assert [t for t, _ in infos] == [images[0][0]]  # CameraInfo never changed: written once
    kept = [_index(s) for _, s, _ in images]
    first = kept[0]  # 0, unless images overtook the first CameraInfo
    assert first == summary["counts"]["no_camera_info"] < 5
    assert kept == [first + 3 * k for k in range(5)]  # 0.3 s apart: the first >= 0.25 s


def test_sigterm_closes_the_bag_with_every_kept_frame(tmp_path, ros_env):
    src = _source_bag(tmp_path / "src", _pictures())
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.0, duplicate_threshold=0.0,
                    split_max_seconds=0.5)  # default sensor-data QoS
    play = _player(src, ros_env)
    _wait_for_splits(tmp_path / "rec", 1, [rec, play])
    rec.send_signal(signal.SIGTERM)
    rc, summary, err = _finish(rec, 15)
    assert rc == 0 and summary["stop"] == "SIGTERM", err
    play.send_signal(signal.SIGTERM)  # the player stops cleanly too, with its summary
    rc, played, err = _finish(play, 15)
    assert rc == 0 and played["total"] >= 2 * summary["kept"], err

    bag = tmp_path / "rec"
    bags.check_bag_closed(bag)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["relative_file_paths"] == summary["splits"] and len(summary["splits"]) >= 2
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert counts[IMAGE] == summary["kept"] >= 6


def test_sigkill_leaves_a_bag_recover_bag_repairs(tmp_path, ros_env):
    pics = _pictures()
    src = _source_bag(tmp_path / "src", pics)
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.0, duplicate_threshold=0.0,
                    split_max_seconds=0.5)
    play = _player(src, ros_env)
    bag = tmp_path / "rec"
    listed = _wait_for_splits(bag, 2, [rec, play])
    rec.send_signal(signal.SIGKILL)
    rec.communicate(timeout=10)
    play.send_signal(signal.SIGTERM)
    _finish(play, 15)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    closed = {t["topic_metadata"]["name"]: t["message_count"]
              for t in meta["topics_with_message_count"]}[IMAGE]
    assert meta["relative_file_paths"] == listed and closed >= 6

    with pytest.raises(bags.TruncatedBagError, match="recover_bag"):
        bags.read_messages(bag)
    report = bags.recover_bag(bag)
    images, infos = _recorded(bag)
    print(f"closed splits held {closed} frames; after recovery {len(images)} "
          f"({report.salvaged} salvaged)")
    assert len(images) >= closed and len(infos) == len(images)
    indices = [_index(s) for _, s, _ in images]
    assert indices == list(range(indices[0], indices[0] + len(indices)))  # in order, no gaps
    for _, stamp, pixels in images:
        np.testing.assert_array_equal(pixels, pics[_index(stamp)])
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert json.loads(meta["custom_data"]["mp3d_recorder"])["split_max_seconds"] == 0.5


KILL_ROUNDS = 20
KEPT = re.compile(r"\bkept (\d+) frames")


def test_sigkill_at_random_moments_loses_no_frame_the_recorder_reported(tmp_path, ros_env):
    """20 recorders, each SIGKILLed a seeded random 0-1.5 s after it logged that it is recording
    (before its first frame, mid-write, mid-split), each fed by a player looping the source bag.
    The recorder logs "kept N frames" (stats_period_s) only after those N frames were written
    and flushed, so once recover_bag has run, the bag must hold at least the last N reported, as
    a run of consecutive played frames (no gaps), each pixel-exact with its CameraInfo, and
    nothing that does not read. Player and recorder start together each round: both new, they
    discover each other in ~0.2 s, where a player kept across rounds took 1-3 s (measured) to
    match each new recorder, more than a fresh player's start-up, which runs in parallel."""
    rng = np.random.default_rng(6)
    pics = _pictures()
    src = _source_bag(tmp_path / "src", pics)
    env = {**ros_env, "RCUTILS_LOGGING_BUFFERED_STREAM": "0"}  # log lines leave at once
    outcomes = []
    for k, delay in enumerate(rng.uniform(0.0, 1.5, KILL_ROUNDS)):
        out = tmp_path / f"round{k}"
        rec = _recorder(out, env, min_interval_s=0.0, duplicate_threshold=0.0, reliable=True,
                        queue_depth=100, stamp_source="receive", split_max_seconds=0.5,
                        stats_period_s=0.02)
        play = _player(src, env, "--loop", "--rate", "2")  # 20 Hz
        try:
            started = [rec.stderr.readline()]
            while "recording" not in started[-1]:
                assert started[-1], f"recorder {k} died at start: {started}"
                started.append(rec.stderr.readline())
            time.sleep(delay)
            assert rec.poll() is None and play.poll() is None, (rec.communicate(), k)
            rec.send_signal(signal.SIGKILL)
            _, err = rec.communicate(timeout=10)  # every line written before the kill
        finally:
            rec.kill()
            play.kill()
            play.communicate(timeout=10)
        reported = max([int(n) for n in KEPT.findall(err)], default=0)
        bag = out / "rec"
        if not list(bag.glob("*.mcap")):  # killed before the first frame
            assert reported == 0, (k, err)
            outcomes.append((round(float(delay), 2), reported, None))
            continue
        report = bags.recover_bag(bag)
        images, infos = _recorded(bag)
        outcomes.append((round(float(delay), 2), reported, len(images)))
        assert len(images) >= reported, (k, reported, report)
        indices = [_index(s) for _, s, _ in images]
        assert all((b - a) % FRAMES == 1 for a, b in zip(indices, indices[1:])), indices
        for _, stamp, pixels in images:
            np.testing.assert_array_equal(pixels, pics[_index(stamp)])
        # each frame is followed by its CameraInfo; the kill may fall between the two
        assert len(images) - 1 <= len(infos) <= len(images), (len(images), len(infos))
        assert all(kk == [200.0, 0, 79.5, 0, 200.0, 59.5, 0, 0, 1] for _, kk in infos)
    print(f"(delay s, frames reported, frames recovered) per round: {outcomes}")
    assert sum(1 for _, reported, _ in outcomes if reported) >= KILL_ROUNDS // 2, outcomes
    # Killed before any frame, for certain: no player at all (a random early kill reaches this
    # only when discovery is slower than the recorder's start, which a loaded machine reverses).
    rec = _recorder(tmp_path / "early", env, stats_period_s=0.02)
    line = rec.stderr.readline()
    while "recording" not in line:
        assert line, "recorder died at start"
        line = rec.stderr.readline()
    rec.send_signal(signal.SIGKILL)
    _, err = rec.communicate(timeout=10)
    assert not KEPT.findall(err) or max(int(n) for n in KEPT.findall(err)) == 0, err
    bag = tmp_path / "early" / "rec"
    if list(bag.glob("*.mcap")):
        bags.recover_bag(bag)
        assert _recorded(bag) == ([], []), "a recorder that saw no frame left frames"


def test_disk_guard_refuses_to_start_below_min_free(tmp_path, ros_env):
    rec = _recorder(tmp_path / "out", ros_env, min_free_mb=1e11)  # 100 PB
    rc, summary, err = _finish(rec, 20)
    assert rc == 3 and summary["stop"] == "disk_space"
    assert "min_free_mb" in err and "not recording" in err
    assert list((tmp_path / "out").iterdir()) == []  # no bag started

    bad = _recorder(tmp_path / "out", ros_env, min_interval_s=-1.0)
    rc, _, err = _finish(bad, 20)
    assert rc == 1 and "min_interval_s" in err


def test_player_rate_2_plays_20_frames_at_10hz_in_about_1s(tmp_path, ros_env):
    src = _source_bag(tmp_path / "src", _pictures())
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.0, duplicate_threshold=0.0,
                    idle_timeout_s=1.5, reliable=True, stamp_source="receive",
                    require_camera_info=False)
    play = _player(src, ros_env, "--rate", "2", "--topics", IMAGE, "/not/in/bag")
    rc, played, err = _finish(play)
    assert rc == 0 and played["skipped_topics"] == {"/not/in/bag": "not in the bag"}, err
    assert played["published"] == {IMAGE: FRAMES}
    rc, summary, err = _finish(rec)
    assert rc == 0 and summary["kept"] == FRAMES, err

    expected = (FRAMES - 1) / HZ / 2  # 0.95 s
    images, _ = _recorded(Path(summary["bag"]))
    arrivals = np.array([t for t, _, _ in images]) / 1e9  # receive times, node clock
    assert [_index(s) for _, s, _ in images] == list(range(FRAMES))  # in order
    span = arrivals[-1] - arrivals[0]
    assert 0.5 * expected <= span <= 3 * expected, span
    assert 0.5 * expected <= played["duration_s"] <= 3 * expected, played
    gaps = np.diff(arrivals)
    assert gaps.min() >= 0 and gaps.max() < 0.5 and 0.02 < np.median(gaps) < 0.15, gaps


def test_player_clock_drives_a_sim_time_recorder(tmp_path, ros_env):
    src = _source_bag(tmp_path / "src", _pictures())
    rec = _recorder(tmp_path, ros_env, min_interval_s=0.0, duplicate_threshold=0.0,
                    idle_timeout_s=1.5, reliable=True, stamp_source="receive",
                    require_camera_info=False, use_sim_time=True)
    play = _player(src, ros_env, "--clock", "100", "--rate", "2", "--topics", IMAGE)
    rc, played, err = _finish(play)
    assert rc == 0 and played["total"] == FRAMES, err
    rc, summary, err = _finish(rec)
    assert rc == 0 and summary["kept"] == FRAMES, err
    images, _ = _recorded(Path(summary["bag"]))
    # Receive time on the recorder's sim clock is bag time (wall time would be ~1.7e18 ns): near
    # each frame's stamp, give or take delivery latency (best-effort ticks overtake a reliable
    # frame that needs a resend), and never going back.
    times = [t for t, _, _ in images]
    assert times == sorted(times)
    for t, stamp, _ in images:
        assert abs(t - stamp) <= 0.5e9, (t, stamp)


# ------------------------------------------------------------------ the policy, without ROS


def _policy(**kw: object) -> FramePolicy:
    base = {"min_interval_s": 0.0, "duplicate_threshold": 0.0, "min_free_mb": 0.0}
    return FramePolicy(RecorderConfig(**{**base, **kw}))


FREE = 10**12


def test_policy_min_interval_by_stamp_and_restart_on_time_jump():
    p = _policy(min_interval_s=0.25)
    kept = [i for i in range(10) if p.consider(_stamp(i), 100, FREE, lambda: None).keep]
    assert kept == [0, 3, 6, 9] and p.counts["min_interval"] == 6
    assert p.consider(_stamp(0), 100, FREE, lambda: None).keep  # looped bag: starts over


def test_policy_max_frames_and_max_size_stop():
    p = _policy(max_frames=2)
    d = [p.consider(_stamp(i), 100, FREE, lambda: None) for i in range(3)]
    assert [(x.keep, x.stop, x.reason) for x in d] == [
        (True, False, "kept"), (True, True, "kept"), (False, True, "max_frames")]
    p = _policy(max_total_mb=0.25)
    d = [p.consider(_stamp(i), 100_000, FREE, lambda: None) for i in range(3)]
    assert [(x.keep, x.reason) for x in d] == [(True, "kept"), (True, "kept"),
                                               (False, "max_size")]
    assert d[2].stop and p.kept_bytes == 200_000


def test_policy_duplicates_against_last_kept_frame():
    pics = _pictures(duplicates=(1, 2))
    thumbs = [thumbnail_from_rgb(x, 32) for x in pics]
    assert thumbs[0].shape == (24, 32) and mean_abs_diff(thumbs[0], thumbs[1]) < 1.0
    assert mean_abs_diff(thumbs[0], thumbs[3]) > 5.0  # random pictures average out in 5x5
    p = _policy(duplicate_threshold=2.0)
    calls = []

    def thumb(i):
        calls.append(i)
        return thumbs[i]

    kept = [i for i in range(5) if p.consider(_stamp(i), 1, FREE, lambda i=i: thumb(i)).keep]
    assert kept == [0, 3, 4] and p.counts["duplicate"] == 2
    p = _policy(duplicate_threshold=2.0, min_interval_s=10.0)
    calls.clear()
    [p.consider(_stamp(i), 1, FREE, lambda i=i: thumb(i)) for i in range(3)]
    assert calls == [0]  # no thumbnail for frames the interval already skips
    png = cv2.imencode(".png", pics[0][:, :, ::-1])[1]  # lossless: the same thumbnail
    np.testing.assert_allclose(thumbnail_from_encoded(png, 32), thumbs[0], atol=1.0)
    smooth = np.repeat(np.linspace(0, 255, W, dtype=np.uint8)[None, :, None], H, 0)
    jpeg = cv2.imencode(".jpg", np.repeat(smooth, 3, 2))[1]
    assert mean_abs_diff(thumbnail_from_encoded(jpeg, 32),
                         thumbnail_from_rgb(np.repeat(smooth, 3, 2), 32)) < 2.0
    assert thumbnail_from_encoded(np.frombuffer(b"not an image", np.uint8), 32) is None


def test_policy_disk_guard_and_camera_info():
    p = _policy(min_free_mb=100.0)
    assert not p.disk_ok(99 * MB) and p.disk_ok(100 * MB)
    assert p.consider(_stamp(0), MB, 102 * MB, lambda: None).keep
    d = p.consider(_stamp(1), 3 * MB, 102 * MB, lambda: None)
    assert (d.keep, d.stop, d.reason) == (False, True, "disk_space")
    p = _policy(require_camera_info=True)
    assert p.consider(_stamp(0), 1, FREE, lambda: None, has_camera_info=False).reason == (
        "no_camera_info")
    with pytest.raises(ValueError, match="min_interval_s"):
        RecorderConfig(min_interval_s=-1.0)
    with pytest.raises(ValueError, match="stamp_source"):
        RecorderConfig(stamp_source="wall")


def test_yaml_defaults_are_the_config_defaults():
    params = yaml.safe_load(CONFIG.read_text())["mp3d_recorder"]["ros__parameters"]
    defaults = RecorderConfig()
    assert set(params) == set(PARAMETERS) == set(defaults.__dataclass_fields__)
    for name, value in params.items():
        default = getattr(defaults, name)
        assert value == default and type(value) is type(default), name
