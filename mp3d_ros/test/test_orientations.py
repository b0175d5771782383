"""Per-joint orientations (mp3d.infer.orientations, no ROS): the convention on a known pose, forward
kinematics back to the joints, degenerate skeletons, and the rotation helpers."""

from __future__ import annotations

import numpy as np
import pytest
from mp3d.common import skeleton as sk
from mp3d.infer import orientations as ori

J = sk.INDEX


def poses(n: int, seed: int = 0) -> np.ndarray:
    """The rest pose, turned, moved and bent at random: (n, 17, 3)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        q = rng.normal(size=4)
        rot = ori.quaternion_matrix(q)
        bent = sk.REST_POSE + rng.normal(scale=0.08, size=sk.REST_POSE.shape)
        out.append(bent @ rot.T + rng.uniform([-2, -1, 2], [2, 1, 8]))
    return np.array(out)


def test_tables():
    names = sk.JOINT_NAMES
    assert [names[j] for j in ori.LEAVES] == ["head_top", "r_wrist", "l_wrist", "r_ankle",
                                             "l_ankle"]
    assert sorted(names[j] for j in ori.SIDE_JOINTS) == ["l_hip", "l_shoulder", "r_hip",
                                                        "r_shoulder"]
    assert names[ori.PRIMARY_CHILD[J["pelvis"]]] == "spine"
    assert names[ori.PRIMARY_CHILD[J["thorax"]]] == "head"
    for j, c in enumerate(ori.PRIMARY_CHILD):  # a joint's child is one of its children
        assert c < 0 or sk.PARENTS[c] == j
    order = ori.TOPOLOGICAL_ORDER
    assert all(order.index(sk.PARENTS[j]) < order.index(j) for j in order if sk.PARENTS[j] >= 0)


def test_rest_pose_frames_follow_the_convention():
    joints = sk.REST_POSE + [0.3, 0.1, 4.0]  # camera optical frame: x right, y down, z forward
    rots = ori.joint_orientations(joints)
    forward, left, up = np.array([0, 0, -1.0]), np.array([1.0, 0, 0]), np.array([0, -1.0, 0])
    _, body = sk.body_frame(joints)
    for name in ("pelvis", "spine"):  # upright bones: the REP-155 body frame's axes
        r = rots[J[name]]
        assert r[:, 0] @ forward > 0.99 and r[:, 1] @ left > 0.99 and r[:, 2] @ up > 0.99
    for name in ("r_hip", "l_knee", "r_shoulder", "l_elbow"):  # bones pointing down
        r = rots[J[name]]
        assert r[:, 2] @ -up > 0.95 and r[:, 1] @ left > 0.95 and r[:, 0] @ -forward > 0.95
    for j, c in enumerate(ori.PRIMARY_CHILD):
        if c >= 0:  # z along the bone to the child; y in the plane of z and the left axis
            bone = joints[c] - joints[j]
            np.testing.assert_allclose(rots[j][:, 2], bone / np.linalg.norm(bone), atol=1e-12)
            assert rots[j][:, 0] @ body[:, 1] == pytest.approx(0.0, abs=1e-12)
            assert rots[j][:, 1] @ body[:, 1] > 0
        else:  # leaves: their parent's orientation
            np.testing.assert_array_equal(rots[j], rots[sk.PARENTS[j]])


@pytest.mark.parametrize("seed", range(3))
def test_orientations_rebuild_the_joints_by_forward_kinematics(seed):
    for joints in poses(50, seed):
        rots = ori.joint_orientations(joints)
        np.testing.assert_allclose(np.einsum("jab,jac->jbc", rots, rots),
                                   np.broadcast_to(np.eye(3), rots.shape), atol=1e-12)
        np.testing.assert_allclose(np.linalg.det(rots), 1.0, atol=1e-12)
        rebuilt = ori.primary_forward_kinematics(joints[sk.ROOT], rots,
                                                 sk.bone_lengths(joints), joints)
        assert np.abs(rebuilt - joints).max() < 1e-3  # within 1 mm (in fact 1e-15 m)
        # without the four side joints, only the joints not below them are rebuilt
        partial = ori.primary_forward_kinematics(joints[sk.ROOT], rots, sk.bone_lengths(joints))
        below_side = {j for j in range(sk.NUM_JOINTS) if any(
            a in ori.SIDE_JOINTS for a in _ancestry(j))}
        assert below_side == {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
        assert np.isfinite(partial[[j for j in range(17) if j not in below_side]]).all()


def _ancestry(j: int) -> list[int]:
    out = []
    while j >= 0:
        out.append(j)
        j = sk.PARENTS[j]
    return out


def test_degenerate_skeletons_still_give_rotations():
    joints = sk.REST_POSE + [0, 0, 3.0]
    sideways = joints.copy()  # left arm straight out along the hips' left-right axis
    sideways[J["l_elbow"]] = sideways[J["l_shoulder"]] + [0.3, 0, 0]
    sideways[J["l_wrist"]] = sideways[J["l_shoulder"]] + [0.55, 0, 0]
    short = joints.copy()  # a bone of zero length
    short[J["r_knee"]] = short[J["r_hip"]]
    flat = joints.copy()  # hips and thorax in one point: no body frame
    flat[[J["l_hip"], J["r_hip"], J["thorax"]]] = flat[J["pelvis"]]
    for pose in (sideways, short, flat, np.zeros((17, 3))):
        rots = ori.joint_orientations(pose)
        assert np.isfinite(rots).all()
        np.testing.assert_allclose(np.einsum("jab,jac->jbc", rots, rots),
                                   np.broadcast_to(np.eye(3), rots.shape), atol=1e-9)
    arm = ori.joint_orientations(sideways)[J["l_elbow"]]
    assert arm[:, 2] @ [1, 0, 0] == pytest.approx(1.0)  # z still along the bone
    assert arm[:, 0] @ [0, 0, -1] == pytest.approx(1.0)  # x: the body's forward axis
    np.testing.assert_array_equal(ori.joint_orientations(short)[J["r_hip"]],
                                  ori.joint_orientations(short)[J["pelvis"]])


def test_rotation_helpers_round_trip():
    rng = np.random.default_rng(3)
    mats = ori.quaternion_matrix(rng.normal(size=(500, 4)))
    q = ori.quaternions(mats)
    assert (q[:, 3] >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(ori.quaternion_matrix(q), mats, atol=1e-12)
    for m in mats[:100]:
        np.testing.assert_allclose(ori.rot_zyx(*ori.euler_zyx(m)), m, atol=1e-12)
    for b in (np.pi / 2, -np.pi / 2):  # gimbal lock
        m = ori.rot_zyx(0.4, b, -1.1)
        np.testing.assert_allclose(ori.rot_zyx(*ori.euler_zyx(m)), m, atol=1e-9)
    for d in rng.normal(size=(100, 3)):
        a, b = ori.swing_angles(d)
        np.testing.assert_allclose(ori.rot_zyx(a, b, 0.0)[:, 2], d / np.linalg.norm(d),
                                   atol=1e-12)
    assert ori.swing_angles(np.zeros(3)) == (0.0, 0.0)
