"""Frames and the dataset interface: `Frame`, `ImageDataset`, subsets by time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mp3d.common.geometry import CameraCalibration

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
