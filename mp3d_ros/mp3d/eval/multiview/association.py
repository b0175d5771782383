"""Which 2D people of several views are one person, and in which views the teacher mirrored left
and right (a per-limb vote).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval.multiview.camera import Camera
from mp3d.eval.multiview.triangulation import reprojection_errors, triangulate

NUM_COCO = len(sk.COCO_NAMES)
# COCO left/right pairs by limb group: the left/right vote decides each group separately.
LR_GROUPS: dict[str, tuple[tuple[int, int], ...]] = {
    "face": ((2, 1), (4, 3)),
    "arms": ((6, 5), (8, 7), (10, 9)),
    "legs": ((12, 11), (14, 13), (16, 15)),
}
_C = sk.COCO_INDEX




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
