"""The benchmark's images: frames of the bundled clip as JPEG, and composites of exactly N people
cut from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from mp3d.common.paths import REPO

CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
SIZE = (640, 480)  # w, h of the timed frames
JPEG_QUALITY = 90
# Compositing: people this tall (px), cells about half as wide as tall (a standing person).
PERSON_HEIGHT_PX = 130
CELL_ASPECT = 0.5
CELL_FILL = 0.9  # a person fills at most this fraction of its cell's width and height
CUT_MIN_SCORE = 0.7
CUT_JOINT_SCORE = 0.3
CUT_MIN_HEIGHT_PX = 60
MASK_DIFF = 30  # grey levels from the median background that count as the person

Crop = tuple[np.ndarray, np.ndarray]  # (h, w, 3) uint8 RGB and (h, w) float32 alpha in [0, 1]




def clip_frames(path: Path = CLIP, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """Every frame of a dataset (mp3d.data.images.open_dataset), resized to size (w, h), RGB."""
    from mp3d.data.images import open_dataset

    ds = open_dataset(path)
    return [cv2.resize(ds.read_rgb(i), size, interpolation=cv2.INTER_AREA)
            for i in range(len(ds))]


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """RGB uint8 image -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 image (what each timed call starts with)."""
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def person_box(keypoints: np.ndarray) -> np.ndarray:
    """(17, 2) keypoints (px) -> padded box (x0, y0, x1, y1) px around the whole person: the
    keypoints run from the eyes to the ankles, so the box grows most above (the head) and a
    little below (the feet), and sideways by 15% of the height (arms, coat)."""
    (x0, y0), (x1, y1) = keypoints.min(0), keypoints.max(0)
    h = y1 - y0
    return np.array([x0 - 0.15 * h, y0 - 0.18 * h, x1 + 0.15 * h, y1 + 0.08 * h])


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return not (a[2] < b[0] or b[2] < a[0] or a[3] < b[1] or b[3] < a[1])


def cut_people(frames: Sequence[np.ndarray], estimate: Callable[[np.ndarray], list],
               background: np.ndarray) -> list[Crop]:
    """Whole, separate people of `frames` (RGB, one size) as crops with soft masks.

    estimate: image -> people (mp3d.infer.people.Person); a person is cut when its score is at least
    CUT_MIN_SCORE, all 17 joints score CUT_JOINT_SCORE, its padded box (:func:`person_box`) is
    CUT_MIN_HEIGHT_PX tall or more, lies inside the image and touches no other person's box.
    The mask: pixels farther than MASK_DIFF from `background`, dilated and feathered."""
    h, w = background.shape[:2]
    crops = []
    for rgb in frames:
        people = estimate(rgb)
        boxes = [person_box(p.keypoints_2d) for p in people]
        for i, (p, b) in enumerate(zip(people, boxes)):
            whole = p.score >= CUT_MIN_SCORE and bool(np.all(p.joint_scores >= CUT_JOINT_SCORE))
            inside = b[0] >= 0 and b[1] >= 0 and b[2] <= w and b[3] <= h
            alone = not any(_overlaps(b, o) for j, o in enumerate(boxes) if j != i)
            if not (whole and inside and alone and b[3] - b[1] >= CUT_MIN_HEIGHT_PX):
                continue
            x0, y0, x1, y1 = np.round(b).astype(int)
            crop = rgb[y0:y1, x0:x1]
            diff = np.abs(crop.astype(np.int16) - background[y0:y1, x0:x1]).max(axis=2)
            mask = cv2.dilate((diff > MASK_DIFF).astype(np.uint8), np.ones((5, 5), np.uint8))
            crops.append((crop.copy(), cv2.GaussianBlur(mask.astype(np.float32), (7, 7), 0)))
    return crops


def grid(n: int, width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of cells for n people on a width x height canvas, cells about CELL_ASPECT
    as wide as tall: 1 -> 1x1, 2 -> 1x2, 4 -> 1x4, 8 -> 2x4, 16 -> 2x8 on 640x480."""
    rows = max(1, round(math.sqrt(n * CELL_ASPECT * height / width)))
    return rows, math.ceil(n / rows)


def composite(people: Sequence[Crop], width: int = SIZE[0], height: int = SIZE[1],
              person_height: float = PERSON_HEIGHT_PX) -> tuple[np.ndarray, np.ndarray]:
    """Paste `people` (crop, alpha) on a mid-grey width x height canvas, one per grid cell
    (:func:`grid`), centred, person_height px tall or less so each fills at most CELL_FILL of
    its cell. Returns the (height, width, 3) uint8 image and the (n, 4) boxes (x0, y0, x1, y1,
    px, end exclusive) where the crops went: inside the image, none overlapping."""
    rows, cols = grid(len(people), width, height)
    cw, ch = width / cols, height / rows
    img = np.full((height, width, 3), 128.0, np.float32)
    boxes = np.zeros((len(people), 4), int)
    for i, (rgb, alpha) in enumerate(people):
        s = min(person_height / rgb.shape[0], CELL_FILL * cw / rgb.shape[1],
                CELL_FILL * ch / rgb.shape[0])
        w, h = max(1, round(rgb.shape[1] * s)), max(1, round(rgb.shape[0] * s))
        r, c = divmod(i, cols)
        x0, y0 = int(c * cw + (cw - w) / 2), int(r * ch + (ch - h) / 2)
        a = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)[..., None]
        src = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        img[y0:y0 + h, x0:x0 + w] = a * src + (1 - a) * img[y0:y0 + h, x0:x0 + w]
        boxes[i] = (x0, y0, x0 + w, y0 + h)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), boxes


def composites(crops: Sequence[Crop], n: int, k: int) -> list[np.ndarray]:
    """k composites of n people each, the people drawn (seeded by n and the image's index)
    from `crops` without repeats where there are enough."""
    out = []
    for j in range(k):
        rng = np.random.default_rng([n, j])
        pick = rng.choice(len(crops), n, replace=len(crops) < n)
        out.append(composite([crops[i] for i in pick])[0])
    return out


def bench_images(frames: int, counts: Sequence[int], estimate: Callable[[np.ndarray], list]
                 ) -> dict[str, list[bytes]]:
    """JPEG bytes of the timed images: 'real' (`frames` clip frames, cycled) and, per count n,
    `frames` composites of n people, under the key str(n)."""
    clip = clip_frames()
    background = np.median(np.stack(clip[::2]), axis=0).astype(np.uint8)
    crops = cut_people(clip[::3], estimate, background)
    if not crops:
        raise RuntimeError(f"no whole, separate person found in {CLIP} to composite")
    images = {"real": [encode_jpeg(clip[i % len(clip)]) for i in range(frames)]}
    for n in counts:
        images[str(n)] = [encode_jpeg(im) for im in composites(crops, n, frames)]
    return images
