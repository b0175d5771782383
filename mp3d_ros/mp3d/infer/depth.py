"""Root depth from a depth camera: refine each person's monocular distance with an aligned depth
image (RealSense, OAK-D, ZED), keeping the monocular estimate where depth is missing.

For each person, points inside the torso (its centre, and the torso keypoints (shoulders, hips,
thorax, spine, pelvis; 2D, in the colour image) pulled ``inset`` of the way towards it: a
keypoint on the torso's outline would as often see the background) are looked up in the depth
image (scaled when its size differs; aligned to the colour image, as the drivers'
``aligned_depth_to_color`` topics are): each gives the median of the valid depths in a small
window around it. Their median is the torso surface; samples farther than
``outlier_m`` from it (a keypoint on the background or on a person in front) are dropped and
the median taken again. The root (pelvis, inside the body) lies ``torso_half_depth_m`` behind the
surface. The whole person is then scaled about the camera centre by root depth / monocular root
depth, which keeps every joint on its image ray: the 2D keypoints do not move. Fewer than
``min_samples`` valid samples: the monocular estimate stays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.infer.people import Person

TORSO = tuple(sk.INDEX[n] for n in ("l_shoulder", "r_shoulder", "l_hip", "r_hip", "thorax",
                                     "spine", "pelvis"))


@dataclass(frozen=True)
class DepthConfig:
    """How a depth image refines the root depth (see the module docstring)."""

    window_px: int = 5            # side of the window around each sample point (depth pixels)
    inset: float = 0.4            # torso keypoints pulled this far towards the torso centre
    outlier_m: float = 0.3        # samples farther than this from the median are dropped
    min_samples: int = 3          # fewer valid torso samples: keep the monocular depth
    torso_half_depth_m: float = 0.1  # from the torso surface to the root inside the body
    min_depth_m: float = 0.2
    max_depth_m: float = 20.0


def torso_depth(person: Person, depth: np.ndarray, image_size: tuple[int, int],
                cfg: DepthConfig = DepthConfig()) -> float | None:
    """Robust depth (m) of the person's torso surface, or None with too few valid samples.
    depth: (H, W) metres, NaN where unknown; image_size: (w, h) of the colour image."""
    dh, dw = depth.shape
    sx, sy = dw / image_size[0], dh / image_size[1]
    r = cfg.window_px // 2
    torso = person.keypoints_2d[list(TORSO)]
    torso = torso[np.isfinite(torso).all(axis=1)]
    if len(torso) == 0:
        return None
    centre = torso.mean(axis=0)
    samples = []
    for u, v in np.vstack([centre, centre + (1.0 - cfg.inset) * (torso - centre)]):
        x, y = int(round((u + 0.5) * sx - 0.5)), int(round((v + 0.5) * sy - 0.5))
        if not (0 <= x < dw and 0 <= y < dh):
            continue
        patch = depth[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1]
        patch = patch[np.isfinite(patch) & (patch >= cfg.min_depth_m)
                      & (patch <= cfg.max_depth_m)]
        if patch.size:
            samples.append(float(np.median(patch)))
    if len(samples) < cfg.min_samples:
        return None
    samples = np.array(samples)
    kept = samples[np.abs(samples - np.median(samples)) <= cfg.outlier_m]
    return float(np.median(kept)) if len(kept) >= cfg.min_samples else None


def refine_with_depth(person: Person, depth: np.ndarray, image_size: tuple[int, int],
                      cfg: DepthConfig = DepthConfig()) -> Person:
    """The person with its root depth from the depth image (``root_from_depth`` True), or
    unchanged when the depth image does not show enough of its torso."""
    surface = torso_depth(person, depth, image_size, cfg)
    z = float(person.root[2])
    if surface is None or not z > 0:
        return person
    scale = (surface + cfg.torso_half_depth_m) / z
    return replace(person, joints_3d=person.joints_3d * scale, root_from_depth=True)
