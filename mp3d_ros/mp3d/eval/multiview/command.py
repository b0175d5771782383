"""`mp3d eval multiview`: label-free 3D evaluation on real synchronized calibrated multi-view video.

Pseudo ground truth: the YOLO teacher's 2D keypoints of every view are undistorted, associated
across views, left/right-voted per limb and triangulated (`mp3d.eval.multiview`); the extrinsics are
first refined by bundle adjustment on calibration time steps that are never scored (camera centres
held near the calibration's, so the world frame and scale stay). Then each estimator is scored per
view against it, its camera-frame 3D mapped into the world with the (refined) extrinsics:

- person recall and precision with a STRICT match: a prediction matches a true person only if its
  2D joints lie on average within 10% of the person's projected 2D size (the larger side of the
  projected box: the height of an upright person) of the projected truth (one-to-one, Hungarian).
  Predictions on people the teacher sees but who have no pseudo ground truth (rejected, or seen in
  one view only) are ignored in precision (neither right nor wrong; `precision_raw` counts them);
- of matched people: 2D joint error (px), MPJPE after root alignment, PA-MPJPE, 3DPCK@150 mm (the
  MuPoTS joints the truth has: 13 of the 14, no head_top), absolute root error (m, and % of the
  camera distance) and crossview_root_spread_m: the RMS distance of one true person's world root
  as predicted from different views to its mean, averaged over people matched in two views or more.

Scored in the same run: the student (`--model`), the top-down peer (YOLO boxes, then MediaPipe
BlazePose's world landmarks per person: root-relative metrics and its 2D error only) and a fixed
mean pose (the student's prior decoder at z = 0, Procrustes-aligned: PA-MPJPE only).

Environments: the teacher (YOLO, BlazePose) lives in .venv-teacher. This command runs in the normal
.venv: teacher outputs are cached per video in CACHE (``cache/multiview``; keyed by the video's
SHA-256 and the teacher settings) and computed when missing by running
``.venv-teacher/bin/python -m mp3d.eval.multiview.teacher_runs JOB.json`` in a subprocess (or
in-process when the current interpreter has the teacher). Without arguments it fetches the Pose2Sim
demo (`scripts/fetch_pose2sim.sh`) and evaluates the shipped student on Demo_MultiPerson.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval.multiview.body import body_dimensions, bone_length_cv
from mp3d.eval.multiview.camera import CalibrationError, Camera
from mp3d.eval.multiview.config import (
    THIN_GT_NOTE,
    InputError,
    MultiviewConfig,
    Rig,
    TeacherSettings,
    load_rig,
    parse_frames,
    spread,
)
from mp3d.eval.multiview.scoring import (
    Tally,
    mean_pose_pa,
    peer_predictions,
    score_view,
    student_predictions,
    teacher_ignore_targets,
)
from mp3d.eval.multiview.teacher_runs import teacher_outputs
from mp3d.eval.multiview.truth import (
    RefineReport,
    person_tracks,
    pseudo_ground_truth,
    refine_cameras,
    truth_quality,
)


def run(args: argparse.Namespace) -> int:
    """Entry point of `mp3d eval multiview`: 0 on success, 2 on bad input."""
    try:
        return _run(args)
    except (InputError, CalibrationError, FileNotFoundError) as exc:
        print(f"mp3d eval multiview: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from mp3d.infer.estimator import Estimator

    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = MultiviewConfig()
    if not Path(args.model).is_file():
        raise InputError(f"model not found: {args.model}")
    rig = load_rig(args.data, args.calib)
    try:
        est = Estimator(args.model, device=args.device, peak_threshold=args.threshold,
                        input_size=args.input_size, refine_steps=args.refine_steps)
    except ValueError as exc:  # corrupt, wrong kind, or weights that do not fit the network
        raise InputError(f"cannot load the model {args.model}: {exc}") from None
    eval_frames = spread(parse_frames(args.frames, rig.n_frames, (0.4, 1.0)), args.steps)
    calib_frames = ([] if args.no_refine else
                    spread(parse_frames(args.calib_frames, rig.n_frames, (0.0, 0.4)),
                           args.calib_steps))
    overlap = sorted(set(eval_frames) & set(calib_frames))
    if overlap:
        raise InputError(f"calibration and scored time steps overlap at {overlap[:5]}: the "
                         "refinement must never see a scored frame")
    peer = not args.no_peer
    settings = TeacherSettings(imgsz=args.imgsz)
    outs = teacher_outputs(rig.videos, sorted(set(eval_frames) | set(calib_frames)),
                           set(eval_frames) if peer else set(), settings, Path(args.cache),
                           args.teacher_python)
    t_teacher = time.time() - t0
    cams = list(rig.cameras)
    refine: RefineReport | None = None
    if calib_frames:
        cams, refine = refine_cameras(cams, outs, calib_frames, cfg)
    truth = pseudo_ground_truth(cams, outs, eval_frames, cfg.triangulation)
    quality = truth_quality(truth)
    if refine:  # the same pseudo ground truth with the calibration's own extrinsics
        q0 = truth_quality(pseudo_ground_truth(rig.cameras, outs, eval_frames, cfg.triangulation))
        quality.update({f"{k}_unrefined": q0[k] for k in (
            "gt_people", "gt_reproj_median_px", "gt_reproj_median_all_px", "gt_bone_cv")})

    with torch.no_grad():
        mean_pose = est.decoder(torch.zeros(1, est.decoder.cfg.latent_dim))[0].numpy()
    student, peer_t = Tally(), Tally()
    # The views read in lockstep, frames in order (as the teacher helper reads them).
    readers = [iter(d.subset([s.frame for s in truth])) for d in rig.datasets]
    latencies = []
    tmin = cfg.triangulation.min_conf
    try:
        for step in truth:
            images = []
            for it, cam in zip(readers, cams):
                fr = next(it)
                assert fr.index == step.frame, (fr.index, step.frame)
                images.append(cv2.undistort(fr.rgb, np.asarray(cam.K), np.asarray(cam.dist)))
            t = time.perf_counter()
            people = est.estimate_batch(images, [c.intrinsics() for c in cams])
            latencies.append((time.perf_counter() - t) / len(images))
            for v, cam in enumerate(cams):
                out = outs[v][step.frame]
                ign2d, ignm = teacher_ignore_targets(cam, out, step.unclaimed[v], tmin)
                score_view(student, cam, step, v, student_predictions(cam, people[v]), ign2d,
                           ignm, cfg)
                if peer:
                    score_view(peer_t, cam, step, v, peer_predictions(cam, out), ign2d, ignm,
                               cfg)
    finally:
        for d in rig.datasets:
            d.close()

    res: dict[str, float] = {}
    res.update(student.summary())
    if peer:
        pk = ("recall", "precision", "pose2d_err_px", "mpjpe_mm", "pa_mpjpe_mm", "pck150",
              "matched", "predicted_people")
        ps = peer_t.summary()
        res.update({f"peer_{k}": ps[k] for k in pk})
    res["mean_pa_mpjpe_mm"] = mean_pose_pa(mean_pose, truth, cams, cfg)
    res.update(quality)
    if refine:
        res["calib_reproj_before_px"] = refine.before_px
        res["calib_reproj_after_px"] = refine.after_px
        res["calib_centre_shift_max_m"] = max(refine.centre_shift_m)
        res["calib_rotation_change_max_deg"] = max(refine.rotation_deg)
    res["student_ms_per_image"] = 1000.0 * float(np.median(latencies)) if latencies else np.nan
    res["teacher_s"] = t_teacher
    res["wall_s"] = time.time() - t0
    _print_report(args, rig, cams, eval_frames, calib_frames, refine, res, peer,
                  person_tracks(truth))
    if args.json:
        print(json.dumps({k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                          for k, v in res.items()}))
    return 0


def _num(v: float, fmt: str) -> str:
    return format(v, fmt) if np.isfinite(v) else "n/a"


def _print_report(args: argparse.Namespace, rig: Rig, cams: Sequence[Camera],
                  eval_frames: Sequence[int], calib_frames: Sequence[int],
                  refine: RefineReport | None, res: dict[str, float],
                  peer: bool, tracks: dict[int, np.ndarray]) -> None:
    def f(k: str, fmt: str = ".3g") -> str:
        return _num(res.get(k, float("nan")), fmt)

    print(f"mp3d eval multiview: {rig.data} ({len(cams)} views: "
          f"{', '.join(c.name for c in cams)}; {rig.n_frames} frames)")
    print(f"  model {args.model}")
    print(f"  scored time steps ({len(eval_frames)}): {list(eval_frames)}")
    if refine:
        print(f"  extrinsics refined by bundle adjustment on {len(calib_frames)} other time steps "
              f"({calib_frames[0]}..{calib_frames[-1]}): median reprojection of "
              f"{refine.observations} teacher observations {refine.before_px:.1f} -> "
              f"{refine.after_px:.1f} px; centres moved "
              f"{', '.join(f'{100 * s:.1f}' for s in refine.centre_shift_m)} cm, rotated "
              f"{', '.join(f'{a:.2f}' for a in refine.rotation_deg)} deg")
    else:
        print("  extrinsics: as calibrated (--no-refine)")
    print("pseudo ground truth (YOLO11n-pose triangulated, imgsz "
          f"{args.imgsz}):")
    print(f"  people {f('gt_people', 'g')} in {f('gt_time_steps', 'g')} time steps "
          f"({f('gt_people_per_step', '.2f')} per step), {f('truth_person_views', 'g')} "
          f"person-views; {f('gt_rejected_groups', 'g')} associated groups rejected")
    print(f"  median reprojection error {f('gt_reproj_median_px', '.1f')} px (used "
          f"observations, {100 * res.get('gt_used_observation_frac', 0):.0f}% of the confident "
          f"ones; all confident: {f('gt_reproj_median_all_px', '.1f')} px); "
          f"{f('gt_views_per_person', '.1f')} views and {f('gt_joints_per_person', '.1f')}/15 "
          "joints per person")
    if refine:
        print(f"  (with the calibration's own extrinsics: {f('gt_people_unrefined', 'g')} people, "
              f"median reprojection {f('gt_reproj_median_px_unrefined', '.1f')} px used / "
              f"{f('gt_reproj_median_all_px_unrefined', '.1f')} px all, bone-length variation "
              f"{_num(100 * res.get('gt_bone_cv_unrefined', float('nan')), '.1f')}%)")
    print(f"  body (median, m): height {f('gt_height_m', '.2f')}, upper arm "
          f"{f('gt_upper_arm_m', '.2f')}, forearm {f('gt_forearm_m', '.2f')}, thigh "
          f"{f('gt_thigh_m', '.2f')}, shin {f('gt_shin_m', '.2f')}, shoulders "
          f"{f('gt_shoulder_width_m', '.2f')}, hips {f('gt_hip_width_m', '.2f')}")
    print(f"  bone-length variation over time (std/mean, median bone, per person): "
          f"{_num(100 * res.get('gt_bone_cv', float('nan')), '.1f')}%")
    for k, J in enumerate(tracks.values()):
        d = body_dimensions(J)
        root = np.nanmedian(J[:, sk.ROOT], axis=0)
        cv = 100 * bone_length_cv(J)
        print(f"    person {k}: {len(J)} time steps, root at ({root[0]:.1f}, {root[1]:.1f}, "
              f"{root[2]:.1f}) m, height {_num(d['height_m'], '.2f')} m, thigh "
              f"{_num(d['thigh_m'], '.2f')} m, bone variation {_num(cv, '.1f')}%")
    if rig.data.name == "Demo_MultiPerson":
        print(f"  {THIN_GT_NOTE}")
    print("scores (strict match: mean 2D joint error <= 10% of the person's 2D size):")
    hdr = (f"  {'method':10s} {'recall':>7s} {'precis.':>7s} {'2D px':>7s} {'MPJPE':>7s} "
           f"{'PA-MPJPE':>8s} {'PCK150':>7s} {'root m':>7s} {'root %':>7s} {'spread m':>8s}")
    print(hdr)
    print(f"  {'student':10s} {f('recall', '.3f'):>7s} {f('precision', '.3f'):>7s} "
          f"{f('pose2d_err_px', '.1f'):>7s} {f('mpjpe_mm', '.0f'):>7s} "
          f"{f('pa_mpjpe_mm', '.0f'):>8s} {f('pck150', '.3f'):>7s} {f('root_err_m', '.2f'):>7s} "
          f"{f('root_err_pct', '.1f'):>7s} {f('crossview_root_spread_m', '.2f'):>8s}")
    if peer:
        print(f"  {'peer':10s} {f('peer_recall', '.3f'):>7s} {f('peer_precision', '.3f'):>7s} "
              f"{f('peer_pose2d_err_px', '.1f'):>7s} {f('peer_mpjpe_mm', '.0f'):>7s} "
              f"{f('peer_pa_mpjpe_mm', '.0f'):>8s} {f('peer_pck150', '.3f'):>7s} "
              f"{'-':>7s} {'-':>7s} {'-':>8s}")
    print(f"  {'mean pose':10s} {'-':>7s} {'-':>7s} {'-':>7s} {'-':>7s} "
          f"{f('mean_pa_mpjpe_mm', '.0f'):>8s}")
    print(f"  student: {f('predicted_people', 'g')} people predicted, "
          f"{f('ignored_people', 'g')} ignored (teacher people without truth), precision counting "
          f"them {f('precision_raw', '.3f')}; people per image by view: "
          + ", ".join(f"{c.name} {f(f'people_per_image_view{v}', '.2f')}"
                      for v, c in enumerate(cams))
          + f"; {f('student_ms_per_image', '.0f')} ms per image")
    print(f"  student's per-joint confidence: ROC AUC {f('conf_auc', '.3f')} against \"right "
          f"within {100 * MultiviewConfig.conf_frac:.0f}% of height\" (people cut by the border: "
          f"{f('conf_auc_truncated_people', '.3f')}); mean confidence of joints outside the "
          f"view {f('conf_mean_truncated', '.2f')}, inside {f('conf_mean_in_view', '.2f')}")
    print("  student's nearest person to each true person-view (medians): root "
          f"{f('nearest_root_dist_frac', '.2f')} of the true 2D size away, "
          f"{f('nearest_size_ratio', '.2f')} x its 2D size")
    print("  peer = YOLO boxes + BlazePose world landmarks (root-relative only); "
          "mean pose = prior decoder at z=0 (PA only)")
    print(f"  wall time {res['wall_s']:.0f} s (teacher outputs {res['teacher_s']:.0f} s)")


