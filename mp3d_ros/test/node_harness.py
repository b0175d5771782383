"""Running the pose node in a real process and listening to it over DDS (shared by the node
tests, the one-pipeline test and the soak script)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import rclpy
from builtin_interfaces.msg import Time
from conftest import CLIP_INPUT_SIZE
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from mp3d_msgs.msg import Person3DArray

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "mp3d_ros" / "config" / "pose_node.yaml"
HZ = 10
T0 = 1_700_000_000 * 10**9


def header(i: int) -> Header:
    ns = T0 + i * 10**9 // HZ
    return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id="cam_optical")


def start_node(env: dict[str, str], *params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", "--params-file",
           str(CONFIG), "-r", "image:=/cam/image", "-r", "camera_info:=/cam/camera_info",
           "-r", "image/compressed:=/cam/image/compressed",
           "-p", "device:=cpu", "-p", f"input_size:={CLIP_INPUT_SIZE}"]
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
        self.diag_status: list[tuple[int, str]] = []  # (level, message)
        self.people_sub = self.node.create_subscription(Person3DArray, "/people",
                                                        self.people.append, qos)
        self.markers_sub = self.node.create_subscription(MarkerArray, "/people/markers",
                                                         self.markers.append, qos)
        self.diag_sub = self.node.create_subscription(DiagnosticArray, "/diagnostics",
                                                      self.on_diag, qos)
        self.node.create_subscription(Image, "/people/debug_image", self.debug.append, qos)
        self.base = dict.fromkeys(COUNTERS, 0)  # counters before the clip (warm_up)

    def outputs(self, debug: bool) -> list[list]:
        """The records of the pose node's per-frame outputs: people, markers (, debug images)."""
        return [self.people, self.markers, *([self.debug] if debug else [])]

    def count(self, key: str, diag: dict[str, str] | None = None) -> int:
        """A counter of the last (or the given) diagnostics, less its value before the clip."""
        diag = self.diags[-1] if diag is None else diag
        return int(diag[key]) - self.base.get(key, 0)

    def on_diag(self, msg: DiagnosticArray) -> None:
        for s in msg.status:
            if s.name.endswith("pose_node: pose"):
                self.diags.append({kv.key: kv.value for kv in s.values})
                self.diag_status.append((int.from_bytes(s.level, "little")
                                         if isinstance(s.level, bytes) else int(s.level),
                                         s.message))

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


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"the node did not stop on {sig}:\n{err}")
    return proc.returncode, err


COUNTERS = ("frames_in", "frames_out", "dropped_replaced")


def warm_up(lis: Listener, node: subprocess.Popen, debug: bool) -> dict[str, int]:
    """Grey frames with no people, stamped before the clip, until one has come back on every
    output the listener records. The graph lists a publisher before DDS has matched its writer
    to the listener's reader, and a message sent in between is lost (the first marker array, on
    Jazzy, under load); a message received proves the match. Then the records are cleared, and
    the diagnostics' counters after the warm-up are returned (see :meth:`Listener.count`)."""
    pub = lis.node.create_publisher(Image, "/cam/image",
                                    QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
    outputs = lis.outputs(debug)
    assert lis.spin_until(lambda: pub.get_subscription_count() > 0, 30, [node])
    grey = Image(height=48, width=64, encoding="rgb8", step=64 * 3, data=bytes([128]) * 64 * 48 * 3)
    deadline, sent = time.monotonic() + 30, 0
    while not all(outputs):
        assert time.monotonic() < deadline, "no output came back from the warm-up frames"
        grey.header = header(-1000 + sent)  # before the clip's stamps, increasing
        pub.publish(grey)
        sent += 1
        lis.spin_until(lambda: all(outputs), 0.3, [node])
    # two diagnostics in a row with the same frames in, every one of them answered
    n = len(lis.diags)

    def settled() -> bool:
        if len(lis.diags) < n + 2:
            return False
        a, b = lis.diags[-2:]
        return a["frames_in"] == b["frames_in"] and int(b["frames_in"]) == int(
            b["frames_out"]) + int(b["dropped_replaced"]) >= 1

    assert lis.spin_until(settled, 15, [node]), lis.diags[-2:]
    lis.node.destroy_publisher(pub)
    base = {k: int(lis.diags[-1][k]) for k in COUNTERS}
    for records in (lis.people, lis.markers, lis.debug, lis.diags, lis.diag_status):
        records.clear()
    return base


def play_clip(bag: Path, env: dict[str, str], rate: float, *params: str) -> Listener:
    """Play the clip into a fresh node at ``rate``, after :func:`warm_up`; stop the node with
    SIGTERM (asserting exit 0) once it has reported its last output. Returns the listener with
    what came out of the clip."""
    # a deep subscription queue: no frame is lost in transport, the node's mailbox drops
    node = start_node(env, "image_reliability:=reliable", "image_queue_depth:=20", *params)
    lis = Listener(env)
    try:
        debug = "publish_debug_image:=true" in params
        lis.base = warm_up(lis, node, debug)
        play = subprocess.Popen([sys.executable, "-m", "mp3d_ros.player", str(bag),
                                 "--wait-for-subscribers", "20", "--rate", str(rate)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lis.spin_until(lambda: play.poll() is not None, 40, [node])
        assert play.returncode == 0, play.communicate()
        # until the node has processed its last frame and reported it, and every output of
        # every frame has been taken from this process's queues (people come first)
        outputs = lis.outputs(debug)
        lis.spin_until(lambda: lis.diags and lis.diags[-1]["output_rate_hz"] == "0.00"
                       and all(len(o) == lis.count("frames_out") for o in outputs), 15, [node])
        rc, err = stop(node)
        assert rc == 0, err
        assert "Traceback" not in err, err
    finally:
        if node.poll() is None:
            node.kill()
        lis.close()
    return lis


DROPS = ("bad_image", "estimator_error", "processing_error")


class Probe:
    """A pose node with publishers for its inputs and a listener for its outputs."""

    def __init__(self, env: dict[str, str], *params: str, compressed: bool = False) -> None:
        self.proc = start_node(env, "image_reliability:=reliable", "image_queue_depth:=10",
                               f"image_transport:={'compressed' if compressed else 'raw'}",
                               *params)
        self.lis = Listener(env)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        node = self.lis.node
        self.image = node.create_publisher(CompressedImage if compressed else Image,
                                           "/cam/image/compressed" if compressed
                                           else "/cam/image", qos)
        self.info = node.create_publisher(CameraInfo, "/cam/camera_info", qos)
        self.sent = 0
        assert self.lis.spin_until(lambda: self.image.get_subscription_count() > 0
                                   and self.info.get_subscription_count() > 0
                                   and node.count_publishers("/people") > 0, 30, [self.proc])

    def answered(self) -> int:
        """Frames the node has published or counted as dropped (from its diagnostics)."""
        if not self.lis.diags:
            return 0
        d = self.lis.diags[-1]
        return int(d["frames_out"]) + sum(int(d[k]) for k in DROPS) \
            + int(d["dropped_replaced"])

    def send(self, msg, info=None) -> None:
        """Publish (a CameraInfo, then) one image; wait until the node has answered it."""
        if info is not None:
            self.info.publish(info)
            self.lis.spin_until(lambda: False, 0.2)
        self.image.publish(msg)
        self.sent += 1
        assert self.lis.spin_until(lambda: self.answered() >= self.sent, 15, [self.proc]), (
            self.sent, self.lis.diags[-1:])

    def counts(self) -> dict[str, str]:
        return self.lis.diags[-1]

    def close(self) -> str:
        rc, err = stop(self.proc, signal.SIGINT)
        self.lis.close()
        assert rc == 0 and "Traceback" not in err, err
        return err


