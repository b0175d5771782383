"""Bodies in synthetic scenes: the canonical frame, the COCO-17 points a 2D teacher sees of a
17-joint pose, and a toy pose bank for tests.
"""

from __future__ import annotations

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.scenes.config import FaceGeometry

K = sk.NUM_JOINTS
_HEAD, _HEAD_TOP = sk.INDEX["head"], sk.INDEX["head_top"]
_ANKLES = (sk.INDEX["r_ankle"], sk.INDEX["l_ankle"])
_L_SHOULDER, _R_SHOULDER = sk.INDEX["l_shoulder"], sk.INDEX["r_shoulder"]
NUM_FACE = 5  # COCO nose, l_eye, r_eye, l_ear, r_ear come first in COCO-17
# COCO keypoints 5..16 (shoulders .. ankles) are MuPoTS joints of the same names.
COCO_FROM_MUPOTS: tuple[int, ...] = tuple(sk.INDEX[n] for n in sk.COCO_NAMES[NUM_FACE:])
COCO_LIMBS: tuple[int, ...] = tuple(range(NUM_FACE, len(sk.COCO_NAMES)))  # the 12 limb joints


def _normalise(v: np.ndarray, fallback: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Unit vectors along the last axis; where v is (near) zero, the (unit) fallback."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > eps, v / np.maximum(n, eps), fallback)


def canonical_from_y_up(poses: np.ndarray) -> np.ndarray:
    """Pose-prior frame (+y up, facing +z, +x = the person's left) -> this module's canonical frame
    (y down, facing -z, +x = the person's left): a 180 deg turn about x, (x, y, z) -> (x, -y, -z).
    (..., 17, 3) -> (..., 17, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    assert poses.shape[-2:] == (K, 3), poses.shape
    return poses * np.array([1.0, -1.0, -1.0])




def coco_joints_3d(joints: np.ndarray, rot: np.ndarray, scale: np.ndarray | float = 1.0,
                   face: FaceGeometry | None = None) -> np.ndarray:
    """3D COCO-17 joints of MuPoTS-17 skeletons: (..., 17, 3), (..., 3, 3), scale (...) or float
    -> (..., 17, 3), same frame as `joints`.

    Limb joints are the MuPoTS joints of the same names. Face points come from 'head' (the head
    centre) along the head's own axes: up = head -> head_top, lateral (the person's left) = the
    shoulder line made orthogonal to up, forward = lateral x up. `rot` (canonical -> this frame)
    supplies those axes only where the skeleton's are degenerate. Offsets (FaceGeometry) scale with
    `scale`.
    """
    joints = np.asarray(joints, dtype=np.float64)
    rot = np.asarray(rot, dtype=np.float64)
    assert joints.shape[-2:] == (K, 3) and rot.shape == joints.shape[:-2] + (3, 3), (
        joints.shape, rot.shape)
    face = face or FaceGeometry()
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), joints.shape[:-2])[..., None]
    head = joints[..., _HEAD, :]
    up = _normalise(joints[..., _HEAD_TOP, :] - head, -rot[..., :, 1])
    lat = joints[..., _L_SHOULDER, :] - joints[..., _R_SHOULDER, :]
    lat_fb = rot[..., :, 0] - np.sum(rot[..., :, 0] * up, -1, keepdims=True) * up
    lat = _normalise(lat - np.sum(lat * up, -1, keepdims=True) * up, _normalise(lat_fb, lat_fb))
    fwd = np.cross(lat, up)
    f = face
    nose = head + s * f.nose_forward * fwd
    eye_c = head + s * (f.eye_forward * fwd + f.eye_up * up)
    l_eye, r_eye = eye_c + s * f.eye_lateral * lat, eye_c - s * f.eye_lateral * lat
    l_ear, r_ear = head + s * f.ear_lateral * lat, head - s * f.ear_lateral * lat
    face_pts = np.stack([nose, l_eye, r_eye, l_ear, r_ear], axis=-2)
    return np.concatenate([face_pts, joints[..., list(COCO_FROM_MUPOTS), :]], axis=-2)


def toy_pose_bank(n: int, rng: np.random.Generator) -> np.ndarray:
    """n varied poses made from skeleton.REST_POSE by random limb and torso rotations (bone lengths
    kept), canonical frame, root-relative: (n, 17, 3). For tests and benchmarks; train on motion
    capture (mp3d.data.mocap) instead."""

    def rot(axis_angles: np.ndarray) -> np.ndarray:  # (n, 3) rotation vectors -> (n, 3, 3)
        th = np.linalg.norm(axis_angles, axis=-1, keepdims=True)
        k = axis_angles / np.maximum(th, 1e-12)
        kx = np.zeros((len(k), 3, 3))
        kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
        kx = kx - kx.transpose(0, 2, 1)
        t = th[..., None]
        return np.eye(3) + np.sin(t) * kx + (1 - np.cos(t)) * kx @ kx

    def turn(p: np.ndarray, pivot: int, joints: list[int], r: np.ndarray) -> None:
        piv = p[:, pivot:pivot + 1]
        p[:, joints] = np.einsum("nij,nkj->nki", r, p[:, joints] - piv) + piv

    p = np.repeat(sk.REST_POSE[None].astype(np.float64), n, axis=0)
    ix = sk.INDEX
    for side in ("r", "l"):
        sh, el, wr = ix[f"{side}_shoulder"], ix[f"{side}_elbow"], ix[f"{side}_wrist"]
        hp, kn, an = ix[f"{side}_hip"], ix[f"{side}_knee"], ix[f"{side}_ankle"]
        turn(p, el, [wr], rot(rng.normal(0, 0.8, (n, 3)) * [1, 0.3, 1]))
        turn(p, sh, [el, wr], rot(rng.normal(0, 0.9, (n, 3))))
        turn(p, kn, [an], rot(np.abs(rng.normal(0, 0.6, (n, 1))) * [1, 0, 0]))
        turn(p, hp, [kn, an], rot(rng.normal(0, 0.35, (n, 3)) * [1, 0.3, 0.5]))
    upper = [i for i in range(K) if i not in (ix["pelvis"], ix["r_hip"], ix["l_hip"], ix["r_knee"],
                                              ix["l_knee"], ix["r_ankle"], ix["l_ankle"])]
    turn(p, sk.ROOT, upper, rot(rng.normal(0, 0.15, (n, 3))))
    return p - p[:, sk.ROOT:sk.ROOT + 1]
