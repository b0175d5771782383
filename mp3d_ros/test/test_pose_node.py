"""The pose node: a real process on real video frames from a bag, with the shipped model.

The bag holds 12 frames of OpenCV's vtest.avi (768x576 rgb8, walking people) at 10 Hz, each after a
CameraInfo for a 60 deg horizontal field of view. The player sends it to the node; a listener node
in this process records what comes out. Played 10x faster (100 Hz), the node must drop frames
rather than queue them. Bad input (a 32FC1 image, NaN intrinsics, a corrupt JPEG) is counted
and survived; a missing model exits 2. The parameter defaults are checked against the YAML.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
import yaml
from builtin_interfaces.msg import Time
from conftest import REPO
from diagnostic_msgs.msg import DiagnosticArray
from mp3d.geometry import Intrinsics
from mp3d_ros.image_conversion import rgb_to_compressed, rgb_to_image
from mp3d_ros.pose_config import PARAMETERS, PoseNodeConfig, read_config
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from mp3d_msgs.msg import Person3DArray
from mp3d_ros import bagio

FRAMES, HZ, W, H = 12, 10, 768, 576
T0 = 1_700_000_000 * 10**9
CONFIG = REPO / "mp3d_ros" / "config" / "pose_node.yaml"
DIAG_KEYS = {"input_rate_hz", "output_rate_hz", "processing_ms_mean", "processing_ms_max",
             "latency_ms_mean", "latency_ms_max", "frames_in", "frames_out",
             "dropped_replaced", "dropped_rate_limit", "bad_image", "bad_camera_info", "model",
             "device"}


def _header(i: int) -> Header:
    ns = T0 + i * 10**9 // HZ
    return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam_optical")


@pytest.fixture(scope="module")
def clip_bag(vtest_video, tmp_path_factory) -> Path:
    cap = cv2.VideoCapture(str(vtest_video))
    path = tmp_path_factory.mktemp("pose") / "clip"
    k = Intrinsics.from_fov(W, H, 60.0)
    with bagio.BagWriter(path) as writer:
        for i in range(FRAMES):
            ok, bgr = cap.read()
            assert ok and bgr.shape == (H, W, 3)
            h, ns = _header(i), T0 + i * 10**9 // HZ
            info = CameraInfo(header=h, width=W, height=H, distortion_model="plumb_bob",
                              d=[0.0] * 5, k=list(k.K.ravel()))
            writer.write("/cam/camera_info", "sensor_msgs/msg/CameraInfo",
                         serialize_message(info), ns)
            img = rgb_to_image(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb8", header=h)
            writer.write("/cam/image", "sensor_msgs/msg/Image", serialize_message(img), ns)
    cap.release()
    return path


def _node(env: dict[str, str], *params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", "--params-file",
           str(CONFIG), "-r", "image:=/cam/image", "-r", "camera_info:=/cam/camera_info",
           "-r", "image/compressed:=/cam/image/compressed",
           "-p", "device:=cpu"]
    for p in params:
        cmd += ["-p", p]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class Listener:
    """An rclpy node in this process recording the pose node's outputs."""

    def __init__(self, env: dict[str, str]) -> None:
        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
        self.node = Node("pose_test_listener", context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        self.people: list[Person3DArray] = []
        self.markers: list[MarkerArray] = []
        self.diags: list[dict[str, str]] = []
        self.debug: list[Image] = []
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Person3DArray, "/people", self.people.append, qos)
        self.node.create_subscription(MarkerArray, "/people/markers", self.markers.append, qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diag, qos)
        self.node.create_subscription(Image, "/people/debug_image", self.debug.append, qos)

    def on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.startswith("pose_node"):
                self.diags.append({kv.key: kv.value for kv in s.values})

    def spin_until(self, done: Callable[[], bool], timeout: float, procs=()) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            for p in procs:
                assert p.poll() is None, p.communicate()
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def close(self) -> None:
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def _stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the node did not stop on {sig}:\n{err}")
    return proc.returncode, err


def _play_clip(bag: Path, env: dict[str, str], rate: float, *params: str) -> Listener:
    """Play the clip into a fresh node at ``rate``; stop the node with SIGTERM (asserting exit 0)
    once it has reported its last output. Returns the listener with what came out."""
    node = _node(env, "image_reliability:=reliable", *params)
    lis = Listener(env)
    try:
        assert lis.spin_until(lambda: lis.node.count_publishers("/people") > 0, 30, [node])
        play = subprocess.Popen([sys.executable, "-m", "mp3d_ros.player", str(bag),
                                 "--wait-for-subscribers", "20", "--rate", str(rate)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lis.spin_until(lambda: play.poll() is not None, 40, [node])
        assert play.returncode == 0, play.communicate()
        # until the node has processed its last frame and reported it
        lis.spin_until(lambda: lis.diags and lis.diags[-1]["output_rate_hz"] == "0.00"
                       and int(lis.diags[-1]["frames_out"]) == len(lis.people), 15, [node])
        rc, err = _stop(node)
        assert rc == 0, err
        assert "Traceback" not in err, err
    finally:
        if node.poll() is None:
            node.kill()
        lis.close()
    return lis


def _stamps(msgs: list) -> list[tuple[int, int]]:
    return [(m.header.stamp.sec, m.header.stamp.nanosec) for m in msgs]


def test_clip_people_tracks_markers_diagnostics_and_sigterm(clip_bag, ros_env):
    lis = _play_clip(clip_bag, ros_env, 1.0, "publish_debug_image:=true")
    inputs = {(h.stamp.sec, h.stamp.nanosec): h for h in map(_header, range(FRAMES))}
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
    assert int(last["frames_in"]) == FRAMES and int(last["frames_out"]) == len(out)
    assert int(last["dropped_replaced"]) == FRAMES - len(out)
    busy = [d for d in lis.diags if float(d["output_rate_hz"]) > 0]
    rates = [d["output_rate_hz"] for d in busy]
    lat = max(float(d["latency_ms_max"]) for d in busy)
    proc = [d["processing_ms_mean"] for d in busy]
    print(f"\npose node on the clip: output Hz per 1 s window {rates}, processing mean per "
          f"window {proc} ms, latency max {lat:.0f} ms, {len(out)}/{FRAMES} frames out")


def test_frames_arriving_faster_than_processing_are_dropped_not_queued(clip_bag, ros_env):
    # 100 Hz, a frame per 10 ms, into a subscription deep enough to hold all (reliable): the
    # node's mailbox must replace the frames that arrive while it is busy.
    lis = _play_clip(clip_bag, ros_env, 10.0, "image_queue_depth:=20")
    last = lis.diags[-1]
    stamps = _stamps(lis.people)
    inputs = [(h.stamp.sec, h.stamp.nanosec) for h in map(_header, range(FRAMES))]
    assert stamps == sorted(set(stamps)) and set(stamps) <= set(inputs)
    assert stamps[-1] == inputs[-1]  # the newest frame is always processed
    assert int(last["frames_in"]) == FRAMES and int(last["frames_out"]) == len(stamps) < FRAMES
    assert int(last["frames_out"]) + int(last["dropped_replaced"]) == FRAMES
    print(f"\nat 100 Hz: {last['frames_in']} in, {last['dropped_replaced']} replaced, "
          f"{last['frames_out']} out")
    # no backlog: a frame waits at most for the one in progress
    busy = [d for d in lis.diags if float(d["output_rate_hz"]) > 0]
    assert max(float(d["latency_ms_max"]) for d in busy) < 2.5 * max(
        float(d["processing_ms_max"]) for d in busy) + 50, busy


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_bad_input_is_counted_and_the_node_keeps_running(ros_env, transport):
    """raw: a 32FC1 image and a CameraInfo with NaN in K; compressed: a corrupt JPEG."""
    node = _node(ros_env, "image_reliability:=reliable", f"image_transport:={transport}")
    lis = Listener(ros_env)
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
    compressed = transport == "compressed"
    pub = lis.node.create_publisher(CompressedImage if compressed else Image,
                                    "/cam/image/compressed" if compressed else "/cam/image", qos)
    info_pub = lis.node.create_publisher(CameraInfo, "/cam/camera_info", qos)
    rgb = np.zeros((96, 128, 3), np.uint8)
    try:
        assert lis.spin_until(lambda: pub.get_subscription_count() > 0
                              and info_pub.get_subscription_count() > 0
                              and lis.node.count_publishers("/people") > 0, 30, [node])
        if compressed:
            good = rgb_to_compressed(rgb, "jpeg", header=_header(1))
            pub.publish(CompressedImage(header=_header(0), format="jpeg",
                                        data=bytes(good.data[:40])))
        else:
            good = rgb_to_image(rgb, "rgb8", header=_header(1))
            pub.publish(Image(header=_header(0), height=4, width=4, encoding="32FC1", step=16,
                              data=bytes(64)))
        assert lis.spin_until(lambda: lis.diags and lis.diags[-1]["bad_image"] == "1", 10,
                              [node])
        if not compressed:
            info_pub.publish(CameraInfo(header=_header(1), width=128, height=96,
                                        k=[float("nan")] * 9))
            lis.spin_until(lambda: False, 0.5)
        pub.publish(good)
        assert lis.spin_until(lambda: len(lis.people) == 1, 10, [node])
        assert lis.people[0].header == good.header and lis.people[0].people == []
        assert lis.spin_until(lambda: lis.diags[-1]["frames_out"] == "1", 5, [node])
        assert lis.diags[-1]["bad_camera_info"] == ("0" if compressed else "1")
        rc, err = _stop(node, signal.SIGINT)
        assert rc == 0 and "Traceback" not in err, err
    finally:
        if node.poll() is None:
            node.kill()
        lis.close()


def test_missing_model_exits_2_with_one_clear_line(ros_env, tmp_path):
    proc = _node(ros_env, f"model:={tmp_path / 'nope.pt'}")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "nope.pt" in err and "cannot start" in err, err


def test_cuda_requested_but_absent_exits_2_with_one_clear_line(ros_env):
    import torch

    assert not torch.cuda.is_available(), "this test checks a machine without CUDA"
    proc = _node(ros_env, "device:=cuda")
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "CUDA" in err and "cannot start" in err, err


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in tree.items():
        out.update(_flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k: v})
    return out


def test_yaml_defaults_equal_the_config_defaults_and_read_config_reads_them():
    yaml_values = _flatten(yaml.safe_load(CONFIG.read_text())["/**"]["ros__parameters"])
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
