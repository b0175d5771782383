"""`mp3d package SRC DST`: a training checkpoint made ready to ship (see mp3d.train.package)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("package", help="strip a training checkpoint for shipping (float16 "
                       "weights, no optimiser state), optionally setting its person threshold and "
                       "input size")
    p.add_argument("src", help="training checkpoint (.pt)")
    p.add_argument("dst", help="packaged checkpoint to write")
    p.add_argument("--peak-threshold", type=float, help="person score threshold to store")
    p.add_argument("--input-size", type=int, help="default network input's long side to store "
                   "(px, a multiple of 32): what the node and the commands run at unless told")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mp3d.train.package import package

    package(args.src, args.dst, args.peak_threshold, args.input_size)
    print(f"packaged {args.src} -> {args.dst}")
    return 0
