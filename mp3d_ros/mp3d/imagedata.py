"""Unlabeled image datasets (video files, image folders, rosbag2 bags) behind one interface.

A dataset is a sequence of `Frame`s: ``frame_id`` (readable, unique in the dataset), ``stamp``
(seconds), ``index``, ``source`` (identity of the recording, used by `mp3d.teachers.TeacherCache`),
optional ``camera`` (a `mp3d.geometry.CameraCalibration`, from a bag's CameraInfo; resolve it with
`mp3d.geometry.resolve_intrinsics`) and ``rgb`` (HxWx3 uint8, decoded only when asked for)::

    ds = open_dataset("cache/video/vtest.avi")        # or an image folder, or a bag
    train, val = split_by_time(ds, 0.0, 0.75), split_by_time(ds, 0.75, 1.0)
    for frame in train:
        img = frame.rgb

Kinds:

- `VideoDataset`: any file ``cv2.VideoCapture`` reads; stamps = index / fps (the file's fps unless
  given).
- `ImageFolderDataset`: the images of one folder in sorted name order; stamps = index / fps.
- `BagDataset`: one image topic (``sensor_msgs/msg/Image`` or ``CompressedImage``) of a rosbag2
  recording (folder with metadata.yaml, or a bare ``.mcap`` / ``.db3`` file), read through
  ``mp3d_ros.bagio`` (pure Python, no rclpy; imported inside `BagDataset`'s methods only, so this
  module imports with neither ROS nor rosbags installed); stamps from ``header.stamp``; the camera
  from a CameraInfo topic (nearest stamp). Images are decoded by `mp3d.imagecodec` (the codec the
  pose node and replay use).

Datasets keep file handles open for fast sequential reads; they are not thread-safe, but they pickle
(handles are reopened), so each DataLoader worker gets its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mp3d.geometry import CameraCalibration
from mp3d.imagecodec import msg_to_rgb

__all__ = [
    "BagDataset",
    "BagDatasetError",
    "Frame",
    "ImageDataset",
    "ImageFolderDataset",
    "IMAGE_EXTENSIONS",
    "SubsetDataset",
    "VideoDataset",
    "open_dataset",
    "split_by_time",
]

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp",
                                     ".ppm", ".pgm")
BAG_EXTENSIONS: tuple[str, ...] = (".mcap", ".db3")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"


def _head_sha256(path: Path, nbytes: int = 1 << 20) -> str:
    """sha256 of a file's first `nbytes` bytes."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read(nbytes)).hexdigest()


def _file_identity(path: Path, nbytes: int = 1 << 20) -> str:
    """A cheap content identity of a file: size and sha256 of the first `nbytes` bytes."""
    return f"{path.stat().st_size}:{_head_sha256(path, nbytes)[:16]}"


# ------------------------------------------------------------------------------------------------
# Frames and the dataset interface


@dataclass(frozen=True, eq=False)
class Frame:
    """One image of a dataset; ``rgb`` (HxWx3 uint8) is decoded on each access, not stored.

    camera: what the recording's CameraInfo says (K, P, calibrated size) or None; the
    intrinsics of the image are ``resolve_intrinsics(frame.camera, w, h, fallback)``.
    fingerprint: optional per-image content check appended to `identity` (image folders use file
    size + head hash).
    """

    frame_id: str
    stamp: float
    index: int
    source: str
    loader: Callable[[], np.ndarray] = field(repr=False)
    camera: CameraCalibration | None = field(default=None, repr=False)
    fingerprint: Callable[[], str] | None = field(default=None, repr=False)

    @property
    def rgb(self) -> np.ndarray:
        """The image, (H, W, 3) uint8 RGB, C-contiguous."""
        img = self.loader()
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"{self.frame_id}: loader gave {img.shape} {img.dtype}")
        return np.ascontiguousarray(img)

    @property
    def identity(self) -> str:
        """Identity of the image content: source, frame id and fingerprint (cache key input)."""
        base = f"{self.source}|{self.frame_id}"
        return base if self.fingerprint is None else f"{base}|{self.fingerprint()}"


class ImageDataset(Sequence):
    """A sequence of `Frame`s. Subclasses set ``source``, ``name``, ``stamps`` (F,) seconds and
    ``frame_ids`` (F,), and implement `read_rgb`; they may override `camera`, `_fingerprint`
    and `_iter_indices` (fast sequential reading)."""

    source: str
    name: str
    stamps: np.ndarray
    frame_ids: list[str]

    def __len__(self) -> int:
        return len(self.frame_ids)

    def read_rgb(self, i: int) -> np.ndarray:
        """Image `i`, (H, W, 3) uint8 RGB."""
        raise NotImplementedError

    def camera(self, i: int) -> CameraCalibration | None:
        """The calibration of image `i`'s camera, or None when the dataset has none."""
        return None

    def _fingerprint(self, i: int) -> Callable[[], str] | None:
        return None

    def frame(self, i: int, loader: Callable[[], np.ndarray] | None = None) -> Frame:
        """Frame `i` (negative indices count from the end)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range for {n} frames")
        i = i % n
        return Frame(self.frame_ids[i], float(self.stamps[i]), i, self.source,
                     loader if loader is not None else (lambda: self.read_rgb(i)),
                     self.camera(i), self._fingerprint(i))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return SubsetDataset(self, range(len(self))[i])
        return self.frame(int(i))

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        for i in indices:
            yield self.frame(i)

    def __iter__(self) -> Iterator[Frame]:
        return self._iter_indices(range(len(self)))

    def subset(self, indices: Sequence[int]) -> SubsetDataset:
        """The frames at `indices` (same frame ids and identities as here)."""
        return SubsetDataset(self, indices)

    def close(self) -> None:
        """Release open files (they reopen on the next read)."""

    def __enter__(self) -> ImageDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        span = f"{self.stamps[0]:.3f}..{self.stamps[-1]:.3f} s" if len(self) else "empty"
        return f"{type(self).__name__}({self.name!r}, {len(self)} frames, {span})"


class SubsetDataset(ImageDataset):
    """Some frames of a parent dataset, in the given order; frames keep the parent's ids."""

    def __init__(self, parent: ImageDataset, indices: Sequence[int]) -> None:
        if isinstance(parent, SubsetDataset):
            indices = [parent.indices[i] for i in indices]
            parent = parent.parent
        self.parent = parent
        self.indices = np.asarray(list(indices), dtype=np.int64).reshape(-1)
        n = len(parent)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= n):
            raise IndexError(f"subset indices outside 0..{n - 1}")
        self.source, self.name = parent.source, parent.name
        self.stamps = parent.stamps[self.indices]
        self.frame_ids = [parent.frame_ids[i] for i in self.indices]

    def frame(self, i: int, loader: Callable[[], np.ndarray] | None = None) -> Frame:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"frame {i} out of range for {n} frames")
        return self.parent.frame(int(self.indices[i % n]), loader)

    def read_rgb(self, i: int) -> np.ndarray:
        return self.parent.read_rgb(int(self.indices[i]))

    def camera(self, i: int) -> CameraCalibration | None:
        return self.parent.camera(int(self.indices[i]))

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        return self.parent._iter_indices([int(self.indices[i]) for i in indices])

    def close(self) -> None:
        self.parent.close()


def split_by_time(dataset: ImageDataset, start_frac: float, end_frac: float) -> SubsetDataset:
    """Frames whose stamp lies in [start_frac, end_frac) of the dataset's time span.

    The span runs from the earliest to the latest stamp; ``end_frac >= 1`` includes the last
    frame, so ``(0, f)`` and ``(f, 1)`` split a dataset into disjoint parts that cover it all
    (train on the earlier part, validate on the later). Frames keep their order.
    """
    if not 0.0 <= start_frac <= end_frac:
        raise ValueError(f"need 0 <= start_frac <= end_frac, got {start_frac}, {end_frac}")
    stamps = np.asarray(dataset.stamps, dtype=np.float64)
    if len(stamps) == 0:
        return SubsetDataset(dataset, [])
    t0, t1 = stamps.min(), stamps.max()
    rel = (stamps - t0) / (t1 - t0) if t1 > t0 else np.zeros_like(stamps)
    keep = rel >= start_frac
    keep &= (rel < end_frac) | (end_frac >= 1.0)
    return SubsetDataset(dataset, np.flatnonzero(keep))


# ------------------------------------------------------------------------------------------------
# Video files


class VideoDataset(ImageDataset):
    """Frames of a video file read with OpenCV.

    fps: frames per second for the stamps (index / fps); None takes the file's (error if it has
    none). exact_count: count frames by grabbing them all (reliable; a fraction of decode time)
    instead of trusting the container's frame count. Sequential iteration seeks instead of
    grabbing forward when the next wanted frame is more than `seek_ahead` frames ahead.
    """

    seek_ahead: int = 64

    def __init__(self, path: str | Path, fps: float | None = None, exact_count: bool = True
                 ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"video not found: {self.path}")
        cap = self._open()
        try:
            file_fps = float(cap.get(cv2.CAP_PROP_FPS))
            if exact_count:
                n = 0
                while cap.grab():
                    n += 1
            else:
                n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
        self.fps = float(fps) if fps is not None else file_fps
        if not self.fps > 0:
            raise ValueError(f"{self.path}: the file gives no fps ({file_fps}); pass fps=")
        self.name = self.path.name
        self.source = f"video:{self.path.name}:{_file_identity(self.path)}"
        self.stamps = np.arange(n, dtype=np.float64) / self.fps
        self.frame_ids = [f"{self.path.name}:frame_{i:06d}" for i in range(n)]
        self._cap: cv2.VideoCapture | None = None
        self._pos = 0

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise OSError(f"OpenCV cannot open video {self.path}")
        return cap

    def read_rgb(self, i: int) -> np.ndarray:
        if self._cap is None:
            self._cap, self._pos = self._open(), 0
        if i != self._pos:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, bgr = self._cap.read()
        if not ok:
            self.close()
            raise OSError(f"{self.path}: cannot read frame {i}")
        self._pos = i + 1
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        """Sequential reading with a private capture: frames are grabbed in order and decoded
        only if their ``rgb`` is read before the iterator moves on (else by seeking). A frame
        that cannot be grabbed is still yielded, and reading its ``rgb`` seeks to it (OSError
        if that fails too: `mp3d.pool.FrameSkips` counts it); the next frame seeks past it."""
        indices = list(indices)
        if not indices:
            return
        cap = self._open()
        try:
            pos: int | None = 0  # index of the next frame grab() returns; None: unknown, seek
            current = [-1]  # frame the capture holds, decodable by retrieve()
            for i in indices:
                if pos is None or i < pos or i - pos > self.seek_ahead:  # seek
                    cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                    pos = i
                while pos <= i and cap.grab():
                    pos += 1
                if pos <= i:  # grab() failed on the way to frame i
                    current[0], pos = -1, None
                else:
                    current[0] = i

                def load(i: int = i) -> np.ndarray:
                    if current[0] == i:
                        ok, bgr = cap.retrieve()
                        if ok:
                            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                    return self.read_rgb(i)

                yield self.frame(i, load)
        finally:
            current[0] = -1
            cap.release()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cap": None, "_pos": 0}


# ------------------------------------------------------------------------------------------------
# Image folders


class ImageFolderDataset(ImageDataset):
    """The images of one folder (not recursive), in sorted file-name order.

    fps: stamps are index / fps seconds; extensions: file suffixes taken (case-insensitive).
    Each frame's identity includes the file's size and the sha256 of its first 64 KiB.
    """

    def __init__(self, path: str | Path, fps: float = 1.0,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise NotADirectoryError(f"not a folder: {self.path}")
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        exts = {e.lower() for e in extensions}
        self.files = sorted(p for p in self.path.iterdir()
                            if p.is_file() and p.suffix.lower() in exts)
        self.fps = float(fps)
        self.name = self.path.name
        self.source = f"images:{self.path.resolve()}"
        self.stamps = np.arange(len(self.files), dtype=np.float64) / self.fps
        self.frame_ids = [p.name for p in self.files]

    def read_rgb(self, i: int) -> np.ndarray:
        path = self.files[i]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise OSError(f"OpenCV cannot read image {path}")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def _fingerprint(self, i: int) -> Callable[[], str]:
        path = self.files[i]
        return lambda: _file_identity(path, 1 << 16)


# ------------------------------------------------------------------------------------------------
# rosbag2


def _bag_storage_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in BAG_EXTENSIONS)


def _is_bag(path: Path) -> bool:
    if path.is_file():
        return path.suffix in BAG_EXTENSIONS
    return path.is_dir() and ((path / "metadata.yaml").is_file() or bool(_bag_storage_files(path)))


class BagDatasetError(ValueError):
    """A bag BagDataset cannot use: its recording did not close (the message says how to
    recover it), rosbags cannot read it, or it lacks the image or CameraInfo topic asked for
    (the message lists its topics). One line."""


class BagDataset(ImageDataset):
    """One image topic of a rosbag2 recording (sqlite3 or MCAP), read through `mp3d_ros.bagio`.

    path: the bag folder (with metadata.yaml) or a bare .mcap / .db3 file; topic: an Image or
    CompressedImage topic (None: the only one in the bag); camera_info_topic: "auto" (the image
    topic's sibling ``camera_info``, else the only CameraInfo topic, else none), a topic name, or
    None. Stamps are header stamps (seconds); frames are in recording order. ``camera``: the
    CameraInfo message nearest in header stamp (an earlier one on a tie), as a
    `CameraCalibration` with its calibrated size, for `mp3d.geometry.resolve_intrinsics`.

    ``mp3d_ros.bagio`` (pure Python: rosbags and mcap, no rclpy) is imported inside the methods
    only, so this module imports where neither ROS nor rosbags is installed. A bag that cannot
    be used raises `BagDatasetError` (a ValueError) at construction, e.g. an unclosed recording,
    with the `recover` command to run; a frame whose message cannot be read or deserialised
    raises OSError when its ``rgb`` is read, a message the codec refuses ImageConversionError.
    """

    def __init__(self, path: str | Path, topic: str | None = None,
                 camera_info_topic: str | None = "auto") -> None:
        from mp3d_ros import bagio

        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag not found: {self.path}")
        if self.path.suffix == ".bag":
            raise ValueError(f"{self.path}: ROS 1 bags are not supported, only rosbag2")
        try:
            types = {name: t.msgtype for name, t in bagio.bag_topics(self.path).items()}
            topic = self._pick_image_topic(topic, types)
            self._reader = bagio.TopicReader(self.path, topic)
            self.camera_info_topic = self._pick_info_topic(camera_info_topic, types, topic)
            infos = [] if self.camera_info_topic is None else [
                (msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
                 CameraCalibration.from_msg(msg))
                for *_, msg in bagio.read_messages(self.path, [self.camera_info_topic])]
        except bagio.BagError as exc:
            raise BagDatasetError(" ".join(str(exc).split())) from exc
        self.topic = topic
        self.msgtype = types[topic]
        self.log_ns = self._reader.log_ns
        self.stamp_ns = self._reader.stamp_ns
        self.stamps = self.stamp_ns.astype(np.float64) * 1e-9
        self.name = self.path.name
        files = ",".join(f"{p.name}:{_file_identity(p)}" for p in _bag_storage_files(self.path))
        self.source = f"rosbag2:{self.path.name}:{topic}:{files}"
        self.frame_ids = [f"{self.path.name}:{topic}:{i:06d}@{s}"
                          for i, s in enumerate(self.stamp_ns.tolist())]
        infos.sort(key=lambda info: info[0])  # stable: equal stamps keep recording order
        self.info_stamp_ns = np.array([ns for ns, _ in infos], dtype=np.int64)
        self.info_cameras = [calib for _, calib in infos]

    @staticmethod
    def _topic_list(types: dict[str, str]) -> str:
        return ", ".join(f"{name} ({msgtype})" for name, msgtype in sorted(types.items())) or "none"

    def _pick_image_topic(self, wanted: str | None, types: dict[str, str]) -> str:
        images = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
        if wanted is None:
            if not images:
                raise BagDatasetError(f"{self.path}: no image topic ({' or '.join(IMAGE_TYPES)})"
                                      f"; topics: {self._topic_list(types)}")
            if len(images) > 1:
                raise BagDatasetError(f"{self.path}: pass topic=, image topics here: {images}")
            return images[0]
        if wanted not in images:
            raise BagDatasetError(f"{self.path}: {wanted!r} is not an image topic; image topics: "
                                  f"{images}; topics: {self._topic_list(types)}")
        return wanted

    def _pick_info_topic(self, wanted: str | None, types: dict[str, str], topic: str
                         ) -> str | None:
        infos = sorted(t for t, m in types.items() if m == CAMERA_INFO_TYPE)
        if wanted is None:
            return None
        if wanted != "auto":
            if wanted not in infos:
                raise BagDatasetError(f"{self.path}: {wanted!r} is not a CameraInfo topic; "
                                      f"CameraInfo topics: {infos}")
            return wanted
        parts = topic.rstrip("/").split("/")
        for cut in (1, 2):  # /cam/image_raw -> /cam/camera_info; /cam/image_raw/compressed too
            sibling = "/".join(parts[:-cut] + ["camera_info"])
            if sibling in infos:
                return sibling
        return infos[0] if len(infos) == 1 else None

    def _decode(self, raw: bytes, i: int) -> np.ndarray:
        from mp3d_ros import bagio

        try:
            msg = self._reader.deserialize(raw, i)
        except bagio.BagError as exc:
            raise OSError(str(exc)) from exc
        return msg_to_rgb(msg)

    def read_rgb(self, i: int) -> np.ndarray:
        from mp3d_ros import bagio

        try:
            raw = self._reader.raw(i)
        except bagio.BagError as exc:
            raise OSError(str(exc)) from exc
        return self._decode(raw, i)

    def camera(self, i: int) -> CameraCalibration | None:
        if not self.info_cameras:
            return None
        s = int(self.stamp_ns[i])
        j = int(np.searchsorted(self.info_stamp_ns, s))
        cands = [k for k in (j - 1, j) if 0 <= k < len(self.info_cameras)]
        return self.info_cameras[min(cands, key=lambda k: abs(int(self.info_stamp_ns[k]) - s))]

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        """One pass over the bag between the first and last wanted frames (in recording order;
        other orders read frame by frame); raw messages are kept by each frame and decoded only
        when its ``rgb`` is read."""
        from mp3d_ros import bagio

        indices = list(indices)
        if any(b <= a for a, b in zip(indices, indices[1:])):
            yield from super()._iter_indices(indices)
            return
        try:
            for i, raw in self._reader.raws(indices):
                yield self.frame(i, lambda raw=raw, i=i: self._decode(raw, i))
        except bagio.BagError as exc:
            raise OSError(str(exc)) from exc

    def close(self) -> None:
        self._reader.close()


# ------------------------------------------------------------------------------------------------


def open_dataset(path: str | Path, topic: str | None = None, **kw) -> ImageDataset:
    """Open a dataset by what `path` is: a rosbag2 folder (metadata.yaml or .mcap/.db3 files
    inside) or a .mcap/.db3 file -> `BagDataset` (with `topic`); another folder ->
    `ImageFolderDataset`; another file -> `VideoDataset`. Keyword arguments go to the class."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if _is_bag(path):
        return BagDataset(path, topic=topic, **kw)
    if topic is not None:
        raise ValueError(f"topic= applies to bags only, {path} is not a rosbag2 recording")
    if path.is_dir():
        return ImageFolderDataset(path, **kw)
    return VideoDataset(path, **kw)
