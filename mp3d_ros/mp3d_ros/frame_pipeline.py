"""The one per-frame pipeline: an image message in; people, Person3DArray, MarkerArray and an
optional debug image out. The pose node (live) and ``mp3d replay`` (offline) both call it, so a
bag replayed says exactly what the live node would have published for the same frames.

Per frame (:meth:`FramePipeline.process`):

1. decode the Image or CompressedImage (:mod:`mp3d.data.imagecodec`; rclpy and rosbags messages
   alike);
2. choose the intrinsics (:func:`mp3d.common.geometry.resolve_intrinsics`) from the CameraInfo
   nearest in header stamp among those already seen (:meth:`FramePipeline.on_camera_info`) with the
   image's frame_id, else the newest CameraInfo of any frame, else the fallback camera. K, or P
   for rectified images (``intrinsics_matrix``: 'auto' takes P when the image topic's name
   contains 'rect');
3. run the estimator; people sorted by score (ties by root position, so the order is
   reproducible), people with any non-finite value left out; with ``depth_topic`` and the frame's
   depth image, root depths measured (:mod:`mp3d.infer.depth`);
4. track (the image stamp in seconds; a zero stamp ages tracks by frames instead, a stamp going
   backwards resets the tracks);
5. build the messages, each with the image's header (frame_id replaced only by a non-empty
   ``output_frame``): the people with their joint orientations
   (:mod:`mp3d.infer.orientations`, computed once per person for every output), with
   ``publish_tf`` the TF frames of the tracked people (:mod:`mp3d_ros.tf_frames`), and with
   ``hri`` the ROS4HRI bodies and their messages (:mod:`mp3d_ros.hri`; the tracker's live tracks
   are the bodies) and the body frames named with their ids.

A frame that cannot be processed raises :class:`BadFrameError` with a reason (``bad_image``,
``estimator_error``); callers count it and go on. Things worth a warning that do not drop the
frame (a CameraInfo rescaled or unusable, a zero or backwards stamp, a person with NaNs) are
counted in :attr:`FramePipeline.notes` and passed once per kind to the ``warn`` callback.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from mp3d.common.geometry import CameraCalibration, FallbackCamera, resolve_intrinsics
from mp3d.common.paths import default_model
from mp3d.data.imagecodec import ImageConversionError, depth_to_metres, msg_to_rgb
from mp3d.infer.depth import DepthConfig, refine_with_depth
from mp3d.infer.draw import draw_skeleton_2d
from mp3d.infer.estimator import Estimator
from mp3d.infer.orientations import joint_orientations
from mp3d.infer.people import Person
from mp3d.infer.tracking import Tracker
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from mp3d_msgs.msg import Person3DArray
from mp3d_ros.conversions import people_to_msg
from mp3d_ros.image_conversion import rgb_to_image
from mp3d_ros.markers import people_markers, track_colour
from mp3d_ros.pose_config import PoseNodeConfig
from mp3d_ros.tf_frames import people_transforms

CAMERA_INFOS_KEPT = 64  # per frame_id


class BadFrameError(Exception):
    """A frame that cannot be processed; ``reason`` is the counter it goes to."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text}")
        self.reason, self.text = reason, text


@dataclass
class FrameResult:
    """What one frame gives: the people (core objects) and the messages to publish."""

    people: list[Person]
    people_msg: Person3DArray
    markers: MarkerArray | None
    debug_image: Image | None
    intrinsics_source: str
    transforms: list[TransformStamped] = field(default_factory=list)
    hri: object | None = None  # an mp3d_ros.hri.HriFrame with ``hri``


def make_estimator(cfg: PoseNodeConfig) -> Estimator:
    """The Estimator the node and the replay run for ``cfg`` (model, device, backend, fp16, onnx,
    thresholds, input size, refinement, cpu_threads). cpu_threads > 0 also sets the process's
    torch threads: call it from a process of its own (the node, the replay). Raises
    FileNotFoundError, ValueError, RuntimeError or OSError, one line (a DeviceUnavailableError
    is a RuntimeError)."""
    if cfg.cpu_threads:
        torch.set_num_threads(cfg.cpu_threads)
    return Estimator(cfg.model or default_model("student.pt"), device=cfg.device,
                     peak_threshold=cfg.peak_threshold or None, max_people=cfg.max_people or None,
                     onnx=cfg.onnx or None, backend=cfg.backend, fp16=cfg.fp16,
                     threads=cfg.cpu_threads, input_size=cfg.input_size or None,
                     refine_steps=None if cfg.refine_steps < 0 else cfg.refine_steps)


def stamp_ns(header: object) -> int:
    """A message header's stamp in integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def sorted_people(people: list[Person]) -> list[Person]:
    """People by descending score; ties by root position, so the order is reproducible."""
    return sorted(people, key=lambda p: (-round(float(p.score), 9),
                                         *(round(float(v), 9) for v in p.root)))


def _finite(p: Person) -> bool:
    return bool(np.isfinite(p.joints_3d).all() and np.isfinite(p.keypoints_2d).all()
                and np.isfinite(p.joint_scores).all() and np.isfinite(p.score))


class CameraInfoBuffer:
    """The newest CameraInfos per frame_id (thread-safe: the node adds from the executor thread
    and reads from its worker)."""

    def __init__(self, kept: int = CAMERA_INFOS_KEPT) -> None:
        self.kept = kept
        self.by_frame: dict[str, deque[tuple[int, CameraCalibration]]] = {}
        self.newest: tuple[str, int, CameraCalibration] | None = None
        self.lock = threading.Lock()

    def add(self, frame_id: str, stamp: int, calib: CameraCalibration) -> None:
        with self.lock:
            self.by_frame.setdefault(frame_id, deque(maxlen=self.kept)).append((stamp, calib))
            self.newest = (frame_id, stamp, calib)

    def nearest(self, frame_id: str, stamp: int) -> tuple[int, CameraCalibration, bool] | None:
        """(stamp, calibration, same frame_id) of the CameraInfo nearest in stamp with this
        frame_id (ties: the newest), else the newest of any frame_id; None when none seen."""
        with self.lock:
            kept = self.by_frame.get(frame_id)
            if kept:
                best = min(reversed(kept), key=lambda e: abs(e[0] - stamp))
                return best[0], best[1], True
            if self.newest is not None:
                return self.newest[1], self.newest[2], False
        return None


class FramePipeline:
    """Image messages to people and messages, with the node's configuration (see the module
    docstring). ``image_topic`` is the resolved topic name (for ``intrinsics_matrix: auto``);
    ``warn(kind, text)`` is called once per kind of warning."""

    def __init__(self, est: Estimator, cfg: PoseNodeConfig, image_topic: str = "",
                 warn: Callable[[str, str], None] | None = None) -> None:
        self.est, self.cfg = est, cfg
        self.tracker = Tracker(cfg.tracker) if cfg.tracking else None
        self.fallback = FallbackCamera(cfg.fallback_fx, cfg.fallback_fy, cfg.fallback_cx or None,
                                       cfg.fallback_cy or None)
        self.rectified = cfg.intrinsics_matrix == "P" or (cfg.intrinsics_matrix == "auto"
                                                          and "rect" in image_topic)
        self.infos = CameraInfoBuffer()
        self.notes: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()  # counts that are not warnings
        self.warned: set[str] = set()
        self.warn_cb = warn
        self.last_stamp: int | None = None
        self.depth_cfg = DepthConfig()
        self.hri = None
        if cfg.hri:  # imported only here: hri_msgs is needed only with hri
            from mp3d_ros.hri import HriBodies

            self.hri = HriBodies(cfg.tracker.velocity_smoothing, cfg.tf_prefix)
        self.tracker_reset = False  # whether the last track() reset the tracker

    def note(self, kind: str, text: str) -> None:
        """Count a warning; tell the callback the first time of each kind."""
        self.notes[kind] += 1
        if kind not in self.warned:
            self.warned.add(kind)
            if self.warn_cb is not None:
                self.warn_cb(kind, text)

    def on_camera_info(self, msg: object) -> None:
        """Keep a CameraInfo (any message with its fields) for the images that follow."""
        self.infos.add(str(msg.header.frame_id), stamp_ns(msg.header),
                       CameraCalibration.from_msg(msg))

    def intrinsics(self, frame_id: str, stamp: int, width: int, height: int):
        """The ResolvedIntrinsics of an image (see the module docstring)."""
        found = self.infos.nearest(frame_id, stamp)
        calib = None
        if found is not None:
            info_stamp, calib, same_frame = found
            timeout = self.cfg.camera_info_timeout_s
            if timeout and abs(info_stamp - stamp) > timeout * 1e9:
                self.note("camera_info_stale", f"the nearest CameraInfo is "
                          f"{abs(info_stamp - stamp) * 1e-9:.3f} s from the image stamp "
                          f"(camera_info_timeout_s={timeout:g}): using the fallback intrinsics")
                calib = None
            elif not same_frame:
                self.note("camera_info_frame_id", f"no CameraInfo with the image's frame_id "
                          f"{frame_id!r}: using the newest CameraInfo of another frame")
        resolved = resolve_intrinsics(calib, width, height, self.fallback, self.rectified)
        if calib is None:
            self.note("no_camera_info", "no usable CameraInfo: using the fallback intrinsics")
        elif resolved.problem:
            kind = {"fallback": "camera_info_unusable",
                    "camera_info_rescaled": "camera_info_rescaled"}.get(resolved.source,
                                                                        "camera_info_p_unusable")
            self.note(kind, resolved.problem)
        return resolved

    def track(self, people: list[Person], stamp: int) -> list[Person]:
        if stamp == 0:
            self.note("stamp_zero", "image stamp is zero: tracks age by frames, not seconds")
        elif self.last_stamp is not None and stamp < self.last_stamp:
            self.note("stamp_backwards", f"image stamp went back from {self.last_stamp} to "
                      f"{stamp} ns: tracks reset")
        if stamp:
            self.last_stamp = stamp
        if self.tracker is None:
            return people
        before = self.tracker.frame
        out = self.tracker.update(people, stamp * 1e-9 if stamp else None)
        self.tracker_reset = self.tracker.frame != before + 1  # a reset starts again at frame 0
        return out

    def live_tracks(self) -> list[int]:
        """The ids of the tracks the tracker holds after the last frame (seen or not)."""
        return [] if self.tracker is None else [t.track_id for t in self.tracker.tracks
                                                if t.track_id >= 0]

    def process(self, msg: object, depth: object | None = None) -> FrameResult:
        """One image message (Image or CompressedImage, rclpy or rosbags) and optionally its
        aligned depth image (sensor_msgs/Image, 16UC1 mm or 32FC1 m) to its FrameResult.
        Raises BadFrameError when the frame cannot be processed: ``bad_image``, ``estimator_error``,
        or ``processing_error`` for anything else that went wrong with it."""
        try:
            return self._process(msg, depth)
        except BadFrameError:
            raise
        except Exception as exc:  # noqa: BLE001 - one frame never stops the caller
            raise BadFrameError("processing_error", f"{type(exc).__name__}: {exc}") from exc

    def with_depth(self, people: list[Person], depth: object | None,
                   size: tuple[int, int]) -> list[Person]:
        """People with their root depths from the depth image where it shows their torso."""
        if not self.cfg.depth_topic:
            return people
        if depth is None:
            self.note("depth_missing", "no depth image matched the colour image's stamp: "
                      "monocular root depths")
            return people
        try:
            metres = depth_to_metres(depth)
        except ImageConversionError as exc:
            self.note("bad_depth", f"{exc}: monocular root depths")
            return people
        refined = [refine_with_depth(p, metres, size, self.depth_cfg) for p in people]
        self.stats["people_root_from_depth"] += sum(p.root_from_depth for p in refined)
        return refined

    def _process(self, msg: object, depth: object | None) -> FrameResult:
        try:
            rgb = msg_to_rgb(msg)
        except ImageConversionError as exc:
            raise BadFrameError("bad_image", str(exc)) from exc
        h, w = rgb.shape[:2]
        stamp = stamp_ns(msg.header)
        resolved = self.intrinsics(str(msg.header.frame_id), stamp, w, h)
        try:
            people = self.est(rgb, resolved.intrinsics)
        except (RuntimeError, ValueError) as exc:
            raise BadFrameError("estimator_error", f"{type(exc).__name__}: {exc}") from exc
        finite = [p for p in people if _finite(p)]
        if len(finite) < len(people):
            self.note("nonfinite_person", f"{len(people) - len(finite)} person(s) with "
                      "non-finite values left out")
        people = self.track(sorted_people(self.with_depth(finite, depth, (w, h))), stamp)
        header = Header(stamp=Time(sec=int(msg.header.stamp.sec),
                                   nanosec=int(msg.header.stamp.nanosec)),
                        frame_id=self.cfg.output_frame or str(msg.header.frame_id))
        orientations = [joint_orientations(p.joints_3d) for p in people]
        out = people_to_msg(people, header, orientations)
        m = self.cfg.markers
        markers = (people_markers(out, m.joint_radius, m.bone_width, m.min_confidence)
                   if m.enabled else None)
        debug = None
        if self.cfg.publish_debug_image:
            canvas = rgb.copy()
            for p in people:
                c = track_colour(p.track_id)
                draw_skeleton_2d(canvas, p.keypoints_2d, p.joint_scores, m.min_confidence,
                                 colour=(c.r, c.g, c.b))
            debug = rgb_to_image(canvas, "rgb8", header=header)
        hri = None
        if self.hri is not None:
            hri = self.hri.update(people, orientations, self.live_tracks(), self.tracker_reset,
                                  header, (w, h), stamp or None)
        transforms = []
        if self.cfg.publish_tf or hri is not None:
            transforms = people_transforms(people, header, self.cfg.publish_tf_joints,
                                           self.cfg.tf_prefix,
                                           None if hri is None else hri.body_ids, orientations)
        return FrameResult(people, out, markers, debug, resolved.source, transforms, hri)
