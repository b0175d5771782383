"""`mp3d bag {info,recover} BAG` (also the ``mp3d_bag`` executable): a bag's topics, or its
repair."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="bag_command", metavar="WHAT", required=True)
    sub.add_parser("info", help="topics, types and counts of a closed bag").add_argument("bag")
    sub.add_parser("recover", help="salvage a bag whose recorder died").add_argument("bag")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bag", help="a bag's topics (info), or salvage a bag whose recorder died "
                       "(recover)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the bag's topics (info) or repair it (recover), as one JSON line; a bag that cannot
    be read is one `error:` line and exit 1."""
    from mp3d.data.bags import BagError, bag_topics, recover_bag

    try:
        if args.bag_command == "recover":
            print(json.dumps(recover_bag(args.bag).as_dict()))
        else:
            print(json.dumps({name: t.__dict__ for name, t in bag_topics(args.bag).items()}))
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``mp3d_bag {info,recover} BAG``: the same as `mp3d bag`."""
    parser = argparse.ArgumentParser(prog="mp3d_bag", description=main.__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
