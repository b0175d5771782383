"""``mp3d_bag`` / ``python -m mp3d_ros.bagio {info,recover} BAG``: a bag's topics, or its repair."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .reader import bag_topics
from .recovery import recover_bag
from .types import BagError


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mp3d_ros.bagio {info,recover} BAG``: print a bag's topics, or repair it."""
    parser = argparse.ArgumentParser(prog="mp3d_bag", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="topics, types and counts of a closed bag").add_argument("bag")
    sub.add_parser("recover", help="salvage a bag whose recorder died").add_argument("bag")
    args = parser.parse_args(argv)
    try:
        if args.command == "recover":
            print(json.dumps(recover_bag(args.bag).as_dict()))
        else:
            print(json.dumps({name: t.__dict__ for name, t in bag_topics(args.bag).items()}))
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
