"""The student's training pool: unlabeled frames of many cameras, zoomed, cropped and rotated.

A pool is a list of sources, each a video, image folder or bag with a time range
(``PATH[@START:END]``, fractions of the recording's time span, as `split_by_time`), whose teacher
outputs are cached by `mp3d teach`. From each source frame the pool draws `views` samples at the
student's input size: the first is the plain letterbox, the others a random similarity transform
(zoom in or out, a centre on a random person or point, a rotation, a mirror) plus blur, so that
the student sees people from about 30 px to more than the full frame height, in portrait and
landscape frames, from above and below. A similarity transform of an image is exactly an image of
the same camera rolled about its optical axis, with a scaled focal length and a moved principal
point, so every sample keeps exact intrinsics (`Sample.intrinsics`), and P (run on the moved
teacher keypoints, see mp3d.train.student) gives targets in that camera's frame.

Samples hold their image as JPEG bytes (about 40 kB at 512x384), so a pool of thousands of
samples takes little memory; the teacher's keypoints that leave the sample are dropped (as the
real teacher does not report them), and people with too few keypoints left are dropped.

A frame that cannot be decoded never stops training or `mp3d teach`: `FrameSkips` skips it and
counts it by reason, ``bad_image`` (the codec refuses the image message: an unsupported encoding,
a corrupt or empty JPEG) or ``unreadable`` (OSError: an image file OpenCV cannot read, a video
frame or bag message that cannot be read), and the run ends with one line
``skipped 3 of 120 frames: bad_image 2, unreadable 1 (first: ...)``. With ``--strict`` the first
such frame raises `BadFrameError` (a ValueError: ``error: ...``, exit 2, in the `mp3d` command).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mp3d.common.geometry import FallbackCamera, Intrinsics, resolve_intrinsics
from mp3d.common.skeleton import COCO_MIRROR_PERM
from mp3d.data.images.skips import FrameSkips


@dataclass(frozen=True)
class PoolConfig:
    """How samples are drawn from a frame. Sizes in pixels of the sample (width x height)."""

    width: int = 512
    height: int = 384
    views: int = 4                 # samples per source frame: 1 letterbox + views - 1 random
    zoom: tuple[float, float] = (0.55, 5.0)  # log-uniform, relative to the letterbox scale
    max_person_frac: float = 1.4   # the tallest person at most this x the sample height
    person_centre_prob: float = 0.8  # centre on a random teacher person (else anywhere)
    centre_jitter: float = 0.35    # of the chosen person's size
    rotate_prob: float = 0.4
    rotate_deg: float = 20.0       # uniform in +-this when rotating
    mirror_prob: float = 0.5
    blur_prob: float = 0.2
    blur_sigma: tuple[float, float] = (0.6, 1.8)
    jpeg_quality: int = 92
    min_keypoints: int = 4         # a person keeps at least this many confident keypoints ...
    min_conf: float = 0.3          # ... of at least this confidence inside the sample


@dataclass(frozen=True)
class Source:
    """One recording of the pool and the part of it used."""

    path: str
    start_frac: float = 0.0
    end_frac: float = 1.0
    topic: str | None = None

    @staticmethod
    def parse(spec: str) -> Source:
        """``PATH``, ``PATH@START:END`` (fractions) or ``PATH@START:END@TOPIC`` (bags)."""
        parts = spec.split("@")
        if len(parts) > 3 or not parts[0]:
            raise ValueError(f"bad source {spec!r}: expected PATH[@START:END[@TOPIC]]")
        start, end = 0.0, 1.0
        if len(parts) >= 2 and parts[1]:
            try:
                start, end = (float(v) for v in parts[1].split(":"))
            except ValueError:
                raise ValueError(f"bad time range in {spec!r}: expected START:END") from None
        if not 0.0 <= start < end <= 1.0:
            raise ValueError(f"bad time range in {spec!r}: need 0 <= START < END <= 1")
        return Source(parts[0], start, end, parts[2] if len(parts) == 3 else None)

    def spec(self) -> str:
        """The ``PATH@START:END[@TOPIC]`` form that `parse` reads."""
        return f"{self.path}@{self.start_frac:g}:{self.end_frac:g}" + (
            f"@{self.topic}" if self.topic else "")


@dataclass
class Sample:
    """One training image of the pool: JPEG bytes of (height, width, 3) RGB, its intrinsics
    (fx, fy, cx, cy) and the teacher's people moved into it: keypoints (N, 17, 2) COCO-17
    pixels and confidences (N, 17), 0 where the keypoint left the sample."""

    jpeg: bytes
    intrinsics: np.ndarray
    keypoints: np.ndarray
    conf: np.ndarray
    source: str

    def rgb(self) -> np.ndarray:
        """The image, (height, width, 3) uint8 RGB."""
        bgr = cv2.imdecode(np.frombuffer(self.jpeg, np.uint8), cv2.IMREAD_COLOR)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def similarity(scale: float, angle_rad: float, centre_src: np.ndarray, centre_out: np.ndarray,
               mirror: bool, width: int) -> np.ndarray:
    """The 2x3 affine out = M @ (src, 1) (pixel centres): rotate by angle and scale about
    centre_src, move it to centre_out, then mirror x across the sample when asked."""
    c, s = math.cos(angle_rad) * scale, math.sin(angle_rad) * scale
    a = np.array([[c, -s], [s, c]])
    m = np.concatenate([a, (centre_out - a @ centre_src)[:, None]], axis=1)
    if mirror:
        m = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]]) @ np.vstack([m, [0, 0, 1]])
    return m


def apply_affine(m: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Points (..., 2) through a 2x3 affine."""
    uv = np.asarray(uv, dtype=np.float64)
    assert m.shape == (2, 3) and uv.shape[-1] == 2, (m.shape, uv.shape)
    return uv @ m[:, :2].T + m[:, 2]


def moved_intrinsics(k: Intrinsics, m: np.ndarray) -> np.ndarray:
    """(fx, fy, cx, cy) of the camera that sees the similarity-transformed image: the camera
    rolled about its optical axis, the focal scaled, the principal point moved (square pixels
    assumed). A mirrored image is the mirrored world seen by the same kind of camera."""
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    cx, cy = apply_affine(m, np.array([k.cx, k.cy]))
    return np.array([k.fx * scale, k.fy * scale, cx, cy])


def person_extent(kp: np.ndarray, conf: np.ndarray, min_conf: float) -> tuple[np.ndarray, float]:
    """Centre (2,) and size (larger side of the box, px) of one person's confident keypoints."""
    ok = conf >= min_conf
    if ok.sum() < 2:
        return np.nanmean(kp, axis=0), 0.0
    pts = kp[ok]
    lo, hi = pts.min(0), pts.max(0)
    return (lo + hi) / 2, float((hi - lo).max())


def draw_transform(rgb_size: tuple[int, int], people_kp: np.ndarray, people_conf: np.ndarray,
                   cfg: PoolConfig, rng: np.random.Generator, plain: bool
                   ) -> tuple[np.ndarray, bool, float]:
    """A random (or, when plain, the letterbox) transform for a (h, w) frame: (2x3 affine,
    mirrored, blur sigma or 0)."""
    h, w = rgb_size
    base = min(cfg.width / w, cfg.height / h)
    out_c = np.array([(cfg.width - 1) / 2, (cfg.height - 1) / 2])
    src_c = np.array([(w - 1) / 2, (h - 1) / 2])
    if plain:
        return similarity(base, 0.0, src_c, out_c, False, cfg.width), False, 0.0
    sizes = [person_extent(k, c, cfg.min_conf) for k, c in zip(people_kp, people_conf)]
    tallest = max([s for _, s in sizes] + [1.0])
    zoom = math.exp(rng.uniform(*np.log(cfg.zoom)))
    scale = min(base * zoom, cfg.max_person_frac * cfg.height / tallest)
    scale = max(scale, base * cfg.zoom[0])
    if sizes and rng.random() < cfg.person_centre_prob:
        centre, size = sizes[rng.integers(len(sizes))]
        centre = centre + rng.normal(0, cfg.centre_jitter, 2) * max(size, 1.0)
    else:
        centre = rng.uniform([0, 0], [w - 1, h - 1])
    # Keep the sample on the frame: its centre may not leave the image.
    centre = np.clip(np.nan_to_num(centre, nan=0.0), [0, 0], [w - 1, h - 1])
    angle = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) \
        if rng.random() < cfg.rotate_prob else 0.0
    mirror = bool(rng.random() < cfg.mirror_prob)
    blur = float(rng.uniform(*cfg.blur_sigma)) if rng.random() < cfg.blur_prob else 0.0
    return similarity(scale, angle, centre, out_c, mirror, cfg.width), mirror, blur


def make_sample(rgb: np.ndarray, k: Intrinsics, kp: np.ndarray, conf: np.ndarray,
                m: np.ndarray, mirror: bool, blur: float, cfg: PoolConfig, source: str) -> Sample:
    """Warp one frame and its teacher people (kp (N, 17, 2), conf (N, 17)) into a Sample."""
    assert kp.shape[1:] == (17, 2) and conf.shape == kp.shape[:2], (kp.shape, conf.shape)
    scale = float(np.hypot(m[0, 0], m[0, 1]))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    # cv2 maps pixel centres at integer coordinates, as this project does.
    img = cv2.warpAffine(rgb, m, (cfg.width, cfg.height), flags=interp,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    if mirror:  # a mirrored person's left is the image's right: swap the COCO sides
        perm = list(COCO_MIRROR_PERM)
        kp, conf = kp[:, perm], conf[:, perm]
    kp2 = apply_affine(m, kp) if len(kp) else np.zeros((0, 17, 2))
    inside = ((kp2 >= 0) & (kp2 <= [cfg.width - 1, cfg.height - 1])).all(-1)
    conf2 = np.where(inside & np.isfinite(kp2).all(-1), conf, 0.0)
    keep = (conf2 >= cfg.min_conf).sum(-1) >= cfg.min_keypoints
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
    assert ok
    return Sample(jpeg.tobytes(), moved_intrinsics(k, m),
                  kp2[keep].astype(np.float32), conf2[keep].astype(np.float32), source)


def build_pool(sources: list[Source], teacher_cache: str, teacher: str, hfov: float,
               cfg: PoolConfig, rng: np.random.Generator, frame_step: int = 1,
               progress: bool = True, skips: FrameSkips | None = None) -> list[Sample]:
    """Samples of every source frame (every `frame_step`-th) with cached teacher outputs.

    Frames that cannot be decoded are skipped and counted in `skips` (None: a lenient
    `FrameSkips`), and the summary line is printed at the end when any was; with
    ``skips.strict`` the first raises BadFrameError. Raises LookupError naming the command to
    run when a decodable frame has no cached teacher output."""
    from tqdm import tqdm

    from mp3d.data.images import open_dataset
    from mp3d.data.images.dataset import split_by_time
    from mp3d.data.teachers.cache import TeacherCache, teacher_name_for

    cache = TeacherCache(teacher_cache)
    skips = skips if skips is not None else FrameSkips()
    out: list[Sample] = []
    total = 0
    for src in sources:
        ds = open_dataset(src.path, topic=src.topic) if src.topic else open_dataset(src.path)
        frames = split_by_time(ds, src.start_frac, src.end_frac)
        name = teacher_name_for(teacher_cache, src.path, teacher)
        for i in tqdm(range(0, len(frames), frame_step), desc=Path(src.path).name,
                      disable=not progress):
            fr = frames[i]
            total += 1
            rgb = skips.read(fr)
            if rgb is None:
                continue
            people = cache.lookup(fr, name)
            if people is None:
                raise LookupError(f"frame {fr.frame_id} of {src.path} has no cached teacher "
                                  f"output: run `mp3d teach {src.path}` first")
            h, w = rgb.shape[:2]
            k = resolve_intrinsics(fr.camera, w, h, FallbackCamera(hfov_deg=hfov)).intrinsics
            kp = people.keypoints.astype(np.float64)
            cf = people.scores.astype(np.float64)
            for v in range(cfg.views):
                m, mirror, blur = draw_transform((h, w), kp, cf, cfg, rng, plain=v == 0)
                out.append(make_sample(rgb, k, kp, cf, m, mirror, blur, cfg, src.path))
        ds.close()
    if skips.skipped:
        print(skips.summary(total))
    return out
