"""`mp3d teach DATA`: run a frozen 2D teacher over an unlabeled dataset once and cache its outputs.

Runs where the teacher extra is installed (`.venv-teacher/bin/python -m mp3d.cli teach ...`, see
README); training then reads the cache without the teacher's dependencies. The teacher's full
name (weights hash, settings) is recorded in CACHE/teachers.json under the dataset's path.
Frames that cannot be decoded are skipped and counted (`mp3d.pool.FrameSkips`; one summary line at
the end); ``--strict`` stops at the first one instead (``error: ...``, exit 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mp3d.teachers import Teacher, TeacherPeople


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


def teach(data: str | Path, teacher: Teacher, cache: str | Path, topic: str | None = None,
          start_frac: float = 0.0, end_frac: float = 1.0, strict: bool = False,
          progress: bool = True) -> list[TeacherPeople | None]:
    """Cache `teacher`'s outputs on the frames of `data` in [start_frac, end_frac) and record its
    name in CACHE/teachers.json; prints the skip summary (when frames were skipped) and a final
    line. Returns the outputs, None for each skipped frame; with `strict`, the first frame that
    cannot be decoded raises `mp3d.pool.BadFrameError`."""
    from mp3d.imagedata import open_dataset, split_by_time
    from mp3d.pool import FrameSkips
    from mp3d.teachers import TeacherCache

    skips = FrameSkips(strict=strict)
    with open_dataset(data, topic=topic) if topic else open_dataset(data) as ds:
        frames = split_by_time(ds, start_frac, end_frac)
        people = TeacherCache(cache).get_or_compute(frames, teacher, progress, read=skips.read)
    index = Path(cache) / "teachers.json"
    names = json.loads(index.read_text()) if index.is_file() else {}
    key = str(Path(data).resolve())
    names[key] = sorted(set(names.get(key, [])) | {teacher.name})
    index.write_text(json.dumps(names, indent=1))
    if skips.skipped:
        print(skips.summary(len(frames)))
    done = len(frames) - skips.skipped
    n = sum(len(p) for p in people if p is not None)
    print(f"{teacher.name}: {done} frames, {n} people ({n / max(done, 1):.2f} per frame), "
          f"cached in {cache}")
    return people


def run(args: argparse.Namespace) -> int:
    from mp3d.teachers import make_teacher

    kw = {"imgsz": args.imgsz} if args.teacher.startswith("yolo") else {}
    teach(args.data, make_teacher(args.teacher, **kw), args.cache, args.topic, args.start_frac,
          args.end_frac, args.strict)
    return 0
