"""Node: records camera frames worth training on into a rosbag2 MCAP bag (policy: recorder.py).

Subscribes to an image topic (Image, or CompressedImage with ``compressed: true``) and its
CameraInfo, with sensor-data QoS unless ``reliable`` is set, and gets every message as the CDR
bytes that arrived (``raw=True``): kept frames are written to the bag exactly as received, with the
newest CameraInfo after each (or only when it changed), at the frame's stamp. Parameters:
``config/recorder.yaml``; all are read-only and read once at start.

Stops, closing the bag (metadata.yaml written), on SIGINT or SIGTERM, when ``max_frames`` or
``max_total_mb`` is reached, or after ``idle_timeout_s`` without frames: exit status 0. Before
recording, and before each frame, a disk guard checks that ``min_free_mb`` would stay free; if
not, it logs an error, closes the bag and exits with status 3 (at start: no bag is created). A
write error exits with 1 after trying to close the bag. After SIGKILL the closed splits are whole;
``mp3d.data.bags.recover_bag`` salvages the open one. The last stdout line is a JSON summary.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import time
from dataclasses import asdict, fields
from datetime import datetime
from pathlib import Path

import numpy as np
import rclpy
from mp3d.data.bags.types import BagError
from mp3d.data.bags.writer import BagWriter
from mp3d.data.imagecodec import ImageConversionError, image_to_rgb
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mp3d_ros import params
from mp3d_ros.recorder import (
    MB,
    PARAMETERS,
    FramePolicy,
    RecorderConfig,
    thumbnail_from_encoded,
    thumbnail_from_rgb,
)

EXIT_OK, EXIT_ERROR, EXIT_DISK = 0, 1, 3
INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def read_config(node: Node) -> RecorderConfig:
    """Declare every recorder parameter (description, range, RecorderConfig's default; read-only)
    and read them once into a RecorderConfig. Raises ValueError for a bad value."""
    defaults = RecorderConfig()
    values = {}
    for f in fields(RecorderConfig):
        spec, default = PARAMETERS[f.name], getattr(defaults, f.name)
        desc = params.descriptor(spec.description, default, spec.low, spec.high, spec.choices)
        values[f.name] = params.declare(node, f.name, default, desc)
    return RecorderConfig(**values)


def _info_key(raw: bytes) -> tuple:
    """The contents of a CameraInfo that matter for calibration (everything but the header)."""
    m = deserialize_message(raw, CameraInfo)
    roi = m.roi
    return (m.height, m.width, m.distortion_model, tuple(m.d), tuple(m.k), tuple(m.r),
            tuple(m.p), m.binning_x, m.binning_y,
            (roi.x_offset, roi.y_offset, roi.height, roi.width, roi.do_rectify))


class Recording:
    """The callbacks: frames through the policy into the bag."""

    def __init__(self, node: Node, cfg: RecorderConfig, writer: BagWriter, disk: Path) -> None:
        self.node, self.cfg, self.writer, self.disk = node, cfg, writer, disk
        self.policy = FramePolicy(cfg)
        self.image_cls = CompressedImage if cfg.compressed else Image
        self.image_type = ("sensor_msgs/msg/CompressedImage" if cfg.compressed
                           else "sensor_msgs/msg/Image")
        qos = QoSProfile(depth=cfg.queue_depth, reliability=ReliabilityPolicy.RELIABLE
                         if cfg.reliable else ReliabilityPolicy.BEST_EFFORT)  # sensor data
        # CameraInfo first: with both ready at once, the executor takes it before the image.
        self.info_sub = (node.create_subscription(CameraInfo, cfg.camera_info_topic, self.on_info,
                                                  qos, raw=True)
                         if cfg.camera_info_topic else None)
        self.image_sub = node.create_subscription(self.image_cls, cfg.image_topic,
                                                  self.on_image, qos, raw=True)
        self.info_raw: bytes | None = None
        self.info_key: tuple | None = None
        self.written_info_key: tuple | None = None
        self.pending: tuple[bytes, int] | None = None  # newest frame before any CameraInfo
        self.last_frame: float | None = None
        self.stop_reason: str | None = None
        self.exit_code = EXIT_OK
        self._warned_thumb = False

    def on_info(self, raw: bytes) -> None:
        self.info_raw = raw
        if not self.cfg.camera_info_every_frame:
            self.info_key = _info_key(raw)
        if self.pending is not None and self.stop_reason is None:
            pending, self.pending = self.pending, None
            self._consider(*pending)

    def _thumbnail(self, msg: Image | CompressedImage) -> np.ndarray | None:
        try:
            if self.cfg.compressed:
                return thumbnail_from_encoded(msg.data, self.cfg.thumbnail_width)
            return thumbnail_from_rgb(image_to_rgb(msg), self.cfg.thumbnail_width)
        except ImageConversionError as exc:
            if not self._warned_thumb:
                self.node.get_logger().warning(f"no duplicate test for these frames: {exc}")
                self._warned_thumb = True
            return None

    def on_image(self, raw: bytes) -> None:
        if self.stop_reason is not None:
            return
        self.last_frame = time.monotonic()
        received = self.node.get_clock().now().nanoseconds
        if self.info_sub is not None and self.info_raw is None and self.cfg.require_camera_info:
            # Drivers often publish a frame just before its CameraInfo, and topics are not
            # ordered with each other: hold the newest frame until the first CameraInfo.
            if self.pending is not None:
                self.policy.skip("no_camera_info")
            self.pending = (raw, received)
            return
        self._consider(raw, received)

    def _consider(self, raw: bytes, received: int) -> None:
        """One frame through the policy, into the bag if kept."""
        msg = deserialize_message(raw, self.image_cls)
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if (self.cfg.stamp_source == "receive" and received) or stamp == 0:
            stamp = received  # (a use_sim_time clock reads 0 until the first /clock)
        info = self.info_raw
        write_info = info is not None and (self.cfg.camera_info_every_frame
                                           or self.info_key != self.written_info_key)
        size = len(raw) + (len(info) if write_info else 0)
        decision = self.policy.consider(
            stamp, size, shutil.disk_usage(self.disk).free, lambda: self._thumbnail(msg),
            has_camera_info=info is not None or self.info_sub is None)
        if decision.keep:
            try:
                self.writer.write(self.image_sub.topic_name, self.image_type, raw, stamp)
                if write_info:
                    self.writer.write(self.info_sub.topic_name, INFO_TYPE, info, stamp)
                    self.written_info_key = self.info_key
                self.writer.flush()
            except (OSError, BagError) as exc:
                self.node.get_logger().error(f"writing {self.writer.path} failed: {exc}")
                self.stop("write_error", EXIT_ERROR)
                return
        if decision.stop:
            if decision.reason == "disk_space":
                self.node.get_logger().error(
                    f"stopping: free space on {self.disk} would fall below min_free_mb="
                    f"{self.cfg.min_free_mb} MB")
                self.stop("disk_space", EXIT_DISK)
            else:
                self.stop(decision.reason if not decision.keep else "max_frames")

    def stop(self, reason: str, code: int = EXIT_OK) -> None:
        if self.stop_reason is None:
            self.stop_reason, self.exit_code = reason, code

    def check_idle(self) -> None:
        if (self.cfg.idle_timeout_s and self.last_frame is not None
                and time.monotonic() - self.last_frame > self.cfg.idle_timeout_s):
            self.stop("idle_timeout")

    def counts(self) -> str:
        c = self.policy.counts
        skipped = ", ".join(f"{k} {v}" for k, v in c.items() if k != "kept" and v)
        return f"kept {c['kept']} frames ({self.policy.kept_bytes / MB:.1f} MB), " \
               f"skipped: {skipped or 'none'}"


def main(argv: list[str] | None = None) -> int:
    """Run the recorder until a stop condition; returns the exit status (see the docstring)."""
    argv = list(sys.argv if argv is None else argv)
    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("mp3d_recorder")
    log = node.get_logger()
    try:
        try:
            cfg = read_config(node)
        except ValueError as exc:
            log.error(f"bad parameter: {exc}")
            return EXIT_ERROR
        out_dir = Path(cfg.output_dir).expanduser()
        out_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(out_dir).free
        if free < cfg.min_free_mb * MB:
            log.error(f"not recording: {free / MB:.0f} MB free on {out_dir}, below min_free_mb="
                      f"{cfg.min_free_mb} MB")
            print(json.dumps({"bag": None, "kept": 0, "stop": "disk_space", "exit": EXIT_DISK}))
            return EXIT_DISK
        bag = out_dir / (cfg.bag_name or f"mp3d_{datetime.now():%Y%m%d_%H%M%S}")
        try:
            writer = BagWriter(bag, split_max_seconds=cfg.split_max_seconds,
                               split_max_bytes=int(cfg.split_max_mb * MB),
                               custom_data={"mp3d_recorder": json.dumps(asdict(cfg))})
        except (OSError, BagError) as exc:
            log.error(f"cannot create the bag: {exc}")
            return EXIT_ERROR
        rec = Recording(node, cfg, writer, out_dir)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda s, _f: rec.stop(signal.Signals(s).name))
        log.info(f"recording {rec.image_sub.topic_name}"
                 + (f" and {rec.info_sub.topic_name}" if rec.info_sub else "") + f" into {bag}")
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        next_stats = time.monotonic() + cfg.stats_period_s
        try:
            while rec.stop_reason is None:
                executor.spin_once(timeout_sec=0.1)
                rec.check_idle()
                if cfg.stats_period_s and time.monotonic() >= next_stats:
                    log.info(rec.counts())
                    next_stats += cfg.stats_period_s
        finally:  # also on an unexpected exception: what was written stays readable
            if rec.pending is not None:
                rec.policy.skip("no_camera_info")
            try:
                writer.close()
            except OSError as exc:
                log.error(f"closing {bag} failed: {exc}; run mp3d.data.bags.recover_bag on it")
                rec.stop_reason, rec.exit_code = "write_error", EXIT_ERROR
        log.info(f"stopped ({rec.stop_reason}): {rec.counts()}; bag {bag}")
        print(json.dumps({"bag": str(bag), "kept": rec.policy.kept,
                          "counts": rec.policy.counts, "splits": writer.splits,
                          "stop": rec.stop_reason, "exit": rec.exit_code}))
        return rec.exit_code
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
