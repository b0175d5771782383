"""Cameras and people in a scene: camera pitch and roll, projection, and placing people on the
ground plane in view.
"""

from __future__ import annotations

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.scenes.bodies import (
    _ANKLES,
)
from mp3d.data.scenes.config import SceneConfig


def _rot_y(a: np.ndarray) -> np.ndarray:
    """Rotations about +y by angles a (...,) -> (..., 3, 3)."""
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def camera_rotation(pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World -> camera rotation R (X_cam = R @ X_world) of a camera pitched down by `pitch` about
    its x axis, then rolled by `roll` about its optical axis, radians; (...,) -> (..., 3, 3).
    The world's optical-like frame (x right, y down, z forward horizontal) is the camera at zero
    pitch and roll."""
    pitch, roll = np.asarray(pitch, dtype=np.float64), np.asarray(roll, dtype=np.float64)
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    z, o = np.zeros_like(cp), np.ones_like(cp)
    # Rows: the camera's x, y, z axes in world coordinates (optical axis (0, sin, cos): down).
    r_pitch = np.stack([np.stack([o, z, z], -1), np.stack([z, cp, -sp], -1),
                        np.stack([z, sp, cp], -1)], -2)
    r_roll = np.stack([np.stack([cr, -sr, z], -1), np.stack([sr, cr, z], -1),
                       np.stack([z, z, o], -1)], -2)
    return r_roll @ r_pitch


def _project(points: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """Project camera-frame points with per-scene intrinsics: (B, ..., 3), (B, 4) -> (B, ..., 2).
    Points at z <= 0 give NaN."""
    B = points.shape[0]
    assert intr.shape == (B, 4) and points.shape[-1] == 3, (intr.shape, points.shape)
    f = intr.reshape((B,) + (1,) * (points.ndim - 2) + (4,))
    z = points[..., 2]
    z = np.where(z > 0, z, np.nan)
    return np.stack([f[..., 0] * points[..., 0] / z + f[..., 2],
                     f[..., 1] * points[..., 1] / z + f[..., 3]], axis=-1)


def _inside(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> (...) bool, inside the image [-0.5, W - 0.5) x [-0.5, H - 0.5)."""
    u, v = uv[..., 0], uv[..., 1]
    return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)




def _sample_cameras(n: int, cfg: SceneConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n cameras: intrinsics (n, 4), height, pitch, roll (n,), elevated (n,), R (n, 3, 3)."""
    W, H = cfg.width, cfg.height
    hfov = np.radians(rng.uniform(*cfg.hfov_deg, n))
    f = 0.5 * W / np.tan(hfov / 2)
    cx = (W - 1) / 2 + rng.uniform(-1, 1, n) * cfg.principal_jitter * W
    cy = (H - 1) / 2 + rng.uniform(-1, 1, n) * cfg.principal_jitter * H
    elevated = rng.random(n) < cfg.elevated_prob
    height = np.where(elevated, rng.uniform(*cfg.elevated_height_m, n),
                      rng.uniform(*cfg.robot_height_m, n))
    pitch = np.radians(np.where(elevated, rng.uniform(*cfg.elevated_pitch_deg, n),
                                rng.uniform(*cfg.robot_pitch_deg, n)))
    roll = np.radians(rng.uniform(-cfg.roll_deg, cfg.roll_deg, n))
    return {"intrinsics": np.stack([f, f, cx, cy], -1), "height": height, "pitch": pitch,
            "roll": roll, "elevated": elevated, "R": camera_rotation(pitch, roll)}


def _visible_distances(delta: np.ndarray, a_top: np.ndarray, a_bot: np.ndarray,
                       lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal distances at which a point `delta` metres below the camera is seen by the
    central image column, whose rays point a_top .. a_bot (radians) below the horizon, clipped to
    [lo, hi]; where none is seen, [lo, hi] (placement then rejects)."""
    eps = 1e-6
    below = delta > 0  # the point is below the camera: rays pointing down reach it
    a_near = np.where(below, a_bot, -a_top)  # the steepest ray towards the point
    a_far = np.where(below, a_top, -a_bot)
    ad = np.abs(delta) + eps
    near = ad / np.tan(np.clip(a_near, eps, None))
    far = np.where(a_far > eps, ad / np.tan(np.clip(a_far, eps, None)), np.inf)
    seen = a_near > eps
    d0, d1 = np.maximum(near, lo), np.minimum(far, hi)
    ok = seen & (d0 < d1)
    return np.where(ok, d0, lo), np.where(ok, d1, hi)


def _place_people(poses: np.ndarray, cams: dict[str, np.ndarray], n_want: np.ndarray,
                  cfg: SceneConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Candidate people for n scenes (n, C, ...) and which were accepted (n, C) bool: in front of
    the camera, in view (whole, or partly when truncation is allowed), spaced, at most n_want."""
    n, C = len(n_want), cfg.candidates_per_scene
    W, H = cfg.width, cfg.height
    pidx = rng.integers(0, len(poses), (n, C))
    scale = rng.uniform(*cfg.scale, (n, C))
    mirrored = rng.random((n, C)) < cfg.mirror_prob
    yaw = np.radians(rng.uniform(*cfg.yaw_deg, (n, C)))
    trunc_ok = rng.random((n, C)) < cfg.truncation_prob
    u_dist = rng.random((n, C))
    intr = cams["intrinsics"]
    hfov = 2 * np.arctan(0.5 * W / intr[:, 0])
    azimuth = rng.uniform(-1, 1, (n, C)) * (cfg.azimuth_margin * hfov / 2)[:, None]

    canon = poses[pidx]
    canon = np.where(mirrored[..., None, None], sk.mirror(canon), canon) * scale[..., None, None]
    root_h = canon[..., list(_ANKLES), 1].max(-1)  # root height above ground (lowest ankle)
    # Distances at which the root is seen (central column), widened for truncation.
    a_top = cams["pitch"] - np.arctan((intr[:, 3] + 0.5) / intr[:, 1])
    a_bot = cams["pitch"] + np.arctan((H - 0.5 - intr[:, 3]) / intr[:, 1])
    margin = np.radians(cfg.view_margin_deg)
    lo, hi = _visible_distances(cams["height"][:, None] - root_h, a_top[:, None] - margin,
                                a_bot[:, None] + margin, *cfg.distance_m)
    if cfg.log_uniform_distance:
        dist = lo * (hi / lo) ** u_dist
    else:
        dist = lo + (hi - lo) * u_dist
    # Root relative to the camera centre, world axes; the camera is `height` above the ground.
    root_rel = np.stack([dist * np.sin(azimuth), cams["height"][:, None] - root_h,
                         dist * np.cos(azimuth)], -1)
    R = cams["R"][:, None]
    rot = R @ _rot_y(yaw)
    root_cam = np.einsum("ncij,ncj->nci", R, root_rel)
    joints_cam = np.einsum("ncij,nckj->ncki", rot, canon) + root_cam[:, :, None]

    uv = _project(joints_cam, intr)
    inside = _inside(uv, W, H)
    in_front = (joints_cam[..., 2] > cfg.min_joint_depth_m).all(-1)
    root_uv = uv[:, :, sk.ROOT]
    mu, mv = cfg.truncation_root_margin * W, cfg.truncation_root_margin * H
    root_near = ((root_uv[..., 0] > -mu) & (root_uv[..., 0] < W + mu) & (root_uv[..., 1] > -mv)
                 & (root_uv[..., 1] < H + mv))
    partly = root_near & (inside.sum(-1) >= cfg.min_joints_in_image)
    ok = in_front & np.where(trunc_ok, partly, inside.all(-1))

    # Greedy acceptance in candidate order, keeping people apart on the ground.
    gx, gz = root_rel[..., 0], root_rel[..., 2]
    close = np.hypot(gx[:, :, None] - gx[:, None, :], gz[:, :, None] - gz[:, None, :]) \
        < cfg.min_spacing_m
    acc = np.zeros((n, C), dtype=bool)
    count = np.zeros(n, dtype=np.int64)
    for c in range(C):
        take = ok[:, c] & (count < n_want) & ~(acc & close[:, c]).any(-1)
        acc[:, c] = take
        count += take
    return {"pose_index": pidx, "scale": scale, "mirrored": mirrored, "canon": canon,
            "rot": rot, "joints_cam": joints_cam, "accepted": acc}
