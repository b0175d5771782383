"""Bundle adjustment of the cameras' extrinsics on the teacher's triangulated joints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mp3d.eval.multiview.camera import Camera, project
from mp3d.eval.multiview.triangulation import reprojection_errors, triangulate


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
