"""`mp3d bench`: the student's speed per backend, by number of people, against the top-down peer."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from mp3d.eval.bench.run import add_arguments, run

    p = sub.add_parser("bench", help="speed per backend, by number of people, against the "
                       "top-down peer")
    add_arguments(p)
    p.set_defaults(func=run)
