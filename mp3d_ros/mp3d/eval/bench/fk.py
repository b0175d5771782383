"""Time BVH parsing and forward kinematics: python -m mp3d.eval.bench.fk FILE.bvh [--frames N]."""

from __future__ import annotations

import argparse
import time

import numpy as np

from mp3d.data.mocap.bvh import read_bvh
from mp3d.data.mocap.fk import forward_kinematics
from mp3d.data.mocap.retarget import retarget


def _best_of(fn, repeat: int) -> float:
    """Best wall time of `repeat` calls, seconds."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("bvh", help="a BVH file")
    ap.add_argument("--frames", type=int, default=10_000, help="frames for the large FK run")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = ap.parse_args(argv)

    t_parse = _best_of(lambda: read_bvh(args.bvh), args.repeat)
    bvh = read_bvh(args.bvh)
    t_fk = _best_of(lambda: forward_kinematics(bvh, end_sites=True), args.repeat)
    t_rt = _best_of(lambda: retarget(bvh), args.repeat)
    reps = -(-args.frames // bvh.num_frames)
    big = np.tile(bvh.motion, (reps, 1))[: args.frames]
    t_big = _best_of(lambda: forward_kinematics(bvh, big), args.repeat)
    print(f"{args.bvh}: {bvh.num_frames} frames, {bvh.num_joints} joints, "
          f"{bvh.num_channels} channels")
    print(f"parse            {t_parse * 1e3:8.1f} ms")
    print(f"FK (+end sites)  {t_fk * 1e3:8.1f} ms  ({bvh.num_frames} frames)")
    print(f"retarget (FK+map){t_rt * 1e3:8.1f} ms")
    print(f"FK               {t_big * 1e3:8.1f} ms  "
          f"({args.frames} frames x {bvh.num_joints} joints)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
