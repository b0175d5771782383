"""Node: multi-person 3D pose from a camera stream (wiring only; the work is in
:mod:`mp3d_ros.frame_pipeline`, which ``mp3d replay`` calls too).

Subscribes to ``image`` (sensor_msgs/Image) or ``image/compressed`` (CompressedImage), per the
``image_transport`` parameter, and ``camera_info``; publishes ``people`` (mp3d_msgs/Person3DArray),
``people/markers`` (MarkerArray), optionally ``people/debug_image`` and, with ``publish_tf``,
``/tf`` (a ``body_<track id>`` frame per tracked person, REP-155), with ``hri`` the ROS4HRI
topics under ``/humans/bodies`` (:mod:`mp3d_ros.hri`) and the ``body_<body id>`` frames, each
with the input image's header (frame_id replaced only by a non-empty ``output_frame``), and
``/diagnostics`` once a second. With ``depth_topic``, aligned depth images (16UC1 mm or 32FC1
m) matched to each frame by stamp refine the people's root depths (``Person3D.root_source``
says which were measured). Frames go through a single-slot mailbox to one worker thread: a new
frame replaces one not yet started (counted as ``dropped_replaced``), so the node always works
on the newest frame.

One frame never takes the node down: any exception while processing it is a counted drop with
its reason (``bad_image``, ``estimator_error``, ``processing_error``), logged throttled; a worker
thread that ended anyway is restarted (``worker_restarts``). The diagnostics say ERROR when images
arrive but nothing was published for ``stall_timeout_s``, WARN when more than ``warn_drop_rate``
of the last second's frames were dropped or when warnings were counted (CameraInfo rescaled or
unusable, zero or backwards stamps). Parameters: ``config/pose_node.yaml``
(``mp3d_ros.pose_config``); all are read-only, so a change at run time is refused.

Exit status: 0 after SIGINT or SIGTERM (worker joined); 2 for a start-up error (bad parameter,
missing or corrupt model, CUDA asked for but absent), with one error line and no traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from mp3d.infer.estimator import Estimator
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from mp3d_msgs.msg import Person3DArray
from mp3d_ros.frame_pipeline import BadFrameError, FramePipeline, make_estimator, stamp_ns
from mp3d_ros.pose_config import PoseNodeConfig, read_config

EXIT_OK, EXIT_STARTUP = 0, 2
OUTPUT_HISTORY = 100  # samples kept per output publisher (people, markers, diagnostics)
THROTTLE_S = 5.0
DEPTHS_KEPT = 30  # newest depth images kept for matching by stamp
DROP_REASONS = ("bad_image", "estimator_error", "processing_error")
COUNTS = ("frames_in", "frames_out", "dropped_replaced", "dropped_rate_limit", *DROP_REASONS,
          "worker_restarts")


class PoseNode:
    """Subscriptions, the mailbox and worker thread, publishers and diagnostics of one node."""

    def __init__(self, node: Node, cfg: PoseNodeConfig, est: Estimator) -> None:
        self.node, self.cfg, self.est, self.log = node, cfg, est, node.get_logger()
        # Reliable, with a history deep enough that a sample lost on the wire to a subscriber
        # that fell behind (a recorder on a loaded machine) can still be resent; with 10, a
        # third of a second behind at 30 Hz was enough for DDS to give it up (a GAP). Small
        # messages only: the debug image keeps a short history.
        out_qos = QoSProfile(depth=OUTPUT_HISTORY, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_people = node.create_publisher(Person3DArray, "people", out_qos)
        self.pub_markers = (node.create_publisher(MarkerArray, "people/markers", out_qos)
                            if cfg.markers.enabled else None)
        self.pub_debug = (node.create_publisher(Image, "people/debug_image", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE)) if cfg.publish_debug_image else None)
        self.pub_diag = node.create_publisher(DiagnosticArray, "/diagnostics", out_qos)
        self.pub_tf = self.hri = None
        if cfg.publish_tf or cfg.hri:
            from tf2_msgs.msg import TFMessage  # checked at start-up (main)

            self.tf_type = TFMessage
            self.pub_tf = node.create_publisher(TFMessage, "/tf", QoSProfile(
                depth=100, reliability=ReliabilityPolicy.RELIABLE))
        if cfg.hri:
            from mp3d_ros.hri import HriPublisher  # hri_msgs: checked at start-up (main)

            self.hri = HriPublisher(node, OUTPUT_HISTORY)
        in_qos = QoSProfile(depth=cfg.image_queue_depth, reliability=(
            ReliabilityPolicy.RELIABLE if cfg.image_reliability == "reliable"
            else ReliabilityPolicy.BEST_EFFORT))
        compressed = cfg.image_transport == "compressed"
        image_sub = node.create_subscription(
            CompressedImage if compressed else Image,
            "image/compressed" if compressed else "image", self.on_image, in_qos)
        self.pipeline = FramePipeline(est, cfg, image_sub.topic_name, self.on_warning)
        info_sub = node.create_subscription(CameraInfo, "camera_info",
                                            self.pipeline.on_camera_info,
                                            QoSProfile(depth=5, reliability=in_qos.reliability))
        self.subscriptions = [image_sub, info_sub]
        self.depths: deque[tuple[int, Image]] = deque(maxlen=DEPTHS_KEPT)
        if cfg.depth_topic:
            self.subscriptions.append(node.create_subscription(
                Image, cfg.depth_topic, self.on_depth, QoSProfile(
                    depth=DEPTHS_KEPT, reliability=in_qos.reliability)))
        self.lock = threading.Condition()
        self.slot: tuple[Image | CompressedImage, float] | None = None
        self.stopping = False
        self.counts: Counter[str] = Counter()
        self.window: dict[str, list[float]] = {"in": [], "out": [], "drop": [], "proc": [],
                                               "lat": []}
        self.last_accept = -np.inf
        self.last_publish = self.first_in = None
        self.intrinsics_source = "none yet"
        self.last_notes: Counter[str] = Counter()
        self.worker = self.start_worker()
        self.timer = node.create_timer(1.0, self.publish_diagnostics)
        self.last_diag = time.monotonic()

    def start_worker(self) -> threading.Thread:
        worker = threading.Thread(target=self.work, name="pose_worker", daemon=True)
        worker.start()
        return worker

    def on_warning(self, kind: str, text: str) -> None:
        self.log.warning(f"{kind}: {text} (logged once; counted in the diagnostics)")

    def on_image(self, msg: Image | CompressedImage) -> None:
        now = time.monotonic()
        with self.lock:
            self.counts["frames_in"] += 1
            self.window["in"].append(now)
            self.first_in = self.first_in or now
            if self.cfg.rate_limit_hz and now - self.last_accept < 1.0 / self.cfg.rate_limit_hz:
                self.counts["dropped_rate_limit"] += 1
                return
            self.last_accept = now
            if self.slot is not None:
                self.counts["dropped_replaced"] += 1
                self.window["drop"].append(now)
            self.slot = (msg, now)
            self.lock.notify()

    def on_depth(self, msg: Image) -> None:
        with self.lock:
            self.depths.append((stamp_ns(msg.header), msg))
            self.lock.notify_all()

    def depth_for(self, msg: Image | CompressedImage) -> Image | None:
        """The depth image whose stamp matches the frame's (within depth_sync_tolerance_s),
        waiting up to depth_wait_s for it to arrive; None without depth_topic or when none
        came. Synchronised by stamp, never by arrival."""
        if not self.cfg.depth_topic:
            return None
        stamp, tol = stamp_ns(msg.header), self.cfg.depth_sync_tolerance_s * 1e9
        deadline = time.monotonic() + self.cfg.depth_wait_s

        def match() -> Image | None:
            near = [(abs(s - stamp), m) for s, m in self.depths if abs(s - stamp) <= tol]
            return min(near, key=lambda e: e[0])[1] if near else None

        with self.lock:
            found = match()
            while found is None and not self.stopping and time.monotonic() < deadline:
                self.lock.wait(max(deadline - time.monotonic(), 0.0))
                found = match()
        return found

    def stop(self) -> None:
        """Stop the worker after the frame in progress (joined)."""
        with self.lock:
            self.stopping = True
            self.lock.notify()
        self.worker.join()

    def close(self) -> None:
        """Stop, and remove the subscriptions, publishers and timer from the node (the model
        stays loaded): what a managed node's deactivate does."""
        self.stop()
        for sub in self.subscriptions:
            self.node.destroy_subscription(sub)
        self.node.destroy_timer(self.timer)
        for pub in (self.pub_people, self.pub_markers, self.pub_debug, self.pub_diag,
                    self.pub_tf):
            if pub is not None:
                self.node.destroy_publisher(pub)
        if self.hri is not None:
            self.hri.close()

    def work(self) -> None:
        while True:
            with self.lock:
                while self.slot is None and not self.stopping:
                    self.lock.wait()
                if self.stopping:
                    return
                (msg, received), self.slot = self.slot, None
            try:
                self.process(msg, received)
            except BadFrameError as exc:
                self.drop(exc.reason, exc.text)
            except Exception as exc:  # noqa: BLE001 - one frame must never end the worker
                self.drop("processing_error", f"{type(exc).__name__}: {exc}")

    def drop(self, reason: str, text: str) -> None:
        with self.lock:
            self.counts[reason] += 1
            self.window["drop"].append(time.monotonic())
        self.log.warning(f"{reason}: {text}", throttle_duration_sec=THROTTLE_S)

    def process(self, msg: Image | CompressedImage, received: float) -> None:
        start = time.monotonic()
        result = self.pipeline.process(msg, self.depth_for(msg))
        self.pub_people.publish(result.people_msg)
        if self.pub_markers is not None:
            self.pub_markers.publish(result.markers)
        if self.pub_debug is not None:
            self.pub_debug.publish(result.debug_image)
        if self.pub_tf is not None and result.transforms:
            self.pub_tf.publish(self.tf_type(transforms=result.transforms))
        if self.hri is not None:
            self.hri.publish(result.hri)
        done = time.monotonic()
        with self.lock:
            self.intrinsics_source = result.intrinsics_source
            self.last_publish = done
            self.counts["frames_out"] += 1
            self.window["out"].append(done)
            self.window["proc"].append(1e3 * (done - start))
            self.window["lat"].append(1e3 * (done - received))

    def health(self, now: float, win: dict[str, list[float]], notes: Counter[str]
               ) -> tuple[bytes, str]:
        """Diagnostic level and message from this second's window."""
        stalled_since = self.last_publish or self.first_in
        if win["in"] and stalled_since is not None \
                and now - stalled_since > self.cfg.stall_timeout_s:
            return DiagnosticStatus.ERROR, (f"images arrive but nothing published for "
                                            f"{now - stalled_since:.1f} s")
        if not win["in"]:
            return DiagnosticStatus.WARN, "no images"
        rate = len(win["drop"]) / len(win["in"])
        if rate > self.cfg.warn_drop_rate:
            return DiagnosticStatus.WARN, f"{100 * rate:.0f}% of frames dropped (see counts)"
        if notes:
            return DiagnosticStatus.WARN, f"warnings: {', '.join(sorted(notes))}"
        return DiagnosticStatus.OK, "ok"

    def ensure_worker(self) -> None:
        """Restart the worker thread if it ended while the node runs (it should never)."""
        if not self.worker.is_alive() and not self.stopping:
            self.counts["worker_restarts"] += 1
            self.log.error("the worker thread had ended: restarted")
            self.worker = self.start_worker()

    def publish_diagnostics(self) -> None:
        now = time.monotonic()
        self.ensure_worker()
        with self.lock:
            dt, self.last_diag = max(now - self.last_diag, 1e-6), now
            win = {k: list(v) for k, v in self.window.items()}
            for v in self.window.values():
                v.clear()
            counts = dict(self.counts)
        notes = Counter(self.pipeline.notes)
        fresh = notes - self.last_notes  # warnings new in this window
        self.last_notes = notes
        fresh.pop("no_camera_info", None)  # a camera without CameraInfo is a setup, not a fault
        values = {
            "input_rate_hz": len(win["in"]) / dt, "output_rate_hz": len(win["out"]) / dt,
            "processing_ms_mean": float(np.mean(win["proc"])) if win["proc"] else 0.0,
            "processing_ms_max": max(win["proc"], default=0.0),
            "latency_ms_mean": float(np.mean(win["lat"])) if win["lat"] else 0.0,
            "latency_ms_max": max(win["lat"], default=0.0)}
        kv = [KeyValue(key=k, value=f"{v:.2f}") for k, v in values.items()]
        kv += [KeyValue(key=k, value=str(counts.get(k, 0))) for k in COUNTS]
        kv += [KeyValue(key=f"warning_{k}", value=str(v)) for k, v in sorted(notes.items())]
        kv += [KeyValue(key=k, value=str(v)) for k, v in sorted(self.pipeline.stats.items())]
        kv += [KeyValue(key="model", value=str(self.est.path)),
               KeyValue(key="model_sha256", value=str(self.est.sha256)),
               KeyValue(key="device", value=str(self.est.device)),
               KeyValue(key="backend", value=self.est.describe()),
               KeyValue(key="intrinsics", value=self.intrinsics_source)]
        level, message = self.health(now, win, fresh)
        status = DiagnosticStatus(name=f"{self.node.get_fully_qualified_name()}: pose",
                                  hardware_id="mp3d",
                                  values=kv, level=level, message=message)
        # Diagnostics describe the node, not an image: stamped with the node's clock.
        self.pub_diag.publish(DiagnosticArray(header=Header(stamp=self.node.get_clock().now()
                                                            .to_msg()), status=[status]))


def require_tf2_msgs() -> None:
    """publish_tf needs tf2_msgs (ROS's own, or the fallback build of scripts/setup.sh)."""
    try:
        import tf2_msgs.msg  # noqa: F401
    except ImportError as exc:
        raise ValueError("publish_tf needs the tf2_msgs package: install ros-<distro>-tf2-msgs, "
                         "or run bash scripts/setup.sh, which builds it where it is missing"
                         ) from exc


def require_hri_msgs() -> None:
    """hri needs hri_msgs (ROS4HRI's, or the fallback build of scripts/setup.sh)."""
    try:
        import hri_msgs.msg  # noqa: F401
    except ImportError as exc:
        raise ValueError("hri needs the hri_msgs package: install ros-<distro>-hri-msgs, or "
                         "run bash scripts/setup.sh, which builds it where it is missing"
                         ) from exc


def load(node: Node) -> tuple[PoseNodeConfig, Estimator]:
    """Read and check the parameters and load the model (what a managed node's configure
    does). Raises FileNotFoundError, ValueError, RuntimeError or OSError, one line."""
    cfg = read_config(node)
    if cfg.publish_tf or cfg.hri:
        require_tf2_msgs()
    if cfg.hri:
        require_hri_msgs()
    est = make_estimator(cfg)
    for note in est.notes:
        node.get_logger().warning(note)
    node.get_logger().info(f"model {est.path} ({est.describe()})")
    return cfg, est


LOAD_ERRORS = (FileNotFoundError, ValueError, RuntimeError, OSError)


def signal_event() -> threading.Event:
    """An event set by SIGINT or SIGTERM (rclpy's own handlers are off: the node stops itself,
    joining its worker, and exits 0)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _s, _f: stop.set())
    return stop


def spin_until(node: Node, done: Callable[[], bool]) -> None:
    """Spin ``node`` on one thread until ``done()``."""
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    while not done():
        executor.spin_once(timeout_sec=0.1)


def main(argv: list[str] | None = None) -> int:
    """Run the pose node until SIGINT or SIGTERM; returns the exit status (see the docstring)."""
    argv = list(sys.argv if argv is None else argv)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("pose_node")
    log = node.get_logger()
    stop = signal_event()
    try:
        try:
            cfg, est = load(node)
        except LOAD_ERRORS as exc:
            log.error(f"cannot start: {type(exc).__name__}: {exc}")
            return EXIT_STARTUP
        wiring = PoseNode(node, cfg, est)
        log.info(f"listening on "
                 f"{'image/compressed' if cfg.image_transport == 'compressed' else 'image'}")
        try:
            spin_until(node, stop.is_set)
        finally:
            wiring.stop()
        log.info(f"stopped: {dict(wiring.counts)}")
        return EXIT_OK
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
