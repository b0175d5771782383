"""OpenCV's HOG people detector (boxes only), for the top-down teacher."""

from __future__ import annotations

import numpy as np

from mp3d.data.teachers.base import INSTALL_HINT, TeacherUnavailableError, _check_rgb


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
