"""Multi-view pseudo ground truth from a 2D teacher: calibration readers, lens distortion, DLT
triangulation, cross-view association with a per-limb left/right vote, bundle adjustment.

Conventions. World frame: the calibration's, metres. Cameras follow OpenCV: a world point X is
``R @ X + t`` in the camera optical frame (x right, y down, z forward); pixel coordinates have
integer values at pixel centres. Lens distortion is OpenCV's (k1, k2, p1, p2, k3). "Undistorted
pixels" are the pinhole pixels of K with the distortion removed: all the geometry below (projection,
triangulation, bundle adjustment) works in them; `undistort_points` brings raw detections there.

Calibration files (`read_calibration` picks by name):

- Qualisys ``.qca.txt`` (`read_qca`), converted as Pose2Sim does: per camera C = the transform's
  x, y, z (camera centre, world mm), M = its r11..r33 (rows; world to Qualisys camera); OpenCV
  R = diag(1, -1, -1) M, t = -R C / 1000; K = focal lengths and centre point / 64 (minus the
  video field of view's left/top). The distortion coefficients are taken undivided (Pose2Sim
  divides them by 64 too; a separate fit of the same cameras, Calib_scene.toml, agrees with the
  undivided values).
- Pose2Sim TOML (`read_pose2sim_toml`): per camera ``matrix`` (K), ``distortions`` (k1 k2 p1 p2),
  ``rotation`` (Rodrigues, world to camera), ``translation`` (metres), ``size`` (width, height).
- YAML (`read_yaml_calibration`, `write_yaml_calibration`), for your own rig::

      cameras:
        cam01:
          size: [1088, 1920]              # width, height (px)
          K: [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]
          dist: [k1, k2, p1, p2, k3]      # OpenCV order, 0-5 numbers (missing ones are 0)
          R: [[r11, r12, r13], ...]       # world to camera; or rvec: [rx, ry, rz] (Rodrigues)
          t: [tx, ty, tz]                 # metres: x_cam = R x_world + t

People. The teacher gives COCO-17 keypoints per view (`skeleton.COCO_NAMES`). `associate` groups
one detection per view into people by two-view triangulation consistency; `lr_vote` decides, per
limb group (face, arms, legs) and per view, whether the teacher swapped left and right (it does in
some back views), trusting views that see the person's front; `triangulate_robust` drops views
whose reprojection error is too high and rejects joints left with fewer than two views. A person's
3D joints come out as COCO-17 points and as the 17 MuPoTS joints (`skeleton.coco_to_mupots` on 3D
points: head_top and spine have no COCO source and stay NaN).
"""

from __future__ import annotations

import itertools
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mp3d import skeleton as sk
from mp3d.geometry import Intrinsics

__all__ = [
    "BundleAdjustConfig",
    "BundleAdjustReport",
    "CalibrationError",
    "Camera",
    "LR_GROUPS",
    "TriangulatedPerson",
    "TriangulationConfig",
    "associate",
    "body_dimensions",
    "bone_length_cv",
    "bundle_adjust",
    "distort_normalised",
    "link_tracks",
    "observation_errors",
    "lr_vote",
    "project",
    "read_calibration",
    "read_pose2sim_toml",
    "read_qca",
    "read_yaml_calibration",
    "reprojection_errors",
    "swap_lr",
    "triangulate",
    "triangulate_people",
    "triangulate_robust",
    "undistort_points",
    "write_yaml_calibration",
]

NUM_COCO = len(sk.COCO_NAMES)
# COCO left/right pairs by limb group: the left/right vote decides each group separately.
LR_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {
    "face": ((2, 1), (4, 3)),
    "arms": ((6, 5), (8, 7), (10, 9)),
    "legs": ((12, 11), (14, 13), (16, 15)),
}
_C = sk.COCO_INDEX


class CalibrationError(ValueError):
    """A calibration file is missing, malformed or describes an impossible camera."""


# ------------------------------------------------------------------------------------------------
# Cameras


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


# ------------------------------------------------------------------------------------------------
# Calibration readers


def _rodrigues(rvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(rvec, dtype=np.float64).reshape(3)).as_matrix()


def _floats(tag: ET.Element, names: Sequence[str], path: Path) -> list[float]:
    out = []
    for n in names:
        v = tag.get(n)
        if v is None:
            raise CalibrationError(f"{path}: <{tag.tag}> of a camera lacks attribute {n!r}")
        try:
            out.append(float(v))
        except ValueError:
            raise CalibrationError(f"{path}: <{tag.tag} {n}={v!r}> is not a number") from None
    return out


def read_qca(path: str | Path) -> list[Camera]:
    """Cameras of a Qualisys ``.qca.txt`` calibration, in file order (see the module docstring
    for the conversion). Raises CalibrationError for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CalibrationError(f"{path}: not a Qualisys XML calibration ({exc})") from None
    cams = []
    for tag in root.findall("cameras/camera"):
        name = tag.get("serial") or f"cam{len(cams) + 1:02d}"
        fov, tr, it = tag.find("fov_video"), tag.find("transform"), tag.find("intrinsic")
        if fov is None or tr is None or it is None:
            raise CalibrationError(f"{path}: camera {name} lacks fov_video, transform or "
                                   "intrinsic")
        left, top, right, bottom = _floats(fov, ("left", "top", "right", "bottom"), path)
        # Pose2Sim's reading of 'video_resolution' (e.g. "720p"): sizes given for 1080 lines.
        res = tag.get("video_resolution")
        scale = 1.0 if res in (None, "N/A") else float(res.rstrip("p")) / 1080.0
        m = np.array(_floats(tr, [f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)], path))
        centre = np.array(_floats(tr, ("x", "y", "z"), path)) / 1000.0
        fu, fv, cu, cv = _floats(it, ("focalLengthU", "focalLengthV", "centerPointU",
                                      "centerPointV"), path)
        k1, k2, k3, p1, p2 = _floats(it, ("radialDistortion1", "radialDistortion2",
                                          "radialDistortion3", "tangentalDistortion1",
                                          "tangentalDistortion2"), path)
        M = m.reshape(3, 3)
        if np.abs(M @ M.T - np.eye(3)).max() > 1e-5:
            raise CalibrationError(f"{path}: camera {name}: transform r11..r33 is not a rotation")
        R = np.diag([1.0, -1.0, -1.0]) @ M
        K = np.array([[fu / 64.0 * scale, 0.0, (cu / 64.0 - left) * scale],
                      [0.0, fv / 64.0 * scale, (cv / 64.0 - top) * scale],
                      [0.0, 0.0, 1.0]])
        cams.append(Camera(name, K, [k1, k2, p1, p2, k3], R, -R @ centre,
                           round((right - left + 1) * scale), round((bottom - top + 1) * scale)))
    if not cams:
        raise CalibrationError(f"{path}: no <cameras/camera> entries")
    return cams


def read_pose2sim_toml(path: str | Path) -> list[Camera]:
    """Cameras of a Pose2Sim calibration TOML (one table per camera; [metadata] is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # Python 3.10: the same parser as the tomli package
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not a TOML file ({exc})") from None
    cams = []
    for key, tab in data.items():
        if key == "metadata" or not isinstance(tab, dict):
            continue
        missing = [k for k in ("matrix", "rotation", "translation", "size") if k not in tab]
        if missing:
            raise CalibrationError(f"{path}: [{key}] lacks {missing}")
        if tab.get("fisheye", False):
            raise CalibrationError(f"{path}: [{key}] is a fisheye camera (not supported)")
        try:
            w, h = (float(v) for v in tab["size"])
            cams.append(Camera(str(tab.get("name", key)), np.array(tab["matrix"], float),
                               np.array(tab.get("distortions", []), float),
                               _rodrigues(tab["rotation"]), np.array(tab["translation"], float),
                               round(w), round(h)))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: [{key}]: {exc}") from None
    if not cams:
        raise CalibrationError(f"{path}: no camera tables")
    return cams


def read_yaml_calibration(path: str | Path) -> list[Camera]:
    """Cameras of a YAML calibration (format in the module docstring), in file order."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: not a YAML file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        raise CalibrationError(f"{path}: expected a top-level 'cameras:' mapping of name -> camera")
    cams = []
    for name, c in data["cameras"].items():
        if not isinstance(c, dict):
            raise CalibrationError(f"{path}: camera {name} is not a mapping")
        missing = [k for k in ("size", "K", "t") if k not in c]
        if missing or ("R" not in c) == ("rvec" not in c):
            raise CalibrationError(f"{path}: camera {name} needs size, K, t and one of R / rvec "
                                   f"(missing {missing})")
        try:
            R = np.array(c["R"], float) if "R" in c else _rodrigues(c["rvec"])
            w, h = (int(v) for v in c["size"])
            cams.append(Camera(str(name), np.array(c["K"], float),
                               np.array(c.get("dist") or [], float), R,
                               np.array(c["t"], float), w, h))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: camera {name}: {exc}") from None
    if not cams:
        raise CalibrationError(f"{path}: no cameras")
    return cams


def write_yaml_calibration(cams: Sequence[Camera], path: str | Path) -> None:
    """Write cameras in the YAML format `read_yaml_calibration` reads (full float precision)."""
    import yaml

    data = {"cameras": {c.name: {"size": [c.width, c.height], "K": c.K.tolist(),
                                 "dist": c.dist.tolist(), "R": c.R.tolist(), "t": c.t.tolist()}
                        for c in cams}}
    header = ("# mp3d multi-view calibration (OpenCV convention): x_cam = R x_world + t, metres;\n"
              "# size = width, height (px); dist = k1 k2 p1 p2 k3\n")
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False,
                                                  default_flow_style=None, width=100))


def read_calibration(path: str | Path) -> list[Camera]:
    """Cameras of a calibration file by its name: ``*.qca.txt`` / ``*.qca`` (Qualisys),
    ``*.toml`` (Pose2Sim), ``*.yaml`` / ``*.yml`` (mp3d YAML)."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    if name.endswith((".qca.txt", ".qca")):
        return read_qca(path)
    if name.endswith(".toml"):
        return read_pose2sim_toml(path)
    if name.endswith((".yaml", ".yml")):
        return read_yaml_calibration(path)
    raise CalibrationError(f"{path}: unknown calibration format (want .qca.txt, .toml or .yaml)")


# ------------------------------------------------------------------------------------------------
# Triangulation


def triangulate(cams: Sequence[Camera], uv: np.ndarray, weights: np.ndarray | None = None
                ) -> np.ndarray:
    """Weighted linear (DLT) triangulation in normalised camera coordinates.

    uv: (V, N, 2) undistorted pixels of N points in the V cameras (NaN: not seen); weights:
    (V, N) >= 0 (0: not used; default 1). Returns (N, 3) world points, NaN where fewer than two
    views have a positive weight. Noise-free observations give the exact point.
    """
    V = len(cams)
    uv = np.asarray(uv, dtype=np.float64)
    assert uv.ndim == 3 and uv.shape[0] == V and uv.shape[2] == 2, (uv.shape, V)
    N = uv.shape[1]
    w = np.ones((V, N)) if weights is None else np.asarray(weights, dtype=np.float64).copy()
    assert w.shape == (V, N), (w.shape, V, N)
    seen = np.all(np.isfinite(uv), axis=-1) & (w > 0)
    w = np.where(seen, w, 0.0)
    xn = np.stack([_pixels_to_normalised(c.K, np.nan_to_num(uv[v])) for v, c in enumerate(cams)])
    Rt = np.stack([c.Rt for c in cams])  # (V, 3, 4)
    rows_x = xn[..., 0:1] * Rt[:, None, 2] - Rt[:, None, 0]  # (V, N, 4)
    rows_y = xn[..., 1:2] * Rt[:, None, 2] - Rt[:, None, 1]
    A = np.concatenate([rows_x * w[..., None], rows_y * w[..., None]], axis=0)  # (2V, N, 4)
    A = A.transpose(1, 0, 2)
    out = np.full((N, 3), np.nan)
    ok = seen.sum(0) >= 2
    if ok.any():
        _, _, vt = np.linalg.svd(A[ok])
        h = vt[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[ok] = h[:, :3] / h[:, 3:4]
    return out


def reprojection_errors(cams: Sequence[Camera], X: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Pixel distance between projected points and observations: X (N, 3), uv (V, N, 2) ->
    (V, N); NaN where either is NaN or the point is behind the camera."""
    X = np.asarray(X, dtype=np.float64)
    assert X.ndim == 2 and X.shape[1] == 3 and uv.shape == (len(cams), len(X), 2), (X.shape,
                                                                                   uv.shape)
    proj = np.stack([project(c, X) for c in cams])
    return np.linalg.norm(proj - uv, axis=-1)


def triangulate_robust(cams: Sequence[Camera], uv: np.ndarray, conf: np.ndarray,
                       min_conf: float, max_err_px: np.ndarray | float,
                       max_dropped: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DLT with outlier views dropped: while a point's worst reprojection error exceeds its
    threshold and it has more than two views, drop that view and triangulate again.

    uv: (V, N, 2) undistorted px; conf: (V, N) (views below `min_conf` are not used; the rest are
    weighted by it); max_err_px: scalar or (V, N) thresholds; max_dropped: reject a point that
    needed more views dropped than this (None: no limit). Returns X (N, 3) (NaN: rejected:
    fewer than two views left, error still above threshold, too many dropped, or behind a
    camera), used (V, N) bool, err (V, N) reprojection error in px of every view (NaN where not
    seen).
    """
    V, N = conf.shape
    assert uv.shape == (V, N, 2) and len(cams) == V, (uv.shape, conf.shape)
    thr = np.broadcast_to(np.asarray(max_err_px, dtype=np.float64), (V, N))
    used = (conf >= min_conf) & np.all(np.isfinite(uv), axis=-1)
    seen = used.sum(0)
    cols = np.arange(N)
    for _ in range(max(V - 1, 1)):
        X = triangulate(cams, uv, np.where(used, conf, 0.0))
        err = reprojection_errors(cams, X, uv)
        bad_err = np.where(used, np.nan_to_num(err, nan=np.inf), -np.inf)  # behind: inf
        excess = bad_err - np.where(used, thr, 0.0)
        worst = np.argmax(excess, axis=0)
        drop = (excess[worst, cols] > 0) & (used.sum(0) > 2)
        if not drop.any():
            break
        used[worst[drop], cols[drop]] = False
    X = triangulate(cams, uv, np.where(used, conf, 0.0))
    err = reprojection_errors(cams, X, uv)
    ok = (used.sum(0) >= 2) & np.all(~used | (np.nan_to_num(err, nan=np.inf) <= thr), axis=0)
    if max_dropped is not None:
        ok &= seen - used.sum(0) <= max_dropped
    X[~ok] = np.nan
    used &= ok[None]
    return X, used, err


# ------------------------------------------------------------------------------------------------
# Left/right handling and association


def swap_lr(kp: np.ndarray, pairs: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Swap COCO left/right keypoints (all pairs, or the given (right, left) pairs) on the joint
    axis: (..., 17, D) -> (..., 17, D), a copy."""
    kp = np.asarray(kp)
    assert kp.shape[-2] == NUM_COCO, kp.shape
    pairs = sk.COCO_LR_PAIRS if pairs is None else pairs
    out = kp.copy()
    for r, l in pairs:
        out[..., r, :], out[..., l, :] = kp[..., l, :], kp[..., r, :]
    return out


def _swap_conf(conf: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    return swap_lr(conf[..., None], pairs)[..., 0]


@dataclass(frozen=True)
class TriangulationConfig:
    """Settings of association, the left/right vote and triangulation.

    min_conf: teacher keypoint confidence for a 2D observation to be used; max_reproj_px: a view
    whose reprojection error for a joint is above max(max_reproj_px, max_reproj_frac x the
    person's 2D size in that view) is dropped, and a joint left with < 2 views is rejected;
    assoc_max_frac: two detections in two views are the same person when the median two-view
    reprojection error of their common joints is below this fraction of their 2D size;
    min_common: joints seen in both for that test; lr_cap_px: per-observation cap of the error
    summed by the left/right vote; min_joints: a person is kept only with at least this many valid
    joints of the 15 MuPoTS joints that have a COCO source, and a valid root (pelvis);
    max_dropped: a joint is rejected when more of its confident views than this disagree (were
    dropped): a joint needs a clear majority of the views that saw it (on Demo_MultiPerson this
    halves the bone-length noise of the pseudo ground truth; None: no such rule).
    """

    min_conf: float = 0.5
    max_reproj_px: float = 12.0
    max_reproj_frac: float = 0.03
    assoc_max_frac: float = 0.1
    min_common: int = 6
    lr_cap_px: float = 80.0
    min_joints: int = 12
    max_dropped: int | None = 1


def person_size(kp: np.ndarray, conf: np.ndarray, min_conf: float) -> float:
    """2D size of a detection: the larger side of the box of its confident keypoints (px),
    (17, 2), (17,) -> float (0 with fewer than two confident keypoints)."""
    ok = (conf >= min_conf) & np.all(np.isfinite(kp), axis=-1)
    if ok.sum() < 2:
        return 0.0
    return float(np.ptp(kp[ok], axis=0).max())


def _pair_cost(ca: Camera, cb: Camera, kpa: np.ndarray, ca_conf: np.ndarray, kpb: np.ndarray,
               cb_conf: np.ndarray, cfg: TriangulationConfig) -> float:
    """Median two-view reprojection error of the common joints over the pair's mean 2D size; each
    joint may pair with its left/right twin (the teacher's mirroring). inf if not comparable."""
    size = 0.5 * (person_size(kpa, ca_conf, cfg.min_conf) + person_size(kpb, cb_conf, cfg.min_conf))
    best = np.full(NUM_COCO, np.inf)
    for kb, cbc in ((kpb, cb_conf), (swap_lr(kpb), _swap_conf(cb_conf, sk.COCO_LR_PAIRS))):
        common = (ca_conf >= cfg.min_conf) & (cbc >= cfg.min_conf)
        uv = np.stack([kpa, kb])
        X = triangulate([ca, cb], uv, np.stack([common, common]).astype(float))
        err = reprojection_errors([ca, cb], X, uv).max(0)
        err = np.where(common, np.nan_to_num(err, nan=np.inf), np.inf)
        best = np.minimum(best, err)
    fin = np.isfinite(best)
    if fin.sum() < cfg.min_common or size <= 0:
        return math.inf
    return float(np.median(best[fin]) / size)


def associate(cams: Sequence[Camera], kps: Sequence[np.ndarray], confs: Sequence[np.ndarray],
              cfg: TriangulationConfig = TriangulationConfig()) -> list[dict[int, int]]:
    """Group detections of one time step across views into people.

    kps[v]: (P_v, 17, 2) undistorted COCO keypoints of view v's detections; confs[v]: (P_v, 17).
    Two detections in different views are compatible when `_pair_cost` is below
    cfg.assoc_max_frac; compatible pairs are merged greedily, cheapest first, into groups with at
    most one detection per view whose members are all pairwise compatible (complete linkage).
    Returns groups of two or more views as {view: detection index}, largest groups first.
    """
    V = len(cams)
    assert len(kps) == V and len(confs) == V, (len(kps), len(confs), V)
    for k, c in zip(kps, confs):
        assert k.ndim == 3 and k.shape[1:] == (NUM_COCO, 2) and c.shape == k.shape[:2], (k.shape,
                                                                                      c.shape)
    nodes = [(v, i) for v in range(V) for i in range(len(kps[v]))]
    cost: dict[tuple[tuple[int, int], tuple[int, int]], float] = {}
    for (a, i), (b, j) in itertools.combinations(nodes, 2):
        if a == b:
            continue
        c = _pair_cost(cams[a], cams[b], kps[a][i], confs[a][i], kps[b][j], confs[b][j], cfg)
        cost[(a, i), (b, j)] = cost[(b, j), (a, i)] = c
    group_of = {n: k for k, n in enumerate(nodes)}
    groups: dict[int, set[tuple[int, int]]] = {k: {n} for k, n in enumerate(nodes)}
    for (na, nb), c in sorted(cost.items(), key=lambda kv: kv[1]):
        if c > cfg.assoc_max_frac:
            break
        ga, gb = group_of[na], group_of[nb]
        if ga == gb:
            continue
        A, B = groups[ga], groups[gb]
        if {v for v, _ in A} & {v for v, _ in B}:
            continue
        if any(cost[x, y] > cfg.assoc_max_frac for x in A for y in B):
            continue
        A |= B
        for n in B:
            group_of[n] = ga
        del groups[gb]
    out = [dict(sorted(g)) for g in groups.values() if len(g) >= 2]
    return sorted(out, key=lambda g: (-len(g), sorted(g.items())))


def _facing_weights(cams: Sequence[Camera], kp: np.ndarray, conf: np.ndarray,
                    min_conf: float) -> np.ndarray:
    """Trust of each view's left/right labels, (V,) in [0, 2]: 1 + the cosine between the
    person's facing direction and the direction to the camera (2: seen from the front, 0: from
    behind; 1 everywhere when the facing cannot be told). The facing comes from label-free
    points: the nose relative to the ears' midpoint, across the shoulders-to-hips up axis."""
    def mid(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return (0.5 * (kp[:, _C[a]] + kp[:, _C[b]]),
                np.minimum(conf[:, _C[a]], conf[:, _C[b]]))

    pts = [mid("l_ear", "r_ear"), mid("l_shoulder", "r_shoulder"), mid("l_hip", "r_hip"),
           (kp[:, _C["nose"]], conf[:, _C["nose"]])]
    uv = np.stack([p[0] for p in pts], axis=1)  # (V, 4, 2)
    w = np.stack([p[1] for p in pts], axis=1)
    X = triangulate(cams, uv, np.where(w >= min_conf, w, 0.0))
    if not np.all(np.isfinite(X)):
        return np.ones(len(cams))
    ears, neck, hips, nose = X
    up = neck - hips
    up /= max(np.linalg.norm(up), 1e-9)
    fwd = nose - ears
    fwd -= up * (fwd @ up)
    if np.linalg.norm(fwd) < 1e-3:
        return np.ones(len(cams))
    fwd /= np.linalg.norm(fwd)
    out = []
    for c in cams:
        d = c.centre - ears
        d -= up * (d @ up)
        out.append(1.0 + float(fwd @ d / max(np.linalg.norm(d), 1e-9)))
    return np.array(out)


def lr_vote(cams: Sequence[Camera], kp: np.ndarray, conf: np.ndarray,
            cfg: TriangulationConfig = TriangulationConfig()) -> np.ndarray:
    """Per-limb left/right vote for one person seen in V views.

    kp: (V, 17, 2) undistorted COCO keypoints, conf: (V, 17). For each group of LR_GROUPS, every
    assignment of swapped/unswapped labels to the views is triangulated and the one with the
    smallest summed (capped) reprojection error wins; geometry cannot tell it from its global
    mirror, so between the two the views that see the person's front (`_facing_weights`) decide
    (then the fewer swaps). Returns flips (V, len(LR_GROUPS)) bool: True where that view's labels
    of that group are to be swapped.
    """
    V = len(cams)
    assert kp.shape == (V, NUM_COCO, 2) and conf.shape == (V, NUM_COCO), (kp.shape, conf.shape)
    weights = _facing_weights(cams, kp, conf, cfg.min_conf)
    flips = np.zeros((V, len(LR_GROUPS)), bool)
    for g, pairs in enumerate(LR_GROUPS.values()):
        joints = [j for p in pairs for j in p]
        seen = (conf[:, joints] >= cfg.min_conf).any(axis=1)
        views = np.flatnonzero(seen)
        if len(views) < 2:
            continue
        best, best_f = math.inf, None
        for tail in itertools.product((False, True), repeat=len(views) - 1):
            f = np.zeros(V, bool)
            f[views] = (False,) + tail
            k = np.where(f[:, None, None], swap_lr(kp, pairs), kp)[:, joints]
            c = np.where(f[:, None], _swap_conf(conf, pairs), conf)[:, joints]
            use = c >= cfg.min_conf
            X = triangulate(cams, k, np.where(use, c, 0.0))
            err = np.nan_to_num(reprojection_errors(cams, X, k), nan=cfg.lr_cap_px)
            cost = float(np.minimum(err, cfg.lr_cap_px)[use].sum())
            if cost < best - 1e-9:
                best, best_f = cost, f
        assert best_f is not None
        mirror = best_f.copy()
        mirror[views] = ~mirror[views]
        score = (weights[views][best_f[views]].sum(), best_f.sum())
        score_m = (weights[views][mirror[views]].sum(), mirror.sum())
        flips[:, g] = mirror if score_m < score else best_f
    return flips


def apply_flips(kp: np.ndarray, conf: np.ndarray, flips: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Swap the voted groups: kp (V, 17, 2), conf (V, 17), flips (V, G) -> corrected copies."""
    kp, conf = kp.copy(), conf.copy()
    for g, pairs in enumerate(LR_GROUPS.values()):
        f = flips[:, g]
        kp[f] = swap_lr(kp[f], pairs)
        conf[f] = _swap_conf(conf[f], pairs)
    return kp, conf


# ------------------------------------------------------------------------------------------------
# People


@dataclass
class TriangulatedPerson:
    """One person triangulated at one time step.

    views: {view index: teacher detection index}; coco: (17, 3) COCO-17 world points (NaN:
    rejected); joints: (17, 3) MuPoTS world joints (NaN where invalid); valid: (17,) bool;
    used: (V, 17) bool, the COCO observations kept; reproj: (V, 17) px reprojection error of
    every confident observation (NaN where none); flips: (V, G) the left/right vote; accepted:
    whether it passes `TriangulationConfig.min_joints` and has a root; kp2d: (V, 17, 2) the
    corrected undistorted COCO keypoints; conf2d: (V, 17).
    """

    views: dict[int, int]
    coco: np.ndarray
    joints: np.ndarray
    valid: np.ndarray
    used: np.ndarray
    reproj: np.ndarray
    flips: np.ndarray
    accepted: bool
    kp2d: np.ndarray = field(repr=False)
    conf2d: np.ndarray = field(repr=False)

    @property
    def inlier_errors(self) -> np.ndarray:
        """Reprojection errors (px) of the observations used, (M,)."""
        return self.reproj[self.used]


# The MuPoTS joints that have a COCO source (15 of 17: no head_top, no spine).
COCO_BACKED: tuple[int, ...] = tuple(j for j, src in enumerate(sk.COCO_TO_MUPOTS) if src)


def triangulate_people(cams: Sequence[Camera], kps: Sequence[np.ndarray],
                       confs: Sequence[np.ndarray],
                       cfg: TriangulationConfig = TriangulationConfig()
                       ) -> list[TriangulatedPerson]:
    """Associate, vote left/right and triangulate the people of one time step.

    kps[v]: (P_v, 17, 2) undistorted COCO keypoints of view v, confs[v]: (P_v, 17). Returns every
    associated group (accepted or not), accepted ones first.
    """
    V = len(cams)
    out = []
    for group in associate(cams, kps, confs, cfg):
        kp = np.full((V, NUM_COCO, 2), np.nan)
        conf = np.zeros((V, NUM_COCO))
        for v, i in group.items():
            kp[v], conf[v] = kps[v][i], confs[v][i]
        flips = lr_vote(cams, kp, conf, cfg)
        kp, conf = apply_flips(kp, conf, flips)
        size = np.array([person_size(kp[v], conf[v], cfg.min_conf) for v in range(V)])
        thr = np.maximum(cfg.max_reproj_px, cfg.max_reproj_frac * size)[:, None]
        X, used, err = triangulate_robust(cams, kp, conf, cfg.min_conf, thr, cfg.max_dropped)
        err = np.where(conf >= cfg.min_conf, err, np.nan)
        valid_coco = np.all(np.isfinite(X), axis=-1)
        joints, jconf = sk.coco_to_mupots(X, valid_coco.astype(float))
        valid = jconf > 0.5
        joints[~valid] = np.nan
        accepted = bool(valid[sk.ROOT]) and int(valid.sum()) >= cfg.min_joints
        out.append(TriangulatedPerson(dict(group), X, joints, valid, used, err, flips, accepted,
                                      kp, conf))
    return sorted(out, key=lambda p: not p.accepted)


# ------------------------------------------------------------------------------------------------
# Body dimensions


# Hip-to-ankle length as a fraction of stature (hip joint ~53% of stature above the floor, the
# ankle ~4%): the stature estimate of a person whose head and trunk were never triangulated.
LEG_STATURE_FRAC = 0.49


def body_dimensions(joints: np.ndarray) -> dict[str, float]:
    """Median body dimensions (m) of MuPoTS poses (N, 17, 3) (NaN joints are skipped): upper arm,
    forearm, thigh, shin, shoulder and hip width, and a posture-independent stature estimate:
    (shin + thigh + pelvis-to-thorax + thorax-to-head) / 0.87 (the ankle sits ~4% of stature
    above the floor, the ears' midpoint ~9% below the top of the head), or, where no head or
    trunk was seen, (thigh + shin) / LEG_STATURE_FRAC."""
    J = np.asarray(joints, dtype=np.float64)
    assert J.ndim == 3 and J.shape[1:] == (sk.NUM_JOINTS, 3), J.shape
    i = sk.INDEX

    def seg(a: str, b: str) -> np.ndarray:
        return np.linalg.norm(J[:, i[a]] - J[:, i[b]], axis=-1)

    def side_mean(a: str, b: str) -> np.ndarray:
        return np.nanmean(np.stack([seg("r_" + a, "r_" + b), seg("l_" + a, "l_" + b)]), axis=0)

    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN columns: NaN
        dims = {
            "upper_arm_m": side_mean("shoulder", "elbow"),
            "forearm_m": side_mean("elbow", "wrist"),
            "thigh_m": side_mean("hip", "knee"),
            "shin_m": side_mean("knee", "ankle"),
            "shoulder_width_m": seg("r_shoulder", "l_shoulder"),
            "hip_width_m": seg("r_hip", "l_hip"),
        }
        trunk = seg("pelvis", "thorax") + seg("thorax", "head")
        dims["height_m"] = (dims["shin_m"] + dims["thigh_m"] + trunk) / 0.87
        out = {k: float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")
               for k, v in dims.items()}
        if not np.isfinite(out["height_m"]):  # no head or trunk seen: from the legs alone
            out["height_m"] = (out["thigh_m"] + out["shin_m"]) / LEG_STATURE_FRAC
        return out


def link_tracks(roots: Sequence[np.ndarray], max_move_m: float = 0.5) -> list[np.ndarray]:
    """Identities across time steps: roots[s] (P_s, 3) -> ids[s] (P_s,) ints. A person takes the
    id of the track whose last root is nearest (one-to-one, within max_move_m), else a new id."""
    from scipy.optimize import linear_sum_assignment

    last: dict[int, np.ndarray] = {}
    out = []
    for r in roots:
        r = np.asarray(r, dtype=np.float64).reshape(-1, 3)
        ids = np.full(len(r), -1)
        tracks = list(last)
        if tracks and len(r):
            d = np.linalg.norm(r[:, None] - np.stack([last[t] for t in tracks])[None], axis=-1)
            for a, b in zip(*linear_sum_assignment(np.where(d <= max_move_m, d, 1e9))):
                if d[a, b] <= max_move_m:
                    ids[a] = tracks[b]
        for a in np.flatnonzero(ids < 0):
            ids[a] = len(last)
            last[int(ids[a])] = r[a]
        for a, t in enumerate(ids):
            last[int(t)] = r[a]
        out.append(ids)
    return out


def bone_length_cv(joints: np.ndarray, min_samples: int = 3) -> float:
    """Median over bones of the coefficient of variation (std / mean) of each bone's length over
    the poses of ONE person, (N, 17, 3) -> float (NaN when no bone is measured `min_samples`
    times). Bones are rigid, so this measures the pseudo ground truth's own noise."""
    bl = sk.bone_lengths(np.asarray(joints, dtype=np.float64))  # (N, 16), NaN where invalid
    cvs = []
    for b in range(bl.shape[1]):
        x = bl[:, b][np.isfinite(bl[:, b])]
        if len(x) >= min_samples:
            cvs.append(float(np.std(x) / max(np.mean(x), 1e-9)))
    return float(np.median(cvs)) if cvs else float("nan")


# ------------------------------------------------------------------------------------------------
# Bundle adjustment of the extrinsics


@dataclass(frozen=True)
class BundleAdjustConfig:
    """Extrinsics refinement. huber_px: robust loss scale (px); centre_sigma_m: how far a camera
    centre may move from its calibrated place at the cost of one huber_px of reprojection error;
    centre_tol_m: it never moves farther than this (both keep the world frame and the scale);
    max_nfev: solver evaluations."""

    huber_px: float = 5.0
    centre_sigma_m: float = 0.02
    centre_tol_m: float = 0.05
    max_nfev: int = 200


@dataclass
class BundleAdjustReport:
    """What the refinement did: median reprojection error before and after (px), per-camera centre
    shift (m) and rotation change (degrees), observations and points used."""

    median_before_px: float
    median_after_px: float
    centre_shift_m: list[float]
    rotation_change_deg: list[float]
    observations: int
    points: int


def observation_errors(cams: Sequence[Camera], obs_view: np.ndarray, obs_point: np.ndarray,
                       obs_uv: np.ndarray, obs_weight: np.ndarray | None = None) -> np.ndarray:
    """Reprojection error (px) of each observation, its point triangulated (weighted DLT) from
    all of its observations with these cameras: (M,) ints, (M,) ints, (M, 2), (M,) -> (M,)."""
    V, M = len(cams), len(obs_view)
    obs_view, obs_point = np.asarray(obs_view, int), np.asarray(obs_point, int)
    assert obs_point.shape == (M,) and obs_uv.shape == (M, 2), (obs_point.shape, obs_uv.shape)
    N = int(obs_point.max()) + 1 if M else 0
    uv = np.full((V, N, 2), np.nan)
    wv = np.zeros((V, N))
    uv[obs_view, obs_point] = obs_uv
    wv[obs_view, obs_point] = 1.0 if obs_weight is None else obs_weight
    X = triangulate(cams, uv, wv)
    return reprojection_errors(cams, X, uv)[obs_view, obs_point]


def bundle_adjust(cams: Sequence[Camera], obs_view: np.ndarray, obs_point: np.ndarray,
                  obs_uv: np.ndarray, obs_weight: np.ndarray | None = None,
                  cfg: BundleAdjustConfig = BundleAdjustConfig(),
                  centres: np.ndarray | None = None
                  ) -> tuple[list[Camera], np.ndarray, BundleAdjustReport]:
    """Refine all cameras' rotations and centres (intrinsics fixed) to the observations of
    N points.

    obs_view, obs_point: (M,) ints (each point seen in two views or more); obs_uv: (M, 2)
    undistorted px; obs_weight: (M,) >= 0. The points are eliminated: each evaluation
    triangulates them (weighted DLT) with the current cameras, so only 6 parameters per camera
    are optimised (a small dense problem). Minimises the Huber-robust reprojection error plus a
    prior keeping each camera centre near `centres` ((V, 3); default: the cameras' own centres),
    within cfg.centre_sigma_m softly and cfg.centre_tol_m at most, which fixes the gauge (world
    frame and scale). Returns refined
    cameras, the points triangulated with them (N, 3) and a report (centre shifts relative to
    `centres`).
    """
    from scipy.optimize import least_squares
    from scipy.spatial.transform import Rotation

    V, M = len(cams), len(obs_view)
    obs_view, obs_point = np.asarray(obs_view, int), np.asarray(obs_point, int)
    N = int(obs_point.max()) + 1 if M else 0
    assert obs_point.shape == (M,) and obs_uv.shape == (M, 2), (obs_point.shape, obs_uv.shape)
    assert np.all(np.isfinite(obs_uv)), "NaN observations"
    w = np.ones(M) if obs_weight is None else np.asarray(obs_weight, np.float64)
    uv = np.full((V, N, 2), np.nan)
    wv = np.zeros((V, N))
    uv[obs_view, obs_point] = obs_uv
    wv[obs_view, obs_point] = w
    if M == 0 or np.any((wv > 0).sum(0) < 2):
        raise ValueError("every point needs observations in two views or more")
    sw = np.sqrt(w)
    C_start = np.stack([c.centre for c in cams])
    C0 = C_start if centres is None else np.asarray(centres, dtype=np.float64)
    assert C0.shape == (V, 3), C0.shape
    r0 = Rotation.from_rotvec(np.zeros(3)).as_rotvec()
    x0 = np.concatenate([np.tile(r0, (V, 1)), C_start], axis=1).ravel()
    prior_w = cfg.huber_px / cfg.centre_sigma_m

    def make(x: np.ndarray) -> list[Camera]:
        p = x.reshape(V, 6)
        dR = Rotation.from_rotvec(p[:, :3]).as_matrix()
        out = []
        for v, c in enumerate(cams):
            R = dR[v] @ c.R
            out.append(c.with_pose(R, -R @ p[v, 3:]))
        return out

    def reproj(x: np.ndarray) -> np.ndarray:
        cs = make(x)
        X = triangulate(cs, uv, wv)
        proj = np.stack([project(c, X) for c in cs])
        return (proj - uv)[obs_view, obs_point]  # (M, 2)

    def residuals(x: np.ndarray) -> np.ndarray:
        r = np.nan_to_num(reproj(x) * sw[:, None], nan=1e3)
        return np.concatenate([r.ravel(), ((x.reshape(V, 6)[:, 3:] - C0) * prior_w).ravel()])

    def median_err(x: np.ndarray) -> float:
        return float(np.nanmedian(np.linalg.norm(reproj(x), axis=1)))

    inf = np.full((V, 3), np.inf)
    lo = np.concatenate([-inf, C0 - cfg.centre_tol_m], axis=1).ravel()
    hi = np.concatenate([inf, C0 + cfg.centre_tol_m], axis=1).ravel()
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    res = least_squares(residuals, x0, loss="huber", f_scale=cfg.huber_px, method="trf",
                        max_nfev=cfg.max_nfev, bounds=(lo, hi))
    out = make(res.x)
    X = triangulate(out, uv, wv)
    dR = [float(np.degrees(np.linalg.norm(Rotation.from_matrix(o.R @ c.R.T).as_rotvec())))
          for o, c in zip(out, cams)]
    report = BundleAdjustReport(median_err(x0), median_err(res.x),
                                [float(np.linalg.norm(o.centre - C0[v]))
                                 for v, o in enumerate(out)], dR, M, N)
    return out, X, report
