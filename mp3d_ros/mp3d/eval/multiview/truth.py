"""Pseudo ground truth: the extrinsics refined on frames never scored, the teacher triangulated on
the scored ones, and its quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval.multiview.association import TriangulationConfig
from mp3d.eval.multiview.body import body_dimensions, bone_length_cv, link_tracks
from mp3d.eval.multiview.bundle_adjust import bundle_adjust, observation_errors
from mp3d.eval.multiview.camera import Camera, rotation_deg, undistort_points
from mp3d.eval.multiview.config import InputError, MultiviewConfig
from mp3d.eval.multiview.people import COCO_BACKED, TriangulatedPerson, triangulate_people
from mp3d.eval.multiview.teacher_runs import FrameTeacher


def undistorted_teacher(cams: Sequence[Camera], outs: Sequence[dict[int, FrameTeacher]],
                        frame: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """COCO keypoints (P_v, 17, 2) in undistorted px and confidences (P_v, 17) of every view."""
    kps = [undistort_points(c, o[frame].kp) for c, o in zip(cams, outs)]
    return kps, [o[frame].conf for o in outs]


@dataclass
class RefineReport:
    """The extrinsics refinement: median reprojection error (px) of the first round's
    observations on the calibration time steps with the calibration's extrinsics and with the
    refined ones, their number, and per camera the centre shift (m) and rotation (degrees)."""

    before_px: float
    after_px: float
    observations: int
    centre_shift_m: list[float]
    rotation_deg: list[float]


def calibration_observations(cams: Sequence[Camera], outs: Sequence[dict[int, FrameTeacher]],
                             frames: Sequence[int], cfg: TriangulationConfig
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kept observations of the accepted people's joints on `frames`: obs_view (M,),
    obs_point (M,), obs_uv (M, 2) undistorted px, obs_weight (M,) teacher confidence."""
    ov, op, ouv, ow = [], [], [], []
    n = 0
    for f in frames:
        kps, confs = undistorted_teacher(cams, outs, f)
        for p in triangulate_people(cams, kps, confs, cfg):
            if not p.accepted:
                continue
            for j in np.flatnonzero(np.all(np.isfinite(p.coco), axis=-1)):
                for v in np.flatnonzero(p.used[:, j]):
                    ov.append(v)
                    op.append(n)
                    ouv.append(p.kp2d[v, j])
                    ow.append(p.conf2d[v, j])
                n += 1
    return (np.array(ov, int), np.array(op, int), np.array(ouv).reshape(-1, 2),
            np.array(ow, float))


def refine_cameras(cams: list[Camera], outs: Sequence[dict[int, FrameTeacher]],
                   frames: Sequence[int], cfg: MultiviewConfig
                   ) -> tuple[list[Camera], RefineReport]:
    """Two rounds of triangulation (loose, then normal thresholds) and bundle adjustment on the
    calibration time steps; camera centres are held near the original calibration's."""
    start = list(cams)
    centres = np.stack([c.centre for c in cams])
    first = None
    for tcfg in (cfg.loose, cfg.triangulation):
        obs = calibration_observations(cams, outs, frames, tcfg)
        first = obs if first is None else first
        if len(obs[0]) < 40:
            raise InputError(f"only {len(obs[0])} observations of triangulated joints on the "
                             "calibration frames: too few to refine the extrinsics (use "
                             "--no-refine or more --calib-steps)")
        cams, _, _ = bundle_adjust(cams, *obs, cfg=cfg.bundle, centres=centres)
    assert first is not None
    rep = RefineReport(float(np.nanmedian(observation_errors(start, *first))),
                       float(np.nanmedian(observation_errors(cams, *first))), len(first[0]),
                       [float(np.linalg.norm(c.centre - c0)) for c, c0 in zip(cams, centres)],
                       [rotation_deg(a.R, b.R) for a, b in zip(start, cams)])
    return cams, rep


@dataclass
class StepTruth:
    """Pseudo ground truth of one time step: the accepted people and all groups tried, and for
    each view the teacher detections that belong to no accepted person (ignored in precision)."""

    frame: int
    people: list[TriangulatedPerson]
    rejected: list[TriangulatedPerson]
    unclaimed: list[list[int]]
    heights: list[float] = field(default_factory=list)  # per person: stature (m) over its track


def pseudo_ground_truth(cams: Sequence[Camera], outs: Sequence[dict[int, FrameTeacher]],
                        frames: Sequence[int], cfg: TriangulationConfig) -> list[StepTruth]:
    """Triangulated people of each time step in `frames` (see `mp3d.eval.multiview`)."""
    out = []
    for f in frames:
        kps, confs = undistorted_teacher(cams, outs, f)
        people = triangulate_people(cams, kps, confs, cfg)
        acc = [p for p in people if p.accepted]
        claimed = [{p.views[v] for p in acc if v in p.views} for v in range(len(cams))]
        unclaimed = [[i for i in range(len(kps[v])) if i not in claimed[v]]
                     for v in range(len(cams))]
        out.append(StepTruth(f, acc, [p for p in people if not p.accepted], unclaimed))
    return out


def truth_quality(truth: Sequence[StepTruth]) -> dict[str, float]:
    """Pseudo ground truth quality: instances, people per step, median reprojection errors of the
    used observations and of every confident observation of the accepted people, joints per
    person, body dimensions."""
    people = [p for s in truth for p in s.people]
    q: dict[str, float] = {
        "gt_time_steps": len(truth), "gt_people": len(people),
        "gt_people_per_step": len(people) / max(len(truth), 1),
        "gt_rejected_groups": sum(len(s.rejected) for s in truth),
        "gt_views_per_person": float(np.mean([len(p.views) for p in people])) if people else 0.0,
        "gt_joints_per_person": float(np.mean([p.valid[list(COCO_BACKED)].sum()
                                               for p in people])) if people else 0.0,
    }
    inl = np.concatenate([p.inlier_errors for p in people]) if people else np.zeros(0)
    allv = np.concatenate([p.reproj[np.isfinite(p.reproj)] for p in people]) if people else inl
    q["gt_reproj_median_px"] = float(np.median(inl)) if len(inl) else float("nan")
    q["gt_reproj_median_all_px"] = float(np.median(allv)) if len(allv) else float("nan")
    q["gt_used_observation_frac"] = len(inl) / max(len(allv), 1)
    dims = body_dimensions(np.stack([p.joints for p in people])) if people else {}
    q.update({f"gt_{k}": v for k, v in dims.items()})
    tracks = person_tracks(truth)
    q["gt_tracks"] = len(tracks)
    cv = [(len(t), bone_length_cv(t)) for t in tracks.values()]
    cv = [(n, c) for n, c in cv if np.isfinite(c)]
    q["gt_bone_cv"] = (float(np.average([c for _, c in cv], weights=[n for n, _ in cv]))
                       if cv else float("nan"))
    return q


def person_tracks(truth: Sequence[StepTruth]) -> dict[int, np.ndarray]:
    """The pseudo ground truth's people linked over time steps: {id: (n, 17, 3) joints}, most
    seen first. Sets each step's `heights` (a person's stature from its whole track: one step
    rarely has every joint)."""
    ids = link_tracks([np.array([p.joints[sk.ROOT] for p in s.people]).reshape(-1, 3)
                          for s in truth])
    out: dict[int, list[np.ndarray]] = {}
    for s, idx in zip(truth, ids):
        for p, i in zip(s.people, idx):
            out.setdefault(int(i), []).append(p.joints)
    tracks = {k: np.stack(v) for k, v in sorted(out.items(), key=lambda kv: -len(kv[1]))}
    height = {k: body_dimensions(v)["height_m"] for k, v in tracks.items()}
    for s, idx in zip(truth, ids):
        s.heights = [height[int(i)] for i in idx]
    return tracks
