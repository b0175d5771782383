"""`mp3d eval ...`: the evaluation commands (lifting, images, multiview)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a model (lifting, images, multiview)")
    which = p.add_subparsers(dest="what", metavar="WHAT", required=True)

    from mp3d.eval import images, lifting

    q = which.add_parser("lifting", help="P + map decoding on held-out synthetic scenes")
    lifting.add_arguments(q)
    q.set_defaults(func=lifting.run)

    q = which.add_parser("images", help="the image student on held-out frames, vs the teacher")
    images.add_arguments(q)
    q.set_defaults(func=images.run)

    from mp3d.eval.multiview import command as multiview
    from mp3d.eval.multiview.config import add_arguments

    q = which.add_parser("multiview", help="3D on real calibrated multi-view video, pseudo ground "
                         "truth triangulated from the teacher (no labels)",
                         description=multiview.__doc__.splitlines()[0])
    add_arguments(q)
    q.set_defaults(func=multiview.run)
