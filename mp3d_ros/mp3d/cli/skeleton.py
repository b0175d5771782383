"""`mp3d skeleton`: print the skeleton table (names, parents, sides, teacher mapping)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("skeleton", help="print the skeleton table")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mp3d.common import skeleton as sk

    if args.json:
        print(json.dumps({"name": sk.NAME, "joint_names": list(sk.JOINT_NAMES),
                          "parents": list(sk.PARENTS), "lr_pairs": [list(p) for p in sk.LR_PAIRS]}))
        return 0
    print(f"skeleton {sk.NAME}: {sk.NUM_JOINTS} joints, root {sk.JOINT_NAMES[sk.ROOT]}")
    for i, (name, parent) in enumerate(zip(sk.JOINT_NAMES, sk.PARENTS)):
        src = ",".join(sk.COCO_NAMES[c] for c in sk.COCO_TO_MUPOTS[i]) or "-"
        par = sk.JOINT_NAMES[parent] if parent >= 0 else "-"
        print(f"{i:2d} {name:11s} parent={par:11s} coco={src}")
    return 0
