"""Pose metrics against hand-computed values."""

import numpy as np
from mp3d import metrics
from mp3d import skeleton as sk


def rot_y(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def test_mpjpe_and_procrustes():
    gt = sk.REST_POSE[None].repeat(3, 0)
    shifted = gt + [0.01, 0, 0]
    np.testing.assert_allclose(metrics.mpjpe(shifted, gt), 10.0)
    moved = 1.3 * gt @ rot_y(0.7).T + [1, 2, 3]
    np.testing.assert_allclose(metrics.pa_mpjpe(moved, gt), 0.0, atol=1e-9)
    # A reflection is not a rotation: Procrustes must not undo a mirror image.
    assert metrics.pa_mpjpe(gt * [-1, 1, 1], gt).min() > 1.0


def test_pck_and_auc():
    gt = np.zeros((1, 17, 3))
    pred = np.zeros((1, 17, 3))
    pred[0, sk.EVAL_JOINTS[:7], 0] = 0.2   # 7 of 14 eval joints 200 mm off
    assert metrics.pck3d(pred, gt)[0] == 0.5
    auc = metrics.auc3d(np.zeros((1, 17, 3)), gt)[0]
    assert auc == 1.0


def test_plausibility_measures():
    p = sk.REST_POSE[None]
    assert metrics.bone_asymmetry(p)[0] < 1e-9
    ang = metrics.joint_angles(p)[0]
    assert ang[metrics.HINGE_NAMES.index("r_knee")] > 170  # straight leg
    crossed = p.copy()
    crossed[0, sk.INDEX["r_wrist"]] = crossed[0, sk.INDEX["l_elbow"]] + [0.0, 0.0, 0.01]
    assert not metrics.self_intersection(p)[0] and metrics.self_intersection(crossed)[0]
