"""Triangulated people: the teacher's 2D people of every view associated, un-mirrored and
triangulated into COCO-17 and MuPoTS joints.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval.multiview.association import (
    NUM_COCO,
    TriangulationConfig,
    apply_flips,
    associate,
    lr_vote,
    person_size,
)
from mp3d.eval.multiview.camera import Camera
from mp3d.eval.multiview.triangulation import triangulate_robust


@dataclass
class TriangulatedPerson:
    """One person triangulated at one time step.

    views: {view index: teacher detection index}; coco: (17, 3) COCO-17 world points (NaN:
    rejected); joints: (17, 3) MuPoTS world joints (NaN where invalid); valid: (17,) bool;
    used: (V, 17) bool, the COCO observations kept; reproj: (V, 17) px reprojection error of
    every confident observation (NaN where none); flips: (V, G) the left/right vote; accepted:
    whether it passes `TriangulationConfig.min_joints` and has a root; kp2d: (V, 17, 2) the
    corrected undistorted COCO keypoints; conf2d: (V, 17).
    """

    views: dict[int, int]
    coco: np.ndarray
    joints: np.ndarray
    valid: np.ndarray
    used: np.ndarray
    reproj: np.ndarray
    flips: np.ndarray
    accepted: bool
    kp2d: np.ndarray = field(repr=False)
    conf2d: np.ndarray = field(repr=False)

    @property
    def inlier_errors(self) -> np.ndarray:
        """Reprojection errors (px) of the observations used, (M,)."""
        return self.reproj[self.used]


# The MuPoTS joints that have a COCO source (15 of 17: no head_top, no spine).
COCO_BACKED: tuple[int, ...] = tuple(j for j, src in enumerate(sk.COCO_TO_MUPOTS) if src)


def triangulate_people(cams: Sequence[Camera], kps: Sequence[np.ndarray],
                       confs: Sequence[np.ndarray],
                       cfg: TriangulationConfig = TriangulationConfig()
                       ) -> list[TriangulatedPerson]:
    """Associate, vote left/right and triangulate the people of one time step.

    kps[v]: (P_v, 17, 2) undistorted COCO keypoints of view v, confs[v]: (P_v, 17). Returns every
    associated group (accepted or not), accepted ones first.
    """
    V = len(cams)
    out = []
    for group in associate(cams, kps, confs, cfg):
        kp = np.full((V, NUM_COCO, 2), np.nan)
        conf = np.zeros((V, NUM_COCO))
        for v, i in group.items():
            kp[v], conf[v] = kps[v][i], confs[v][i]
        flips = lr_vote(cams, kp, conf, cfg)
        kp, conf = apply_flips(kp, conf, flips)
        size = np.array([person_size(kp[v], conf[v], cfg.min_conf) for v in range(V)])
        thr = np.maximum(cfg.max_reproj_px, cfg.max_reproj_frac * size)[:, None]
        X, used, err = triangulate_robust(cams, kp, conf, cfg.min_conf, thr, cfg.max_dropped)
        err = np.where(conf >= cfg.min_conf, err, np.nan)
        valid_coco = np.all(np.isfinite(X), axis=-1)
        joints, jconf = sk.coco_to_mupots(X, valid_coco.astype(float))
        valid = jconf > 0.5
        joints[~valid] = np.nan
        accepted = bool(valid[sk.ROOT]) and int(valid.sum()) >= cfg.min_joints
        out.append(TriangulatedPerson(dict(group), X, joints, valid, used, err, flips, accepted,
                                      kp, conf))
    return sorted(out, key=lambda p: not p.accepted)
