"""The core's result type: people found in one image, in the camera optical frame, metres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mp3d.common import skeleton as sk


@dataclass
class Person:
    """One person. Arrays follow the skeleton's joint order (mp3d.common.skeleton.JOINT_NAMES).

    joints_3d: (17, 3) metres, camera optical frame. keypoints_2d: (17, 2) source-image pixels.
    joint_scores: (17,) in [0, 1]. score: person score in [0, 1]. track_id: -1 when untracked.
    root_from_depth: the root's distance was measured by a depth camera (mp3d.infer.depth), not
    estimated from the image alone.
    """

    joints_3d: np.ndarray
    keypoints_2d: np.ndarray
    joint_scores: np.ndarray
    score: float
    track_id: int = -1
    root_from_depth: bool = False

    def __post_init__(self) -> None:
        self.joints_3d = np.asarray(self.joints_3d, dtype=np.float64)
        self.keypoints_2d = np.asarray(self.keypoints_2d, dtype=np.float64)
        self.joint_scores = np.asarray(self.joint_scores, dtype=np.float64)
        assert self.joints_3d.shape == (sk.NUM_JOINTS, 3), self.joints_3d.shape
        assert self.keypoints_2d.shape == (sk.NUM_JOINTS, 2), self.keypoints_2d.shape
        assert self.joint_scores.shape == (sk.NUM_JOINTS,), self.joint_scores.shape

    @property
    def root(self) -> np.ndarray:
        """Pelvis position, (3,)."""
        return self.joints_3d[sk.ROOT]
