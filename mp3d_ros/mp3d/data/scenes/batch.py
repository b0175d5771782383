"""`SceneBatch`: synthetic scenes with exact 3D and 2D labels and the simulated teacher's
keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mp3d.data.scenes.bodies import K


@dataclass
class SceneBatch:
    """B scenes, P = the most people in any of them (padded), Q = P + noise.max_false_people
    teacher slots. Pixels of the cfg image size, integer coordinates at pixel centres.

    Camera: intrinsics (B, 4) fx, fy, cx, cy; cam_height (B,) metres above the ground;
    cam_pitch, cam_roll (B,) radians (pitch down positive); elevated (B,) bool camera kind;
    ground_normal (B, 3) the unit up-normal of the ground in camera coordinates: ground points X
    satisfy ground_normal . X + cam_height = 0.
    People (padding: valid False, zeros, rot = identity, pose_index -1):
      valid (B, P) bool; pose_index (B, P) int into the bank; scale (B, P); mirrored (B, P) bool;
      joints_cam (B, P, 17, 3) metres, camera optical frame; pose_canonical (B, P, 17, 3) the
      root-relative canonical pose used (scaled, mirrored); rot (B, P, 3, 3) with
      joints_cam - joints_cam[:, :, root] == pose_canonical @ rot.T;
      kp2d (B, P, 17, 2) exact projections; root2d (B, P, 2); in_image (B, P, 17) bool;
      occluded (B, P, 17) bool (by a closer person, see SceneConfig.occlusion_*);
      size2d (B, P) px, the larger side of the projected joints' bounding box;
      coco2d (B, P, 17, 2) exact COCO-17 projections (face points from `coco_joints_3d`);
      coco_in_image, coco_occluded (B, P, 17) bool.
    Teacher (what P sees): teacher_kp (B, Q, 17, 2) COCO-17 pixels, NaN where teacher_conf is 0;
      teacher_conf (B, Q, 17) in [0, 1]; slots < P are the real people (all conf 0 if missed),
      slots >= P false people or empty; teacher_missed (B, P) bool (a valid person the teacher
      did not find); teacher_false (B, Q) bool (slot holds a false person).
    """

    intrinsics: np.ndarray
    cam_height: np.ndarray
    cam_pitch: np.ndarray
    cam_roll: np.ndarray
    elevated: np.ndarray
    ground_normal: np.ndarray
    valid: np.ndarray
    pose_index: np.ndarray
    scale: np.ndarray
    mirrored: np.ndarray
    joints_cam: np.ndarray
    pose_canonical: np.ndarray
    rot: np.ndarray
    kp2d: np.ndarray
    root2d: np.ndarray
    in_image: np.ndarray
    occluded: np.ndarray
    size2d: np.ndarray
    coco2d: np.ndarray
    coco_in_image: np.ndarray
    coco_occluded: np.ndarray
    teacher_kp: np.ndarray
    teacher_conf: np.ndarray
    teacher_missed: np.ndarray
    teacher_false: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        B, P = self.valid.shape
        Q = self.teacher_conf.shape[1]
        assert Q >= P, (Q, P)
        assert self.intrinsics.shape == (B, 4), self.intrinsics.shape
        assert self.joints_cam.shape == (B, P, K, 3) == self.pose_canonical.shape
        assert self.rot.shape == (B, P, 3, 3), self.rot.shape
        assert self.kp2d.shape == (B, P, K, 2) == self.coco2d.shape
        assert self.in_image.shape == self.occluded.shape == (B, P, K)
        assert self.teacher_kp.shape == (B, Q, K, 2), self.teacher_kp.shape
        assert self.teacher_conf.shape == (B, Q, K), self.teacher_conf.shape

    @property
    def batch_size(self) -> int:
        return self.valid.shape[0]

    @property
    def num_slots(self) -> int:
        """P, the padded number of real people."""
        return self.valid.shape[1]


def teacher_found(batch: SceneBatch) -> np.ndarray:
    """(B, P) real people the teacher reported (at least one confident keypoint)."""
    P = batch.num_slots
    return batch.valid & ~batch.teacher_missed & (batch.teacher_conf[:, :P] > 0).any(-1)


def person_boxes(batch: SceneBatch, b: np.ndarray, p: np.ndarray,
                 rng: np.random.Generator | None = None, margin: float = 0.08,
                 jitter: float = 0.03) -> np.ndarray:
    """Detector-like boxes of people (b, p) (N,) each: the extent of their skeleton and COCO
    points inside the image, widened by `margin` of its size on each side (a detector's box
    covers the head top and the feet), each side moved by `jitter` x size x N(0, 1) when `rng`
    is given, clipped to the image -> (N, 4) xyxy px."""
    pts = np.concatenate([batch.kp2d[b, p], batch.coco2d[b, p]], 1)
    vis = np.concatenate([batch.in_image[b, p], batch.coco_in_image[b, p]], 1)
    lo = np.where(vis[..., None], pts, np.inf).min(1)
    hi = np.where(vis[..., None], pts, -np.inf).max(1)
    size = (hi - lo).max(-1, keepdims=True)
    noise = (lambda: jitter * rng.standard_normal(lo.shape)) if rng is not None else (
        lambda: 0.0)
    lo, hi = lo - size * (margin + noise()), hi + size * (margin + noise())
    return np.concatenate([np.maximum(lo, 0), np.minimum(hi, [batch.width - 1,
                                                              batch.height - 1])], -1)
