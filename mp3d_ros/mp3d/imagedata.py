"""Unlabeled image datasets (video files, image folders, rosbag2 bags) behind one interface.

A dataset is a sequence of `Frame`s: ``frame_id`` (readable, unique in the dataset), ``stamp``
(seconds), ``index``, ``source`` (identity of the recording, used by `mp3d.teachers.TeacherCache`),
optional intrinsics ``K`` (3x3, from a bag's CameraInfo) and ``rgb`` (HxWx3 uint8, decoded only
when asked for)::

    ds = open_dataset("cache/video/vtest.avi")        # or an image folder, or a bag
    train, val = split_by_time(ds, 0.0, 0.75), split_by_time(ds, 0.75, 1.0)
    for frame in train:
        img = frame.rgb

Kinds:

- `VideoDataset`: any file ``cv2.VideoCapture`` reads; stamps = index / fps (the file's fps unless
  given).
- `ImageFolderDataset`: the images of one folder in sorted name order; stamps = index / fps.
- `BagDataset`: one image topic (``sensor_msgs/msg/Image`` or ``CompressedImage``) of a rosbag2
  recording (folder with metadata.yaml, or a bare ``.mcap`` / ``.db3`` file), read with the pure
  Python ``rosbags`` library (imported lazily: no ROS install needed); stamps from
  ``header.stamp``; intrinsics from a CameraInfo topic (nearest stamp). Images are decoded by
  `mp3d.imagecodec` (the codec the pose node and replay use).

Datasets keep file handles open for fast sequential reads; they are not thread-safe, but they pickle
(handles are reopened), so each DataLoader worker gets its own.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from mp3d.imagecodec import msg_to_rgb

__all__ = [
    "BagDataset",
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

    K: (3, 3) float64 camera matrix or None; fingerprint: optional per-image content check
    appended to `identity` (image folders use file size + head hash).
    """

    frame_id: str
    stamp: float
    index: int
    source: str
    loader: Callable[[], np.ndarray] = field(repr=False)
    K: np.ndarray | None = field(default=None, repr=False)
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
    ``frame_ids`` (F,), and implement `read_rgb`; they may override `intrinsics`, `_fingerprint`
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

    def intrinsics(self, i: int) -> np.ndarray | None:
        """Camera matrix (3, 3) of image `i`, or None when the dataset has none."""
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
                     self.intrinsics(i), self._fingerprint(i))

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

    def intrinsics(self, i: int) -> np.ndarray | None:
        return self.parent.intrinsics(int(self.indices[i]))

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
        only if their ``rgb`` is read before the iterator moves on (else by seeking)."""
        indices = list(indices)
        if not indices:
            return
        cap = self._open()
        try:
            pos = 0  # index of the next frame grab() returns
            current = [-1]  # frame the capture holds, decodable by retrieve()
            for i in indices:
                if i < pos or i - pos > self.seek_ahead:  # backwards or far ahead: seek
                    cap.set(cv2.CAP_PROP_POS_FRAMES, i)
                    pos = i
                while pos <= i:
                    if not cap.grab():
                        raise OSError(f"{self.path}: cannot read frame {pos}")
                    pos += 1
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


def _cdr_header_stamp_ns(raw: bytes | memoryview) -> int:
    """header.stamp in ns of a CDR-serialised message whose first field is a std_msgs/Header
    (Image, CompressedImage, CameraInfo): 4-byte encapsulation, then int32 sec, uint32 nanosec."""
    if len(raw) < 12:
        raise ValueError(f"CDR message too short ({len(raw)} bytes)")
    little = raw[1] & 1  # encapsulation id 0x0001 (CDR_LE) / 0x0000 (CDR_BE), and the PL_ ones
    sec, nsec = struct.unpack_from("<iI" if little else ">iI", raw, 4)
    return sec * 1_000_000_000 + nsec


def _bag_storage_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in BAG_EXTENSIONS)


def _is_bag(path: Path) -> bool:
    if path.is_file():
        return path.suffix in BAG_EXTENSIONS
    return path.is_dir() and ((path / "metadata.yaml").is_file() or bool(_bag_storage_files(path)))


class BagDataset(ImageDataset):
    """One image topic of a rosbag2 recording (sqlite3 or MCAP), read with ``rosbags``.

    path: the bag folder (with metadata.yaml) or a bare .mcap / .db3 file; topic: an Image or
    CompressedImage topic (None: the only one in the bag); camera_info_topic: "auto" (the image
    topic's sibling ``camera_info``, else the only CameraInfo topic, else none), a topic name, or
    None. Stamps are header stamps (seconds); frames are in recording order. Intrinsics: the K of
    the CameraInfo message nearest in header stamp.
    """

    def __init__(self, path: str | Path, topic: str | None = None,
                 camera_info_topic: str | None = "auto") -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag not found: {self.path}")
        if self.path.suffix == ".bag":
            raise ValueError(f"{self.path}: ROS 1 bags are not supported, only rosbag2")
        self._reader = None
        reader = self._open()
        types = {}
        for c in reader.connections:
            types.setdefault(c.topic, c.msgtype)
        image_topics = sorted(t for t, m in types.items() if m in IMAGE_TYPES)
        if topic is None:
            if len(image_topics) != 1:
                raise ValueError(f"{self.path}: pass topic=, image topics here: {image_topics}")
            topic = image_topics[0]
        if topic not in image_topics:
            raise ValueError(f"{self.path}: {topic!r} is not an image topic; image topics: "
                             f"{image_topics} (all: {sorted(types)})")
        self.topic = topic
        self.msgtype = types[topic]
        self._conns = [c for c in reader.connections if c.topic == topic]
        log_ns, stamp_ns = [], []
        for _, t, raw in reader.messages(connections=self._conns):
            log_ns.append(t)
            stamp_ns.append(_cdr_header_stamp_ns(raw))
        self.log_ns = np.array(log_ns, dtype=np.int64)
        self.stamp_ns = np.array(stamp_ns, dtype=np.int64)
        # rank of each message among those with the same log time (to find it again)
        self._rank = np.zeros(len(log_ns), dtype=np.int64)
        for i in range(1, len(log_ns)):
            if log_ns[i] == log_ns[i - 1]:
                self._rank[i] = self._rank[i - 1] + 1
        self.stamps = self.stamp_ns.astype(np.float64) * 1e-9
        self.name = self.path.name
        files = ",".join(f"{p.name}:{_file_identity(p)}" for p in _bag_storage_files(self.path))
        self.source = f"rosbag2:{self.path.name}:{topic}:{files}"
        self.frame_ids = [f"{self.path.name}:{topic}:{i:06d}@{s}"
                          for i, s in enumerate(stamp_ns)]
        self.camera_info_topic = self._pick_info_topic(camera_info_topic, types)
        self.info_stamp_ns = np.zeros(0, dtype=np.int64)
        self.info_K = np.zeros((0, 3, 3))
        if self.camera_info_topic is not None:
            conns = [c for c in reader.connections if c.topic == self.camera_info_topic]
            ks, ts = [], []
            for c, _, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, c.msgtype)
                k = msg.k if hasattr(msg, "k") else msg.K  # ROS 2 names it k, ROS 1 K
                ks.append(np.asarray(k, dtype=np.float64).reshape(3, 3))
                ts.append(msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec)
            order = np.argsort(ts, kind="stable")
            self.info_stamp_ns = np.array(ts, dtype=np.int64)[order]
            self.info_K = np.array(ks, dtype=np.float64).reshape(-1, 3, 3)[order]

    def _pick_info_topic(self, wanted: str | None, types: dict[str, str]) -> str | None:
        infos = sorted(t for t, m in types.items() if m == CAMERA_INFO_TYPE)
        if wanted is None:
            return None
        if wanted != "auto":
            if wanted not in infos:
                raise ValueError(f"{self.path}: {wanted!r} is not a CameraInfo topic; "
                                 f"CameraInfo topics: {infos}")
            return wanted
        parts = self.topic.rstrip("/").split("/")
        for cut in (1, 2):  # /cam/image_raw -> /cam/camera_info; /cam/image_raw/compressed too
            sibling = "/".join(parts[:-cut] + ["camera_info"])
            if sibling in infos:
                return sibling
        return infos[0] if len(infos) == 1 else None

    def _open(self):
        if self._reader is None:
            from rosbags.highlevel import AnyReader
            from rosbags.typesys import Stores, get_typestore

            reader = AnyReader([self.path], default_typestore=get_typestore(Stores.LATEST))
            reader.open()
            self._reader = reader
            if getattr(self, "topic", None) is not None:  # reopened: new connection objects
                self._conns = [c for c in reader.connections if c.topic == self.topic]
        return self._reader

    def _decode(self, raw: bytes | memoryview, msgtype: str) -> np.ndarray:
        return msg_to_rgb(self._open().deserialize(raw, msgtype))

    def read_rgb(self, i: int) -> np.ndarray:
        reader = self._open()
        t, rank = int(self.log_ns[i]), int(self._rank[i])
        for k, (c, _, raw) in enumerate(reader.messages(connections=self._conns, start=t,
                                                        stop=t + 1)):
            if k == rank:
                return self._decode(raw, c.msgtype)
        raise OSError(f"{self.path}: message {i} of {self.topic} not found again")

    def intrinsics(self, i: int) -> np.ndarray | None:
        if len(self.info_K) == 0:
            return None
        s = self.stamp_ns[i]
        j = int(np.searchsorted(self.info_stamp_ns, s))
        cands = [k for k in (j - 1, j) if 0 <= k < len(self.info_K)]
        best = min(cands, key=lambda k: abs(int(self.info_stamp_ns[k]) - int(s)))
        return self.info_K[best].copy()

    def _iter_indices(self, indices: Sequence[int]) -> Iterator[Frame]:
        """One pass over the bag between the first and last wanted log times; raw messages are
        kept by each frame and decoded only when its ``rgb`` is read."""
        indices = list(indices)
        if not indices:
            return
        if any(b < a for a, b in zip(indices, indices[1:])):  # not in recording order
            yield from super()._iter_indices(indices)
            return
        wanted = set(indices)
        reader = self._open()
        start, stop = int(self.log_ns[indices[0]]), int(self.log_ns[indices[-1]]) + 1
        i = int(np.searchsorted(self.log_ns, start))  # first message at or after `start`
        for c, _, raw in reader.messages(connections=self._conns, start=start, stop=stop):
            if i in wanted:
                yield self.frame(i, lambda raw=raw, c=c: self._decode(raw, c.msgtype))
            i += 1

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None, "_conns": None}  # both hold open files


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
