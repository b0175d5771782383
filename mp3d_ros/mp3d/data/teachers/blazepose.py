"""Top-down MediaPipe BlazePose: person boxes, then BlazePose on a padded square crop of each
person, its 33 landmarks mapped to COCO-17.
"""

from __future__ import annotations

import hashlib
import importlib.util

import numpy as np

from mp3d.common.paths import file_sha256
from mp3d.data.teachers.base import (
    PersonDetector,
    TeacherPeople,
    _check_rgb,
    _import_or_hint,
    _package_dir,
)
from mp3d.data.teachers.hog import HogPersonDetector
from mp3d.data.teachers.yolo import YoloPersonDetector

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
