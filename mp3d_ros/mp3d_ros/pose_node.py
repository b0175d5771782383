"""Node: multi-person 3D pose from a camera stream (wiring only; the work is in mp3d).

Subscribes to ``image`` (sensor_msgs/Image) or ``image/compressed`` (CompressedImage), per the
``image_transport`` parameter, and ``camera_info``; publishes ``people`` (mp3d_msgs/Person3DArray),
``people/markers`` (MarkerArray) and optionally ``people/debug_image``, each with the input image's
header (frame_id replaced only by a non-empty ``output_frame``), and ``/diagnostics`` once a
second. Intrinsics come from the newest CameraInfo with the image's frame_id and size, else from the
``fallback_*`` parameters (a throttled warning). Frames go through a single-slot mailbox to one
worker thread: a new frame replaces one not yet started (counted as ``dropped_replaced``), so the
node always works on the newest frame. Bad frames are logged (throttled), counted by reason and
skipped. Parameters: ``config/pose_node.yaml`` (``mp3d_ros.pose_config``).

Exit status: 0 after SIGINT or SIGTERM (worker joined); 2 for a start-up error (bad parameter,
missing or corrupt model, CUDA asked for but absent), with one error line and no traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from mp3d.draw import draw_skeleton_2d
from mp3d.estimator import FALLBACK_HFOV_DEG, Estimator
from mp3d.geometry import Intrinsics, intrinsics_from_camera_info
from mp3d.paths import default_model
from mp3d.tracking import Tracker
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from mp3d_msgs.msg import Person3DArray
from mp3d_ros.conversions import people_to_msg
from mp3d_ros.image_conversion import (
    ImageConversionError,
    compressed_to_rgb,
    image_to_rgb,
    rgb_to_image,
)
from mp3d_ros.markers import people_markers, track_colour
from mp3d_ros.pose_config import PoseNodeConfig, read_config

EXIT_OK, EXIT_STARTUP = 0, 2
THROTTLE_S = 5.0


class PoseNode:
    """Subscriptions, the mailbox and worker thread, publishers and diagnostics of one node."""

    def __init__(self, node: Node, cfg: PoseNodeConfig, est: Estimator) -> None:
        self.node, self.cfg, self.est, self.log = node, cfg, est, node.get_logger()
        self.tracker = Tracker(cfg.tracker) if cfg.tracking else None
        out_qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_people = node.create_publisher(Person3DArray, "people", out_qos)
        self.pub_markers = (node.create_publisher(MarkerArray, "people/markers", out_qos)
                            if cfg.markers.enabled else None)
        self.pub_debug = (node.create_publisher(Image, "people/debug_image", out_qos)
                          if cfg.publish_debug_image else None)
        self.pub_diag = node.create_publisher(DiagnosticArray, "/diagnostics", out_qos)
        in_qos = QoSProfile(depth=cfg.image_queue_depth, reliability=(
            ReliabilityPolicy.RELIABLE if cfg.image_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT))
        self.infos: dict[str, tuple[CameraInfo, float]] = {}  # frame_id -> newest, received
        node.create_subscription(CameraInfo, "camera_info", self.on_info,
                                 QoSProfile(depth=5, reliability=in_qos.reliability))
        compressed = cfg.image_transport == "compressed"
        node.create_subscription(CompressedImage if compressed else Image,
                                 "image/compressed" if compressed else "image", self.on_image,
                                 in_qos)
        self.lock = threading.Condition()
        self.slot: tuple[Image | CompressedImage, float] | None = None
        self.stopping = False
        self.counts: Counter[str] = Counter()
        self.window: dict[str, list[float]] = {"in": [], "out": [], "proc": [], "lat": []}
        self.last_accept = -np.inf
        self.intrinsics_source = "none yet"
        self.worker = threading.Thread(target=self.work, name="pose_worker", daemon=True)
        self.worker.start()
        node.create_timer(1.0, self.publish_diagnostics)
        self.last_diag = time.monotonic()

    def on_info(self, msg: CameraInfo) -> None:
        self.infos[msg.header.frame_id] = (msg, time.monotonic())

    def on_image(self, msg: Image | CompressedImage) -> None:
        now = time.monotonic()
        with self.lock:
            self.counts["frames_in"] += 1
            self.window["in"].append(now)
            if self.cfg.rate_limit_hz and now - self.last_accept < 1.0 / self.cfg.rate_limit_hz:
                self.counts["dropped_rate_limit"] += 1
                return
            self.last_accept = now
            if self.slot is not None:
                self.counts["dropped_replaced"] += 1
            self.slot = (msg, now)
            self.lock.notify()

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.lock.notify()
        self.worker.join()

    def work(self) -> None:
        while True:
            with self.lock:
                while self.slot is None and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                (msg, received), self.slot = self.slot, None
            self.process(msg, received)

    def bad(self, reason: str, text: str) -> None:
        with self.lock:
            self.counts[reason] += 1
        self.log.warning(f"{reason}: {text}", throttle_duration_sec=THROTTLE_S)

    def intrinsics(self, frame_id: str, width: int, height: int) -> Intrinsics:
        entry = self.infos.get(frame_id)
        timeout = self.cfg.camera_info_timeout_s
        if entry is not None and (not timeout or time.monotonic() - entry[1] <= timeout):
            info = entry[0]
            if (info.width, info.height) in ((width, height), (0, 0)):
                try:
                    self.intrinsics_source = "camera_info"
                    return intrinsics_from_camera_info(info.k, width, height)
                except ValueError as exc:
                    self.bad("bad_camera_info", f"{exc}; using the fallback intrinsics")
            else:
                self.bad("bad_camera_info", f"CameraInfo is {info.width}x{info.height}, the image "
                         f"{width}x{height}; using the fallback intrinsics")
        else:
            self.log.warning(f"no recent CameraInfo with frame_id {frame_id!r} on "
                             "camera_info: using the fallback intrinsics",
                             throttle_duration_sec=THROTTLE_S)
        c = self.cfg
        self.intrinsics_source = "fallback"
        if not c.fallback_fx:
            self.log.warning(f"fallback_fx is 0: assuming a {FALLBACK_HFOV_DEG:g} deg horizontal "
                             "field of view", once=True)
            return Intrinsics.from_fov(width, height, FALLBACK_HFOV_DEG)
        return Intrinsics(c.fallback_fx, c.fallback_fy or c.fallback_fx,
                          c.fallback_cx or (width - 1) / 2, c.fallback_cy or (height - 1) / 2,
                          width, height)

    def process(self, msg: Image | CompressedImage, received: float) -> None:
        start = time.monotonic()
        try:
            rgb = compressed_to_rgb(msg) if isinstance(msg, CompressedImage) else image_to_rgb(msg)
        except ImageConversionError as exc:
            self.bad("bad_image", str(exc))
            return
        h, w = rgb.shape[:2]
        try:
            people = self.est(rgb, self.intrinsics(msg.header.frame_id, w, h))
        except (RuntimeError, ValueError) as exc:
            self.bad("estimator_error", f"{type(exc).__name__}: {exc}")
            return
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if self.tracker is not None:
            people = self.tracker.update(people, stamp if stamp > 0 else None)
        # Outputs carry the image's stamp (never now()), so replays and use_sim_time work.
        header = Header(stamp=msg.header.stamp,
                        frame_id=self.cfg.output_frame or msg.header.frame_id)
        out = people_to_msg(people, header)
        self.pub_people.publish(out)
        if self.pub_markers is not None:
            m = self.cfg.markers
            self.pub_markers.publish(people_markers(out, m.joint_radius, m.bone_width,
                                                    m.min_confidence))
        if self.pub_debug is not None:
            canvas = rgb.copy()
            for p in people:
                c = track_colour(p.track_id)
                draw_skeleton_2d(canvas, p.keypoints_2d, p.joint_scores,
                                 self.cfg.markers.min_confidence, colour=(c.r, c.g, c.b))
            self.pub_debug.publish(rgb_to_image(canvas, "rgb8", header=header))
        done = time.monotonic()
        with self.lock:
            self.counts["frames_out"] += 1
            self.window["out"].append(done)
            self.window["proc"].append(1e3 * (done - start))
            self.window["lat"].append(1e3 * (done - received))

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        with self.lock:
            dt, self.last_diag = max(now - self.last_diag, 1e-6), now
            win = {k: list(v) for k, v in self.window.items()}
            for v in self.window.values():
                v.clear()
            counts = dict(self.counts)
        values = {
            "input_rate_hz": len(win["in"]) / dt, "output_rate_hz": len(win["out"]) / dt,
            "processing_ms_mean": float(np.mean(win["proc"])) if win["proc"] else 0.0,
            "processing_ms_max": max(win["proc"], default=0.0),
            "latency_ms_mean": float(np.mean(win["lat"])) if win["lat"] else 0.0,
            "latency_ms_max": max(win["lat"], default=0.0)}
        keys = ("frames_in", "frames_out", "dropped_replaced", "dropped_rate_limit",
                "bad_image", "bad_camera_info", "estimator_error")
        kv = [KeyValue(key=k, value=f"{v:.2f}") for k, v in values.items()]
        kv += [KeyValue(key=k, value=str(counts.get(k, 0))) for k in keys]
        kv += [KeyValue(key="model", value=str(self.est.path)),
               KeyValue(key="device", value=str(self.est.device)),
               KeyValue(key="intrinsics", value=self.intrinsics_source)]
        status = DiagnosticStatus(name=f"{self.node.get_name()}: pose", hardware_id="mp3d",
                                  values=kv, level=DiagnosticStatus.OK, message="ok")
        if not win["in"]:
            status.level, status.message = DiagnosticStatus.WARN, "no images"
        elif any(counts.get(k, 0) for k in keys[4:]):
            status.level, status.message = DiagnosticStatus.WARN, "bad input seen (see counts)"
        # Diagnostics describe the node, not an image: stamped with the node's clock.
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=self.node.get_clock().now()
                                                            .to_msg()), status=[status]))


def main(argv: list[str] | None = None) -> int:
    """Run the pose node until SIGINT or SIGTERM; returns the exit status (see the docstring)."""
    argv = list(sys.argv if argv is None else argv)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("pose_node")
    log = node.get_logger()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _s, _f: stop.set())
    try:
        try:
            cfg = read_config(node)
            model = cfg.model or str(default_model("student.pt"))
            est = Estimator(model, device=cfg.device, peak_threshold=cfg.peak_threshold or None,
                            max_people=cfg.max_people or None, onnx=cfg.onnx or None)
        except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
            log.error(f"cannot start: {type(exc).__name__}: {exc}")
            return EXIT_STARTUP
        wiring = PoseNode(node, cfg, est)
        log.info(f"model {est.path} on {est.device}; listening on "
                 f"{'image/compressed' if cfg.image_transport == 'compressed' else 'image'}")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        try:
            while not stop.is_set():
                executor.spin_once(timeout_sec=0.1)
        finally:
            wiring.stop()
        log.info(f"stopped: {dict(wiring.counts)}")
        return EXIT_OK
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
