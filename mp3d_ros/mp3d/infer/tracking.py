"""Multi-person tracking: stable track ids for the people found in successive frames (no ROS).

:class:`Tracker` keeps one track per person. Each frame, detections are matched to tracks by
optimal assignment (``scipy.optimize.linear_sum_assignment``) on a cost that mixes

- the 3D root (pelvis) distance in metres, scaled down by ``depth_scale_m / depth`` for people
  farther than ``depth_scale_m`` (monocular depth errors grow with the distance), and
- the 2D root distance in pixels divided by the person's 2D size (keypoint bounding-box diagonal),
  so that the same gate works for near and far people,

both measured from the track's position predicted with its smoothed velocity (constant-velocity
model; ``velocity_smoothing = 0`` disables prediction). A pair whose 3D or 2D distance passes its
gate is never matched. Unmatched detections start tentative tracks; a track gets its id (0, 1, 2,
... in order of confirmation) once it has been seen in ``min_hits`` frames, and until then its
people come out with ``track_id = -1``. A confirmed track dies when not seen for more than
``max_age_frames`` frames or ``max_age_s`` seconds (by image stamps); a tentative one dies when
missed once. A stamp earlier than the previous one (a bag played in a loop) resets the tracker.
Every threshold is a field of the frozen :class:`TrackerConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy.optimize import linear_sum_assignment

from mp3d.common import skeleton as sk
from mp3d.infer.people import Person

_INFEASIBLE = 1e9


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds of :class:`Tracker`; 0 switches an age limit off."""

    weight_3d: float = 1.0  # cost per metre of 3D root distance
    weight_2d: float = 1.0  # cost per person size of 2D root distance
    max_distance_3d: float = 1.0  # m: gate on the (depth-scaled) 3D root distance
    depth_scale_m: float = 5.0  # 3D distances beyond this depth shrink by depth_scale_m / depth
    max_distance_2d: float = 1.0  # person sizes: gate on the normalised 2D root distance
    min_size_px: float = 16.0  # lower bound on the 2D size used for normalising
    max_age_frames: int = 15  # a track unseen for more frames than this dies (0: no limit)
    max_age_s: float = 1.0  # a track unseen for longer than this dies (0: no limit)
    min_hits: int = 1  # frames a track must be seen in before it gets an id
    velocity_smoothing: float = 0.5  # weight of the newest velocity in [0, 1] (0: no prediction)

    def __post_init__(self) -> None:
        for name in ("weight_3d", "weight_2d", "max_distance_3d", "max_distance_2d",
                     "min_size_px", "max_age_s", "depth_scale_m"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_age_frames < 0 or self.min_hits < 1:
            raise ValueError(f"max_age_frames={self.max_age_frames} must be >= 0 and "
                             f"min_hits={self.min_hits} >= 1")
        if not 0.0 <= self.velocity_smoothing <= 1.0:
            raise ValueError(f"velocity_smoothing={self.velocity_smoothing} not in [0, 1]")
        if self.weight_3d == 0 and self.weight_2d == 0:
            raise ValueError("weight_3d and weight_2d cannot both be 0")


def _root_2d(kp: np.ndarray) -> np.ndarray:
    """The pelvis keypoint, or the mean of the finite keypoints when it is missing: (2,)."""
    if np.all(np.isfinite(kp[sk.ROOT])):
        return kp[sk.ROOT].astype(np.float64)
    ok = np.isfinite(kp).all(-1)
    return kp[ok].mean(0) if ok.any() else np.full(2, np.nan)


def _size_2d(kp: np.ndarray, min_size: float) -> float:
    """Diagonal of the bounding box of the finite keypoints, at least ``min_size`` (px)."""
    ok = np.isfinite(kp).all(-1)
    if not ok.any():
        return min_size
    span = kp[ok].max(0) - kp[ok].min(0)
    return max(float(np.hypot(*span)), min_size)


@dataclass
class _Track:
    root_3d: np.ndarray  # (3,) m, at last_t
    root_2d: np.ndarray  # (2,) px, at last_t
    size: float  # px
    last_t: float  # stamp (s) or frame number of the last detection
    last_frame: int
    hits: int = 1
    track_id: int = -1  # -1 while tentative
    vel_3d: np.ndarray = field(default_factory=lambda: np.zeros(3))
    vel_2d: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        dt = t - self.last_t
        return self.root_3d + self.vel_3d * dt, self.root_2d + self.vel_2d * dt


class Tracker:
    """Assigns track ids to the people of successive frames (see the module docstring)."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self.reset()

    def reset(self) -> None:
        """Forget every track; ids start again from 0."""
        self.tracks: list[_Track] = []
        self.frame = -1
        self.last_stamp: float | None = None
        self.next_id = 0

    def cost(self, tracks: list[_Track], people: list[Person], t: float) -> np.ndarray:
        """(tracks, people) assignment cost; gated pairs cost _INFEASIBLE."""
        c = self.cfg
        out = np.full((len(tracks), len(people)), _INFEASIBLE)
        for j, p in enumerate(people):
            r3, kp = p.root, p.keypoints_2d
            r2, size = _root_2d(kp), _size_2d(kp, c.min_size_px)
            for i, tr in enumerate(tracks):
                p3, p2 = tr.predict(t)
                d3 = float(np.linalg.norm(r3 - p3))
                depth = 0.5 * (r3[2] + p3[2])
                if c.depth_scale_m > 0 and depth > c.depth_scale_m:
                    d3 *= c.depth_scale_m / depth  # monocular depth error grows with depth
                d2 = float(np.linalg.norm(r2 - p2)) / (0.5 * (size + tr.size))
                if np.isfinite(d3) and np.isfinite(d2) and d3 <= c.max_distance_3d \
                        and d2 <= c.max_distance_2d:
                    out[i, j] = c.weight_3d * d3 + c.weight_2d * d2
        return out

    def update(self, people: list[Person], stamp: float | None = None) -> list[Person]:
        """Match this frame's people to the tracks. ``stamp``: the image's time in seconds (None:
        ages and velocities count in frames). Returns copies of ``people`` (same order) with
        ``track_id`` set (-1 while a track is tentative)."""
        c = self.cfg
        if stamp is not None and self.last_stamp is not None and stamp < self.last_stamp:
            self.reset()
        self.frame += 1
        if stamp is not None:
            self.last_stamp = stamp
        t = float(stamp) if stamp is not None else float(self.frame)

        alive = []
        for tr in self.tracks:
            missed = self.frame - tr.last_frame - 1  # frames missed before this one
            too_old = (tr.track_id < 0 and missed > 0) \
                or (c.max_age_frames > 0 and missed > c.max_age_frames) \
                or (c.max_age_s > 0 and stamp is not None and t - tr.last_t > c.max_age_s)
            if not too_old:
                alive.append(tr)
        self.tracks = alive

        cost = self.cost(self.tracks, people, t)
        rows, cols = linear_sum_assignment(cost) if cost.size else ([], [])
        matched: dict[int, _Track] = {}
        for i, j in zip(rows, cols):
            if cost[i, j] < _INFEASIBLE:
                matched[int(j)] = self.tracks[int(i)]

        out = []
        for j, p in enumerate(people):
            r3, r2 = p.root.copy(), _root_2d(p.keypoints_2d)
            size = _size_2d(p.keypoints_2d, c.min_size_px)
            tr = matched.get(j)
            if tr is None:
                tr = _Track(r3, r2, size, t, self.frame)
                self.tracks.append(tr)
            else:
                dt = t - tr.last_t
                if dt > 0 and c.velocity_smoothing > 0 and np.all(np.isfinite(r2)):
                    a = c.velocity_smoothing
                    tr.vel_3d = a * (r3 - tr.root_3d) / dt + (1 - a) * tr.vel_3d
                    tr.vel_2d = a * (r2 - tr.root_2d) / dt + (1 - a) * tr.vel_2d
                tr.root_3d, tr.root_2d, tr.size = r3, r2, size
                tr.last_t, tr.last_frame = t, self.frame
                tr.hits += 1
            if tr.track_id < 0 and tr.hits >= c.min_hits:
                tr.track_id, self.next_id = self.next_id, self.next_id + 1
            out.append(replace(p, track_id=tr.track_id))
        return out
