"""Pose metrics with the literature's definitions: MPJPE, PA-MPJPE, 3DPCK, AUC, plausibility.

All functions take numpy arrays in metres and return millimetres or fractions as documented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mp3d.common import skeleton as sk

if TYPE_CHECKING:
    import torch


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Per-pose mean joint error in mm, (N, J, 3) x2 -> (N,). Root-align first if wanted."""
    assert pred.shape == gt.shape and pred.shape[-1] == 3, (pred.shape, gt.shape)
    return 1000.0 * np.linalg.norm(pred - gt, axis=-1).mean(axis=-1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity-align each pred pose to its gt (rotation, scale, translation), (N, J, 3) x2."""
    assert pred.shape == gt.shape and pred.ndim == 3, (pred.shape, gt.shape)
    mp, mg = pred.mean(1, keepdims=True), gt.mean(1, keepdims=True)
    p, g = pred - mp, gt - mg
    h = np.einsum("nji,njk->nik", p, g)
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    s = s.copy()
    s[:, -1] *= d
    u = u.copy()
    u[:, :, -1] *= d[:, None]
    r = np.einsum("nij,njk->nik", u, vt)  # p @ r ~ g
    scale = s.sum(1) / np.maximum((p ** 2).sum((1, 2)), 1e-12)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p, r) + mg


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after Procrustes alignment, mm, (N, J, 3) x2 -> (N,)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def pck3d(pred: np.ndarray, gt: np.ndarray, threshold_mm: float = 150.0,
          joints: tuple[int, ...] = sk.EVAL_JOINTS) -> np.ndarray:
    """Per-pose fraction of `joints` within threshold (root-aligned inputs), (N,17,3) x2 -> (N,)."""
    err = 1000.0 * np.linalg.norm(pred - gt, axis=-1)[:, list(joints)]
    return (err <= threshold_mm).mean(axis=-1)


def auc3d(pred: np.ndarray, gt: np.ndarray, max_mm: float = 150.0, steps: int = 31,
          joints: tuple[int, ...] = sk.EVAL_JOINTS) -> np.ndarray:
    """Per-pose area under the PCK curve over thresholds 0..max_mm (mean PCK), (N,)."""
    ts = np.linspace(0.0, max_mm, steps)
    return np.mean([pck3d(pred, gt, t, joints) for t in ts], axis=0)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of `scores` for binary `labels` (ties count half), (N,) x2 ->
    float; NaN when one class is absent. Equals P(score of a positive > score of a negative)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels, dtype=bool).reshape(-1)
    assert scores.shape == labels.shape, (scores.shape, labels.shape)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


# --------------------------------------------------------------------------------------------
# Plausibility of poses (no ground truth needed).

_HINGES = {  # joint: (parent joint, child joint) whose angle at `joint` is measured
    "r_elbow": ("r_shoulder", "r_wrist"), "l_elbow": ("l_shoulder", "l_wrist"),
    "r_knee": ("r_hip", "r_ankle"), "l_knee": ("l_hip", "l_ankle"),
    "r_shoulder": ("thorax", "r_elbow"), "l_shoulder": ("thorax", "l_elbow"),
    "r_hip": ("pelvis", "r_knee"), "l_hip": ("pelvis", "l_knee"),
}
HINGE_NAMES: tuple[str, ...] = tuple(_HINGES)

# Limb segments tested for self-intersection: forearms, upper arms, shins, thighs.
_LIMBS = (("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("l_shoulder", "l_elbow"),
          ("l_elbow", "l_wrist"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"),
          ("l_knee", "l_ankle"))


def joint_angles(joints: np.ndarray) -> np.ndarray:
    """Angles (degrees) at the hinge joints of HINGE_NAMES, (N, 17, 3) -> (N, 8)."""
    out = []
    for j, (a, b) in _HINGES.items():
        u = joints[:, sk.INDEX[a]] - joints[:, sk.INDEX[j]]
        v = joints[:, sk.INDEX[b]] - joints[:, sk.INDEX[j]]
        cos = (u * v).sum(-1) / np.maximum(np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1),
                                           1e-9)
        out.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.stack(out, axis=-1)


def bone_asymmetry(joints: np.ndarray) -> np.ndarray:
    """Relative left/right bone-length difference per pose, mean over the 6 pairs, (N,)."""
    bl = sk.bone_lengths(joints)
    r = bl[:, [p[0] for p in sk.LR_BONE_PAIRS]]
    l = bl[:, [p[1] for p in sk.LR_BONE_PAIRS]]
    return (np.abs(r - l) / np.maximum((r + l) / 2, 1e-9)).mean(-1)


def _segment_distance(p1, q1, p2, q2) -> np.ndarray:
    """Closest distance between segments p1q1 and p2q2, batched (N,3) each -> (N,)."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, f = (d1 * d1).sum(-1), (d2 * d2).sum(-1), (d2 * r).sum(-1)
    c, b = (d1 * r).sum(-1), (d1 * d2).sum(-1)
    denom = np.maximum(a * e - b * b, 1e-12)
    s = np.clip((b * f - c * e) / denom, 0.0, 1.0)
    t = np.clip((b * s + f) / np.maximum(e, 1e-12), 0.0, 1.0)
    s = np.clip((b * t - c) / np.maximum(a, 1e-12), 0.0, 1.0)
    return np.linalg.norm(p1 + d1 * s[:, None] - (p2 + d2 * t[:, None]), axis=-1)


def self_intersection(joints: np.ndarray, radius: float = 0.035) -> np.ndarray:
    """True where two non-adjacent limb segments come closer than 2 * radius (m), (N,) bool."""
    hit = np.zeros(len(joints), bool)
    for i, (a1, b1) in enumerate(_LIMBS):
        for a2, b2 in _LIMBS[i + 1:]:
            if {a1, b1} & {a2, b2}:
                continue
            d = _segment_distance(joints[:, sk.INDEX[a1]], joints[:, sk.INDEX[b1]],
                                  joints[:, sk.INDEX[a2]], joints[:, sk.INDEX[b2]])
            hit |= d < 2 * radius
    return hit


def plausibility(joints: np.ndarray, reference: np.ndarray | None = None) -> dict[str, float]:
    """Plausibility summary of poses (N, 17, 3): bone asymmetry (mean, fraction), self-
    intersection rate, and, given reference (real) poses, the fraction of hinge angles inside the
    reference's 1st-99th percentile range."""
    out = {
        "bone_asymmetry": float(bone_asymmetry(joints).mean()),
        "self_intersection_rate": float(self_intersection(joints).mean()),
    }
    if reference is not None:
        ang, ref = joint_angles(joints), joint_angles(reference)
        lo, hi = np.percentile(ref, 1, axis=0), np.percentile(ref, 99, axis=0)
        out["angles_in_range"] = float(((ang >= lo) & (ang <= hi)).mean())
    return out


def joint_right(pred_rel: torch.Tensor, gt_rel: torch.Tensor, frac: float) -> torch.Tensor:
    """Which joints are right: root-relative error within `frac` of the true body height,
    (N, 17, 3) x2 -> (N, 17) bool."""
    err = (pred_rel - gt_rel).norm(dim=-1)
    return err <= frac * sk.body_height(gt_rel)[:, None]
