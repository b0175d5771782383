"""Triangulation of points seen by several cameras: weighted DLT, reprojection errors, and robust
triangulation that drops inconsistent views.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mp3d.eval.multiview.camera import Camera, _pixels_to_normalised, project


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
