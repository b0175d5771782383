"""Pinhole camera geometry as pure functions: intrinsics, projection, back-projection, resizing.

Conventions: camera optical frame (REP-103: x right, y down, z forward), metres; pixel coordinates
with integer values at pixel centres (as in CameraInfo K and OpenCV). Shapes are in docstrings and
asserted.
"""

from __future__ import annotations

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


FALLBACK_HFOV_DEG = 60.0
"""Horizontal field of view assumed for a camera with no usable calibration (a typical webcam)."""


@dataclass(frozen=True)
class CameraCalibration:
    """What a ``sensor_msgs/CameraInfo`` says about the pinhole model: K (9 numbers, row-major),
    P (12 numbers, row-major; the rectified camera) and the calibrated image size (0 x 0: not
    given). Plain values, so it crosses threads and processes freely."""

    k: tuple[float, ...]
    p: tuple[float, ...]
    width: int
    height: int

    @staticmethod
    def from_msg(msg: object) -> CameraCalibration:
        """From a CameraInfo message (rclpy, rosbags, or anything with ``k``, ``p``, ``width``,
        ``height``; ROS 1 style ``K``/``P`` too). Missing or short matrices become empty
        tuples, which :func:`resolve_intrinsics` reports."""
        def numbers(name: str) -> tuple[float, ...]:
            value = getattr(msg, name, None)
            if value is None:
                value = getattr(msg, name.upper(), ())
            try:
                return tuple(float(v) for v in value)
            except (TypeError, ValueError):
                return ()

        return CameraCalibration(numbers("k"), numbers("p"), int(getattr(msg, "width", 0) or 0),
                                 int(getattr(msg, "height", 0) or 0))


@dataclass(frozen=True)
class FallbackCamera:
    """The intrinsics to use when no CameraInfo is usable: ``fx`` (px; 0: from ``hfov_deg``),
    ``fy`` (0: fx), ``cx``/``cy`` (None: the image centre)."""

    fx: float = 0.0
    fy: float = 0.0
    cx: float | None = None
    cy: float | None = None
    hfov_deg: float = FALLBACK_HFOV_DEG

    def intrinsics(self, width: int, height: int) -> Intrinsics:
        """The fallback intrinsics of a width x height image."""
        if not self.fx:
            return Intrinsics.from_fov(width, height, self.hfov_deg)
        return Intrinsics(self.fx, self.fy or self.fx,
                          (width - 1) / 2.0 if self.cx is None else self.cx,
                          (height - 1) / 2.0 if self.cy is None else self.cy, width, height)


@dataclass(frozen=True)
class ResolvedIntrinsics:
    """The intrinsics of one image and where they came from. source: 'camera_info' (as
    calibrated), 'camera_info_rescaled' (calibrated at another size, scaled to the image) or
    'fallback'; problem: why the CameraInfo was rescaled or not used (None: nothing to say)."""

    intrinsics: Intrinsics
    source: str
    problem: str | None = None


def _pinhole(calib: CameraCalibration, use_p: bool) -> Intrinsics:
    """The calibration's K (or P's left 3x3) at its own size; ValueError when unusable."""
    name, numbers, n = ("P", calib.p, 12) if use_p else ("K", calib.k, 9)
    if len(numbers) != n:
        raise ValueError(f"CameraInfo {name} has {len(numbers)} numbers, not {n}")
    m = np.asarray(numbers, dtype=np.float64).reshape(3, n // 3)
    fx, fy, cx, cy = m[0, 0], m[1, 1], m[0, 2], m[1, 2]
    if not np.all(np.isfinite([fx, fy, cx, cy])) or fx <= 0 or fy <= 0:
        raise ValueError(f"CameraInfo {name} is not a calibration (fx={fx:g}, fy={fy:g}, "
                         f"cx={cx:g}, cy={cy:g})")
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), calib.width, calib.height)


def resolve_intrinsics(calib: CameraCalibration | None, width: int, height: int,
                       fallback: FallbackCamera = FallbackCamera(),
                       rectified: bool = False) -> ResolvedIntrinsics:
    """The one intrinsics policy (pose node, replay, estimate, datasets) for a width x height
    image: the CameraInfo's K, or for rectified images its P (K when P is unusable); rescaled
    (:func:`resize_intrinsics`) when the CameraInfo was calibrated at another size (a size of
    0 x 0 means the image's); the fallback camera when there is no CameraInfo or its matrix
    is zero, NaN or has a non-positive focal length."""
    if calib is None:
        return ResolvedIntrinsics(fallback.intrinsics(width, height), "fallback",
                                  "no CameraInfo")
    if not calib.width or not calib.height:
        calib = replace(calib, width=int(width), height=int(height))
    problems = []
    intr = None
    for use_p in ((True, False) if rectified else (False,)):
        try:
            intr = _pinhole(calib, use_p)
            break
        except ValueError as exc:
            problems.append(str(exc))
    if intr is None:
        return ResolvedIntrinsics(fallback.intrinsics(width, height), "fallback",
                                  "; ".join(problems) + ": using the fallback intrinsics")
    if (calib.width, calib.height) == (width, height):
        return ResolvedIntrinsics(intr, "camera_info", "; ".join(problems) or None)
    problems.append(f"CameraInfo is {calib.width}x{calib.height}, the image {width}x{height}: "
                    "intrinsics rescaled")
    return ResolvedIntrinsics(resize_intrinsics(intr, width, height), "camera_info_rescaled",
                              "; ".join(problems))


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
