"""The one skeleton table: MuPoTS-3D / MuCo 17 joints, parents, left/right pairs, colours.

Everything that needs joint indices imports them from here. The teacher (2D keypoint detector)
speaks COCO-17; `COCO_TO_MUPOTS` says how each of our joints is read from COCO keypoints.
"""

from __future__ import annotations

import numpy as np

NAME = "mupots17"

JOINT_NAMES: tuple[str, ...] = (
    "head_top",    # 0
    "thorax",      # 1
    "r_shoulder",  # 2
    "r_elbow",     # 3
    "r_wrist",     # 4
    "l_shoulder",  # 5
    "l_elbow",     # 6
    "l_wrist",     # 7
    "r_hip",       # 8
    "r_knee",      # 9
    "r_ankle",     # 10
    "l_hip",       # 11
    "l_knee",      # 12
    "l_ankle",     # 13
    "pelvis",      # 14
    "spine",       # 15
    "head",        # 16
)
NUM_JOINTS = len(JOINT_NAMES)
INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}
ROOT = INDEX["pelvis"]

# Parent of each joint in the kinematic tree (root has -1).
PARENTS: tuple[int, ...] = (
    16,  # head_top <- head
    15,  # thorax <- spine
    1,   # r_shoulder <- thorax
    2,   # r_elbow <- r_shoulder
    3,   # r_wrist <- r_elbow
    1,   # l_shoulder <- thorax
    5,   # l_elbow <- l_shoulder
    6,   # l_wrist <- l_elbow
    14,  # r_hip <- pelvis
    8,   # r_knee <- r_hip
    9,   # r_ankle <- r_knee
    14,  # l_hip <- pelvis
    11,  # l_knee <- l_hip
    12,  # l_ankle <- l_knee
    -1,  # pelvis (root)
    14,  # spine <- pelvis
    1,   # head <- thorax
)

# (right, left) joint pairs; mirroring a pose swaps them.
LR_PAIRS: tuple[tuple[int, int], ...] = ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13))

# Bones as (parent, child), in joint order of the child.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

# Left/right bone pairs (right bone index, left bone index) into BONES, for symmetry measures.
_BONE_OF_CHILD = {c: b for b, (_, c) in enumerate(BONES)}
LR_BONE_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (_BONE_OF_CHILD[r], _BONE_OF_CHILD[l]) for r, l in LR_PAIRS
)

# The 14 joints of MuPoTS-3D evaluation (3DPCK): all but pelvis, spine and head.
EVAL_JOINTS: tuple[int, ...] = tuple(i for i in range(NUM_JOINTS) if i not in (14, 15, 16))

# Permutation that mirrors a skeleton left<->right (apply to the joint axis, then negate x).
_SWAP = {**{r: l for r, l in LR_PAIRS}, **{l: r for r, l in LR_PAIRS}}
MIRROR_PERM: tuple[int, ...] = tuple(_SWAP.get(i, i) for i in range(NUM_JOINTS))

# Side of each joint: +1 left, -1 right, 0 centre.
SIDE: tuple[int, ...] = tuple(
    1 if n.startswith("l_") else -1 if n.startswith("r_") else 0 for n in JOINT_NAMES
)

# RGB colours in 0..1 by side (right warm, left cool, centre green), for drawings and markers.
SIDE_COLOURS: dict[int, tuple[float, float, float]] = {
    -1: (0.90, 0.30, 0.20),
    1: (0.20, 0.50, 0.95),
    0: (0.20, 0.80, 0.30),
}
JOINT_COLOURS: tuple[tuple[float, float, float], ...] = tuple(SIDE_COLOURS[s] for s in SIDE)

# ------------------------------------------------------------------------------------------------
# Teacher keypoints: COCO-17.
COCO_NAMES: tuple[str, ...] = (
    "nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
    "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle",
)
COCO_INDEX: dict[str, int] = {n: i for i, n in enumerate(COCO_NAMES)}
COCO_LR_PAIRS: tuple[tuple[int, int], ...] = (
    (2, 1), (4, 3), (6, 5), (8, 7), (10, 9), (12, 11), (14, 13), (16, 15)
)
_COCO_SWAP = {**dict(COCO_LR_PAIRS), **{left: r for r, left in COCO_LR_PAIRS}}
COCO_MIRROR_PERM: tuple[int, ...] = tuple(_COCO_SWAP.get(i, i) for i in range(17))

# How each MuPoTS joint is read from COCO keypoints: the mean of the listed COCO joints, or () where
# COCO has no counterpart (head_top, spine).
COCO_TO_MUPOTS: tuple[tuple[int, ...], ...] = tuple(
    {
        "head_top": (),
        "thorax": (COCO_INDEX["l_shoulder"], COCO_INDEX["r_shoulder"]),
        "pelvis": (COCO_INDEX["l_hip"], COCO_INDEX["r_hip"]),
        "spine": (),
        "head": (COCO_INDEX["l_ear"], COCO_INDEX["r_ear"]),
    }.get(n, (COCO_INDEX[n],) if n in COCO_INDEX else ())
    for n in JOINT_NAMES
)


def coco_to_mupots(kp: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map COCO-17 keypoints to the 17 MuPoTS joints.

    kp: (..., 17, D) COCO keypoints; conf: (..., 17) confidences.
    Returns (..., 17, D) joints and (..., 17) confidences; joints with no COCO counterpart get
    confidence 0 and coordinates NaN. A mean joint's confidence is the minimum of its sources.
    """
    kp = np.asarray(kp, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    assert kp.shape[-2] == len(COCO_NAMES) and conf.shape == kp.shape[:-1], (kp.shape, conf.shape)
    out = np.full(kp.shape[:-2] + (NUM_JOINTS, kp.shape[-1]), np.nan)
    out_conf = np.zeros(kp.shape[:-2] + (NUM_JOINTS,))
    for j, src in enumerate(COCO_TO_MUPOTS):
        if src:
            out[..., j, :] = kp[..., list(src), :].mean(axis=-2)
            out_conf[..., j] = conf[..., list(src)].min(axis=-1)
    return out, out_conf


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    """Bone lengths, (..., 17, 3) -> (..., 16), in the order of BONES."""
    joints = np.asarray(joints)
    assert joints.shape[-2:] == (NUM_JOINTS, 3), joints.shape
    p = np.array([b[0] for b in BONES])
    c = np.array([b[1] for b in BONES])
    return np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1)


# Standing height as the length of the chain head_top - head - thorax - spine - pelvis and the
# mean of the two legs' hip - knee - ankle chains (pose-invariant, unlike a bounding box).
HEIGHT_SPINE: tuple[tuple[int, int], ...] = ((0, 16), (16, 1), (1, 15), (15, 14))
HEIGHT_LEGS: tuple[tuple[tuple[int, int], ...], ...] = (((8, 9), (9, 10)), ((11, 12), (12, 13)))


def body_height(joints):
    """Pose-invariant body height (m): (..., 17, 3) -> (...); numpy or torch."""
    assert tuple(joints.shape[-2:]) == (NUM_JOINTS, 3), joints.shape

    def chain(pairs):
        return sum(((joints[..., a, :] - joints[..., b, :]) ** 2).sum(-1) ** 0.5 for a, b in pairs)

    return chain(HEIGHT_SPINE) + 0.5 * (chain(HEIGHT_LEGS[0]) + chain(HEIGHT_LEGS[1]))


def mirror(joints: np.ndarray) -> np.ndarray:
    """Mirror a pose left<->right about the x = 0 plane, (..., 17, 3) -> (..., 17, 3)."""
    joints = np.asarray(joints)
    assert joints.shape[-2:] == (NUM_JOINTS, 3), joints.shape
    out = joints[..., list(MIRROR_PERM), :].copy()
    out[..., 0] = -out[..., 0]
    return out


# A person standing upright facing the camera, root-relative, metres, camera optical frame
# (x right, y down, z away from the camera). The person's right side is on the image's left.
REST_POSE = np.array([
    [0.00, -0.80, 0.02],   # head_top
    [0.00, -0.50, 0.00],   # thorax
    [-0.18, -0.48, 0.00],  # r_shoulder
    [-0.21, -0.20, 0.02],  # r_elbow
    [-0.23, 0.05, 0.00],   # r_wrist
    [0.18, -0.48, 0.00],   # l_shoulder
    [0.21, -0.20, 0.02],   # l_elbow
    [0.23, 0.05, 0.00],    # l_wrist
    [-0.10, 0.00, 0.00],   # r_hip
    [-0.11, 0.43, 0.01],   # r_knee
    [-0.11, 0.85, 0.03],   # r_ankle
    [0.10, 0.00, 0.00],    # l_hip
    [0.11, 0.43, 0.01],    # l_knee
    [0.11, 0.85, 0.03],    # l_ankle
    [0.00, 0.00, 0.00],    # pelvis
    [0.00, -0.25, 0.00],   # spine
    [0.00, -0.64, 0.03],   # head
])


def body_frame(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The person's body frame as REP-155 defines it: origin mid-hip, x forward (out of the
    chest), y to the person's left, z up along the spine. joints (17, 3) in any right-handed
    frame -> (origin (3,), R (3, 3)) whose columns are the body axes in that frame. z is the
    mid-hip-to-thorax direction; y the right-to-left hip direction made orthogonal to z."""
    joints = np.asarray(joints, dtype=np.float64)
    assert joints.shape == (NUM_JOINTS, 3), joints.shape
    l_hip, r_hip, thorax = joints[INDEX["l_hip"]], joints[INDEX["r_hip"]], joints[INDEX["thorax"]]
    origin = 0.5 * (l_hip + r_hip)
    z = thorax - origin
    z /= np.linalg.norm(z)
    y = l_hip - r_hip
    y -= z * (y @ z)
    y /= np.linalg.norm(y)
    return origin, np.stack([np.cross(y, z), y, z], axis=1)
