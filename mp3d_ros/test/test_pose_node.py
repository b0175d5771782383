"""The pose node: a real process on real video frames from a bag, with the shipped model.

The bag holds 12 frames of OpenCV's vtest.avi (768x576 rgb8, walking people) at 10 Hz, each after a
CameraInfo for a 60 deg horizontal field of view. The player sends it to the node; a listener node
in this process records what comes out. Played 10x faster (100 Hz), the node must drop frames
rather than queue them. A missing model exits 2. The parameter defaults are checked against the
YAML. Bad input and faults: test_node_hardening.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import torch
from conftest import CLIP_INPUT_SIZE
from mp3d.common.geometry import Intrinsics
from mp3d.data import bags
from mp3d_ros.image_conversion import rgb_to_image
from mp3d_ros.pose_config import PARAMETERS, PoseNodeConfig, read_config, read_params_file
from node_harness import CONFIG, HZ, T0, header, play_clip, start_node
from rclpy.context import Context
from rclpy.node import Node
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo
from visualization_msgs.msg import Marker

FRAMES, W, H = 12, 768, 576
DIAG_KEYS = {"input_rate_hz", "output_rate_hz", "processing_ms_mean", "processing_ms_max",
             "latency_ms_mean", "latency_ms_max", "frames_in", "frames_out",
             "dropped_replaced", "dropped_rate_limit", "bad_image", "estimator_error",
             "processing_error", "worker_restarts", "model", "device", "intrinsics"}


@pytest.fixture(scope="module")
def clip_bag(vtest_video, tmp_path_factory) -> Path:
    cap = cv2.VideoCapture(str(vtest_video))
    path = tmp_path_factory.mktemp("pose") / "clip"
    k = Intrinsics.from_fov(W, H, 60.0)
    with bags.BagWriter(path) as writer:
        for i in range(FRAMES):
            ok, bgr = cap.read()
            assert ok and bgr.shape == (H, W, 3)
            h, ns = header(i), T0 + i * 10**9 // HZ
            info = CameraInfo(header=h, width=W, height=H, distortion_model="plumb_bob",
                              d=[0.0] * 5, k=list(k.K.ravel()))
            writer.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                         serialize_message(info), ns)
            img = rgb_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb8", header=h)
            writer.write("/cam/image", "sensor_msgs/msg/Image", serialize_message(img), ns)
    cap.release()
    return path


def _stamps(msgs: list) -> list[tuple[int, int]]:
    return [(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs]


def test_clip_people_tracks_markers_diagnostics_and_sigterm(clip_bag, ros_env):
    lis = play_clip(clip_bag, ros_env, 1.0, "publish_debug_image:=true")
    inputs = {(h.stamp.sec, h.stamp.nanosec): h for h in map(header, range(FRAMES))}
    out = lis.people
    assert len(out) >= FRAMES // 2, len(out)  # drops allowed, but not most frames
    stamps = _stamps(out)
    assert stamps == sorted(set(stamps)) and set(stamps) <= set(inputs)
    assert all(m.header.frame_id == "cam_optical" for m in out)
    assert sum(len(m.people) >= 1 for m in out) >= 0.8 * len(out)
    # the most persistent person keeps one id through the clip
    ids = Counter(p.track_id for m in out for p in m.people)
    best, n = ids.most_common(1)[0]
    assert best >= 0 and n >= 0.8 * len(out), ids
    for m in out:
        z = [p.root.z for p in m.people]
        assert all(0.5 < v < 50 for v in z), z

    assert _stamps([m.markers[0] for m in lis.markers]) == stamps
    for m, people in zip(lis.markers, out):
        assert m.markers[0].action == Marker.DELETEALL
        assert all(k.header == people.header for k in m.markers)
        assert len(m.markers) == 1 + 2 * len(people.people)

    assert [m.header for m in lis.debug] == [m.header for m in out]
    assert all((m.width, m.height, m.encoding) == (W, H, "rgb8") for m in lis.debug)

    assert lis.diags, "no diagnostics"
    last = lis.diags[-1]
    assert DIAG_KEYS <= set(last), set(last)
    assert lis.count("frames_in") == FRAMES and lis.count("frames_out") == len(out)
    assert lis.count("dropped_replaced") == FRAMES - len(out)
    busy = [d for d in lis.diags if float(d["output_rate_hz"]) > 0]
    rates = [d["output_rate_hz"] for d in busy]
    lat = max(float(d["latency_ms_max"]) for d in busy)
    proc = [d["processing_ms_mean"] for d in busy]
    print(f"\npose node on the clip: output Hz per 1 s window {rates}, processing mean per "
          f"window {proc} ms, latency max {lat:.0f} ms, {len(out)}/{FRAMES} frames out")


def test_frames_arriving_faster_than_processing_are_dropped_not_queued(clip_bag, ros_env):
    # 100 Hz, a frame per 10 ms, into a subscription deep enough to hold all (reliable): the
    # node's mailbox must replace the frames that arrive while it is busy.
    lis = play_clip(clip_bag, ros_env, 10.0)
    stamps = _stamps(lis.people)
    inputs = [(h.stamp.sec, h.stamp.nanosec) for h in map(header, range(FRAMES))]
    assert stamps == sorted(set(stamps)) and set(stamps) <= set(inputs)
    assert stamps[-1] == inputs[-1]  # the newest frame is always processed
    assert lis.count("frames_in") == FRAMES and lis.count("frames_out") == len(stamps) < FRAMES
    assert lis.count("frames_out") + lis.count("dropped_replaced") == FRAMES
    print(f"\nat 100 Hz: {lis.count('frames_in')} in, {lis.count('dropped_replaced')} replaced, "
          f"{lis.count('frames_out')} out")
    # no backlog: a frame waits at most for the one in progress
    busy = [d for d in lis.diags if float(d["output_rate_hz"]) > 0]
    assert max(float(d["latency_ms_max"]) for d in busy) < 2.5 * max(
        float(d["processing_ms_max"]) for d in busy) + 50, busy


def test_missing_model_exits_2_with_one_clear_line(ros_env, tmp_path):
    proc = start_node(ros_env, f"model:={tmp_path / 'nope.pt'}")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "nope.pt" in err and "cannot start" in err, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_cuda_requested_but_absent_exits_2_with_one_clear_line(ros_env):
    proc = start_node(ros_env, "device:=cuda")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "CUDA" in err and "cannot start" in err, err


def test_yaml_defaults_equal_the_config_defaults_and_read_config_reads_them():
    yaml_values = read_params_file(CONFIG)
    assert yaml_values == {p.name: p.default for p in PARAMETERS}
    for p in PARAMETERS:  # typed as declared: a float default written as 1 would be an int
        assert type(yaml_values[p.name]) is type(p.default), p.name
    ctx = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(CONFIG), "-p", "tracker.min_hits:=3"],
               context=ctx)
    try:
        node = Node("pose_node", context=ctx)
        cfg = read_config(node)
        assert cfg.tracker.min_hits == 3
        assert cfg == PoseNodeConfig(tracker=type(cfg.tracker)(min_hits=3))
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


def test_read_config_rejects_bad_values():
    for bad in ("device:=tpu", "peak_threshold:=2.0"):
        ctx = Context()
        rclpy.init(args=["--ros-args", "-p", bad], context=ctx)
        try:
            node = Node("pose_node", context=ctx)
            with pytest.raises(ValueError):
                read_config(node)
            node.destroy_node()
        finally:
            rclpy.try_shutdown(context=ctx)


def test_live_node_and_replay_publish_the_same_people(clip_bag, ros_env, tmp_path):
    """The one-pipeline test: the clip played by `mp3d play` into the live node, and `mp3d
    replay` of the same bag with the node's parameters, give the same people for every frame:
    same stamps and frame ids, same track ids, joints within 1e-6 m."""
    lis = play_clip(clip_bag, ros_env, 0.25)
    live = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in lis.people}
    assert len(live) == FRAMES, f"the live node answered {len(live)} of {FRAMES} frames"
    out = tmp_path / "replayed"
    # a real process, as the node is (same torch threads, nothing shared with this one)
    res = subprocess.run([sys.executable, "-m", "mp3d_ros.cli", "replay", str(clip_bag), str(out),
                          "--params-file", str(CONFIG), "--device", "cpu", "--no-progress",
                          "--input-size", str(CLIP_INPUT_SIZE)],
                         env=ros_env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    offline = {(m.header.stamp.sec, m.header.stamp.nanosec): m
               for _, _, _, m in bags.read_messages(out, ["/people"])}
    assert sorted(offline) == sorted(live)
    worst = 0.0
    for stamp, a in live.items():
        b = offline[stamp]
        assert a.header.frame_id == b.header.frame_id == "cam_optical"
        assert [p.track_id for p in a.people] == [p.track_id for p in b.people], stamp
        for p, q in zip(a.people, b.people):
            ja = np.array([[j.x, j.y, j.z] for j in p.joints])
            jb = np.array([[j.x, j.y, j.z] for j in q.joints])
            worst = max(worst, float(np.abs(ja - jb).max()))
            assert p.score == pytest.approx(q.score, abs=1e-6)
    assert worst <= 1e-6, worst
    print(f"\nlive vs replay: {FRAMES} frames, "
          f"{sum(len(m.people) for m in live.values())} people, max joint difference "
          f"{worst:.2e} m")
