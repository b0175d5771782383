"""`mp3d teach DATA`: run a frozen 2D teacher over an unlabeled dataset once and cache its outputs.

Runs where the teacher extra is installed (`.venv-teacher/bin/python -m mp3d.cli teach ...`, see
README); training then reads the cache without the teacher's dependencies. The teacher's full
name (weights hash, settings) is recorded in CACHE/teachers.json under the dataset's path.
Frames that cannot be decoded are skipped and counted (`mp3d.data.images.skips.FrameSkips`; one
summary line at the end); ``--strict`` stops at the first one instead (``error: ...``, exit 2).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teach", help="cache a frozen 2D teacher's outputs on a dataset")
    p.add_argument("data", help="video file, image folder or rosbag2")
    p.add_argument("--topic", help="image topic (bags)")
    p.add_argument("--teacher", default="yolo11n-pose", help="yolo11n-pose | blazepose-topdown")
    p.add_argument("--imgsz", type=int, default=960, help="YOLO input size")
    p.add_argument("--cache", default="cache/teacher", help="cache folder")
    p.add_argument("--start-frac", type=float, default=0.0)
    p.add_argument("--end-frac", type=float, default=1.0)
    p.add_argument("--strict", action="store_true",
                   help="stop at the first frame that cannot be decoded (default: skip it, count "
                   "it, and print a summary line at the end)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mp3d.data.teachers import make_teacher
    from mp3d.data.teachers.cache import teach

    kw = {"imgsz": args.imgsz} if args.teacher.startswith("yolo") else {}
    teach(args.data, make_teacher(args.teacher, **kw), args.cache, args.topic, args.start_frac,
          args.end_frac, args.strict)
    return 0
