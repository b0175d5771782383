"""`mp3d eval ...`: the evaluation commands (lifting)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model (lifting)")
    which = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    from mp3d import eval_lifting

    q = which.add_parser("lifting", help="P + map decoding on held-out synthetic scenes")
    eval_lifting.add_arguments(q)
    q.set_defaults(func=eval_lifting.run)
