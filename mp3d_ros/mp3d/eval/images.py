"""`mp3d eval images`: the student on frames it never saw, against the teacher (no labels exist).

Frames: the part [start_frac, end_frac) of a video, folder or bag (the student trained on the
part before). For each frame the student's people are matched to the teacher's people (cached by
`mp3d teach`) by 2D root distance (student root pixel vs the teacher's hip centre), best score
first, within max(8 px, 0.3 x the teacher person's size). Reported: recall and precision of the
teacher's people; 2D PCK of the student's projected joints against the teacher's confident
(>= 0.5) keypoints on the 12 limb joints, at 0.5 and 0.2 of the torso size (shoulder to opposite
hip, the larger diagonal); and plausibility of the student's 3D poses next to real motion capture.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.eval import metrics

LIMBS = tuple(sk.INDEX[n] for n in ("r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow",
                                     "l_wrist", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee",
                                     "l_ankle"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mp3d.common.paths import default_model
    from mp3d.infer.estimator import add_model_options

    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--video")
    src.add_argument("--bag")
    src.add_argument("--folder")
    p.add_argument("--topic", help="image topic (bags)")
    p.add_argument("--start-frac", type=float, default=0.75)
    p.add_argument("--end-frac", type=float, default=1.0)
    p.add_argument("--model", default=str(default_model("student.pt")))
    p.add_argument("--teacher-cache", default="cache/teacher")
    p.add_argument("--teacher", default="yolo11n-pose")
    p.add_argument("--hfov", type=float, default=60.0,
                   help="assumed horizontal field of view when the data has no intrinsics")
    p.add_argument("--reference", help="real motion (BVH or .npz) for the plausibility yardstick")
    p.add_argument("--min-conf", type=float, default=0.5)
    p.add_argument("--threshold", type=float, help="person score threshold (default: the model's)")
    add_model_options(p)
    p.add_argument("--json", action="store_true")


def torso_size(joints: np.ndarray) -> float:
    """Shoulder to opposite hip, the larger of the two diagonals (px), (17, 2) -> float."""
    i = sk.INDEX
    return float(max(np.linalg.norm(joints[i["r_shoulder"]] - joints[i["l_hip"]]),
                     np.linalg.norm(joints[i["l_shoulder"]] - joints[i["r_hip"]])))


def run(args: argparse.Namespace) -> int:
    from mp3d.common.geometry import FallbackCamera, resolve_intrinsics
    from mp3d.data.images import open_dataset
    from mp3d.data.images.dataset import split_by_time
    from mp3d.data.teachers.cache import TeacherCache, teacher_name_for
    from mp3d.infer.estimator import Estimator

    t0 = time.time()
    path = args.video or args.bag or args.folder
    ds = open_dataset(path, topic=args.topic) if args.topic else open_dataset(path)
    frames = split_by_time(ds, args.start_frac, args.end_frac)
    est = Estimator(args.model, peak_threshold=args.threshold, input_size=args.input_size,
                    refine_steps=args.refine_steps)
    cache = TeacherCache(args.teacher_cache)
    name = teacher_name_for(args.teacher_cache, path, args.teacher)
    n_teacher = n_student = n_match = 0
    hits05, hits02, total = 0, 0, 0
    poses, latencies = [], []
    for fr in frames:
        teacher = cache.lookup(fr, name)
        if teacher is None:
            raise LookupError(f"no cached teacher output for {fr.frame_id}: run `mp3d teach`")
        rgb = fr.rgb
        h, w = rgb.shape[:2]
        k = resolve_intrinsics(fr.camera, w, h, FallbackCamera(hfov_deg=args.hfov)).intrinsics
        t = time.perf_counter()
        people = est(rgb, k)
        latencies.append(time.perf_counter() - t)
        tj, tc = sk.coco_to_mupots(teacher.keypoints, teacher.scores) if len(teacher) else (
            np.zeros((0, 17, 2)), np.zeros((0, 17)))
        ok = tc >= args.min_conf
        has_root = ok[:, sk.ROOT]
        n_teacher += int(has_root.sum())
        n_student += len(people)
        used: set[int] = set()
        for p in sorted(people, key=lambda q: -q.score):
            poses.append(p.joints_3d - p.root)
            if not has_root.any():
                continue
            d = np.linalg.norm(tj[:, sk.ROOT] - p.keypoints_2d[sk.ROOT], axis=-1)
            d[~has_root] = np.inf
            d[list(used)] = np.inf
            j = int(np.argmin(d))
            size = np.ptp(tj[j][ok[j]], axis=0).max() if ok[j].sum() >= 2 else 0.0
            if d[j] > max(8.0, 0.3 * size):
                continue
            used.add(j)
            n_match += 1
            if not all(ok[j, sk.INDEX[n]] for n in ("r_shoulder", "l_shoulder", "r_hip",
                                                     "l_hip")):
                continue
            torso = torso_size(tj[j])
            for q in LIMBS:
                if ok[j, q]:
                    e = np.linalg.norm(p.keypoints_2d[q] - tj[j, q])
                    hits05 += e <= 0.5 * torso
                    hits02 += e <= 0.2 * torso
                    total += 1
    result = {
        "frames": len(frames), "teacher_people": n_teacher, "student_people": n_student,
        "recall": n_match / max(n_teacher, 1), "precision": n_match / max(n_student, 1),
        "pck2d": hits05 / max(total, 1), "pck2d_02": hits02 / max(total, 1),
        "latency_ms_p50": 1000 * float(np.median(latencies)) if latencies else float("nan"),
    }
    if poses:
        real = None
        if args.reference:
            from mp3d.data.posebank import load_canonical

            real = load_canonical(args.reference)
        plaus = metrics.plausibility(np.array(poses), real)
        result.update({f"student_{k}": v for k, v in plaus.items()})
        if real is not None:
            result.update({f"real_{k}": v for k, v in metrics.plausibility(real, real).items()})
    print(f"{path} frames [{args.start_frac}, {args.end_frac}): {len(frames)} frames, "
          f"{time.time() - t0:.0f} s")
    for k, v in result.items():
        print(f"{k:32s} {v:.4g}")
    if args.json:
        print(json.dumps(result))
    return 0
