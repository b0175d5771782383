"""Node throughput benchmark: the demo clip played into the live pose node at several camera
rates, per backend; output rate, latency and drops (machinery: mp3d_ros.node_load).

    python scripts/bench_node.py [--rates 15 30 60] [--backends torch onnxruntime]
                                 [--device cpu] [--frames 300] [--size 640x480] [--json]

For each backend (default: every one mp3d.infer.estimator.available_backends() offers on --device)
and each rate, a fresh node (``-p backend:=B -p device:=D``, compressed transport, reliable, deep
queue) gets the same bag (FRAMES JPEG frames of the demo clip at --size) played at that rate.
Per run: output rate (people messages per second at the listener), the node's latency from its
diagnostics (image received to people published: mean of the per-second means weighted by
frames answered, and the max), the player-to-people latency per frame (people published minus
image published, DDS source timestamps, matched by stamp: p50, p95), processing time per frame,
frames dropped by the node (a newer frame replaced one not started: the node keeps only the
newest) and lost in transport. Run it after ``. scripts/env.sh``; --json: the last line is one
JSON object {"machine", "frames", "size", "runs": [{backend, device, rate_hz, ...}]}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from mp3d.eval.bench.timing import machine_info
from mp3d.infer.estimator import available_backends
from mp3d_ros.node_load import HZ, load_run, make_bag


def bench(backends: list[str], device: str, rates: list[float], frames: int, width: int,
          height: int) -> list[dict]:
    """One load run per backend and rate over one bag; the runs' figures."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "bench"
        make_bag(bag, frames, width, height)
        for backend in backends:
            for hz in rates:
                print(f"{backend} on {device} at {hz:g} Hz ...", file=sys.stderr, flush=True)
                s = load_run(frames, width, height, hz / HZ,
                             {"backend": backend, "device": device}, bag=bag)
                s.pop("bag_s")  # the bag is made once, above
                runs.append({"backend": backend, "device": device, **s})
    return runs


def table(runs: list[dict]) -> list[str]:
    """The printed table, one line per run."""
    lines = [f"{'backend':12s} {'device':6s} {'rate Hz':>7s} {'out Hz':>7s} "
             f"{'latency mean/max ms':>20s} {'player->people p50/p95 ms':>26s} "
             f"{'proc ms':>8s} {'dropped':>9s} {'lost':>5s}"]
    for r in runs:
        r = {k: float("nan") if v is None else v for k, v in r.items()}  # a run with no output
        dropped = sum(r["dropped"].values())
        lines.append(
            f"{r['backend']:12s} {r['device']:6s} {r['rate_hz']:7g} {r['output_hz']:7.1f} "
            f"{r['latency_ms_mean']:9.0f} / {r['latency_ms_max']:<8.0f} "
            f"{r['player_to_people_ms_p50']:13} / {r['player_to_people_ms_p95']:<10} "
            f"{r['processing_ms_mean']:8.1f} {dropped:4d}/{r['received']:<4d} "
            f"{r['lost_in_transport']:5d}")
        if not str(r["backend_reported"]).startswith(r["backend"]):
            lines.append(f"  warning: the node reports backend {r['backend_reported']!r}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0, 60.0],
                    help="camera rates to play at (Hz)")
    ap.add_argument("--backends", nargs="+", help="default: every backend available on --device")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--frames", type=int, default=300, help="frames played per run")
    ap.add_argument("--size", default="640x480", help="WxH of the played images")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    a = ap.parse_args(argv)
    width, height = (int(v) for v in a.size.lower().split("x"))
    backends = a.backends or [b for b, d in available_backends() if d == a.device]
    machine = machine_info(threads=0)
    runs = bench(backends, a.device, a.rates, a.frames, width, height)
    machine["load_1min_end"] = machine_info(threads=0)["load_1min"]
    print(f"{a.frames} frames of {a.size} per run; machine: {machine['cpu']}, "
          f"{machine['cores']} cores, load {machine['load_1min']} at the start, "
          f"{machine['load_1min_end']} at the end")
    for line in table(runs):
        print(line)
    if a.json:
        print(json.dumps({"machine": machine, "frames": a.frames, "size": a.size, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
