"""Folders of image files as datasets."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from mp3d.data.images.dataset import IMAGE_EXTENSIONS, ImageDataset, _file_identity


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
