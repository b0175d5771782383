"""Replay many bags at once: worker processes or Ray actors, resumable, one manifest, nothing lost.

``mp3d replay BAG... --out DIR [--workers N] [--ray [ADDRESS]] [--overwrite] [--retries N]``:
every input (a bag folder or bare ``.mcap``/``.db3``, a glob, or a text file of paths and globs,
one a line, relative to that file's folder) is replayed by :func:`mp3d_ros.replay.replay`, the
one-bag replay and so the node's per-frame pipeline, into ``DIR/<its name>``. The split is one
bag per task: the tracker's state runs through a bag, so cutting it into time chunks would change
the track ids (docs/fleet.md).

Workers load the model once and then take bags one at a time: local processes (``--workers N``,
the default; spawned, killed with the driver) or Ray actors (``--ray``: a local Ray runtime, or
the cluster at ADDRESS, whose nodes must see the inputs and DIR at the same paths). The driver
alone writes the manifest and installs outputs:

1. before a bag is handed out, its manifest record says ``running`` (the manifest,
   ``DIR/replay_manifest.json``, is rewritten atomically at every change);
2. the worker writes into ``DIR/.partial/<name>.<run>.<attempt>/<name>``, never into DIR;
3. when the worker reports success, the driver checks that the bag is closed, renames it to
   ``DIR/<name>`` (atomic, same file system) and records it ``done`` with the input's fingerprint
   (each file's size and mtime, and a SHA-256 over metadata.yaml and the first and last MiB of
   every file) and the output's file sizes.

A bag is *complete*, and skipped by a later run, when its record is ``done``, the input's
fingerprint is unchanged, and ``DIR/<name>`` is a closed bag holding exactly the recorded files
and sizes; ``--overwrite`` redoes it anyway. Anything else is redone: a killed run leaves only
``running`` records and ``.partial`` folders (removed at the next start), so restarting the same
command finishes the rest and never trusts a partial output. A bag that fails is reported by name
with its reason; a crash or a dead worker is retried up to ``--retries`` times, a bad input
(truncated, corrupt, no image topic; ``--strict`` and a bad frame) at once fails, since a retry
would give the same answer. Outputs made with other options are refused (``--overwrite``).
The run ends with one summary line on stdout; exit 0, 1 when a bag failed, 2 (one ``error:``
line) when the run cannot start. A lock file keeps two runs from writing one DIR.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import hashlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import sys
import time
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mp3d.data import bags

MANIFEST = "replay_manifest.json"
PARTIAL = ".partial"
LOCK = ".replay.lock"
MANIFEST_VERSION = 1
EXIT_FAILED, EXIT_ERROR = 1, 2
STORAGE_SUFFIXES = (".mcap", ".db3")
EDGE_BYTES = 1 << 20  # head and tail of each input file hashed for its fingerprint
START_TIMEOUT_S = 600.0  # for a worker to load the model (or for Ray to place it)
PROGRESS_PERIOD_S = 0.5


class FleetError(RuntimeError):
    """The run cannot start (or go on); one line says why and what to do."""


@dataclass(frozen=True)
class Replayer:
    """What the fleet calls of :mod:`mp3d_ros.replay`, handed in by it (``replay.fleet_replayer``):
    replay imports this module, never the reverse. All fields pickle by reference, so they reach
    spawned processes and Ray actors."""

    config: Callable[[argparse.Namespace], Any]  # args -> the node configuration
    load: Callable[[Any], Any]  # configuration -> Estimator (input error when it cannot)
    replay: Callable[..., dict[str, Any]]  # (in, out, args, estimator=, progress=) -> summary
    choose_topics: Callable[..., tuple[str, str | None]]
    input_errors: tuple[type[BaseException], ...]  # a bad input: not worth a retry


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The many-bag options of ``mp3d replay`` (see the module docstring)."""
    g = parser.add_argument_group("many bags (with --out DIR; docs/fleet.md)")
    g.add_argument("--out", metavar="DIR", help="replay every BAG into DIR/<its name>, with "
                   f"DIR/{MANIFEST}; a run killed and restarted finishes the rest")
    g.add_argument("--workers", type=int, metavar="N", help="worker processes, each loading the "
                   "model once and using cores/N CPU threads (default: one per CPU core); with "
                   "--ray: actors (default: the cluster's CPUs / --cpus-per-worker)")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="run the workers as Ray actors: a local Ray runtime (or $RAY_ADDRESS), "
                   "or the cluster at ADDRESS ('auto', 'HOST:6379', 'ray://HOST:10001'); the "
                   "inputs and DIR must have the same paths on every node")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C",
                   help="Ray: CPUs each actor reserves (its torch threads; default 1)")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G",
                   help="Ray: GPUs each actor reserves (e.g. 1, or 0.5 for two per GPU; with "
                   "--device cuda); default 0")
    g.add_argument("--overwrite", action="store_true", help="redo bags whose output is complete")
    g.add_argument("--retries", type=int, default=2, metavar="N", help="retries of a bag whose "
                   "worker crashed or died (default 2); a bad input fails at once")


def uses_fleet_options(args: argparse.Namespace) -> bool:
    """Whether ``args`` asks for anything only the many-bag form does."""
    return (args.workers is not None or args.ray is not None or args.overwrite
            or args.retries != 2 or args.cpus_per_worker != 1.0 or args.gpus_per_worker != 0.0)


def one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# --------------------------------------------------------------------------- inputs


def _is_bag_like(path: Path) -> bool:
    """A glob hit worth replaying: a folder with metadata.yaml or storage files, or a storage
    file."""
    if path.is_dir():
        return (path / "metadata.yaml").exists() or any(
            p.suffix in STORAGE_SUFFIXES for p in path.iterdir())
    return path.suffix in STORAGE_SUFFIXES


def _expand(item: str, base: Path, from_list: bool) -> list[Path]:
    path = Path(item).expanduser()
    if not path.is_absolute():
        path = base / path
    if any(c in item for c in "*?["):
        hits = [Path(h) for h in sorted(glob.glob(str(path), recursive=True))]
        found = [h for h in hits if _is_bag_like(h)]
        if not found:
            raise FleetError(f"no bag matches {item!r}" + (f" ({len(hits)} other paths do)"
                                                            if hits else ""))
        return found
    if path.name == "metadata.yaml":
        return [path.parent]
    if path.is_file() and path.suffix not in STORAGE_SUFFIXES and not from_list:
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise FleetError(f"cannot read the list of bags {path}: {one_line(exc)}") from exc
        out: list[Path] = []
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                out += _expand(line, path.parent, True)
        return out
    return [path]  # a bag, or a path that fails as one (missing, not a bag)


def expand_inputs(items: list[str]) -> list[Path]:
    """Bags from paths, globs (``**`` too) and list files, in order, each once."""
    seen: dict[Path, Path] = {}
    for item in items:
        for path in _expand(item, Path.cwd(), False):
            seen.setdefault(path.resolve(), path.resolve())
    if not seen:
        raise FleetError("no input bags")
    return list(seen)


def output_name(src: Path) -> str:
    """The output bag's name: the input folder's, or a bare file's stem."""
    return src.stem if src.is_file() else src.name


def input_fingerprint(src: Path) -> dict[str, Any] | None:
    """Each file's name, size and mtime, and a SHA-256 over names, sizes, the whole
    metadata.yaml and the first and last MiB of every other file; None when ``src`` is missing.
    Cheap on terabytes; an edit that keeps a file's size and mtime and touches only its middle
    goes unnoticed (``--overwrite``)."""
    if not src.exists():
        return None
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.is_file())
    h = hashlib.sha256()
    entries = []
    for f in files:
        st = f.stat()
        entries.append([f.name, st.st_size, st.st_mtime_ns])
        h.update(f"{f.name}\0{st.st_size}\0".encode())
        with f.open("rb") as fh:
            if f.name == "metadata.yaml" or st.st_size <= 2 * EDGE_BYTES:
                h.update(fh.read())
            else:
                h.update(fh.read(EDGE_BYTES))
                fh.seek(-EDGE_BYTES, os.SEEK_END)
                h.update(fh.read())
    return {"files": entries, "bytes": sum(e[1] for e in entries), "sha256": h.hexdigest()}


def output_files(dst: Path) -> dict[str, int]:
    """The output bag's files and their sizes."""
    return {p.name: p.stat().st_size for p in sorted(dst.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------- the manifest


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` by ``data`` as JSON, atomically (:func:`bags.write_text_atomic`)."""
    bags.write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n",
                           path.with_name(f".{path.name}.{os.getpid()}.tmp"))


class Manifest:
    """``DIR/replay_manifest.json``: the options, the runs, and one record per bag (status,
    attempts, the input's fingerprint, the output's files, the replay's summary, the events)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.exists():
            try:
                self.data = json.loads(path.read_text())
                assert self.data.get("version") == MANIFEST_VERSION
                assert isinstance(self.data.get("bags"), dict)
            except (OSError, ValueError, AssertionError) as exc:
                raise FleetError(f"{path} is not a replay manifest of version "
                                 f"{MANIFEST_VERSION} ({type(exc).__name__}); move it away or "
                                 "choose another --out") from exc
        else:
            self.data = {"version": MANIFEST_VERSION, "tool": "mp3d replay --out",
                         "options": None, "runs": [], "bags": {}, "totals": {}}

    @property
    def bags(self) -> dict[str, dict[str, Any]]:
        return self.data["bags"]

    def event(self, name: str, run: str, event: str, **info: Any) -> None:
        self.bags[name].setdefault("events", []).append(
            {"run": run, "event": event, "at": _now(), **info})

    def save(self) -> None:
        done = [r for r in self.bags.values() if r.get("status") == "done"]
        skipped: Counter[str] = Counter()
        for r in done:
            skipped.update(r["result"].get("skipped", {}))
        self.data["totals"] = {
            "bags": len(self.bags), "done": len(done),
            "failed": sum(r.get("status") == "failed" for r in self.bags.values()),
            "frames": sum(r["result"]["frames"] for r in done),
            "people": sum(r["result"]["people"] for r in done),
            "skipped_frames": dict(sorted(skipped.items()))}
        self.data["updated"] = _now()
        write_json_atomic(self.path, self.data)


def options_record(args: argparse.Namespace, cfg: Any) -> dict[str, Any]:
    """What decides the outputs: the node configuration (the params file and the options over
    it; not cpu_threads), the model's SHA-256, the topics, --strict. JSON-ready."""
    from mp3d.common.paths import default_model, file_sha256

    values = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "cpu_threads"}
    model = Path(cfg.model or default_model("student.pt"))
    try:
        sha = file_sha256(model)
    except OSError as exc:
        raise FleetError(f"cannot load the model: {model}: {one_line(exc)}") from exc
    return json.loads(json.dumps({
        "node_config": values, "model_sha256": sha, "image_topic": args.image_topic,
        "camera_info_topic": args.camera_info_topic, "strict": bool(args.strict)},
        default=str))


# --------------------------------------------------------------------------- workers


def _worker_args(args: argparse.Namespace, threads: int) -> argparse.Namespace:
    """The options a worker replays with: no progress bar of its own, and ``threads`` CPU
    threads unless --cpu-threads says."""
    values = {k: v for k, v in vars(args).items() if k != "func"}
    values["no_progress"] = True
    if values.get("cpu_threads") is None and threads > 0:
        values["cpu_threads"] = threads
    return argparse.Namespace(**values)


class BagWorker:
    """One worker (a local process or a Ray actor): loads the model once, then replays one bag
    per :meth:`run`. It is also the replay's progress counter (``update``, ``close``)."""

    def __init__(self, replayer: Replayer, args: argparse.Namespace, threads: int) -> None:
        self.replayer, self.args = replayer, _worker_args(args, threads)
        self.where = f"{socket.gethostname()}:{os.getpid()}"
        self.frames_done = 0
        self.on_progress: Callable[[int], None] | None = None
        self.estimator, self.error = None, None
        try:
            self.estimator = replayer.load(replayer.config(self.args))
        except replayer.input_errors as exc:
            self.error = one_line(exc)
        except Exception as exc:  # noqa: BLE001 - reported to the driver, which stops the run
            self.error = f"{type(exc).__name__}: {one_line(exc)}"

    def info(self) -> dict[str, Any]:
        """Where it runs, its backend and the estimator's notes; ``error`` when it has no model."""
        if self.estimator is None:
            return {"worker": self.where, "error": self.error}
        return {"worker": self.where, "backend": self.estimator.describe(),
                "notes": list(self.estimator.notes)}

    def frames(self) -> int:
        """Images of the current bag replayed so far."""
        return self.frames_done

    def update(self, n: int = 1) -> None:
        self.frames_done += n
        if self.on_progress is not None:
            self.on_progress(self.frames_done)

    def close(self) -> None:
        """The replay's ``bar.close()``: nothing to do."""

    def run(self, src: str, dst: str) -> dict[str, Any]:
        """Replay ``src`` into ``dst``; a result dict, never an exception: ``ok`` with the
        replay's summary, or ``reason`` and ``retry`` (False for a bad input)."""
        self.frames_done = 0
        err = io.StringIO()
        out: dict[str, Any] = {"worker": self.where}
        try:
            with contextlib.redirect_stderr(err):
                out["summary"] = self.replayer.replay(src, dst, self.args,
                                                      estimator=self.estimator, progress=self)
            out["ok"] = True
        except self.replayer.input_errors as exc:
            out.update(ok=False, retry=False, reason=one_line(exc))
        except Exception as exc:  # noqa: BLE001 - a crash on one bag: reported, retried
            out.update(ok=False, retry=True, reason=f"{type(exc).__name__}: {one_line(exc)}",
                       traceback=traceback.format_exc()[-4000:])
        out["stderr"] = err.getvalue()[-4000:]
        return out


def _die_with_parent(parent: int) -> None:
    """Linux: SIGKILL this process when its parent (the driver) dies, so no orphan goes on
    writing after a killed run."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _local_worker_main(conn: Any, replayer: Replayer, args: argparse.Namespace, threads: int,
                       parent: int) -> None:
    """A local worker process: load once, then replay the bags the driver sends."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    worker = BagWorker(replayer, args, threads)
    conn.send(("ready", worker.info()))
    if worker.estimator is None:
        return
    last = [0.0]

    def report(n: int) -> None:
        if time.monotonic() - last[0] >= PROGRESS_PERIOD_S:
            last[0] = time.monotonic()
            conn.send(("frames", n))

    worker.on_progress = report
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        conn.send(("result", worker.run(*task)))


class LocalPool:
    """``n`` spawned worker processes; a dead one fails its bag (retried) and is replaced."""

    def __init__(self, replayer: Replayer, args: argparse.Namespace, n: int) -> None:
        import multiprocessing

        self.ctx = multiprocessing.get_context("spawn")
        self.replayer, self.args, self.n = replayer, args, n
        self.threads = max(1, _cpu_count() // n)
        shown = args.cpu_threads or self.threads  # --cpu-threads wins (see _worker_args)
        self.procs: dict[int, Any] = {}
        self.conns: dict[int, Any] = {}
        self.where: dict[int, str] = {}  # slot -> "host:pid" of its worker
        self.describe = (f"{n} local worker process{'es' if n > 1 else ''} ({shown} CPU "
                         f"thread{'s' if shown > 1 else ''} each)")

    def _spawn(self, slot: int) -> None:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_local_worker_main, daemon=True,
                                name=f"mp3d-replay-worker-{slot}",
                                args=(child, self.replayer, self.args, self.threads, os.getpid()))
        proc.start()
        child.close()
        self.procs[slot], self.conns[slot] = proc, parent

    def _ready(self, slot: int) -> dict[str, Any]:
        from multiprocessing.connection import wait

        conn, proc = self.conns[slot], self.procs[slot]
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if conn in wait([conn, proc.sentinel], timeout=1.0) or conn.poll():
                try:
                    kind, info = conn.recv()
                except (EOFError, OSError):
                    break
                if info.get("error"):
                    raise FleetError(info["error"])
                self.where[slot] = info["worker"]
                return info
            if not proc.is_alive():
                break
        raise FleetError(f"a worker process did not start: {_exit_text(proc.exitcode)}")

    def start(self) -> list[dict[str, Any]]:
        for slot in range(self.n):
            self._spawn(slot)
        return [self._ready(slot) for slot in range(self.n)]

    def submit(self, slot: int, src: str, dst: str) -> None:
        self.conns[slot].send((src, dst))

    def poll(self, timeout: float) -> list[tuple[str, int, Any]]:
        """Events ``(frames|result|died, slot, value)`` within ``timeout`` seconds."""
        from multiprocessing.connection import wait

        by_conn = {c: s for s, c in self.conns.items()}
        by_sentinel = {p.sentinel: s for s, p in self.procs.items()}
        events: list[tuple[str, int, Any]] = []
        dead: set[int] = set()
        for ready in wait([*by_conn, *by_sentinel], timeout=timeout):
            slot = by_conn.get(ready)
            if slot is None:
                continue
            try:
                while ready.poll():
                    kind, value = ready.recv()
                    events.append((kind, slot, value))
            except (EOFError, OSError):
                dead.add(slot)
        for slot, proc in self.procs.items():
            if slot in dead or not proc.is_alive():
                proc.join(timeout=5)
                events.append(("died", slot, f"the worker process {_exit_text(proc.exitcode)}"))
        for slot in {s for k, s, _ in events if k == "died"}:
            self.conns[slot].close()
            self._spawn(slot)
            self._ready(slot)
        return events

    def close(self) -> None:
        for conn in self.conns.values():
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for proc in self.procs.values():
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "did not answer"
    if code < 0:
        name = signal.Signals(-code).name
        return f"was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"exited with status {code}"


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def import_ray() -> Any:
    """Ray, imported only here; FleetError (one line) without it."""
    try:
        import ray
    except ImportError as exc:
        raise FleetError(f"--ray needs the ray package ({one_line(exc)}): `pip install ray`, or "
                         "`bash scripts/setup.sh`, which installs the pinned version") from exc
    return ray


class RayPool:
    """Ray actors of :class:`BagWorker` (``max_concurrency=2``: the driver asks a busy one how
    far it got); a dead actor fails its bag (retried) and is replaced."""

    def __init__(self, replayer: Replayer, args: argparse.Namespace, n: int | None,
                 most: int) -> None:
        self.replayer, self.args, self.n, self.most = replayer, args, n, most
        self.cpus, self.gpus = args.cpus_per_worker, args.gpus_per_worker
        self.actors: dict[int, Any] = {}
        self.running: dict[Any, int] = {}  # the ObjectRef of a run -> its slot
        self.where: dict[int, str] = {}  # slot -> "host:pid" of its actor
        self.last_poll = 0.0
        self.describe = ""

    def start(self) -> list[dict[str, Any]]:
        ray = self.ray = import_ray()
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "logging_level": logging.ERROR}
        address = self.args.ray or None
        if address is None and not os.environ.get("RAY_ADDRESS"):
            kwargs["num_cpus"] = max(1, round((self.n or _cpu_count()) * self.cpus))
            where = "a local Ray runtime"
        else:
            kwargs["address"] = address
            where = f"the Ray cluster at {address or os.environ['RAY_ADDRESS']}"
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; one line says it
            raise FleetError(f"cannot start or reach {where}: {one_line(exc)}") from exc
        have = ray.cluster_resources()
        if self.gpus > have.get("GPU", 0):
            raise FleetError(f"--gpus-per-worker {self.gpus:g}: {where} has "
                             f"{have.get('GPU', 0):g} GPUs")
        if self.n is None:
            self.n = max(1, int(have.get("CPU", 1) // self.cpus))
            if self.gpus:
                self.n = min(self.n, int(have["GPU"] // self.gpus))
        self.n = min(self.n, self.most)
        self.cls = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_concurrency=2,
                              max_restarts=0)(BagWorker)
        for slot in range(self.n):
            self._spawn(slot)
        infos = [self._ready(slot) for slot in range(self.n)]
        self.describe = (f"{self.n} Ray actor{'s' if self.n > 1 else ''} on {where} "
                         f"({self.cpus:g} CPU{'s' if self.cpus != 1 else ''}"
                         + (f", {self.gpus:g} GPU" if self.gpus else "") + " each)")
        return infos

    def _spawn(self, slot: int) -> None:
        threads = max(1, int(self.cpus))
        self.actors[slot] = self.cls.remote(self.replayer, self.args, threads)

    def _ready(self, slot: int) -> dict[str, Any]:
        try:
            info = self.ray.get(self.actors[slot].info.remote(), timeout=START_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - GetTimeoutError, RayActorError, ...
            raise FleetError(f"a Ray worker did not start ({type(exc).__name__}: "
                             f"{one_line(exc)[:500]}); the cluster has "
                             f"{self.ray.available_resources()}") from exc
        if info.get("error"):
            raise FleetError(info["error"])
        self.where[slot] = info["worker"]
        return info

    def submit(self, slot: int, src: str, dst: str) -> None:
        self.running[self.actors[slot].run.remote(src, dst)] = slot

    def poll(self, timeout: float) -> list[tuple[str, int, Any]]:
        ray = self.ray
        events: list[tuple[str, int, Any]] = []
        refs = list(self.running)
        if not refs:
            time.sleep(timeout)
            return events
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        died = []
        for ref in ready:
            slot = self.running.pop(ref)
            try:
                events.append(("result", slot, ray.get(ref)))
            except ray.exceptions.RayActorError as exc:
                events.append(("died", slot, f"the Ray worker died: {one_line(exc)[:300]}"))
                died.append(slot)
            except Exception as exc:  # noqa: BLE001 - RayTaskError and others: retried
                events.append(("result", slot, {"ok": False, "retry": True, "reason":
                                                f"{type(exc).__name__}: {one_line(exc)[:300]}"}))
        if time.monotonic() - self.last_poll >= PROGRESS_PERIOD_S:
            self.last_poll = time.monotonic()
            busy = {s: self.actors[s].frames.remote() for s in self.running.values()}
            for slot, ref in busy.items():
                with contextlib.suppress(Exception):
                    events.append(("frames", slot, ray.get(ref, timeout=1.0)))
        for slot in died:
            with contextlib.suppress(Exception):
                ray.kill(self.actors[slot])
            self._spawn(slot)
            self._ready(slot)
        return events

    def close(self) -> None:
        with contextlib.suppress(Exception):
            for actor in self.actors.values():
                self.ray.kill(actor)
        with contextlib.suppress(Exception):
            self.ray.shutdown()


# --------------------------------------------------------------------------- the run


@dataclass
class BagJob:
    """One input bag and where its output goes."""

    name: str
    src: Path
    dst: Path
    fingerprint: dict[str, Any] | None
    frames: int = 0  # images expected (0: unknown)
    attempts: int = 0
    partial: Path | None = None
    reported: int = 0  # images the worker reported in the current attempt
    redo_note: str = ""


class _Lock:
    """An exclusive lock on ``DIR/.replay.lock`` (released when the process ends, even by
    SIGKILL)."""

    def __init__(self, folder: Path) -> None:
        import fcntl

        self.file = (folder / LOCK).open("a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise FleetError(f"another replay ({holder}) is writing {folder}; wait for it or "
                             "choose another --out") from exc
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        self.file.flush()

    def release(self) -> None:
        self.file.close()


def _complete(rec: dict[str, Any] | None, job: BagJob) -> str | None:
    """None when the bag's output is complete, else why not."""
    if rec is None:
        return "not replayed yet"
    if rec.get("status") != "done":
        return "it failed last time" if rec.get("status") == "failed" else \
            "its last attempt did not finish"
    if rec.get("input_fingerprint") != job.fingerprint:
        return "the input changed since its output was made"
    if not job.dst.is_dir():
        return "its output is missing"
    try:
        bags.check_bag_closed(job.dst)
        if output_files(job.dst) != rec.get("output_files"):
            return "its output's files changed since it was made"
    except (bags.BagError, OSError) as exc:
        return f"its output is damaged ({one_line(exc)})"
    return None


def _expected_frames(replayer: Replayer, args: argparse.Namespace, src: Path) -> int:
    """Images of the bag's image topic by its metadata; 0 when it cannot tell (the worker will
    say why)."""
    try:
        topics = bags.bag_topics(src)
        image, _ = replayer.choose_topics(topics, args.image_topic, "none")
        return int(topics[image].message_count)
    except Exception:  # noqa: BLE001 - only an estimate for the progress bar
        return 0


class _Output:
    """Progress on a terminal (tqdm: bags, frames, rate, ETA) and report lines on stderr."""

    def __init__(self, total_frames: int, bags_todo: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.tqdm = tqdm
        self.bags_todo, self.done, self.failed = bags_todo, 0, 0
        self.bar = tqdm(total=total_frames or None, unit="frame", file=sys.stderr,
                        disable=not enabled, dynamic_ncols=True, desc=self._desc())

    def _desc(self) -> str:
        return (f"replay: bags {self.done}/{self.bags_todo} done"
                + (f", {self.failed} failed" if self.failed else ""))

    def frames(self, n: int) -> None:
        if n:
            self.bar.update(n)

    def bag(self, ok: bool, unreplayed: int = 0) -> None:
        """A bag finished; ``unreplayed``: its images the total counted and no one will do."""
        if ok:
            self.done += 1
        else:
            self.failed += 1
            if self.bar.total and unreplayed:
                self.bar.total = max(self.bar.n, self.bar.total - unreplayed)
        self.bar.set_description_str(self._desc())

    def say(self, line: str) -> None:
        if self.bar.disable:
            print(line, file=sys.stderr, flush=True)
        else:
            self.tqdm.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


class _LinesToStderr(io.TextIOBase):
    """A stdout for the run: Ray prints its driver messages (a worker died, ...) on stdout, which
    is for the summary line; they go to stderr, line by line above the progress bar."""

    def __init__(self, ui: _Output) -> None:
        self.ui, self.pending = ui, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.strip():
                self.ui.say(line)
        return len(text)


def run(args: argparse.Namespace, replayer: Replayer) -> int:
    """``mp3d replay BAG... --out DIR``: the exit status (see the module docstring)."""
    try:
        return _run(args, replayer)
    except FleetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _plan(args: argparse.Namespace, replayer: Replayer, out: Path
          ) -> tuple[list[BagJob], dict[str, Any]]:
    """The bags and the options' record; FleetError for what stops the run before it starts."""
    if args.workers is not None and args.workers < 1:
        raise FleetError(f"--workers {args.workers}: must be at least 1")
    if args.retries < 0:
        raise FleetError(f"--retries {args.retries}: must be at least 0")
    if args.cpus_per_worker <= 0 or args.gpus_per_worker < 0:
        raise FleetError("--cpus-per-worker must be > 0 and --gpus-per-worker >= 0")
    if args.ray is None and args.gpus_per_worker:
        raise FleetError("--gpus-per-worker is for Ray actors (--ray); local workers share "
                         "the machine's GPU with --device cuda")
    jobs: list[BagJob] = []
    by_name: dict[str, Path] = {}
    for src in expand_inputs(args.bags):
        name = output_name(src)
        if name in by_name:
            raise FleetError(f"two inputs would write {out / name}: {by_name[name]} and {src}; "
                             "replay them into different --out folders")
        by_name[name] = src
        dst = out / name
        if dst == src or src in dst.parents or dst in src.parents:
            raise FleetError(f"the output {dst} of {src} would overlap its input; choose "
                             "another --out")
        jobs.append(BagJob(name, src, dst, input_fingerprint(src)))
    try:
        cfg = replayer.config(args)
    except replayer.input_errors as exc:
        raise FleetError(one_line(exc)) from exc
    return jobs, options_record(args, cfg)


def _run(args: argparse.Namespace, replayer: Replayer) -> int:
    started = time.monotonic()
    out = Path(args.out).expanduser().resolve()
    jobs, options = _plan(args, replayer, out)
    if args.ray is not None:
        import_ray()  # before anything is written: one line without it
    out.mkdir(parents=True, exist_ok=True)
    lock = _Lock(out)
    try:
        return _run_locked(args, replayer, out, jobs, options, started)
    finally:
        lock.release()


def _run_locked(args: argparse.Namespace, replayer: Replayer, out: Path, jobs: list[BagJob],
                options: dict[str, Any], started: float) -> int:
    manifest = Manifest(out / MANIFEST)
    old = manifest.data.get("options")
    if old is not None and old != options and not args.overwrite and any(
            r.get("status") == "done" for r in manifest.bags.values()):
        changed = sorted(k for k in set(old) | set(options) if old.get(k) != options.get(k))
        raise FleetError(f"the outputs in {out} were made with other options (differing: "
                         f"{', '.join(changed)}); pass --overwrite to redo them with these, or "
                         "choose another --out")
    manifest.data["options"] = options
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    partial_root = out / PARTIAL
    shutil.rmtree(partial_root, ignore_errors=True)  # what killed runs left: never trusted
    partial_root.mkdir()

    todo: list[BagJob] = []
    skipped, failed = [], []
    for job in jobs:
        rec = manifest.bags.get(job.name)
        why = _complete(rec, job)
        if why is None and not args.overwrite:
            skipped.append(job)
            continue
        if rec is None and job.dst.exists() and not args.overwrite:
            failed.append((job, f"{job.dst} exists and is not in {MANIFEST}: move it away or "
                                "pass --overwrite"))
            continue
        job.redo_note = "--overwrite" if why is None else why
        manifest.bags[job.name] = {**(rec or {}), "input": str(job.src), "output": str(job.dst),
                                   "status": "pending", "attempts": 0}
        todo.append(job)
    for job, reason in failed:
        manifest.bags[job.name] = {**manifest.bags.get(job.name, {}), "input": str(job.src),
                                   "output": str(job.dst), "status": "failed", "error": reason}
        manifest.event(job.name, run_id, "failed", reason=reason)
    for job in todo:
        if job.fingerprint is None:
            reason = "the input does not exist"
            failed.append((job, reason))
            manifest.bags[job.name].update(status="failed", error=reason)
            manifest.event(job.name, run_id, "failed", reason=reason)
    todo = [j for j in todo if j.fingerprint is not None]
    for job in todo:
        job.frames = _expected_frames(replayer, args, job.src)

    n = args.workers if args.workers is not None else (
        None if args.ray is not None else _cpu_count())
    pool: LocalPool | RayPool | None = None
    run_rec: dict[str, Any] = {"id": run_id, "started": _now(), "host": socket.gethostname(),
                               "pid": os.getpid(), "inputs": len(jobs), "to_do": len(todo)}
    manifest.data["runs"].append(run_rec)
    manifest.save()
    show = not args.no_progress and sys.stderr.isatty()
    ui = _Output(sum(j.frames for j in todo), len(todo), show and bool(todo))
    for job, reason in failed:
        ui.say(f"failed: {job.name}: {reason}")
    done: list[tuple[BagJob, dict[str, Any]]] = []
    interrupted = False
    if todo:
        pool = (RayPool(replayer, args, n, len(todo)) if args.ray is not None
                else LocalPool(replayer, args, min(n, len(todo))))
    try:
        if pool is not None:
            with contextlib.redirect_stdout(_LinesToStderr(ui)):
                infos = pool.start()
                run_rec["startup_s"] = round(time.monotonic() - started, 2)
                run_rec["workers"] = pool.describe
                run_rec["backend"] = infos[0].get("backend")
                for note in sorted({x for i in infos for x in i.get("notes", [])}):
                    ui.say(f"warning: {note}")
                _drive(pool, todo, manifest, run_id, args.retries, ui, done, failed)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        ui.close()
        if pool is not None:
            with contextlib.redirect_stdout(sys.stderr):
                pool.close()
        shutil.rmtree(partial_root, ignore_errors=True)

    seconds = time.monotonic() - started
    frames = sum(r["summary"]["frames"] for _, r in done)
    people = sum(r["summary"]["people"] for _, r in done)
    skipped_frames: Counter[str] = Counter()
    for _, r in done:
        skipped_frames.update(r["summary"]["skipped"])
    summary = {"bags": len(jobs), "done": len(done), "skipped": len(skipped),
               "failed": len(failed), "frames": frames, "people": people,
               "skipped_frames": dict(sorted(skipped_frames.items())),
               "seconds": round(seconds, 2),
               "fps": round(frames / seconds, 2) if seconds > 0 else None,
               "interrupted": interrupted}
    run_rec.update(finished=_now(), summary=summary)
    manifest.save()
    reasons = ", ".join(f"{k} {v}" for k, v in summary["skipped_frames"].items()) or "none"
    line = (f"replay: {len(jobs)} bags: {len(done)} done, {len(skipped)} skipped, "
            f"{len(failed)} failed" + (f" ({', '.join(j.name for j, _ in failed)})"
                                       if failed else "")
            + f"; {frames} frames, {people} people; frames skipped: {reasons}; "
            f"{seconds:.1f} s, {summary['fps'] or 0:.2f} frames/s"
            + (f" on {run_rec['workers']}" if "workers" in run_rec else "")
            + ("; INTERRUPTED" if interrupted else "") + f"; manifest {out / MANIFEST}")
    print(line, flush=True)
    if interrupted:
        return 130
    return EXIT_FAILED if failed else 0


def _drive(pool: LocalPool | RayPool, todo: list[BagJob], manifest: Manifest, run_id: str,
           retries: int, ui: _Output, done: list, failed: list) -> None:
    """Hand out bags to idle workers until every bag is done or failed."""
    queue = deque(todo)
    busy: dict[int, BagJob] = {}
    idle = deque(range(pool.n))
    while queue or busy:
        while queue and idle:
            slot, job = idle.popleft(), queue.popleft()
            job.attempts += 1
            job.reported = 0
            job.partial = (manifest.path.parent / PARTIAL / f"{job.name}.{run_id}."
                           f"{job.attempts}" / job.name)
            job.partial.parent.mkdir(parents=True)
            rec = manifest.bags[job.name]
            rec.update(status="running", attempts=rec.get("attempts", 0) + 1)
            manifest.event(job.name, run_id, "start", attempt=job.attempts,
                           why=job.redo_note if job.attempts == 1 else "retry",
                           worker=pool.where.get(slot))
            manifest.save()  # a record says running before any output of it exists
            pool.submit(slot, str(job.src), str(job.partial))
            busy[slot] = job
        for kind, slot, value in pool.poll(PROGRESS_PERIOD_S):
            job = busy.get(slot)
            if job is None:
                continue
            if kind == "frames":
                ui.frames(value - job.reported)
                job.reported = value
                continue
            del busy[slot]
            idle.append(slot)
            result = value if kind == "result" else {"ok": False, "retry": True,
                                                     "reason": value}
            if result["ok"]:
                try:
                    _install(job, manifest, run_id, result)
                except (bags.BagError, OSError) as exc:
                    result = {"ok": False, "retry": True, "reason": "the finished output "
                              f"cannot be installed: {one_line(exc)}"}
            if result["ok"]:
                ui.frames(result["summary"]["frames"] + sum(result["summary"]["skipped"].values())
                          - job.reported)
                ui.bag(True)
                done.append((job, result))
                continue
            ui.frames(-job.reported)
            shutil.rmtree(job.partial.parent, ignore_errors=True)
            reason = result["reason"]
            if result.get("retry") and job.attempts <= retries:
                ui.say(f"retrying: {job.name} (attempt {job.attempts + 1} of {retries + 1}): "
                       f"{reason}")
                manifest.event(job.name, run_id, "retry", reason=reason,
                               worker=result.get("worker"))
                manifest.bags[job.name]["status"] = "pending"
                manifest.save()
                queue.append(job)
                continue
            ui.say(f"failed: {job.name}: {reason}")
            ui.bag(False, job.frames)
            rec = manifest.bags[job.name]
            rec.update(status="failed", error=reason)
            manifest.event(job.name, run_id, "failed", reason=reason,
                           worker=result.get("worker"))
            manifest.save()
            failed.append((job, reason))


def _install(job: BagJob, manifest: Manifest, run_id: str, result: dict[str, Any]) -> None:
    """Move a finished output into place and record it done (see the module docstring)."""
    assert job.partial is not None
    if not job.partial.is_dir():
        raise bags.BagError(f"{job.partial} is not on this machine: with --ray, --out must be "
                            "a folder every node sees at the same path")
    bags.check_bag_closed(job.partial)
    trash = job.partial.parent / f"{job.name}.replaced"
    if job.dst.exists():
        os.rename(job.dst, trash)
    os.rename(job.partial, job.dst)
    bags.fsync_dir(job.dst.parent)
    summary = dict(result["summary"])
    summary["in_bag"], summary["out_bag"] = str(job.src), str(job.dst)
    rec = manifest.bags[job.name]
    rec.update(status="done", error=None, input_fingerprint=job.fingerprint,
               output_files=output_files(job.dst), result=summary, worker=result["worker"],
               finished=_now())
    manifest.event(job.name, run_id, "done", attempt=job.attempts, worker=result["worker"],
                   frames=summary["frames"])
    manifest.save()
    shutil.rmtree(job.partial.parent, ignore_errors=True)
