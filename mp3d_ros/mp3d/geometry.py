"""Pinhole camera geometry as pure functions: intrinsics, projection, back-projection, resizing.

Conventions: camera optical frame (REP-103: x right, y down, z forward), metres; pixel coordinates
with integer values at pixel centres (as in CameraInfo K and OpenCV). Shapes are in docstrings and
asserted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of an image of `width` x `height` pixels (no distortion)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        vals = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(v) for v in vals):
            raise ValueError(f"intrinsics must be finite, got {vals}")
        if self.fx <= 0 or self.fy <= 0:
            raise ValueError(f"focal lengths must be positive, got fx={self.fx} fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def K(self) -> np.ndarray:
        """3x3 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @staticmethod
    def from_fov(width: int, height: int, hfov_deg: float = 60.0) -> Intrinsics:
        """Fallback intrinsics for a camera with no calibration: square pixels, principal point at
        the image centre, focal length from a horizontal field of view (60 deg by default, a
        typical webcam)."""
        f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2.0)
        return Intrinsics(f, f, (width - 1) / 2.0, (height - 1) / 2.0, int(width), int(height))


def intrinsics_from_camera_info(
    k: Sequence[float],
    width: int,
    height: int,
    p: Sequence[float] | None = None,
    rectified: bool = False,
) -> Intrinsics:
    """Intrinsics from CameraInfo fields: K (9 numbers, row-major) or, for rectified images, the
    left 3x3 of P (12 numbers). Raises ValueError on an all-zero or malformed matrix (an
    uncalibrated camera publishes zeros)."""
    if rectified:
        if p is None or len(p) != 12:
            raise ValueError("rectified intrinsics need P with 12 numbers")
        m = np.asarray(p, dtype=np.float64).reshape(3, 4)[:, :3]
    else:
        if len(k) != 9:
            raise ValueError(f"K must have 9 numbers, got {len(k)}")
        m = np.asarray(k, dtype=np.float64).reshape(3, 3)
    if not np.all(np.isfinite(m)) or m[0, 0] <= 0 or m[1, 1] <= 0:
        raise ValueError(f"camera matrix is not calibrated (fx={m[0, 0]}, fy={m[1, 1]})")
    return Intrinsics(float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2]), int(width),
                      int(height))


def intrinsics_or_fov(k: np.ndarray | None, width: int, height: int,
                      hfov_deg: float) -> Intrinsics:
    """Intrinsics from a (3, 3) camera matrix, or Intrinsics.from_fov when there is none."""
    if k is None:
        return Intrinsics.from_fov(width, height, hfov_deg)
    return intrinsics_from_camera_info(np.asarray(k, dtype=np.float64).ravel(), width, height)


def project(points: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Project camera-frame points to pixels: (..., 3) -> (..., 2). Points need z > 0."""
    points = np.asarray(points, dtype=np.float64)
    assert points.shape[-1] == 3, points.shape
    z = points[..., 2]
    u = intr.fx * points[..., 0] / z + intr.cx
    v = intr.fy * points[..., 1] / z + intr.cy
    return np.stack([u, v], axis=-1)


def back_project(uv: np.ndarray, depth: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """Pixels at depths (z, metres) to camera-frame points: (..., 2), (...) -> (..., 3)."""
    uv = np.asarray(uv, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    assert uv.shape[-1] == 2 and depth.shape == uv.shape[:-1], (uv.shape, depth.shape)
    x = (uv[..., 0] - intr.cx) / intr.fx * depth
    y = (uv[..., 1] - intr.cy) / intr.fy * depth
    return np.stack([x, y, depth], axis=-1)


def resize_intrinsics(intr: Intrinsics, width: int, height: int) -> Intrinsics:
    """Intrinsics of the same image resized to width x height (pixel-centre convention)."""
    sx, sy = width / intr.width, height / intr.height
    return Intrinsics(intr.fx * sx, intr.fy * sy, (intr.cx + 0.5) * sx - 0.5,
                      (intr.cy + 0.5) * sy - 0.5, int(width), int(height))


def crop_intrinsics(intr: Intrinsics, x0: int, y0: int, width: int, height: int) -> Intrinsics:
    """Intrinsics of the crop whose top-left pixel is (x0, y0) of the original (may be negative:
    padding)."""
    return replace(intr, cx=intr.cx - x0, cy=intr.cy - y0, width=int(width), height=int(height))


@dataclass(frozen=True)
class Letterbox:
    """Uniform scale then pad to (out_w, out_h): out = in * scale + (pad_x, pad_y), for pixel
    centres."""

    scale: float
    pad_x: float
    pad_y: float
    out_w: int
    out_h: int

    def to_out(self, uv: np.ndarray) -> np.ndarray:
        """Source pixels to letterboxed pixels, (..., 2) -> (..., 2)."""
        uv = np.asarray(uv, dtype=np.float64)
        assert uv.shape[-1] == 2, uv.shape
        return (uv + 0.5) * self.scale - 0.5 + np.array([self.pad_x, self.pad_y])

    def to_src(self, uv: np.ndarray) -> np.ndarray:
        """Letterboxed pixels back to source pixels, (..., 2) -> (..., 2)."""
        uv = np.asarray(uv, dtype=np.float64)
        assert uv.shape[-1] == 2, uv.shape
        return (uv - np.array([self.pad_x, self.pad_y]) + 0.5) / self.scale - 0.5


def letterbox(src_w: int, src_h: int, out_w: int, out_h: int) -> Letterbox:
    """Fit a src_w x src_h image into out_w x out_h keeping its aspect ratio, centred, padded."""
    scale = min(out_w / src_w, out_h / src_h)
    pad_x = (out_w - round(src_w * scale)) // 2
    pad_y = (out_h - round(src_h * scale)) // 2
    return Letterbox(float(scale), float(pad_x), float(pad_y), int(out_w), int(out_h))


def letterbox_intrinsics(intr: Intrinsics, lb: Letterbox) -> Intrinsics:
    """Intrinsics of the letterboxed image."""
    c = lb.to_out(np.array([intr.cx, intr.cy]))
    return Intrinsics(intr.fx * lb.scale, intr.fy * lb.scale, float(c[0]), float(c[1]), lb.out_w,
                      lb.out_h)
