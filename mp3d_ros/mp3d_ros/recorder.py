"""Training-data recorder policy: which camera frames to keep, with no ROS in it.

The recorder node (``recorder_node.py``) hands every incoming frame to :class:`FramePolicy` and
writes the frames it keeps (with the newest CameraInfo) into a rosbag2 bag. The checks, in order,
each with its reason name (the node logs counts per reason):

1. ``max_frames``: the quota is reached; recording stops (the bag is closed).
2. ``no_camera_info``: no CameraInfo has arrived yet and ``require_camera_info`` is set (the
   node holds the newest such frame and decides on it when the first CameraInfo arrives).
3. ``min_interval``: less than ``min_interval_s`` since the last kept frame, by frame stamp (so the
   choice is the same at any replay rate). A stamp earlier than the last kept one (a bag replayed
   in a loop, a camera restarted) restarts the interval.
4. ``duplicate``: the mean absolute difference between grey thumbnails (``thumbnail_width`` pixels
   wide, 0-255 levels) of this frame and the last kept one is below ``duplicate_threshold``
   (0 disables). The thumbnail is only computed for frames that passed the checks above.
5. ``max_size``: keeping the frame would take the kept bytes past ``max_total_mb``; recording
   stops.
6. ``disk_space``: writing it would leave less than ``min_free_mb`` free on the output disk;
   recording stops (the node closes the bag and exits with status 3).

Sizes are in MB = 10**6 bytes. Every threshold is a field of :class:`RecorderConfig`, whose
defaults are also the defaults of ``config/recorder.yaml`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

import cv2
import numpy as np

MB = 1_000_000
REASONS = ("max_frames", "no_camera_info", "min_interval", "duplicate", "max_size", "disk_space")


@dataclass(frozen=True)
class ParamSpec:
    """How one RecorderConfig field is declared as a ROS parameter."""

    description: str
    low: float | None = None  # range, for numbers
    high: float | None = None
    choices: tuple[str, ...] = ()  # allowed values, for strings


@dataclass(frozen=True)
class RecorderConfig:
    """Everything the recorder does, read once from ROS parameters (``recorder_node``)."""

    image_topic: str = "image_raw"
    compressed: bool = False
    camera_info_topic: str = "camera_info"
    output_dir: str = "recordings"
    bag_name: str = ""
    min_interval_s: float = 0.5
    max_frames: int = 0
    max_total_mb: float = 0.0
    duplicate_threshold: float = 2.0
    thumbnail_width: int = 32
    min_free_mb: float = 1024.0
    split_max_seconds: float = 60.0
    split_max_mb: float = 512.0
    require_camera_info: bool = True
    camera_info_every_frame: bool = True
    stamp_source: str = "header"
    reliable: bool = False
    queue_depth: int = 5
    idle_timeout_s: float = 0.0
    stats_period_s: float = 10.0

    def __post_init__(self) -> None:
        for f in fields(self):
            spec = PARAMETERS[f.name]
            value = getattr(self, f.name)
            if spec.low is not None and not spec.low <= value <= spec.high:
                raise ValueError(f"{f.name}={value!r} outside [{spec.low}, {spec.high}]")
            if spec.choices and value not in spec.choices:
                raise ValueError(f"{f.name}={value!r} not one of {spec.choices}")
        if not self.image_topic:
            raise ValueError("image_topic must not be empty")


PARAMETERS: dict[str, ParamSpec] = {
    "image_topic": ParamSpec("Image topic to record (sensor_msgs/Image, or CompressedImage when "
                             "'compressed' is true)."),
    "compressed": ParamSpec("Subscribe to sensor_msgs/CompressedImage instead of Image."),
    "camera_info_topic": ParamSpec("CameraInfo topic; the newest one is written with the kept "
                                   "frames. Empty: no CameraInfo."),
    "output_dir": ParamSpec("Folder the bag folder is created in."),
    "bag_name": ParamSpec("Bag folder name; empty: mp3d_<local date_time>. Never overwritten."),
    "min_interval_s": ParamSpec("Minimum time between kept frames, by frame stamp (s).",
                                0.0, 3600.0),
    "max_frames": ParamSpec("Stop after keeping this many frames (0: no limit).", 0, 10**9),
    "max_total_mb": ParamSpec("Stop before kept data passes this size (MB; 0: no limit).",
                              0.0, 1e9),
    "duplicate_threshold": ParamSpec("Skip a frame whose grey thumbnail differs from the last "
                                     "kept one by less than this mean absolute difference "
                                     "(0-255 grey levels; 0: keep duplicates).", 0.0, 255.0),
    "thumbnail_width": ParamSpec("Width of the grey thumbnail compared for duplicates (px).",
                                 4, 1024),
    "min_free_mb": ParamSpec("Stop recording (close the bag, exit 3) before free disk space "
                             "falls below this (MB).", 0.0, 1e12),
    "split_max_seconds": ParamSpec("Close the bag split after this much bag time (s; 0: no "
                                   "limit). Closed splits survive a crash whole.", 0.0, 1e6),
    "split_max_mb": ParamSpec("Close the bag split before it passes this size (MB; 0: no limit).",
                              0.0, 1e6),
    "require_camera_info": ParamSpec("Skip frames until a CameraInfo has arrived."),
    "camera_info_every_frame": ParamSpec("Write the newest CameraInfo with every kept frame "
                                         "(false: only when its contents change)."),
    "stamp_source": ParamSpec("Bag time of a kept frame: 'header' (image stamp; receive time "
                              "when the stamp is 0) or 'receive' (node clock; the stamp while "
                              "a use_sim_time clock has not started).",
                              choices=("header", "receive")),
    "reliable": ParamSpec("Subscribe reliable instead of best effort (sensor-data QoS)."),
    "queue_depth": ParamSpec("Subscription queue depth.", 1, 1000),
    "idle_timeout_s": ParamSpec("Stop once no frame arrived for this long after the first one "
                                "(s; 0: never).", 0.0, 1e6),
    "stats_period_s": ParamSpec("Log kept/skipped counts this often (s; 0: only at the end).",
                                0.0, 1e6),
}


@dataclass(frozen=True)
class Decision:
    """What to do with one frame: keep it or not (``reason`` says why not), and whether recording
    must stop afterwards."""

    keep: bool
    reason: str = "kept"
    stop: bool = False


def thumbnail_from_grey(grey: np.ndarray, width: int) -> np.ndarray:
    """HxW uint8 grey -> float32 thumbnail ``width`` pixels wide (aspect kept, area averaging)."""
    assert grey.ndim == 2, grey.shape
    h, w = grey.shape
    height = max(1, round(h * width / w))
    return cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def thumbnail_from_rgb(rgb: np.ndarray, width: int) -> np.ndarray:
    """HxWx3 uint8 RGB -> float32 grey thumbnail ``width`` pixels wide."""
    assert rgb.ndim == 3 and rgb.shape[2] == 3, rgb.shape
    return thumbnail_from_grey(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), width)


def thumbnail_from_encoded(data: bytes | np.ndarray, width: int) -> np.ndarray | None:
    """JPEG/PNG bytes -> float32 grey thumbnail; None if undecodable. JPEG is decoded at 1/4
    size (DCT scaling averages, like the thumbnail's area filter); anything else at full size,
    as OpenCV would reduce it by sampling."""
    buf = np.frombuffer(data, np.uint8)
    if not buf.size:
        return None
    jpeg = buf[:2].tobytes() == b"\xff\xd8"
    grey = cv2.imdecode(buf, cv2.IMREAD_REDUCED_GRAYSCALE_4 if jpeg else cv2.IMREAD_GRAYSCALE)
    return None if grey is None else thumbnail_from_grey(grey, width)


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails; infinite when their shapes differ."""
    return float(np.mean(np.abs(a - b))) if a.shape == b.shape else float("inf")


@dataclass
class FramePolicy:
    """Decides frame by frame what to keep (see the module docstring) and counts the reasons."""

    config: RecorderConfig
    kept: int = 0
    kept_bytes: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("kept", *REASONS), 0))
    _last_stamp: int | None = None
    _last_thumb: np.ndarray | None = None

    def consider(self, stamp_ns: int, size_bytes: int, free_bytes: int,
                 thumbnail: Callable[[], np.ndarray | None], has_camera_info: bool = True
                 ) -> Decision:
        """Decide on one frame: its stamp, the bytes it would add to the bag, the free bytes on
        the output disk now, a function computing its thumbnail (called only when needed; None:
        cannot tell), and whether a CameraInfo is at hand. Kept frames become the reference for
        the next decisions."""
        decision = self._decide(stamp_ns, size_bytes, free_bytes, thumbnail, has_camera_info)
        self.counts[decision.reason] += 1
        return decision

    def _decide(self, stamp_ns: int, size_bytes: int, free_bytes: int,
                thumbnail: Callable[[], np.ndarray | None], has_camera_info: bool) -> Decision:
        c = self.config
        if c.max_frames and self.kept >= c.max_frames:
            return Decision(False, "max_frames", stop=True)
        if c.require_camera_info and not has_camera_info:
            return Decision(False, "no_camera_info")
        if (self._last_stamp is not None and stamp_ns >= self._last_stamp
                and stamp_ns - self._last_stamp < c.min_interval_s * 1e9):
            return Decision(False, "min_interval")
        thumb = thumbnail() if c.duplicate_threshold > 0 else None
        if (thumb is not None and self._last_thumb is not None
                and mean_abs_diff(thumb, self._last_thumb) < c.duplicate_threshold):
            return Decision(False, "duplicate")
        if c.max_total_mb and self.kept_bytes + size_bytes > c.max_total_mb * MB:
            return Decision(False, "max_size", stop=True)
        if free_bytes - size_bytes < c.min_free_mb * MB:
            return Decision(False, "disk_space", stop=True)
        self.kept += 1
        self.kept_bytes += size_bytes
        self._last_stamp = stamp_ns
        self._last_thumb = thumb
        return Decision(True, "kept", stop=bool(c.max_frames) and self.kept >= c.max_frames)

    def skip(self, reason: str) -> None:
        """Count a frame the caller skipped without asking (e.g. one replaced while waiting)."""
        self.counts[reason] += 1

    def disk_ok(self, free_bytes: int) -> bool:
        """True if recording may start: at least ``min_free_mb`` free."""
        return free_bytes >= self.config.min_free_mb * MB
