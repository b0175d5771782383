"""The teacher interface: `TeacherPeople` (COCO-17 keypoints with confidences), the `Teacher` and
`PersonDetector` protocols, and the errors.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from mp3d.common.skeleton import COCO_NAMES

NUM_KP = len(COCO_NAMES)

INSTALL_HINT = (
    "install the optional teacher extra into its own virtual environment: "
    "pip install torch==2.14.1 torchvision==0.29.1 -r requirements-teacher.txt "
    "(torch and torchvision must be installed together; see requirements-teacher.txt)"
)


class TeacherUnavailableError(ImportError):
    """A teacher's optional dependencies or weights are missing; the message says how to install."""




@dataclass
class TeacherPeople:
    """People found by a teacher in one image.

    keypoints: (N, 17, 2) float32 COCO-17 keypoints, pixels of the input image (integer = pixel
    centre); scores: (N, 17) float32 in [0, 1]; boxes: (N, 4) float32 x0, y0, x1, y1 pixels;
    person_scores: (N,) float32 in [0, 1]; image_size: (H, W) of the image, or None if unknown.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    person_scores: np.ndarray
    image_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, NUM_KP, 2)
        n = len(self.keypoints)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(n, NUM_KP)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(n, 4)
        self.person_scores = np.asarray(self.person_scores, dtype=np.float32).reshape(n)
        if self.image_size is not None:
            self.image_size = (int(self.image_size[0]), int(self.image_size[1]))

    @classmethod
    def empty(cls, image_size: tuple[int, int] | None = None) -> TeacherPeople:
        """No people: N = 0 arrays of the right shapes."""
        return cls(np.zeros((0, NUM_KP, 2)), np.zeros((0, NUM_KP)), np.zeros((0, 4)),
                   np.zeros(0), image_size)

    def __len__(self) -> int:
        return len(self.keypoints)

    def select(self, idx: np.ndarray | Sequence[int] | slice) -> TeacherPeople:
        """A subset of the people (index array, boolean mask or slice)."""
        return TeacherPeople(self.keypoints[idx], self.scores[idx], self.boxes[idx],
                             self.person_scores[idx], self.image_size)

    def equals(self, other: TeacherPeople) -> bool:
        """True if every array (and the image size) is exactly equal."""
        return (self.image_size == other.image_size
                and all(np.array_equal(a, b) for a, b in zip(
                    (self.keypoints, self.scores, self.boxes, self.person_scores),
                    (other.keypoints, other.scores, other.boxes, other.person_scores))))


@runtime_checkable
class Teacher(Protocol):
    """A frozen 2D keypoint detector.

    name: a stable id that changes whenever outputs could change (weights hash, version, settings);
    it is part of every cache key. Calling it on an HxWx3 uint8 RGB image returns `TeacherPeople`.
    """

    name: str

    def __call__(self, rgb: np.ndarray) -> TeacherPeople: ...


@runtime_checkable
class PersonDetector(Protocol):
    """Person boxes: ``__call__(rgb HxWx3 uint8) -> (boxes (N, 4) x0 y0 x1 y1 px, scores (N,))``."""

    name: str

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB image, got shape {rgb.shape} {rgb.dtype}")
    return rgb


def _package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise TeacherUnavailableError(f"package {package!r} is not installed; {INSTALL_HINT}")
    return Path(list(spec.submodule_search_locations)[0])


def _offline_ultralytics_env() -> None:
    """Keep ultralytics off the network (no online checks, no pip auto-installs), unless the user
    set these variables already. Must run before ultralytics is first imported."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")


def _import_or_hint(module: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        msg = f"{module} is not importable ({exc}); {INSTALL_HINT}"
        raise TeacherUnavailableError(msg) from exc
