"""`mp3d eval ...`: the evaluation commands (lifting, images, multiview)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model (lifting, images, multiview)")
    which = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    from mp3d import eval_lifting

    q = which.add_parser("lifting", help="P + map decoding on held-out synthetic scenes")
    eval_lifting.add_arguments(q)
    q.set_defaults(func=eval_lifting.run)

    from mp3d import eval_images

    q = which.add_parser("images", help="the image student on held-out frames, vs the teacher")
    eval_images.add_arguments(q)
    q.set_defaults(func=eval_images.run)

    from mp3d import eval_multiview

    eval_multiview.register_parser(which)
