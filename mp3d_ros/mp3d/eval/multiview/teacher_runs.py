"""Teacher outputs per view and frame (YOLO keypoints; BlazePose for the peer): their cache, and
the helper that computes them in .venv-teacher.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mp3d.common.paths import REPO, file_sha256
from mp3d.eval.multiview.config import NUM_BP, TEACHER_SCHEMA, InputError, TeacherSettings


@dataclass
class FrameTeacher:
    """Teacher outputs of one frame of one video (raw, distorted pixels).

    kp: (P, 17, 2) COCO keypoints, conf: (P, 17), boxes: (P, 4), pscore: (P,); peer (None: not
    computed): bp_ok (P,) bool (BlazePose found the person in the box), bp_kp (P, 33, 2) image
    landmarks px, bp_vis (P, 33), bp_world (P, 33, 3) world landmarks (m, hip-centred),
    bp_crop (P, 3): crop centre x, y and side (px).
    """

    kp: np.ndarray
    conf: np.ndarray
    boxes: np.ndarray
    pscore: np.ndarray
    bp_ok: np.ndarray | None = None
    bp_kp: np.ndarray | None = None
    bp_vis: np.ndarray | None = None
    bp_world: np.ndarray | None = None
    bp_crop: np.ndarray | None = None

    @property
    def has_peer(self) -> bool:
        return self.bp_ok is not None


_ARRAYS = ("kp", "conf", "boxes", "pscore")
_PEER_ARRAYS = ("bp_ok", "bp_kp", "bp_vis", "bp_world", "bp_crop")
_SHAPES = {"kp": (17, 2), "conf": (17,), "boxes": (4,), "pscore": (), "bp_ok": (),
           "bp_kp": (NUM_BP, 2), "bp_vis": (NUM_BP,), "bp_world": (NUM_BP, 3), "bp_crop": (3,)}


def save_frames(path: Path, frames: dict[int, FrameTeacher], meta: dict[str, str]) -> None:
    """Write {frame index: FrameTeacher} atomically as one .npz (ragged people concatenated)."""
    keys = sorted(frames)
    offsets = np.concatenate([[0], np.cumsum([len(frames[k].kp) for k in keys])]).astype(np.int64)
    arrays: dict[str, np.ndarray] = {"frames": np.array(keys, np.int64), "offsets": offsets,
                                     "peer_done": np.array([frames[k].has_peer for k in keys])}
    for name in _ARRAYS + _PEER_ARRAYS:
        parts = []
        for k in keys:
            a = getattr(frames[k], name)
            if a is None:
                a = np.zeros((len(frames[k].kp),) + _SHAPES[name])
            parts.append(np.asarray(a, np.float64))
        arrays[name] = (np.concatenate(parts) if parts else np.zeros((0,) + _SHAPES[name]))
    for k, v in meta.items():
        arrays[f"meta_{k}"] = np.array(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.npz"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_frames(path: Path) -> tuple[dict[int, FrameTeacher], dict[str, str]]:
    """Read what `save_frames` wrote."""
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    out = {}
    off = data["offsets"]
    for i, k in enumerate(data["frames"]):
        s = slice(int(off[i]), int(off[i + 1]))
        base = {n: data[n][s] for n in _ARRAYS}
        peer = ({n: data[n][s] for n in _PEER_ARRAYS} if data["peer_done"][i]
                else {n: None for n in _PEER_ARRAYS})
        if peer["bp_ok"] is not None:
            peer["bp_ok"] = peer["bp_ok"].astype(bool)
        out[int(k)] = FrameTeacher(**base, **peer)
    meta = {k[5:]: str(v) for k, v in data.items() if k.startswith("meta_")}
    return out, meta


def cache_path(cache: Path, video: Path, settings: TeacherSettings) -> Path:
    """Cache file of one video's teacher outputs: keyed by its content and the settings."""
    key = hashlib.sha256(f"{file_sha256(video)}|{settings.imgsz}|{settings.conf:g}|"
                         f"{TEACHER_SCHEMA}".encode()).hexdigest()[:16]
    return cache / f"{video.stem}-{key}.npz"


def teacher_outputs(videos: Sequence[Path], frames: Sequence[int], peer_frames: set[int],
                    settings: TeacherSettings, cache: Path, teacher_python: str
                    ) -> list[dict[int, FrameTeacher]]:
    """Teacher outputs of `frames` in each video (peer too on `peer_frames`), from the cache, the
    missing ones computed by the teacher helper (in .venv-teacher) and added to the cache."""
    jobs, cached = [], []
    for v in videos:
        path = cache_path(cache, v, settings)
        have, meta = load_frames(path) if path.is_file() else ({}, {})
        cached.append((path, have, meta))
        todo = [f for f in frames if f not in have or (f in peer_frames and not have[f].has_peer)]
        if todo:
            jobs.append({"video": str(v), "frames": todo,
                         "peer": [f in peer_frames for f in todo]})
    if jobs:
        with tempfile.TemporaryDirectory() as tmp:
            for k, job in enumerate(jobs):
                job["out"] = str(Path(tmp) / f"job{k}.npz")
            spec = Path(tmp) / "job.json"
            spec.write_text(json.dumps({**asdict(settings), "jobs": jobs}))
            n = sum(len(j["frames"]) for j in jobs)
            print(f"[multiview] running the teacher on {n} frames ...", file=sys.stderr,
                  flush=True)
            _run_teacher_job(spec, teacher_python)
            for job in jobs:
                new, meta = load_frames(Path(job["out"]))
                k = [str(p) for p, _, _ in cached].index(
                    str(cache_path(cache, Path(job["video"]), settings)))
                path, have, old = cached[k]
                have.update(new)
                save_frames(path, have, {**old, **meta})
    return [{f: have[f] for f in frames} for _, have, _ in cached]


def _run_teacher_job(spec: Path, teacher_python: str) -> None:
    if all(importlib.util.find_spec(m) is not None for m in ("ultralytics", "mediapipe")):
        if teacher_main([str(spec)]) != 0:
            raise RuntimeError("the teacher helper failed")
        return
    py = Path(teacher_python)
    if not py.exists():
        raise InputError(f"the teacher environment is missing ({py}): "
                         "bash scripts/setup.sh --teacher, or pass --teacher-python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
    res = subprocess.run([str(py), "-m", "mp3d.eval.multiview.teacher_runs", str(spec)], env=env,
                         cwd=REPO, capture_output=True, text=True, timeout=3600)
    if res.returncode != 0:
        raise RuntimeError(f"teacher helper ({py}) failed ({res.returncode}):\n"
                           f"{res.stderr[-3000:]}")


def _blazepose_world(pose, rgb: np.ndarray, box: np.ndarray, pad: float = 0.25,
                     mask_margin: float = 0.1, min_crop: int = 256, min_inside: float = 0.5
                     ) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """BlazePose on the padded square crop of one box, as `TopDownBlazePoseTeacher` does, but
    keeping the world landmarks. Returns ok, image landmarks (33, 2) px, visibilities (33,),
    world landmarks (33, 3) m, crop (centre x, centre y, side)."""
    import cv2

    from mp3d.data.teachers.blazepose import BLAZEPOSE_TO_COCO, square_crop

    crop, x0, y0, side = square_crop(rgb, box, pad, mask_margin=mask_margin)
    if side < min_crop:
        crop = cv2.resize(crop, (min_crop, min_crop), interpolation=cv2.INTER_LINEAR)
    cr = np.array([x0 + 0.5 * (side - 1), y0 + 0.5 * (side - 1), side], np.float64)
    res = pose.process(crop)
    if res.pose_landmarks is None or res.pose_world_landmarks is None:
        return False, np.zeros((NUM_BP, 2)), np.zeros(NUM_BP), np.zeros((NUM_BP, 3)), cr
    lm = res.pose_landmarks.landmark
    kp = np.array([[x0 + p.x * side - 0.5, y0 + p.y * side - 0.5] for p in lm])
    vis = np.clip([p.visibility for p in lm], 0.0, 1.0)
    world = np.array([[p.x, p.y, p.z] for p in res.pose_world_landmarks.landmark])
    k17 = kp[list(BLAZEPOSE_TO_COCO)]
    mx, my = mask_margin * (box[2] - box[0]), mask_margin * (box[3] - box[1])
    inside = ((k17[:, 0] >= box[0] - mx) & (k17[:, 0] <= box[2] + mx)
              & (k17[:, 1] >= box[1] - my) & (k17[:, 1] <= box[3] + my))
    return bool(inside.mean() >= min_inside), kp, vis, world, cr


def teacher_main(argv: list[str] | None = None) -> int:
    """The helper run in .venv-teacher: ``python -m mp3d.eval.multiview.teacher_runs JOB.json``.

    JOB.json: {"imgsz", "conf", "jobs": [{"video", "frames", "peer" (one bool per frame),
    "out"}]}; writes each job's frames with `save_frames`."""
    ap = argparse.ArgumentParser(prog="python -m mp3d.eval.multiview.teacher_runs")
    ap.add_argument("job")
    a = ap.parse_args(argv)
    import cv2
    import torch

    from mp3d.data.images import open_dataset
    from mp3d.data.teachers import make_teacher

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    spec = json.loads(Path(a.job).read_text())
    yolo = make_teacher("yolo11n-pose", imgsz=int(spec["imgsz"]), conf=float(spec["conf"]))
    pose = None
    meta = {"teacher": yolo.name}
    for job in spec["jobs"]:
        if any(job["peer"]) and pose is None:
            import mediapipe as mp

            pose = mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1,
                                          smooth_landmarks=False, enable_segmentation=False,
                                          min_detection_confidence=0.5)
            meta["peer"] = (f"blazepose-world:mp{mp.__version__}:c1:pad=0.25:mask=0.1:"
                            f"boxes[{yolo.name}]")
        ds = open_dataset(job["video"])
        want = dict(zip(job["frames"], job["peer"]))
        out: dict[int, FrameTeacher] = {}
        for fr in ds.subset(sorted(want)):
            rgb = fr.rgb
            p = yolo(rgb)
            rec = FrameTeacher(p.keypoints.astype(np.float64), p.scores.astype(np.float64),
                               p.boxes.astype(np.float64), p.person_scores.astype(np.float64))
            if want[fr.index]:
                rows = [_blazepose_world(pose, rgb, b) for b in rec.boxes]
                n = len(rows)
                rec.bp_ok = np.array([r[0] for r in rows], bool).reshape(n)
                rec.bp_kp = np.array([r[1] for r in rows]).reshape(n, NUM_BP, 2)
                rec.bp_vis = np.array([r[2] for r in rows]).reshape(n, NUM_BP)
                rec.bp_world = np.array([r[3] for r in rows]).reshape(n, NUM_BP, 3)
                rec.bp_crop = np.array([r[4] for r in rows]).reshape(n, 3)
            out[fr.index] = rec
        save_frames(Path(job["out"]), out, meta)
        print(f"[teacher] {Path(job['video']).name}: {len(out)} frames", file=sys.stderr,
              flush=True)
    if pose is not None:
        pose.close()
    return 0


if __name__ == "__main__":
    sys.exit(teacher_main())
