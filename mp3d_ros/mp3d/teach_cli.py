"""`mp3d teach DATA`: run a frozen 2D teacher over an unlabeled dataset once and cache its outputs.

Runs where the teacher extra is installed (`.venv-teacher/bin/python -m mp3d.cli teach ...`, see
README); training then reads the cache without the teacher's dependencies. The teacher's full
name (weights hash, settings) is recorded in CACHE/teachers.json under the dataset's path.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("teach", help="cache a frozen 2D teacher's outputs on a dataset")
    p.add_argument("data", help="video file, image folder or rosbag2")
    p.add_argument("--topic", help="image topic (bags)")
    p.add_argument("--teacher", default="yolo11n-pose", help="yolo11n-pose | blazepose-topdown")
    p.add_argument("--imgsz", type=int, default=960, help="YOLO input size")
    p.add_argument("--cache", default="cache/teacher", help="cache folder")
    p.add_argument("--start-frac", type=float, default=0.0)
    p.add_argument("--end-frac", type=float, default=1.0)
    p.set_defaults(func=run)


def teacher_name_for(cache: str | Path, data: str | Path, teacher: str) -> str:
    """The recorded full name of `teacher` (a part of it, e.g. "yolo11n-pose") for `data`."""
    index = Path(cache) / "teachers.json"
    if not index.is_file():
        raise FileNotFoundError(f"no teacher outputs cached in {cache}: run `mp3d teach` first")
    names = json.loads(index.read_text()).get(str(Path(data).resolve()), [])
    hits = [n for n in names if teacher in n]
    if not hits:
        raise LookupError(f"no {teacher!r} outputs cached for {data} in {cache} "
                          f"(have: {names}); run `mp3d teach {data} --teacher {teacher}`")
    return hits[-1]


def run(args: argparse.Namespace) -> int:
    from mp3d.imagedata import open_dataset, split_by_time
    from mp3d.teachers import TeacherCache, make_teacher

    kw = {"imgsz": args.imgsz} if args.teacher.startswith("yolo") else {}
    teacher = make_teacher(args.teacher, **kw)
    ds = open_dataset(args.data, topic=args.topic) if args.topic else open_dataset(args.data)
    frames = split_by_time(ds, args.start_frac, args.end_frac)
    cache = TeacherCache(args.cache)
    people = cache.get_or_compute(frames, teacher)
    index = Path(args.cache) / "teachers.json"
    data = json.loads(index.read_text()) if index.is_file() else {}
    key = str(Path(args.data).resolve())
    data[key] = sorted(set(data.get(key, [])) | {teacher.name})
    index.write_text(json.dumps(data, indent=1))
    n = sum(len(p) for p in people)
    print(f"{teacher.name}: {len(frames)} frames, {n} people ({n / max(len(frames), 1):.2f} per "
          f"frame), cached in {args.cache}")
    return 0
