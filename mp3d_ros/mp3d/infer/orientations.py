"""Per-joint orientations of the 17-joint skeleton, derived from its 3D joints (numpy only, no ROS).

One frame per joint (``Person3D.joint_orientations``, the TF joint frames, the human URDF of
:mod:`mp3d_ros.human_urdf`), a right-handed frame whose axes are, in the frame of the joints:

- **z**: along the bone from the joint to its child, :data:`PRIMARY_CHILD` (the one child, or for
  the two joints with several children: pelvis -> spine, thorax -> head);
- **y**: the body's left-right axis (the y of the REP-155 body frame,
  :func:`mp3d.common.skeleton.body_frame`: right hip to left hip, made orthogonal to the spine),
  made orthogonal to z: towards the person's left;
- **x** = y x z: forward (out of the chest) for a bone pointing up the body (pelvis, spine,
  thorax, head; a raised arm), backward for one pointing down (legs, hanging arms).

Leaves (head_top, the wrists, the ankles) have no bone of their own: they take their parent's
orientation. A standing person's pelvis, spine, thorax and head frames are therefore close to the
REP-155 body frame (x forward, y left, z up).

Degenerate cases, so that every orientation is a rotation: a bone shorter than :data:`EPS` takes
its parent's orientation (the pelvis: the body frame's); a bone within :data:`EPS` of the
left-right axis (an arm held exactly sideways), whose twist the left-right axis cannot fix, takes
its twist from the body's forward axis instead (x = forward made orthogonal to z); near that
direction the twist turns quickly, as any twist measured from a fixed axis must somewhere. A body
frame that the hips and thorax do not define (coincident points) falls back to the camera's axes.

The bones to the hips and the shoulders leave a branching joint (pelvis, thorax) sideways, so no
orientation holds their direction: forward kinematics from the orientations and the bone lengths
(:func:`primary_forward_kinematics`) rebuilds the 12 joints whose bone runs along their parent's
z from the pelvis, the hips and the shoulders; the human URDF gives the four side bones two swing
angles of their own (:func:`swing_angles`).

Also the rotation helpers the ROS side needs: :func:`quaternions` (x, y, z, w, as
geometry_msgs/Quaternion), :func:`quaternion_matrix`, :func:`euler_zyx` / :func:`rot_zyx` (three
revolute joints about z, then y, then x).
"""

from __future__ import annotations

import numpy as np

from mp3d.common import skeleton as sk

EPS = 1e-6  # m for bone lengths, and the sine below which a bone counts as along the left axis

# The child whose bone gives each joint's z axis; -1 for leaves (their parent's orientation).
PRIMARY_CHILD: tuple[int, ...] = tuple(
    {"pelvis": sk.INDEX["spine"], "thorax": sk.INDEX["head"]}.get(
        name, next((c for c, p in enumerate(sk.PARENTS) if p == j), -1))
    for j, name in enumerate(sk.JOINT_NAMES)
)
LEAVES: tuple[int, ...] = tuple(j for j, c in enumerate(PRIMARY_CHILD) if c < 0)
# The joints whose bone from their parent is not the parent's z: the hips and the shoulders.
SIDE_JOINTS: tuple[int, ...] = tuple(
    j for j, p in enumerate(sk.PARENTS) if p >= 0 and PRIMARY_CHILD[p] != j)


def _topological() -> tuple[int, ...]:
    order, todo = [], [sk.ROOT]
    while todo:
        j = todo.pop(0)
        order.append(j)
        todo += [c for c, p in enumerate(sk.PARENTS) if p == j]
    assert sorted(order) == list(range(sk.NUM_JOINTS))
    return tuple(order)


TOPOLOGICAL_ORDER: tuple[int, ...] = _topological()  # parents before children


def _unit(v: np.ndarray) -> tuple[np.ndarray, float]:
    n = float(np.linalg.norm(v))
    return (v / n if n > 0 else v), n


def body_axes(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The REP-155 body frame of :func:`mp3d.common.skeleton.body_frame` (origin mid-hip, columns
    x forward, y left, z up), with the camera's axes where the hips and thorax do not define it.
    joints (17, 3) -> (origin (3,), R (3, 3))."""
    joints = np.asarray(joints, dtype=np.float64)
    assert joints.shape == (sk.NUM_JOINTS, 3), joints.shape
    with np.errstate(invalid="ignore", divide="ignore"):
        origin, rot = sk.body_frame(joints)
    if not np.isfinite(rot).all():
        rot = np.eye(3)
    return origin, rot


def _frame(z: np.ndarray, left: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Columns (x, y, z) with z given (unit), y = left made orthogonal to z, x = y x z; where left
    is (nearly) along z, x = forward made orthogonal to z and y = z x x."""
    y, n = _unit(left - z * (left @ z))
    if n < EPS:
        x, _ = _unit(forward - z * (forward @ z))
        return np.stack([x, np.cross(z, x), z], axis=1)
    return np.stack([np.cross(y, z), y, z], axis=1)


def joint_orientations(joints: np.ndarray) -> np.ndarray:
    """The frame of every joint (see the module docstring): joints (17, 3) -> (17, 3, 3), each a
    rotation whose columns are the joint's x, y, z axes in the joints' frame."""
    joints = np.asarray(joints, dtype=np.float64)
    _, body = body_axes(joints)
    forward, left = body[:, 0], body[:, 1]
    out = np.empty((sk.NUM_JOINTS, 3, 3))
    for j in TOPOLOGICAL_ORDER:
        child, parent = PRIMARY_CHILD[j], sk.PARENTS[j]
        inherited = body if parent < 0 else out[parent]
        if child < 0:
            out[j] = inherited
            continue
        z, length = _unit(joints[child] - joints[j])
        out[j] = _frame(z, left, forward) if length >= EPS else inherited
    return out


def primary_forward_kinematics(root: np.ndarray, rots: np.ndarray, lengths: np.ndarray,
                               side_joints: np.ndarray | None = None) -> np.ndarray:
    """Joint positions from the root, the orientations (17, 3, 3) and the bone lengths (16, in
    the order of :data:`mp3d.common.skeleton.BONES`): each joint is its parent plus its bone's
    length along the parent's z, except the :data:`SIDE_JOINTS`, whose positions are taken from
    ``side_joints`` (17, 3) (NaN when not given). -> (17, 3)."""
    rots = np.asarray(rots, dtype=np.float64)
    assert rots.shape == (sk.NUM_JOINTS, 3, 3) and len(lengths) == len(sk.BONES)
    length_of = {c: float(length) for (_, c), length in zip(sk.BONES, lengths)}
    out = np.full((sk.NUM_JOINTS, 3), np.nan)
    out[sk.ROOT] = root
    for j in TOPOLOGICAL_ORDER[1:]:
        p = sk.PARENTS[j]
        if j in SIDE_JOINTS:
            if side_joints is not None:
                out[j] = side_joints[j]
        else:
            out[j] = out[p] + length_of[j] * rots[p][:, 2]
    return out


# --------------------------------------------------------------------------- rotation helpers


def quaternions(rots: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> unit quaternions (..., 4) as (x, y, z, w), w >= 0."""
    r = np.asarray(rots, dtype=np.float64)
    assert r.shape[-2:] == (3, 3), r.shape
    flat = r.reshape(-1, 3, 3)
    out = np.empty((len(flat), 4))
    for i, m in enumerate(flat):
        tr = m[0, 0] + m[1, 1] + m[2, 2]
        if tr > 0:  # the largest of the four is w: divide by it (Shepperd's method)
            s = 2.0 * np.sqrt(1.0 + tr)
            q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, s / 4]
        elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
            q = [s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
        elif m[1, 1] > m[2, 2]:
            s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
            q = [(m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
        else:
            s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
            q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4, (m[1, 0] - m[0, 1]) / s]
        q = np.asarray(q) / np.linalg.norm(q)
        out[i] = -q if q[3] < 0 else q
    return out.reshape(r.shape[:-2] + (4,))


def quaternion_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions (..., 4) as (x, y, z, w), normalised here -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def axis_rotation(axis: str, angle: float) -> np.ndarray:
    """The rotation by ``angle`` (rad) about the x, y or z axis, (3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def rot_zyx(a: float, b: float, c: float) -> np.ndarray:
    """Rz(a) Ry(b) Rx(c): three revolute joints about z, then the new y, then the new x."""
    return axis_rotation("z", a) @ axis_rotation("y", b) @ axis_rotation("x", c)


def euler_zyx(r: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) with :func:`rot_zyx` (a, b, c) == r; a, c in (-pi, pi], b in [-pi/2, pi/2]; at
    b = +-pi/2 (gimbal lock) a = 0."""
    r = np.asarray(r, dtype=np.float64)
    assert r.shape == (3, 3), r.shape
    cb = float(np.hypot(r[0, 0], r[1, 0]))
    b = float(np.arctan2(-r[2, 0], cb))
    if cb > 1e-9:
        return float(np.arctan2(r[1, 0], r[0, 0])), b, float(np.arctan2(r[2, 1], r[2, 2]))
    sb = np.sign(-r[2, 0])
    return 0.0, b, float(np.arctan2(sb * r[0, 1], r[1, 1]))


def swing_angles(direction: np.ndarray) -> tuple[float, float]:
    """(a, b) with Rz(a) Ry(b) turning z onto ``direction`` (3,) (any length; a = b = 0 for a
    zero vector): a = atan2(y, x) in (-pi, pi], b in [0, pi]."""
    d = np.asarray(direction, dtype=np.float64)
    if not np.linalg.norm(d) > 0:
        return 0.0, 0.0
    return float(np.arctan2(d[1], d[0])), float(np.arctan2(np.hypot(d[0], d[1]), d[2]))
