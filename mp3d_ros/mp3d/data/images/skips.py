"""Frames that cannot be decoded: skipped and counted by reason (`FrameSkips`), or, with --strict,
refused (`BadFrameError`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from mp3d.data.imagecodec import ImageConversionError


class BadFrameError(ValueError):
    """A frame that cannot be decoded, with ``--strict``; the message names the frame and why."""


@dataclass
class FrameSkips:
    """Frames that cannot be decoded, skipped and counted by reason (``bad_image``:
    ImageConversionError; ``unreadable``: OSError), or with `strict` refused: the first one
    raises BadFrameError. ``first``: the first skipped frame and its error, for the summary."""

    strict: bool = False
    counts: Counter = field(default_factory=Counter)
    first: str | None = None

    def read(self, frame) -> np.ndarray | None:
        """``frame.rgb`` (an `mp3d.data.images.dataset.Frame`), or None for a frame that cannot be
        decoded (counted; BadFrameError when strict). Other errors propagate."""
        try:
            return frame.rgb
        except (ImageConversionError, OSError) as exc:
            reason = "bad_image" if isinstance(exc, ImageConversionError) else "unreadable"
            text = f"frame {frame.frame_id}: {reason}: {' '.join(str(exc).split())}"
            if self.strict:
                raise BadFrameError(f"{text} (--strict stops at the first frame that cannot be "
                                    "decoded; without it such frames are skipped)") from exc
            self.counts[reason] += 1
            self.first = self.first or text
            return None

    @property
    def skipped(self) -> int:
        """Frames skipped so far."""
        return sum(self.counts.values())

    def summary(self, total: int) -> str:
        """One line: ``skipped 3 of 120 frames: bad_image 2, unreadable 1 (first: ...)``."""
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))
        return (f"skipped {self.skipped} of {total} frames" + (
            f": {reasons} (first: {self.first})" if self.skipped else ""))
