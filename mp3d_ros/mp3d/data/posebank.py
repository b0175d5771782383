"""Canonical 3D poses for the prior and the scenes: loading from mocap, and pose augmentation.

Canonical frame (shared with mp3d.model.prior and mp3d.data.scenes): pelvis at the origin, y down,
the person facing -z, the person's right side at -x, metres (like mp3d.common.skeleton.REST_POSE).
mp3d.data.mocap's canonical frame has x to the person's left, y up, z forward; ours is that turned
180 degrees about x (mp3d.data.scenes.bodies.canonical_from_y_up).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.mocap.dataset import build_pose_dataset, load_pose_dataset
from mp3d.data.mocap.retarget import to_root_relative_canonical
from mp3d.data.scenes.bodies import canonical_from_y_up

# Kinematic chains that augmentation may re-pose as a whole: (first joint, joints moved).
_CHAINS = {
    "r_arm": ("r_shoulder", ("r_elbow", "r_wrist")),
    "l_arm": ("l_shoulder", ("l_elbow", "l_wrist")),
    "r_leg": ("r_hip", ("r_knee", "r_ankle")),
    "l_leg": ("l_hip", ("l_knee", "l_ankle")),
}


def canonical_from_world(joints_world_yup: np.ndarray) -> np.ndarray:
    """Mocap world poses (N, 17, 3), Y up -> canonical root-relative poses (N, 17, 3)."""
    return canonical_from_y_up(to_root_relative_canonical(joints_world_yup)).astype(np.float32)


def load_canonical(path: str | Path, cache_dir: str | Path = "cache/posebank") -> np.ndarray:
    """Canonical poses from a pose-dataset .npz (mp3d mocap) or from BVH files/folders (converted
    once and cached), (N, 17, 3) float32."""
    path = Path(path)
    if path.suffix == ".npz":
        ds = load_pose_dataset(path)
    else:
        out = Path(cache_dir) / f"{path.stem}.npz"
        out.parent.mkdir(parents=True, exist_ok=True)
        ds, _ = build_pose_dataset([path], out, progress=False)
    return canonical_from_world(ds.joints)


def _rotation(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: unit axes (N, 3) and angles (N,) -> (N, 3, 3)."""
    k = np.zeros((len(axis), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def augment(poses: np.ndarray, rng: np.random.Generator, mirror_p: float = 0.5,
            mix_p: float = 0.5, swing_p: float = 0.3, arm_swing_deg: float = 75.0,
            leg_swing_deg: float = 30.0) -> np.ndarray:
    """Random new poses from canonical poses (N, 17, 3) -> (N, 17, 3):
    mirror left/right; mix limbs (a whole arm or leg taken from another pose of the batch, placed
    at this pose's shoulder or hip); swing limbs (rotate an arm or leg chain about its first joint
    by a random axis-angle). Bone lengths are kept. These are the levers for poses the training
    motion never shows."""
    out = np.array(poses, dtype=np.float64, copy=True)
    n = len(out)
    m = rng.random(n) < mirror_p
    out[m] = sk.mirror(out[m])
    for base, moved in _CHAINS.values():
        b = sk.INDEX[base]
        idx = [sk.INDEX[j] for j in moved]
        mix = rng.random(n) < mix_p
        donor = rng.integers(0, n, n)
        rel_donor = out[donor][:, idx] - out[donor][:, b:b + 1]
        out[np.ix_(mix, idx)] = (out[mix][:, b:b + 1] + rel_donor[mix]).reshape(-1, len(idx), 3)
        swing = rng.random(n) < swing_p
        k = int(swing.sum())
        if k:
            axis = rng.normal(size=(k, 3))
            axis /= np.linalg.norm(axis, axis=1, keepdims=True)
            limit = arm_swing_deg if "elbow" in moved[0] else leg_swing_deg
            ang = np.radians(rng.uniform(-limit, limit, k))
            r = _rotation(axis, ang)
            rel = out[swing][:, idx] - out[swing][:, b:b + 1]
            out[np.ix_(swing, idx)] = out[swing][:, b:b + 1] + np.einsum("nij,nkj->nki", r, rel)
    return out.astype(np.float32)
