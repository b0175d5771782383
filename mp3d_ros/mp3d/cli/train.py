"""`mp3d train ...`: the training commands (prior, posemap, student)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from mp3d.train import posemap, prior, student

    p = sub.add_parser("train", help="train a model (prior, posemap, student)")
    which = p.add_subparsers(dest="model", metavar="MODEL", required=True)

    q = which.add_parser("prior", help="the generative pose embedding, from motion capture")
    prior.add_arguments(q)
    q.set_defaults(func=_prior)

    q = which.add_parser("posemap", help="the pose-map network P, on synthetic scenes")
    posemap.add_arguments(q)
    q.set_defaults(func=_posemap)

    q = which.add_parser("student", help="the image student S, by cross-modal alignment")
    student.add_arguments(q)
    q.set_defaults(func=_student)


def _prior(args: argparse.Namespace) -> int:
    from mp3d.train.prior import print_result, train_prior

    print_result(train_prior(args), args.json)
    return 0


def _posemap(args: argparse.Namespace) -> int:
    from mp3d.train.posemap import train_posemap

    train_posemap(args)
    return 0


def _student(args: argparse.Namespace) -> int:
    from mp3d.train.student import train_student

    train_student(args)
    return 0
