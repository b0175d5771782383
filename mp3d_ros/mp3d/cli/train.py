"""`mp3d train ...`: the training commands (prior, posemap, student)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model (prior, posemap, student)")
    which = p.add_subparsers(dest="model", metavar="MODEL", required=True)

    from mp3d import train_prior

    q = which.add_parser("prior", help="the generative pose embedding, from motion capture")
    train_prior.add_arguments(q)
    q.set_defaults(func=_prior)

    from mp3d import train_posemap

    q = which.add_parser("posemap", help="the pose-map network P, on synthetic scenes")
    train_posemap.add_arguments(q)
    q.set_defaults(func=_posemap)

    from mp3d import train_student

    q = which.add_parser("student", help="the image student S, by cross-modal alignment")
    train_student.add_arguments(q)
    q.set_defaults(func=_student)


def _prior(args: argparse.Namespace) -> int:
    from mp3d.train_prior import print_result, train_prior

    print_result(train_prior(args), args.json)
    return 0


def _posemap(args: argparse.Namespace) -> int:
    from mp3d.train_posemap import train_posemap

    train_posemap(args)
    return 0


def _student(args: argparse.Namespace) -> int:
    from mp3d.train_student import train_student

    train_student(args)
    return 0
