"""The skeleton table: unique indices, a tree, symmetric pairs, and the teacher mapping."""

import numpy as np
from mp3d.common import skeleton as sk


def test_names_unique_and_indexed():
    assert len(set(sk.JOINT_NAMES)) == sk.NUM_JOINTS == 17
    assert all(sk.INDEX[n] == i for i, n in enumerate(sk.JOINT_NAMES))
    assert sk.JOINT_NAMES[sk.ROOT] == "pelvis"
    assert len(set(sk.COCO_NAMES)) == 17


def test_parents_form_a_tree_rooted_at_pelvis():
    assert len(sk.PARENTS) == sk.NUM_JOINTS
    assert [i for i, p in enumerate(sk.PARENTS) if p < 0] == [sk.ROOT]
    for j in range(sk.NUM_JOINTS):
        seen, k = set(), j
        while k != sk.ROOT:
            assert k not in seen, f"cycle through {sk.JOINT_NAMES[k]}"
            seen.add(k)
            k = sk.PARENTS[k]
    assert len(sk.BONES) == sk.NUM_JOINTS - 1


def test_left_right_pairs_are_symmetric():
    for r, l in sk.LR_PAIRS:
        assert sk.JOINT_NAMES[r].startswith("r_")
        assert sk.JOINT_NAMES[l] == "l_" + sk.JOINT_NAMES[r][2:]
        # A pair's parents are a pair too, or the same centre joint.
        pr, pl = sk.PARENTS[r], sk.PARENTS[l]
        assert pr == pl or (pr, pl) in sk.LR_PAIRS
    paired = [j for pair in sk.LR_PAIRS for j in pair]
    assert len(paired) == len(set(paired))
    assert sorted(sk.MIRROR_PERM) == list(range(sk.NUM_JOINTS))
    for r, l in sk.COCO_LR_PAIRS:
        assert sk.COCO_NAMES[r].startswith("r_") and sk.COCO_NAMES[l] == "l_" + sk.COCO_NAMES[r][2:]


def test_mirror_is_an_involution_and_swaps_sides():
    pose = sk.REST_POSE + np.random.default_rng(0).normal(0, 0.01, sk.REST_POSE.shape)
    m = sk.mirror(pose)
    np.testing.assert_allclose(sk.mirror(m), pose)
    r, l = sk.INDEX["r_wrist"], sk.INDEX["l_wrist"]
    np.testing.assert_allclose(m[l], pose[r] * [-1, 1, 1])


def test_colours_in_unit_range_and_by_side():
    for c in sk.JOINT_COLOURS:
        assert all(0.0 <= v <= 1.0 for v in c)
    assert sk.JOINT_COLOURS[sk.INDEX["r_knee"]] != sk.JOINT_COLOURS[sk.INDEX["l_knee"]]


def test_coco_mapping_names_and_means():
    for j, src in enumerate(sk.COCO_TO_MUPOTS):
        name = sk.JOINT_NAMES[j]
        if name in sk.COCO_INDEX:
            assert src == (sk.COCO_INDEX[name],)
    assert sk.COCO_TO_MUPOTS[sk.INDEX["head_top"]] == ()
    kp = np.arange(17 * 2, dtype=float).reshape(17, 2)
    conf = np.linspace(0.1, 0.9, 17)
    out, oc = sk.coco_to_mupots(kp, conf)
    np.testing.assert_allclose(out[sk.INDEX["r_elbow"]], kp[sk.COCO_INDEX["r_elbow"]])
    np.testing.assert_allclose(
        out[sk.INDEX["pelvis"]], (kp[sk.COCO_INDEX["l_hip"]] + kp[sk.COCO_INDEX["r_hip"]]) / 2)
    assert oc[sk.INDEX["pelvis"]] == min(conf[11], conf[12])
    assert np.isnan(out[sk.INDEX["head_top"]]).all() and oc[sk.INDEX["head_top"]] == 0


def test_rest_pose_is_plausible():
    bl = sk.bone_lengths(sk.REST_POSE)
    for rb, lb in sk.LR_BONE_PAIRS:
        assert abs(bl[rb] - bl[lb]) < 1e-9
    assert sk.REST_POSE[sk.INDEX["head_top"], 1] < sk.REST_POSE[sk.ROOT, 1] < sk.REST_POSE[
        sk.INDEX["r_ankle"], 1]  # y down: head above, feet below
    assert sk.REST_POSE[sk.INDEX["r_shoulder"], 0] < 0  # facing the camera: right side on the left
