"""Pose metrics against hand-computed values."""

import numpy as np
import pytest
from mp3d.common import skeleton as sk
from mp3d.eval import metrics


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


def test_roc_auc_against_pairwise_definition():
    rng = np.random.default_rng(3)
    labels = rng.random(300) < 0.6
    scores = np.round(rng.random(300) + 0.5 * labels, 1)  # ties on purpose
    pos, neg = scores[labels], scores[~labels]
    want = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (
        len(pos) * len(neg))
    assert metrics.roc_auc(scores, labels) == pytest.approx(want, abs=1e-12)
    assert metrics.roc_auc(labels.astype(float), labels) == 1.0
    assert np.isnan(metrics.roc_auc(scores, np.ones(300, bool)))


def test_body_height_is_pose_invariant():
    h = sk.body_height(sk.REST_POSE)
    assert 1.4 < h < 2.0
    assert sk.body_height(sk.REST_POSE @ rot_y(1.1).T + 5) == pytest.approx(h)
    import torch

    t = torch.from_numpy(np.stack([sk.REST_POSE, 1.1 * sk.REST_POSE]))
    np.testing.assert_allclose(sk.body_height(t).numpy(), [h, 1.1 * h], rtol=1e-9)
