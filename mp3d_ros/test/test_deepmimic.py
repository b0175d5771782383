"""Tests of mp3d.data.mocap.deepmimic: DeepMimic clips read, forward kinematics, retargeting,
datasets.

Known answers from a tiny hand-written clip (test/data/deepmimic/humanoid3d_tiny.txt): the rest
pose from the skeleton offsets, a 90 degree knee and elbow under a turned, moved root, a raised
arm. Real data: the 15 humanoid3d clips of the pybullet 3.2.7 wheel, fetched by
scripts/fetch_deepmimic.sh into cache/mocap/deepmimic/ (never committed).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, run_fetch
from mp3d.cli import mocap as mocap_cli
from mp3d.common import skeleton as sk
from mp3d.data.mocap import dataset as ds
from mp3d.data.mocap import deepmimic as dm
from mp3d.data.mocap.retarget import to_root_relative_canonical
from scipy.spatial.transform import Rotation

TINY = Path(__file__).resolve().parent / "data" / "deepmimic" / "humanoid3d_tiny.txt"
J = sk.INDEX
CLIP_NAMES = ("backflip", "cartwheel", "crawl", "dance_a", "dance_b", "getup_facedown",
              "getup_faceup", "jump", "kick", "punch", "roll", "run", "spin", "spinkick", "walk")
# Clips where the performer stays on its feet (height and ground checks).
UPRIGHT = ("dance_a", "dance_b", "jump", "kick", "punch", "run", "spinkick", "walk")


def fetch_deepmimic() -> subprocess.CompletedProcess:
    """pybullet's DeepMimic clips (scripts/fetch_deepmimic.sh)."""
    return run_fetch("fetch_deepmimic.sh")


@pytest.fixture(scope="session")
def clip_paths() -> dict[str, Path]:
    """The 15 real clips by short name (walk, run, ...), fetched if missing."""
    res = fetch_deepmimic()
    if res.returncode != 0:
        pytest.fail(f"scripts/fetch_deepmimic.sh failed ({res.returncode}):\n{res.stderr}")
    paths = [Path(p) for p in res.stdout.split()]
    assert [p.name for p in paths] == [f"humanoid3d_{n}.txt" for n in CLIP_NAMES], res.stdout
    return {p.stem.removeprefix("humanoid3d_"): p for p in paths}


@pytest.fixture(scope="session")
def clip_joints(clip_paths) -> dict[str, np.ndarray]:
    return {n: dm.retarget(dm.read_clip(p)) for n, p in clip_paths.items()}


# ---------------------------------------------------------------------------------------------
# Known answers from the hand-written clip

CHEST, NECK = 0.236151, 0.223894
HIP, THIGH, SHIN = 0.084887, 0.421546, 0.409870
SHOULDER = np.array([-0.02405, 0.2435, 0.18311])
UPPER_ARM, FOREARM = 0.274788, 0.258947


def test_read_tiny_clip():
    clip = dm.read_clip(TINY)
    assert clip.num_frames == 3 and clip.frames.shape == (3, 44)
    assert clip.loop == "none" and clip.source == str(TINY)
    assert clip.fps == pytest.approx(30.0, rel=1e-4)  # the last row's 0 duration is ignored


def test_rest_pose_is_the_skeleton_offsets():
    j = dm.retarget(dm.read_clip(TINY))[0]
    root = np.array([0.0, 0.9, 0.0])
    np.testing.assert_allclose(j[J["pelvis"]], root, atol=1e-12)
    for side, s in (("r", 1.0), ("l", -1.0)):  # the right side is at +z
        hip = root + [0, 0, s * HIP]
        np.testing.assert_allclose(j[J[f"{side}_hip"]], hip, atol=1e-12)
        np.testing.assert_allclose(j[J[f"{side}_knee"]], hip - [0, THIGH, 0], atol=1e-12)
        np.testing.assert_allclose(j[J[f"{side}_ankle"]], hip - [0, THIGH + SHIN, 0], atol=1e-12)
        sh = root + [0, CHEST, 0] + SHOULDER * [1, 1, s]
        np.testing.assert_allclose(j[J[f"{side}_shoulder"]], sh, atol=1e-12)
        np.testing.assert_allclose(j[J[f"{side}_elbow"]], sh - [0, UPPER_ARM, 0], atol=1e-12)
        np.testing.assert_allclose(j[J[f"{side}_wrist"]], sh - [0, UPPER_ARM + FOREARM, 0],
                                   atol=1e-12)
    np.testing.assert_allclose(j[J["spine"]], root + [0, CHEST, 0], atol=1e-12)
    np.testing.assert_allclose(j[J["thorax"]], root + [SHOULDER[0], CHEST + SHOULDER[1], 0],
                               atol=1e-12)
    neck = root + [0, CHEST + NECK, 0]
    np.testing.assert_allclose(j[J["head"]], neck + [0, dm.HEAD_CENTRE_M, 0], atol=1e-12)
    np.testing.assert_allclose(j[J["head_top"]],
                               neck + [0, dm.HEAD_CENTRE_M + dm.HEAD_RADIUS_M, 0], atol=1e-12)
    # The same from the generated rest row, and a plausible stature (sole 5 cm below the ankle).
    np.testing.assert_allclose(dm.retarget(dm.rest_frame()[None])[0], j - root, atol=1e-12)
    assert 1.55 < j[J["head_top"], 1] - j[J["r_ankle"], 1] + 0.05 < 1.7


def test_knee_and_elbow_at_90_degrees_under_a_turned_root():
    """Frame 1: root at (1, 0.9, 2) turned +90 deg about +y (facing +x becomes facing -z), right
    knee -90 deg, right elbow +90 deg about their local z."""
    j = dm.retarget(dm.read_clip(TINY))[1]
    root = np.array([1.0, 0.9, 2.0])
    hip = root + [HIP, 0, 0]  # +z (right) turned to +x
    np.testing.assert_allclose(j[J["r_hip"]], hip, atol=1e-12)
    np.testing.assert_allclose(j[J["r_knee"]], hip - [0, THIGH, 0], atol=1e-12)
    # The shank is perpendicular to the thigh, horizontal, pointing backwards (+z = behind).
    np.testing.assert_allclose(j[J["r_ankle"]], hip - [0, THIGH, 0] + [0, 0, SHIN], atol=1e-12)
    thigh = j[J["r_knee"]] - j[J["r_hip"]]
    shank = j[J["r_ankle"]] - j[J["r_knee"]]
    assert abs(thigh @ shank) < 1e-12
    # The forearm points forwards (-z), horizontal.
    np.testing.assert_allclose(j[J["r_wrist"]] - j[J["r_elbow"]], [0, 0, -FOREARM], atol=1e-12)
    # In the canonical frame (+x left, +y up, +z forward) the shank points back, the forearm
    # forward, whatever the root's turn.
    c = to_root_relative_canonical(j[None])[0]
    np.testing.assert_allclose(c[J["r_ankle"]] - c[J["r_knee"]], [0, 0, -SHIN], atol=1e-12)
    np.testing.assert_allclose(c[J["r_wrist"]] - c[J["r_elbow"]], [0, 0, FOREARM], atol=1e-12)
    np.testing.assert_allclose(c[J["r_hip"]], [-HIP, 0, 0], atol=1e-12)


def test_shoulder_quaternion_raises_the_arm_sideways():
    """Frame 2: left shoulder +90 deg about its x axis: the left arm points to the left (-z)."""
    j = dm.retarget(dm.read_clip(TINY))[2]
    arm = j[J["l_wrist"]] - j[J["l_shoulder"]]
    np.testing.assert_allclose(arm, [0, 0, -(UPPER_ARM + FOREARM)], atol=1e-12)
    np.testing.assert_allclose(j[J["r_wrist"]] - j[J["r_shoulder"]],
                               [0, -(UPPER_ARM + FOREARM), 0], atol=1e-12)


def test_quaternion_matches_scipy():
    q = np.random.default_rng(0).normal(size=(50, 4))  # w x y z, not normalised
    ref = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()
    np.testing.assert_allclose(dm.quat_to_matrix(q), ref, atol=1e-12)
    np.testing.assert_allclose(dm.axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), np.pi / 2),
                               Rotation.from_euler("z", 90, degrees=True).as_matrix(), atol=1e-12)


def test_frame_subset_and_raw_rows():
    clip = dm.read_clip(TINY)
    full = dm.retarget(clip)
    np.testing.assert_array_equal(dm.retarget(clip, frames=np.array([2, 0])), full[[2, 0]])
    np.testing.assert_array_equal(dm.retarget(clip.frames), full)
    points, rots = dm.forward_kinematics(clip)
    assert points.shape == (3, len(dm.POINT_NAMES), 3) and rots.shape == (3, 13, 3, 3)


@pytest.mark.parametrize("text, message", [
    ("not json", "bad JSON"),
    ('{"Loop": "wrap"}', "no 'Frames'"),
    ('{"Frames": []}', "non-empty"),
    ('{"Frames": [[0.03, 0, 0, 0, 1, 0, 0, 0]]}', "expected 44 numbers"),
    ('{"Frames": [[0.03' + ', "x"' * 43 + ']]}', "numbers only"),
    ('{"Frames": [[0.03' + ', 0' * 43 + ']]}', "quaternion has norm"),
    ('{"Frames": [[0' + ', 1' * 43 + ']]}', "durations must be positive"),
])
def test_malformed(tmp_path, text, message):
    path = tmp_path / "humanoid3d_bad.txt"
    path.write_text(text)
    with pytest.raises(dm.DeepMimicError, match=message) as exc:
        dm.read_clip(path)
    assert str(path) in str(exc.value)


# ---------------------------------------------------------------------------------------------
# Datasets and the CLI


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    mocap_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["mocap", *argv])
    return args.func(args)


def test_cli_takes_clips_beside_bvh(tmp_path, capsys):
    folder = tmp_path / "motion"
    folder.mkdir()
    (folder / TINY.name).write_text(TINY.read_text())
    (folder / "README.txt").write_text("not a clip")  # folder scans skip other .txt files
    bvh = REPO / "mp3d_ros" / "test" / "data" / "bvh" / "mixamo_tiny.bvh"
    (folder / bvh.name).write_text(bvh.read_text())
    out, cache = tmp_path / "poses.npz", tmp_path / "cache"
    argv = [str(folder), "--out", str(out), "--cache-dir", str(cache), "--no-progress"]
    assert _cli(argv) == 0
    assert "mapping deepmimic, mixamo" in capsys.readouterr().out
    d = ds.load_pose_dataset(out)
    assert [Path(f).name for f in d.files] == [TINY.name, bvh.name]
    assert d.file_mappings == ("deepmimic", "mixamo")
    np.testing.assert_allclose(d.file_joints(0), dm.retarget(dm.read_clip(TINY)), atol=1e-6)
    np.testing.assert_allclose(d.file_fps[0], 30.0, rtol=1e-4)
    assert _cli(argv) == 0 and "up to date" in capsys.readouterr().out
    # Named directly (any .txt), with a stride.
    out2 = tmp_path / "one.npz"
    assert _cli([str(TINY), "--out", str(out2), "--no-cache", "--stride", "2",
                 "--no-progress"]) == 0
    np.testing.assert_array_equal(ds.load_pose_dataset(out2).frame_index, [0, 2])
    bad = tmp_path / "humanoid3d_bad.txt"
    bad.write_text('{"Frames": [[1, 2]]}')
    assert _cli([str(bad), "--out", str(out2), "--no-cache"]) == 1
    assert "expected 44 numbers" in capsys.readouterr().err


def test_bvh_dataset_keys_unchanged(tmp_path):
    """The DeepMimic hook leaves the cache key of BVH-only datasets as it was."""
    bvh = REPO / "mp3d_ros" / "test" / "data" / "bvh" / "mixamo_tiny.bvh"
    options = {"version": ds.CACHE_VERSION, "mapping": ds._mapping_key(None), "fps": None,
               "stride": 1, "allow_truncated": False}
    d, _ = ds.build_pose_dataset([bvh], tmp_path / "a.npz", progress=False)
    assert d.key == ds._hash(options, [str(bvh)], [ds.file_sha256(bvh)])


# ---------------------------------------------------------------------------------------------
# The real clips


def test_fetch_is_idempotent(clip_paths):
    res = fetch_deepmimic()
    assert res.returncode == 0, res.stderr
    assert "present" in res.stderr
    assert [Path(p) for p in res.stdout.split()] == list(clip_paths.values())
    readme = (next(iter(clip_paths.values())).parent / "README.txt").read_text()
    for word in ("MIT", "zlib", "CMU", "SFU"):
        assert word in readme


def test_offsets_match_the_urdf(clip_paths):
    """JOINTS and SITES are pybullet's humanoid.urdf times 0.25 (its globalScaling)."""
    urdf = next(iter(clip_paths.values())).parent / "humanoid.urdf"
    root = ET.fromstring(urdf.read_text().rstrip("\x00\r\n "))  # the file ends in a NUL byte
    joints = {j.get("name"): j for j in root.iter("joint")}
    for jt in dm.JOINTS[1:]:
        xml = joints[jt.name]
        assert xml.find("parent").get("link") == dm.JOINTS[jt.parent].name
        assert xml.get("type") == jt.kind
        xyz = [float(v) for v in xml.find("origin").get("xyz").split()]
        np.testing.assert_allclose(jt.offset, 0.25 * np.array(xyz), atol=1e-6)
        if jt.kind == "revolute":
            axis = [float(v) for v in xml.find("axis").get("xyz").split()]
            np.testing.assert_allclose(axis, dm.REVOLUTE_AXIS)
    for side in ("right", "left"):
        xyz = [float(v) for v in joints[f"{side}_wrist"].find("origin").get("xyz").split()]
        np.testing.assert_allclose(dm.SITES[f"{side}_wrist"][1], 0.25 * np.array(xyz), atol=1e-6)
    neck = next(link for link in root.iter("link") if link.get("name") == "neck")
    sphere = neck.find("collision")
    centre = float(sphere.find("origin").get("xyz").split()[1])
    radius = float(sphere.find("geometry/sphere").get("radius"))
    assert (dm.HEAD_CENTRE_M, dm.HEAD_RADIUS_M) == pytest.approx((0.25 * centre, 0.25 * radius))


def test_real_clips_read(clip_paths):
    clips = {n: dm.read_clip(p) for n, p in clip_paths.items()}
    assert sum(c.num_frames for c in clips.values()) == 1620
    assert clips["walk"].num_frames == 39 and clips["walk"].fps == pytest.approx(30.0, rel=1e-3)
    assert clips["backflip"].fps == pytest.approx(16.0) and clips["jump"].loop == "wrap"
    assert json.loads(clip_paths["walk"].read_text())["Loop"] == "wrap"


def test_real_clips_retarget_plausible(clip_joints):
    bone = {(sk.JOINT_NAMES[p], sk.JOINT_NAMES[c]): i for i, (p, c) in enumerate(sk.BONES)}
    for name, joints in clip_joints.items():
        assert np.isfinite(joints).all(), name
        bones = sk.bone_lengths(joints)
        assert 0.35 < bones[:, bone["r_hip", "r_knee"]].mean() < 0.55, name
        assert 0.35 < bones[:, bone["r_knee", "r_ankle"]].mean() < 0.55, name
        assert 0.22 < bones[:, bone["r_shoulder", "r_elbow"]].mean() < 0.40, name
        # Every bone but thorax-head (the neck bends) is rigid; left and right are equal.
        flex = bone["thorax", "head"]
        rigid = [b for b in range(len(sk.BONES)) if b != flex]
        assert bones[:, rigid].std(axis=0).max() < 1e-6, name
        for r, left in sk.LR_BONE_PAIRS:
            np.testing.assert_allclose(bones[:, r], bones[:, left], rtol=1e-9)
        # Nothing sinks far below the floor: the source motion was captured on a different
        # body, so knees and hands on the floor go up to 7 cm into it (crawl, roll).
        assert joints[..., 1].min() > -0.08, name
    for name in UPRIGHT:
        joints = clip_joints[name]
        low = joints[:, [J["r_ankle"], J["l_ankle"]], 1].min(1)
        height = joints[:, J["head_top"], 1] - low
        assert 1.4 < np.percentile(height, 95) + 0.05 < 2.0, name
        assert (joints[:, J["head"], 1] > joints[:, J["pelvis"], 1]).mean() > 0.95, name
    walk = clip_joints["walk"]
    low = walk[:, [J["r_ankle"], J["l_ankle"]], 1].min(1)
    assert 0.0 < low.min() and low.max() < 0.12  # a foot on the ground in every frame
    # Walking forwards: the pelvis moves along the canonical +z (the way the person faces).
    step = walk[-1, J["pelvis"]] - walk[0, J["pelvis"]]
    across = walk[0, J["l_hip"]] - walk[0, J["r_hip"]]
    forward = np.cross(across, [0.0, 1.0, 0.0])  # left x up = forward
    assert step @ forward / np.linalg.norm(forward) > 1.0  # over a metre in the clip


def test_real_clips_canonical(clip_joints):
    """In the prior's frame the right hip is at -x and the head above the pelvis when upright."""
    for name in UPRIGHT:
        c = to_root_relative_canonical(clip_joints[name])
        assert (c[:, J["r_hip"], 0] < 0).all() and (c[:, J["l_hip"], 0] > 0).all(), name
        np.testing.assert_allclose(c[:, J["pelvis"]], 0.0, atol=1e-12)
