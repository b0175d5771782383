"""A calibrated camera (OpenCV conventions) with lens distortion: projection, distortion and
undistortion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mp3d.common.geometry import Intrinsics


class CalibrationError(ValueError):
    """A calibration file is missing, malformed or describes an impossible camera."""




@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated camera. K: (3, 3); dist: (5,) k1 k2 p1 p2 k3; R: (3, 3) world to camera;
    t: (3,) metres (x_cam = R x_world + t); width, height: image size in pixels."""

    name: str
    K: np.ndarray
    dist: np.ndarray
    R: np.ndarray
    t: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=np.float64)
        R = np.asarray(self.R, dtype=np.float64)
        t = np.asarray(self.t, dtype=np.float64).reshape(-1)
        d = np.zeros(5)
        dist = np.asarray(self.dist, dtype=np.float64).reshape(-1)
        if K.shape != (3, 3) or R.shape != (3, 3) or t.shape != (3,) or len(dist) > 5:
            raise CalibrationError(f"camera {self.name}: bad shapes K {K.shape}, R {R.shape}, "
                                   f"t {t.shape}, dist {dist.shape}")
        d[: len(dist)] = dist
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(R)) and np.all(np.isfinite(t))
                and np.all(np.isfinite(d))):
            raise CalibrationError(f"camera {self.name}: non-finite calibration values")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or abs(K[2, 2] - 1.0) > 1e-9 or np.any(K[1:, 0]) or K[2, 1]:
            raise CalibrationError(f"camera {self.name}: K is not an upper-triangular camera "
                                   f"matrix with positive focal lengths: {K.tolist()}")
        if np.abs(R @ R.T - np.eye(3)).max() > 1e-5 or np.linalg.det(R) < 0:
            raise CalibrationError(f"camera {self.name}: R is not a rotation matrix")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CalibrationError(f"camera {self.name}: bad image size "
                                   f"{self.width}x{self.height}")
        for k, v in (("K", K), ("R", R), ("t", t), ("dist", d)):
            v.setflags(write=False)
            object.__setattr__(self, k, v)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def centre(self) -> np.ndarray:
        """Camera centre in the world, (3,) metres."""
        return -self.R.T @ self.t

    @property
    def Rt(self) -> np.ndarray:
        """(3, 4) world-to-camera [R | t]."""
        return np.concatenate([self.R, self.t[:, None]], axis=1)

    @property
    def P(self) -> np.ndarray:
        """(3, 4) projection matrix K [R | t] to undistorted pixels."""
        return self.K @ self.Rt

    def intrinsics(self) -> Intrinsics:
        """Pinhole intrinsics of the undistorted image (no skew)."""
        return Intrinsics(float(self.K[0, 0]), float(self.K[1, 1]), float(self.K[0, 2]),
                          float(self.K[1, 2]), self.width, self.height)

    def with_pose(self, R: np.ndarray, t: np.ndarray) -> Camera:
        """The same camera with other extrinsics."""
        return replace(self, R=np.asarray(R, dtype=np.float64), t=np.asarray(t, dtype=np.float64))


def to_camera(cam: Camera, X: np.ndarray) -> np.ndarray:
    """World points to the camera optical frame, (..., 3) -> (..., 3)."""
    X = np.asarray(X, dtype=np.float64)
    assert X.shape[-1] == 3, X.shape
    return X @ cam.R.T + cam.t


def project(cam: Camera, X: np.ndarray) -> np.ndarray:
    """World points to undistorted pixels, (..., 3) -> (..., 2); NaN where z <= 0."""
    Xc = to_camera(cam, X)
    z = Xc[..., 2:3]
    with np.errstate(invalid="ignore", divide="ignore"):
        xn = np.where(z > 0, Xc[..., :2] / z, np.nan)
    return _normalised_to_pixels(cam.K, xn)


def _normalised_to_pixels(K: np.ndarray, xn: np.ndarray) -> np.ndarray:
    u = K[0, 0] * xn[..., 0] + K[0, 1] * xn[..., 1] + K[0, 2]
    v = K[1, 1] * xn[..., 1] + K[1, 2]
    return np.stack([u, v], axis=-1)


def _pixels_to_normalised(K: np.ndarray, uv: np.ndarray) -> np.ndarray:
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    x = (uv[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x, y], axis=-1)


def distort_normalised(xn: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Apply OpenCV's lens distortion (k1, k2, p1, p2, k3) to normalised image coordinates,
    (..., 2) -> (..., 2)."""
    xn = np.asarray(xn, dtype=np.float64)
    assert xn.shape[-1] == 2, xn.shape
    k1, k2, p1, p2, k3 = np.concatenate([np.asarray(dist, float).ravel(), np.zeros(5)])[:5]
    x, y = xn[..., 0], xn[..., 1]
    r2 = x * x + y * y
    radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], axis=-1)


def distort_points(cam: Camera, uv: np.ndarray) -> np.ndarray:
    """Undistorted pixels to raw (distorted) pixels of the camera, (..., 2) -> (..., 2)."""
    uv = np.asarray(uv, dtype=np.float64)
    assert uv.shape[-1] == 2, uv.shape
    return _normalised_to_pixels(cam.K, distort_normalised(_pixels_to_normalised(cam.K, uv),
                                                           cam.dist))


def undistort_points(cam: Camera, uv: np.ndarray, iterations: int = 30) -> np.ndarray:
    """Raw (distorted) pixels to undistorted pixels of the same K, (..., 2) -> (..., 2).

    Inverts `distort_normalised` by fixed-point iteration (as OpenCV's undistortPoints, with more
    iterations); exact to ~1e-9 px for the mild distortion of ordinary lenses. NaN stays NaN."""
    uv = np.asarray(uv, dtype=np.float64)
    assert uv.shape[-1] == 2, uv.shape
    if not np.any(cam.dist):
        return uv.copy()
    xd = _pixels_to_normalised(cam.K, uv)
    k1, k2, p1, p2, k3 = cam.dist
    x = xd.copy()
    for _ in range(iterations):
        r2 = (x ** 2).sum(-1)
        radial = 1 + k1 * r2 + k2 * r2 * r2 + k3 * r2 ** 3
        dx = 2 * p1 * x[..., 0] * x[..., 1] + p2 * (r2 + 2 * x[..., 0] ** 2)
        dy = p1 * (r2 + 2 * x[..., 1] ** 2) + 2 * p2 * x[..., 0] * x[..., 1]
        x = np.stack([(xd[..., 0] - dx) / radial, (xd[..., 1] - dy) / radial], axis=-1)
    return _normalised_to_pixels(cam.K, x)


def rotation_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two (3, 3) rotation matrices."""
    c = (np.trace(Rb @ Ra.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))
