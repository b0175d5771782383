"""Body dimensions from 3D joints (stature, limb lengths), tracks over time and bone-length
consistency.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from mp3d.common import skeleton as sk

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
