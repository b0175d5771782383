"""Tests of the motion sources beyond LaFAN1 and DeepMimic: joint-position clips
(mp3d.data.mocap.positions, holosoma's climbing captures) and the bvhtoolbox BVH rigs
("mocapbank" mapping), and their dispatch in the pose datasets.

Known answers: a synthetic standing pose in holosoma's 53-joint layout (Z up, facing +x, left at
+y; frame 1 bends the right knee 90 degrees, frame 2 raises the left arm), written by the tests,
and test/data/bvh/mocapbank_tiny.bvh (the mocapbank rig with round offsets, the same three poses).
Real data, when scripts/fetch_motion.sh has put it into cache/mocap/ (these tests never download:
without it they skip): the 5 climbing clips, data_type.py, and the two bvhtoolbox files.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from mp3d.cli import mocap as mocap_cli
from mp3d.common import skeleton as sk
from mp3d.data.mocap import dataset as ds
from mp3d.data.mocap import positions as pos
from mp3d.data.mocap.bvh import read_bvh
from mp3d.data.mocap.retarget import detect_mapping, retarget, to_root_relative_canonical

J = sk.INDEX
BVH_DATA = Path(__file__).resolve().parent / "data" / "bvh"
MOCAPBANK_TINY = BVH_DATA / "mocapbank_tiny.bvh"
DEEPMIMIC_TINY = Path(__file__).resolve().parent / "data" / "deepmimic" / "humanoid3d_tiny.txt"
CACHE = Path(os.environ.get("MP3D_MOCAP_DIR", REPO / "cache" / "mocap"))
HOLOSOMA = CACHE / "holosoma"
BVHTOOLBOX = CACHE / "bvhtoolbox"
CLIPS = sorted(HOLOSOMA.glob(pos.FILE_GLOB)) if HOLOSOMA.is_dir() else []
needs_holosoma = pytest.mark.skipif(
    len(CLIPS) != 5, reason="holosoma clips not in cache/mocap (bash scripts/fetch_motion.sh)")
needs_bvhtoolbox = pytest.mark.skipif(
    not (BVHTOOLBOX / "test_mocapbank.bvh").is_file(),
    reason="bvhtoolbox files not in cache/mocap (bash scripts/fetch_motion.sh)")

# ---------------------------------------------------------------------------------------------
# A synthetic clip in holosoma's layout: (forward, left, up) metres, Z up, facing +x.

STAND = {
    "Hips": (0, 0, 1.0), "Spine": (0, 0, 1.07), "Spine1": (0, 0, 1.27), "Neck": (0, 0, 1.50),
    "Head": (0.02, 0, 1.64),
    "LeftShoulder": (0, 0.05, 1.45), "LeftArm": (0, 0.17, 1.44), "LeftForeArm": (0, 0.17, 1.14),
    "LeftHand": (0, 0.17, 0.89),
    "LeftUpLeg": (0, 0.09, 1.0), "LeftLeg": (0, 0.09, 0.58), "LeftFoot": (0, 0.09, 0.12),
    "LeftToeBase": (0.14, 0.09, 0.03),
}
SHANK = 0.46  # LeftLeg -> LeftFoot


def synthetic_clip() -> np.ndarray:
    """(3, 53, 3) float32: standing, right knee bent 90 degrees (shank backwards), left arm up."""
    pts = dict(STAND)
    for name, (f, left, u) in STAND.items():
        if name.startswith("Left"):
            pts["Right" + name[4:]] = (f, -left, u)
    for side in ("Left", "Right"):
        hand = pts[f"{side}Hand"]
        for finger in ("Thumb", "Index", "Middle", "Ring", "Pinky"):
            for k in (1, 2, 3):
                pts[f"{side}Hand{finger}{k}"] = (hand[0], hand[1], hand[2] - 0.02 * k)
        pts[f"{side}FootMod"] = pts[f"{side}Foot"]
    stand = np.array([pts[n] for n in pos.JOINT_NAMES], dtype=np.float32)
    knee = stand.copy()
    rl = pos.JOINT_NAMES.index("RightLeg")
    for n in ("RightFoot", "RightFootMod", "RightToeBase"):
        i = pos.JOINT_NAMES.index(n)
        knee[i] = knee[rl] + (stand[i] - stand[rl]) @ np.array(  # turn -90 deg about +y (left)
            [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], dtype=np.float32).T
    arm = stand.copy()
    la = pos.JOINT_NAMES.index("LeftArm")
    for i, n in enumerate(pos.JOINT_NAMES):
        if n.startswith(("LeftForeArm", "LeftHand")):
            arm[i] = arm[la] + (stand[i] - stand[la]) * [1, 1, -1]  # mirrored about the shoulder
    return np.stack([stand, knee, arm])


@pytest.fixture
def synthetic(tmp_path) -> Path:
    path = tmp_path / "synthetic_joint_positions_f0-2.npy"
    np.save(path, synthetic_clip())
    return path


@pytest.fixture
def clip3(tmp_path) -> Path:
    """A 3-frame clip in holosoma's layout: a real clip's first frames when cached, else the
    synthetic one."""
    path = tmp_path / "clip3_joint_positions_f0-2.npy"
    np.save(path, np.load(CLIPS[0])[:3] if CLIPS else synthetic_clip())
    return path


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    mocap_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mocap", *argv])
    return args.func(args)


def _knee_flexion_deg(joints: np.ndarray, side: str) -> np.ndarray:
    thigh = joints[:, J[f"{side}_knee"]] - joints[:, J[f"{side}_hip"]]
    shank = joints[:, J[f"{side}_ankle"]] - joints[:, J[f"{side}_knee"]]
    cos = (thigh * shank).sum(-1) / np.linalg.norm(thigh, axis=-1) / np.linalg.norm(shank, axis=-1)
    return np.degrees(np.arccos(np.clip(cos, -1, 1)))


def _check_body(joints: np.ndarray, limb_tol: float) -> None:
    """Plausible human: limb bones in metres within adult ranges, left and right equal within
    `limb_tol` (relative), head above the pelvis and thorax above the spine in a standing frame 0,
    and every joint where its parent's bone says (no bone of zero length)."""
    bones = sk.bone_lengths(joints)
    assert (bones > 0.02).all(), bones.min(axis=0)
    names = [sk.JOINT_NAMES[c] for _, c in sk.BONES]
    b = dict(zip(names, np.median(bones, axis=0)))
    for side in "rl":
        assert 0.30 < b[f"{side}_knee"] < 0.55 and 0.30 < b[f"{side}_ankle"] < 0.55, b
        assert 0.20 < b[f"{side}_elbow"] < 0.40 and 0.18 < b[f"{side}_wrist"] < 0.35, b
        assert 0.05 < b[f"{side}_hip"] < 0.15 and 0.10 < b[f"{side}_shoulder"] < 0.25, b
    for r, l in sk.LR_BONE_PAIRS:
        np.testing.assert_allclose(bones[:, r], bones[:, l], rtol=limb_tol)
    assert 1.45 < np.median(sk.body_height(joints)) < 2.0
    up = joints[0, :, 1] - joints[0, J["pelvis"], 1]
    assert up[J["head_top"]] > up[J["head"]] > up[J["thorax"]] > up[J["spine"]] > 0 > up[
        J["r_knee"]] > up[J["r_ankle"]]


# ---------------------------------------------------------------------------------------------
# Reading and retargeting: known answers


def test_synthetic_known_answers(synthetic):
    clip = pos.read_clip(synthetic)
    assert clip.num_frames == 3 and clip.fps == pos.SOURCE_FPS and clip.source == str(synthetic)
    j = pos.retarget(clip)
    assert j.shape == (3, 17, 3) and j.dtype == np.float64
    # Z up -> Y up by (x, y, z) -> (x, z, -y): left (+y) becomes -z.
    np.testing.assert_allclose(j[0, J["pelvis"]], [0, 1.0, 0], atol=1e-6)
    np.testing.assert_allclose(j[0, J["l_hip"]], [0, 1.0, -0.09], atol=1e-6)
    np.testing.assert_allclose(j[0, J["thorax"]], [0, 1.44, 0], atol=1e-6)
    np.testing.assert_allclose(j[0, J["spine"]], [0, 0.25 * 1.07 + 0.75 * 1.27, 0], atol=1e-6)
    np.testing.assert_allclose(j[0, J["head"]], [0.02, 1.64, 0], atol=1e-6)
    np.testing.assert_allclose(j[0, J["head_top"]], [0.045, 1.64 + 1.25 * 0.14, 0], atol=1e-6)
    np.testing.assert_allclose(j[0, J["r_wrist"]], [0, 0.89, 0.17], atol=1e-6)
    np.testing.assert_allclose(j[0, J["l_ankle"]], [0, 0.12, -0.09], atol=1e-6)
    np.testing.assert_allclose(pos.retarget(clip.positions, frames=[2, 0]), j[[2, 0]])


def test_same_frame_convention_as_the_bvh_path(synthetic):
    """The holosoma pose and the same pose as a mocapbank BVH agree in the canonical frame
    (+x the person's left, +y up, +z forward): a bent knee's shank points backwards, a raised
    left wrist is on +x above the head."""
    hol = to_root_relative_canonical(pos.retarget(pos.read_clip(synthetic)))
    bvh = to_root_relative_canonical(retarget(read_bvh(MOCAPBANK_TINY)))
    for c, shank in ((hol, SHANK), (bvh, 0.38)):
        np.testing.assert_allclose(c[1, J["r_ankle"]] - c[1, J["r_knee"]], [0, 0, -shank],
                                   atol=1e-6)
        assert c[0, J["l_hip"], 0] > 0 and c[0, J["r_wrist"], 0] < 0
        assert c[2, J["l_wrist"], 0] > 0 and c[2, J["l_wrist"], 1] > c[2, J["head_top"], 1]
        assert c[0, J["head"], 1] > 0.4
        np.testing.assert_allclose(_knee_flexion_deg(c, "r"), [0, 90, 0], atol=1e-4)


def test_bones_follow_the_source_skeleton(clip3):
    """Limb bones of the 17 joints are the clip's own bones; the body is plausible."""
    clip = pos.read_clip(clip3)
    j = pos.retarget(clip)
    p = clip.positions.astype(np.float64)
    idx = {n: i for i, n in enumerate(pos.JOINT_NAMES)}
    for s, side in (("r", "Right"), ("l", "Left")):
        for a, b, src_a, src_b in (("hip", "knee", "UpLeg", "Leg"),
                                   ("knee", "ankle", "Leg", "Foot"),
                                   ("shoulder", "elbow", "Arm", "ForeArm"),
                                   ("elbow", "wrist", "ForeArm", "Hand")):
            np.testing.assert_allclose(
                np.linalg.norm(j[:, J[f"{s}_{b}"]] - j[:, J[f"{s}_{a}"]], axis=-1),
                np.linalg.norm(p[:, idx[side + src_b]] - p[:, idx[side + src_a]], axis=-1),
                rtol=1e-6)
    _check_body(j, limb_tol=0.01)


def test_mocapbank_tiny_known_answers():
    b = read_bvh(MOCAPBANK_TINY)
    assert detect_mapping(b).name == "mocapbank"
    j = retarget(b)[0]
    np.testing.assert_allclose(j[J["pelvis"]], [0, 1.0, 0], atol=1e-9)
    np.testing.assert_allclose(j[J["thorax"]], [0, 1.40, 0], atol=1e-9)  # shoulders' midpoint
    np.testing.assert_allclose(j[J["spine"]], [0, 0.4 * 1.10 + 0.6 * 1.26, 0], atol=1e-9)
    np.testing.assert_allclose(j[J["head"]], [0, 1.54, 0], atol=1e-9)
    np.testing.assert_allclose(j[J["head_top"]], [0, 1.72, 0], atol=1e-9)  # Head's End Site
    np.testing.assert_allclose(j[J["l_shoulder"]], [0.16, 1.40, 0], atol=1e-9)
    np.testing.assert_allclose(j[J["l_ankle"]], [0.09, 0.14, 0], atol=1e-9)


@pytest.mark.parametrize("array, message", [
    (np.zeros((3, 52, 3), np.float32), r"expected joint positions of shape \(T, 53, 3\).*got "
                                       r"\(3, 52, 3\)"),
    (np.zeros((53, 3), np.float32), r"got \(53, 3\)"),
    (np.zeros((0, 53, 3), np.float32), "no frames"),
    (np.where(np.arange(3)[:, None, None] == 1, np.nan, np.zeros((3, 53, 3), np.float32)),
     r"non-finite positions in 1 of 3 frames \(first: frame 1\)"),
    (np.array(["a"] * 159).reshape(1, 53, 3), "expected a numeric array"),
])
def test_bad_arrays(tmp_path, array, message):
    path = tmp_path / "bad_joint_positions.npy"
    np.save(path, array)
    with pytest.raises(pos.PositionsError, match=message) as exc:
        pos.read_clip(path)
    text = str(exc.value)
    assert isinstance(exc.value, ValueError) and text.startswith(f"{path}: ")
    assert "\n" not in text


def test_bad_files(tmp_path):
    for name, data in (("text.npy", b"not numpy"), ("pickled.npy", None)):
        path = tmp_path / name
        if data is None:
            np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        else:
            path.write_bytes(data)
        with pytest.raises(pos.PositionsError) as exc:
            pos.read_clip(path)
        assert str(exc.value).startswith(f"{path}: not a .npy array of joint positions")
        assert "\n" not in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Datasets and the CLI


def test_dataset_dispatch(tmp_path, synthetic, capsys):
    """A folder of a joint-position clip, a mocapbank BVH and a DeepMimic clip: each through its
    reader; other .npy files are skipped by folder scans; positions default to 30 fps."""
    folder = tmp_path / "motion"
    folder.mkdir()
    nine = np.concatenate([synthetic_clip()] * 3)  # 9 frames at 120 fps
    np.save(folder / "climb_joint_positions_f0-8.npy", nine)
    np.save(folder / "other.npy", np.zeros(3))  # not a clip: skipped in folders
    for f in (MOCAPBANK_TINY, DEEPMIMIC_TINY):
        (folder / f.name).write_bytes(f.read_bytes())
    out = tmp_path / "poses.npz"
    d, worked = ds.build_pose_dataset([folder], out, progress=False)
    assert worked
    assert [Path(f).name for f in d.files] == [
        "climb_joint_positions_f0-8.npy", "humanoid3d_tiny.txt", "mocapbank_tiny.bvh"]
    assert d.file_mappings == (pos.MAPPING_NAME, "deepmimic", "mocapbank")
    np.testing.assert_array_equal(d.frame_index[:3], [0, 4, 8])  # every 4th frame: 30 fps
    np.testing.assert_allclose(d.file_fps, [30.0, 30.0, 30.0], rtol=1e-3)
    assert d.fps == pytest.approx(30.0, rel=1e-3)
    np.testing.assert_allclose(d.file_joints(0), pos.retarget(nine, frames=[0, 4, 8]), atol=1e-6)
    np.testing.assert_allclose(d.file_joints(2), retarget(read_bvh(MOCAPBANK_TINY)), atol=1e-6)
    # Keyed by the positions reader's version; a re-run is a no-op.
    _, worked = ds.build_pose_dataset([folder], out, progress=False)
    assert not worked
    # Named directly (any .npy), another rate and a stride, through `mp3d mocap`.
    out2 = tmp_path / "one.npz"
    assert _cli([str(folder / "climb_joint_positions_f0-8.npy"), "--out", str(out2),
                 "--fps", "60", "--stride", "2", "--no-cache", "--no-progress"]) == 0
    assert f"mapping {pos.MAPPING_NAME}" in capsys.readouterr().out
    np.testing.assert_array_equal(ds.load_pose_dataset(out2).frame_index, [0, 4, 8])
    assert _cli([str(synthetic), "--out", str(out2), "--fps", "120", "--no-cache",
                 "--no-progress"]) == 0
    np.testing.assert_array_equal(ds.load_pose_dataset(out2).frame_index, [0, 1, 2])


def test_cli_bad_clip_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad_joint_positions.npy"
    np.save(bad, np.full((2, 53, 3), np.nan, np.float32))
    assert _cli([str(bad), "--out", str(tmp_path / "x.npz"), "--no-cache", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err == f"mp3d mocap: error: {bad}: non-finite positions in 2 of 2 frames (first: " \
                  f"frame 0)\n"


def test_fetch_script_parses_and_leaves_omomo_out():
    script = REPO / "scripts" / "fetch_motion.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    code = [ln for ln in script.read_text().splitlines() if not ln.lstrip().startswith("#")]
    assert not any("OMOMO" in ln and "not taken" not in ln for ln in code)


# ---------------------------------------------------------------------------------------------
# The real files (when fetched)


@needs_holosoma
def test_joint_names_match_data_type_py():
    assert pos.joint_names_from_source(HOLOSOMA / "data_type.py") == pos.JOINT_NAMES


@needs_holosoma
def test_real_climbing_clips():
    """Rigid limbs, symmetric plausible bodies, head above pelvis when standing, and knees that
    bend forwards in the canonical frame (a mirrored or left-handed reading would bend them
    backwards), as in LaFAN1."""
    frames = 0
    for path in CLIPS:
        clip = pos.read_clip(path)
        frames += clip.num_frames
        j = pos.retarget(clip, frames=np.arange(0, clip.num_frames, 8))
        spread = dict(zip([sk.JOINT_NAMES[c] for _, c in sk.BONES], pos.bone_length_spread(j)))
        for limb in ("elbow", "wrist", "knee", "ankle", "hip"):
            assert spread[f"r_{limb}"] < 1e-4 and spread[f"l_{limb}"] < 1e-4, (path.name, spread)
        _check_body(j, limb_tol=0.005)
        c = to_root_relative_canonical(j)
        for side in "rl":
            bent = _knee_flexion_deg(c, side) > 30
            mid = 0.5 * (c[bent, J[f"{side}_hip"], 2] + c[bent, J[f"{side}_ankle"], 2])
            assert bent.sum() > 10 and (c[bent, J[f"{side}_knee"], 2] > mid).mean() > 0.99
    assert frames == 12939


@needs_holosoma
def test_real_clip_dataset(tmp_path):
    d, _ = ds.build_pose_dataset([HOLOSOMA], tmp_path / "climb.npz", progress=False)
    assert len(d.files) == 5 and set(d.file_mappings) == {pos.MAPPING_NAME}
    assert len(d) == sum(len(range(0, np.load(p, mmap_mode="r").shape[0], 4)) for p in CLIPS)
    assert d.fps == pytest.approx(30.0)


@needs_bvhtoolbox
def test_bvhtoolbox_files_load():
    for name, mapping, frames in (("test_mocapbank.bvh", "mocapbank", 455),
                                  ("test_freebvh.bvh", "mixamo", 69)):
        b = read_bvh(BVHTOOLBOX / name)
        assert b.num_frames == frames and detect_mapping(b).name == mapping
        j = retarget(b)
        _check_body(j, limb_tol=0.02)
        spread = dict(zip([sk.JOINT_NAMES[c] for _, c in sk.BONES], pos.bone_length_spread(j)))
        assert max(spread[f"{s}_{limb}"] for s in "rl" for limb in ("elbow", "wrist", "knee",
                                                                    "ankle")) < 1e-6, spread
