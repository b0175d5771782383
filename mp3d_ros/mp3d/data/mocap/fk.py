"""Forward kinematics of BVH skeletons: channel values per frame -> global joint positions.

BVH conventions used (those of the BioVision format and of common exporters):
  * Each joint's local transform is a translation, then a rotation: p_child = p_joint +
    R_joint @ offset_child, R_child = R_joint @ R_local(child).
  * Rotation channels are Euler angles in degrees, composed in the joint's own channel order as
    intrinsic rotations: for channels c1 c2 c3, R_local = R_c1 @ R_c2 @ R_c3 (column vectors,
    right-handed, R_z(90) maps +x to +y). A joint may have any subset of rotation channels.
  * Position channels give the joint's translation from its parent in the parent's frame. With
    translation="replace" (default) they replace the matching OFFSET components (the usual
    reading of root position channels: LaFAN1, CMU, Mixamo write absolute root positions and an
    OFFSET equal to the first frame or zero); "add" adds them to the OFFSET instead.
  * The order of position and rotation channels in the list does not matter.

Vectorised over frames; the only Python loop is over joints.
"""

from __future__ import annotations

import numpy as np

from mp3d.data.mocap.bvh import BVH

_AXIS = {"X": 0, "Y": 1, "Z": 2}


def axis_rotation(angles_deg: np.ndarray, axis: str) -> np.ndarray:
    """Right-handed rotations about axis "X", "Y" or "Z": (...,) degrees -> (..., 3, 3)."""
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    c, s = np.cos(a), np.sin(a)
    i = _AXIS[axis.upper()]
    j, k = (i + 1) % 3, (i + 2) % 3
    out = np.zeros(a.shape + (3, 3))
    out[..., i, i] = 1.0
    out[..., j, j] = c
    out[..., k, k] = c
    out[..., j, k] = -s
    out[..., k, j] = s
    return out


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles to rotations: (..., n) degrees, order like "ZYX" -> (..., 3, 3).

    R = R_order[0](angles[..., 0]) @ R_order[1](angles[..., 1]) @ ... (BVH channel order).
    """
    angles_deg = np.asarray(angles_deg, dtype=np.float64)
    assert angles_deg.shape[-1] == len(order), (angles_deg.shape, order)
    out = np.broadcast_to(np.eye(3), angles_deg.shape[:-1] + (3, 3)).copy()
    for n, axis in enumerate(order):
        out = out @ axis_rotation(angles_deg[..., n], axis)
    return out


def local_transforms(bvh: BVH, motion: np.ndarray | None = None, *,
                     translation: str = "replace") -> tuple[np.ndarray, np.ndarray]:
    """Per-joint local translations and rotations.

    motion: (F, C) channel values (default bvh.motion). Returns translations (F, J, 3) in file units
    and rotations (F, J, 3, 3).
    """
    if translation not in ("replace", "add"):
        raise ValueError(f"translation must be 'replace' or 'add', got {translation!r}")
    motion = bvh.motion if motion is None else np.asarray(motion, dtype=np.float64)
    assert motion.ndim == 2 and motion.shape[1] == bvh.num_channels, (
        motion.shape, bvh.num_channels)
    f, nj = motion.shape[0], bvh.num_joints
    trans = np.broadcast_to(bvh.offsets, (f, nj, 3)).copy()
    rots = np.empty((f, nj, 3, 3))
    for j, chans in enumerate(bvh.channels):
        s = bvh.channel_starts[j]
        rot_cols = [s + n for n, c in enumerate(chans) if c.endswith("rotation")]
        order = "".join(c[0] for c in chans if c.endswith("rotation"))
        rots[:, j] = euler_to_matrix(motion[:, rot_cols], order)
        for n, c in enumerate(chans):
            if c.endswith("position"):
                if translation == "replace":
                    trans[:, j, _AXIS[c[0]]] = motion[:, s + n]
                else:
                    trans[:, j, _AXIS[c[0]]] += motion[:, s + n]
    return trans, rots


def global_transforms(bvh: BVH, motion: np.ndarray | None = None, *,
                      translation: str = "replace") -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions (F, J, 3) in file units and orientations (F, J, 3, 3)."""
    trans, rots = local_transforms(bvh, motion, translation=translation)
    pos = np.empty_like(trans)
    glob = np.empty_like(rots)
    for j, p in enumerate(bvh.parents):
        if p < 0:
            pos[:, j] = trans[:, j]
            glob[:, j] = rots[:, j]
        else:
            pos[:, j] = pos[:, p] + np.einsum("fab,fb->fa", glob[:, p], trans[:, j])
            glob[:, j] = glob[:, p] @ rots[:, j]
    return pos, glob


def forward_kinematics(bvh: BVH, motion: np.ndarray | None = None, *, end_sites: bool = False,
                       translation: str = "replace") -> np.ndarray:
    """Global joint positions, (F, C) motion -> (F, J, 3), or (F, J + E, 3) with `end_sites`.

    motion defaults to bvh.motion; columns follow bvh.all_names(end_sites). File units.
    """
    pos, glob = global_transforms(bvh, motion, translation=translation)
    if end_sites and bvh.end_names:
        par = list(bvh.end_parents)
        ends = pos[:, par] + np.einsum("feab,eb->fea", glob[:, par], bvh.end_offsets)
        pos = np.concatenate([pos, ends], axis=1)
    n = bvh.num_joints + (len(bvh.end_names) if end_sites else 0)
    assert pos.shape[1:] == (n, 3), pos.shape
    return pos
