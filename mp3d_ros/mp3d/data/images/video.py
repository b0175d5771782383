"""Video files as datasets (OpenCV), with exact seeking and unreadable frames reported, not fatal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from mp3d.data.images.dataset import Frame, ImageDataset, _file_identity


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
        if that fails too: `mp3d.data.images.skips.FrameSkips` counts it); the next frame seeks
        past it."""
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
