"""Scoring predictions per view against the pseudo ground truth: matching, 2D and 3D errors; the
peer's, the student's and the mean pose's predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval import metrics
from mp3d.eval.multiview.body import body_dimensions
from mp3d.eval.multiview.camera import Camera, project, undistort_points
from mp3d.eval.multiview.config import PCK_JOINTS, MultiviewConfig
from mp3d.eval.multiview.people import TriangulatedPerson
from mp3d.eval.multiview.teacher_runs import FrameTeacher
from mp3d.eval.multiview.truth import StepTruth


@dataclass
class Predictions:
    """One method's people in one view image. kp2d: (P, 17, 2) undistorted px; world: (P, 17, 3)
    joints in the world frame (absolute, or root-relative in world orientation when `absolute`
    is False); mask2d: (P, 17) bool, joints whose 2D the method gives; conf: (P, 17) per-joint
    confidence in [0, 1], or None when the method gives none."""

    kp2d: np.ndarray
    world: np.ndarray
    mask2d: np.ndarray
    absolute: bool
    conf: np.ndarray | None = None


@dataclass
class Record:
    """One matched person-view."""

    frame: int
    view: int
    person: int
    err2d: float
    mpjpe: float
    pa: float
    pck: float
    root_err: float = float("nan")
    root_pct: float = float("nan")
    root: np.ndarray = field(default_factory=lambda: np.full(3, np.nan))
    # Per-joint confidence of the joints with truth, whether each is right, and whether it lies
    # outside this view's image (truncated); empty when the method gives no confidence.
    conf: np.ndarray = field(default_factory=lambda: np.zeros(0))
    right: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    truncated: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))


@dataclass
class Tally:
    """Counts and matched records of one method."""

    truth: int = 0
    predicted: int = 0
    ignored: int = 0
    records: list[Record] = field(default_factory=list)
    per_view: dict[int, list[int]] = field(default_factory=dict)  # view -> people per image
    # Per true person-view: 2D root distance to the nearest prediction / true size, and that
    # prediction's 2D size / true size (where does a method go wrong when it does not match?).
    near_dist: list[float] = field(default_factory=list)
    near_size: list[float] = field(default_factory=list)

    def summary(self, prefix: str = "") -> dict[str, float]:
        r = self.records
        out = {
            "recall": len(r) / max(self.truth, 1),
            "precision": len(r) / max(self.predicted - self.ignored, 1),
            "precision_raw": len(r) / max(self.predicted, 1),
            "matched": len(r), "truth_person_views": self.truth,
            "predicted_people": self.predicted, "ignored_people": self.ignored,
            "pose2d_err_px": _mean([x.err2d for x in r]),
            "mpjpe_mm": _mean([x.mpjpe for x in r]), "pa_mpjpe_mm": _mean([x.pa for x in r]),
            "pck150": _mean([x.pck for x in r]),
            "root_err_m": _mean([x.root_err for x in r]),
            "root_err_pct": _mean([x.root_pct for x in r]),
        }
        roots: dict[tuple[int, int], list[np.ndarray]] = {}
        for x in r:
            if np.all(np.isfinite(x.root)):
                roots.setdefault((x.frame, x.person), []).append(x.root)
        sp = [float(np.sqrt(((np.array(v) - np.mean(v, axis=0)) ** 2).sum(-1).mean()))
              for v in roots.values() if len(v) >= 2]
        out["crossview_root_spread_m"] = _mean(sp)
        scored = [x for x in r if len(x.conf)]
        if scored:
            conf = np.concatenate([x.conf for x in scored])
            right = np.concatenate([x.right for x in scored])
            cut = [x for x in scored if x.truncated.any()]
            out["conf_auc"] = metrics.roc_auc(conf, right)
            out["conf_auc_truncated_people"] = (metrics.roc_auc(
                np.concatenate([x.conf for x in cut]), np.concatenate([x.right for x in cut]))
                if cut else float("nan"))
            trunc = np.concatenate([x.truncated for x in scored])
            out["conf_mean_truncated"] = float(conf[trunc].mean()) if trunc.any() else float(
                "nan")
            out["conf_mean_in_view"] = float(conf[~trunc].mean()) if (~trunc).any() else float(
                "nan")
        out["crossview_people"] = len(sp)
        out["nearest_root_dist_frac"] = (float(np.median(self.near_dist)) if self.near_dist
                                         else float("nan"))
        out["nearest_size_ratio"] = (float(np.median(self.near_size)) if self.near_size
                                     else float("nan"))
        for v, counts in sorted(self.per_view.items()):
            out[f"people_per_image_view{v}"] = _mean(counts)
        return {prefix + k: v for k, v in out.items()}


def _mean(x: Sequence[float]) -> float:
    x = [v for v in x if np.isfinite(v)]
    return float(np.mean(x)) if x else float("nan")


def match_people(pred2d: np.ndarray, pred_mask: np.ndarray, gt2d: np.ndarray,
                 gt_mask: np.ndarray, gt_size: np.ndarray, frac: float
                 ) -> list[tuple[int, int, float]]:
    """Strict one-to-one matching: prediction p may match truth g only if the mean 2D distance of
    their common joints is <= frac x gt_size[g]; among those, the assignment of least total
    distance (Hungarian). pred2d (P, 17, 2), pred_mask (P, 17), gt2d (G, 17, 2), gt_mask (G, 17),
    gt_size (G,). Returns (p, g, mean distance px) triples."""
    from scipy.optimize import linear_sum_assignment

    P, G = len(pred2d), len(gt2d)
    assert pred2d.shape == (P, sk.NUM_JOINTS, 2) and gt2d.shape == (G, sk.NUM_JOINTS, 2), (
        pred2d.shape, gt2d.shape)
    if P == 0 or G == 0:
        return []
    d = np.linalg.norm(pred2d[:, None] - gt2d[None], axis=-1)  # (P, G, 17)
    m = pred_mask[:, None] & gt_mask[None]
    with np.errstate(invalid="ignore"):
        cost = np.where(m.sum(-1) > 0, np.where(m, d, 0).sum(-1) / np.maximum(m.sum(-1), 1),
                        np.inf)
    ok = cost <= frac * gt_size[None]
    big = 1e12
    rows, cols = linear_sum_assignment(np.where(ok, cost, big))
    return [(int(p), int(g), float(cost[p, g])) for p, g in zip(rows, cols) if ok[p, g]]


def view_truth(cam: Camera, people: Sequence[TriangulatedPerson], min_visible: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Projected truth in one view: gt2d (G, 17, 2) undistorted px, mask (G, 17), size (G,), and
    the indices of the people that count in this view (root and >= min_visible joints inside)."""
    if not people:
        return np.zeros((0, sk.NUM_JOINTS, 2)), np.zeros((0, sk.NUM_JOINTS), bool), np.zeros(0), []
    J = np.stack([p.joints for p in people])
    uv = project(cam, J)
    inside = (np.all(np.isfinite(uv), axis=-1) & (uv[..., 0] >= -0.5)
              & (uv[..., 0] <= cam.width - 0.5) & (uv[..., 1] >= -0.5)
              & (uv[..., 1] <= cam.height - 0.5))
    mask = inside & np.stack([p.valid for p in people])
    size = np.array([np.ptp(u[m], axis=0).max() if m.sum() >= 2 else 0.0
                     for u, m in zip(uv, mask)])
    count = [g for g in range(len(people)) if mask[g, sk.ROOT] and mask[g].sum() >= min_visible]
    return uv, mask, size, count


def score_view(tally: Tally, cam: Camera, step: StepTruth, view: int, pred: Predictions,
               teacher2d: np.ndarray, teacher_mask: np.ndarray, cfg: MultiviewConfig) -> None:
    """Add one method's people in one view image to its tally. teacher2d (T, 17, 2), teacher_mask
    (T, 17): MuPoTS 2D of the teacher detections no accepted person claimed (ignore regions)."""
    gt2d, gmask, gsize, count = view_truth(cam, step.people, cfg.min_visible_joints)
    tally.truth += len(count)
    tally.predicted += len(pred.kp2d)
    tally.per_view.setdefault(view, []).append(len(pred.kp2d))
    sel = np.array(count, int)
    for g in sel:
        if len(pred.kp2d) and gsize[g] > 0:
            d = np.linalg.norm(pred.kp2d[:, sk.ROOT] - gt2d[g, sk.ROOT], axis=-1)
            k = int(np.argmin(d))
            ok = pred.mask2d[k] & np.all(np.isfinite(pred.kp2d[k]), axis=-1)
            tally.near_dist.append(float(d[k] / gsize[g]))
            tally.near_size.append(float(np.ptp(pred.kp2d[k][ok], axis=0).max() / gsize[g])
                                   if ok.sum() >= 2 else float("nan"))
    matches = match_people(pred.kp2d, pred.mask2d, gt2d[sel], gmask[sel], gsize[sel],
                           cfg.match_frac)
    matched = {p for p, _, _ in matches}
    rest = [p for p in range(len(pred.kp2d)) if p not in matched]
    if rest and len(teacher2d):
        tsize = np.array([np.ptp(t[m], axis=0).max() if m.sum() >= 2 else 0.0
                          for t, m in zip(teacher2d, teacher_mask)])
        ign = match_people(pred.kp2d[rest], pred.mask2d[rest], teacher2d, teacher_mask, tsize,
                           cfg.ignore_frac)
        tally.ignored += len(ign)
    for p, gi, e2d in matches:
        g = int(sel[gi])
        person = step.people[g]
        valid = np.flatnonzero(person.valid)
        gt = person.joints
        pr = pred.world[p]
        gt_rr = (gt - gt[sk.ROOT])[None, valid]
        pr_rr = (pr - pr[sk.ROOT])[None, valid]
        rec = Record(step.frame, view, g, e2d, float(metrics.mpjpe(pr_rr, gt_rr)[0]),
                     float(metrics.pa_mpjpe(pr_rr, gt_rr)[0]),
                     float(metrics.pck3d((pr - pr[sk.ROOT])[None], (gt - gt[sk.ROOT])[None],
                                         cfg.pck_mm,
                                         tuple(j for j in PCK_JOINTS if person.valid[j]))[0]))
        if pred.conf is not None:
            height = step.heights[g] if step.heights else body_dimensions(gt[None])["height_m"]
            err = np.linalg.norm((pr - pr[sk.ROOT]) - (gt - gt[sk.ROOT]), axis=-1)[valid]
            rec.conf = pred.conf[p, valid]
            rec.right = err <= cfg.conf_frac * height
            rec.truncated = ~gmask[g, valid]
        if pred.absolute:
            dist = float(np.linalg.norm(gt[sk.ROOT] - cam.centre))
            rec.root = pr[sk.ROOT].copy()
            rec.root_err = float(np.linalg.norm(pr[sk.ROOT] - gt[sk.ROOT]))
            rec.root_pct = 100.0 * rec.root_err / dist
        tally.records.append(rec)


def teacher_ignore_targets(cam: Camera, out: FrameTeacher, idx: Sequence[int], min_conf: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """MuPoTS 2D (T, 17, 2) undistorted px and masks (T, 17) of the given teacher detections."""
    if not idx:
        return np.zeros((0, sk.NUM_JOINTS, 2)), np.zeros((0, sk.NUM_JOINTS), bool)
    kp, conf = sk.coco_to_mupots(undistort_points(cam, out.kp[list(idx)]), out.conf[list(idx)])
    return kp, conf >= min_conf


def crop_rotation(cam: Camera, centre_xy: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) from a virtual camera looking through an image point (the centre of the
    crop a top-down model saw, undistorted px) to the real camera's optical frame: the smallest
    rotation taking the optical axis to that ray."""
    ray = np.linalg.solve(cam.K, np.array([centre_xy[0], centre_xy[1], 1.0]))
    ray /= np.linalg.norm(ray)
    z = np.array([0.0, 0.0, 1.0])
    axis = np.cross(z, ray)
    s, c = np.linalg.norm(axis), float(z @ ray)
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    Kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * Kx + (1 - c) * Kx @ Kx


def peer_predictions(cam: Camera, out: FrameTeacher, min_vis: float = 0.5) -> Predictions:
    """The peer's people in one view: BlazePose image landmarks (undistorted) and world landmarks
    (hip-centred, camera-aligned axes of the crop) rotated into the camera, then into the world;
    both mapped to the 17 joints through COCO-17."""
    from mp3d.data.teachers.blazepose import BLAZEPOSE_TO_COCO

    assert out.has_peer, "peer outputs missing"
    ok = out.bp_ok
    sel = list(BLAZEPOSE_TO_COCO)
    n = int(ok.sum())
    kp2d = np.zeros((n, sk.NUM_JOINTS, 2))
    world = np.zeros((n, sk.NUM_JOINTS, 3))
    mask = np.zeros((n, sk.NUM_JOINTS), bool)
    for k, i in enumerate(np.flatnonzero(ok)):
        uv = undistort_points(cam, out.bp_kp[i][sel])
        kp2d[k], c = sk.coco_to_mupots(uv, out.bp_vis[i][sel])
        mask[k] = c >= min_vis
        centre = undistort_points(cam, out.bp_crop[i][:2])
        j3, _ = sk.coco_to_mupots(out.bp_world[i][sel], np.ones(len(sel)))
        j3 = np.nan_to_num(j3)
        world[k] = (j3 @ crop_rotation(cam, centre).T) @ cam.R  # virtual -> camera -> world
    return Predictions(kp2d, world, mask, absolute=False)


def student_predictions(cam: Camera, people: Sequence) -> Predictions:
    """The student's people (mp3d.infer.people.Person, on the undistorted image) in the world
    frame."""
    n = len(people)
    kp2d = np.array([p.keypoints_2d for p in people]).reshape(n, sk.NUM_JOINTS, 2)
    cam3d = np.array([p.joints_3d for p in people]).reshape(n, sk.NUM_JOINTS, 3)
    world = (cam3d - cam.t) @ cam.R  # R^T (X - t)
    conf = np.array([p.joint_scores for p in people]).reshape(n, sk.NUM_JOINTS)
    return Predictions(kp2d, world, np.ones((n, sk.NUM_JOINTS), bool), absolute=True, conf=conf)


def mean_pose_pa(mean_pose: np.ndarray, truth: Sequence[StepTruth], cams: Sequence[Camera],
                 cfg: MultiviewConfig) -> float:
    """PA-MPJPE (mm) of a fixed pose (17, 3) against every true person-view."""
    errs = []
    for s in truth:
        for cam in cams:
            _, _, _, count = view_truth(cam, s.people, cfg.min_visible_joints)
            for g in count:
                p = s.people[g]
                v = np.flatnonzero(p.valid)
                errs.append(float(metrics.pa_mpjpe(mean_pose[None, v], p.joints[None, v])[0]))
    return _mean(errs)
