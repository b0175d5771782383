"""`mp3d eval multiview`: label-free 3D evaluation on real synchronized calibrated multi-view video.

Pseudo ground truth: the YOLO teacher's 2D keypoints of every view are undistorted, associated
across views, left/right-voted per limb and triangulated (`mp3d.multiview`); the extrinsics are
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
``.venv-teacher/bin/python -m mp3d.eval_multiview teach JOB.json`` in a subprocess (or in-process
when the current interpreter has the teacher). Without arguments it fetches the Pose2Sim demo
(`scripts/fetch_pose2sim.sh`) and evaluates the shipped student on Demo_MultiPerson.
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
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mp3d import metrics
from mp3d import multiview as mv
from mp3d import skeleton as sk
from mp3d.paths import file_sha256

REPO = Path(__file__).resolve().parents[2]
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
TEACHER_SCHEMA = 1
NUM_BP = 33  # BlazePose landmarks
PCK_JOINTS = tuple(j for j in sk.EVAL_JOINTS if j in mv.COCO_BACKED)  # 13: no head_top

THIN_GT_NOTE = (
    "note: on Demo_MultiPerson the pseudo ground truth is thin: mostly one nearly still woman who "
    "looks rendered, and the person standing at the back of the room (seen by two cameras only); "
    "the man's unusual poses, which the teacher often gets wrong, are usually rejected. It is real "
    "3D in metres, but two or three people, not a benchmark.")


class InputError(ValueError):
    """Bad command-line input (missing files, unusable frames); reported in one line, exit 2."""


# ------------------------------------------------------------------------------------------------
# Configuration and inputs


@dataclass(frozen=True)
class TeacherSettings:
    """YOLO11n-pose settings: imgsz 1280 = the long side of a 1088x1920 portrait frame at 2/3
    scale (people 500-900 px tall become 330-600 px, well inside YOLO's range; 0.2 s/frame on a
    CPU core); conf: YOLO person confidence. The peer's BlazePose runs on YOLO's boxes."""

    imgsz: int = 1280
    conf: float = 0.25


@dataclass(frozen=True)
class MultiviewConfig:
    """Evaluation settings: match_frac: the strict match radius (fraction of the projected 2D
    size); ignore_frac: an unmatched prediction whose mean 2D joint distance to a teacher person
    without pseudo ground truth is below this fraction of that person's 2D size is ignored in
    precision (lenient on purpose: someone is there); min_visible_joints: a true person counts in
    a view when at least this many of its joints project inside the image; pck_mm: 3DPCK
    threshold; conf_frac: per-joint confidence is scored against "the joint's root-relative
    error is within this fraction of the person's height"."""

    match_frac: float = 0.10
    ignore_frac: float = 0.25
    conf_frac: float = 0.15         # a joint is right within this fraction of body height
    min_visible_joints: int = 8
    pck_mm: float = 150.0
    triangulation: mv.TriangulationConfig = mv.TriangulationConfig()
    loose: mv.TriangulationConfig = mv.TriangulationConfig(
        max_reproj_px=40.0, max_reproj_frac=0.08, assoc_max_frac=0.15)
    bundle: mv.BundleAdjustConfig = mv.BundleAdjustConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mp3d.paths import default_model

    p.add_argument("--model", default=str(default_model("student.pt")), help="student checkpoint")
    p.add_argument("--data", help="folder with videos/ (or the videos themselves) and "
                   "calibration/ (default: the Pose2Sim Demo_MultiPerson, fetched if missing)")
    p.add_argument("--calib", help="calibration file (.qca.txt, Pose2Sim .toml or mp3d .yaml; "
                   "default: the one in DATA/calibration)")
    p.add_argument("--frames", help="time steps to score: START:STOP[:STEP] or a comma list of "
                   "frame indices (default: the last 60%% of the video)")
    p.add_argument("--steps", type=int, default=20,
                   help="score this many time steps spread evenly over --frames (0: all)")
    p.add_argument("--calib-frames", help="time steps for the extrinsics refinement, never "
                   "scored (same syntax; default: the first 40%% of the video)")
    p.add_argument("--calib-steps", type=int, default=20, help="refinement time steps (0: all)")
    p.add_argument("--no-refine", action="store_true", help="keep the calibration's extrinsics")
    p.add_argument("--no-peer", action="store_true", help="skip the BlazePose top-down peer")
    p.add_argument("--imgsz", type=int, default=TeacherSettings.imgsz, help="YOLO input size")
    p.add_argument("--cache", default=str(REPO / "cache" / "multiview"),
                   help="teacher output cache folder")
    p.add_argument("--teacher-python", default=os.environ.get(
        "MP3D_TEACHER_PYTHON", str(REPO / ".venv-teacher" / "bin" / "python")),
        help="interpreter with the teacher extra (env MP3D_TEACHER_PYTHON)")
    p.add_argument("--threshold", type=float, help="student person threshold (default: model's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")


def parse_frames(spec: str | None, n_frames: int, default: tuple[float, float]) -> list[int]:
    """Frame indices from 'START:STOP[:STEP]' (Python slice semantics) or 'a,b,c'; None takes the
    fraction range `default` of the video. Raises InputError for malformed or empty selections."""
    if spec is None:
        a, b = (int(round(f * n_frames)) for f in default)
        out = list(range(a, b))
    elif ":" in spec:
        try:
            parts = [int(x) if x.strip() else None for x in spec.split(":")]
        except ValueError:
            raise InputError(f"bad frame range {spec!r} (want START:STOP[:STEP])") from None
        if len(parts) > 3:
            raise InputError(f"bad frame range {spec!r} (want START:STOP[:STEP])")
        out = list(range(n_frames))[slice(*parts)]
    else:
        try:
            out = sorted({int(x) for x in spec.split(",") if x.strip()})
        except ValueError:
            raise InputError(f"bad frame list {spec!r} (want integers separated by commas)"
                             ) from None
        bad = [f for f in out if not 0 <= f < n_frames]
        if bad:
            raise InputError(f"frames {bad} are outside the videos' 0..{n_frames - 1}")
    if not out:
        raise InputError(f"no frames selected by {spec!r} in a {n_frames}-frame video")
    return out


def spread(frames: Sequence[int], n: int) -> list[int]:
    """n frames spread evenly over `frames` (all if n <= 0 or n >= len)."""
    if n <= 0 or n >= len(frames):
        return list(frames)
    idx = np.round(np.linspace(0, len(frames) - 1, n)).astype(int)
    return [int(frames[i]) for i in idx]


@dataclass
class Rig:
    """The inputs: video paths in camera order, their cameras, frame count (the shortest
    video's, counted by decoding), data folder, and the videos as `mp3d.imagedata` datasets."""

    videos: list[Path]
    cameras: list[mv.Camera]
    n_frames: int
    data: Path
    datasets: list = field(repr=False, default_factory=list)


def _find_calibration(data: Path) -> Path:
    folder = data / "calibration" if (data / "calibration").is_dir() else data
    for pattern in ("*.qca.txt", "*.yaml", "*.yml", "Calib*.toml", "*.toml"):
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    raise InputError(f"no calibration (.qca.txt, .yaml or .toml) in {folder}; pass --calib")


def fetch_demo() -> Path:
    """The Pose2Sim demo folder (Pose2Sim/), fetched by scripts/fetch_pose2sim.sh if missing."""
    res = subprocess.run(["bash", str(REPO / "scripts" / "fetch_pose2sim.sh")],
                         env={**os.environ, "PYTHON": sys.executable}, capture_output=True,
                         text=True, timeout=900)
    if res.returncode != 0:
        raise InputError(f"scripts/fetch_pose2sim.sh failed: {res.stderr.strip()[-500:]}")
    return Path(res.stdout.strip().splitlines()[-1])


def load_rig(data: str | None, calib: str | None) -> Rig:
    """Videos and cameras, paired by name (a calibration camera whose name contains the video's
    stem, or the other way round); raises InputError / CalibrationError."""
    import cv2

    from mp3d.imagedata import VideoDataset

    folder = Path(data) if data else fetch_demo() / "Demo_MultiPerson"
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}")
    vdir = folder / "videos" if (folder / "videos").is_dir() else folder
    videos = sorted(p for p in vdir.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if len(videos) < 2:
        raise InputError(f"need videos of at least two cameras in {vdir}, found {len(videos)}")
    cams = mv.read_calibration(Path(calib) if calib else _find_calibration(folder))
    by_video = []
    for v in videos:
        hits = [c for c in cams if v.stem.lower() in c.name.lower()
                or c.name.lower() in v.stem.lower()]
        if len(hits) != 1:
            raise InputError(f"video {v.name} matches {len(hits)} calibration cameras "
                             f"({[c.name for c in cams]}); name videos after their cameras")
        by_video.append(hits[0])
    datasets = []
    for v, c in zip(videos, by_video):
        cap = cv2.VideoCapture(str(v))
        if not cap.isOpened():
            raise InputError(f"OpenCV cannot open {v}")
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        cap.release()
        if (w, h) != (c.width, c.height):
            raise InputError(f"{v.name} is {w}x{h} but camera {c.name} is calibrated for "
                             f"{c.width}x{c.height}")
        datasets.append(VideoDataset(v))  # counts frames by decoding them
    return Rig(videos, by_video, min(len(d) for d in datasets), folder, datasets)


# ------------------------------------------------------------------------------------------------
# Teacher outputs: cache and the .venv-teacher helper


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
        if teacher_main(["teach", str(spec)]) != 0:
            raise RuntimeError("the teacher helper failed")
        return
    py = Path(teacher_python)
    if not py.exists():
        raise InputError(f"the teacher environment is missing ({py}): "
                         "bash scripts/setup.sh --teacher, or pass --teacher-python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"), PYTHONUNBUFFERED="1")
    res = subprocess.run([str(py), "-m", "mp3d.eval_multiview", "teach", str(spec)], env=env,
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

    from mp3d.teachers import BLAZEPOSE_TO_COCO, square_crop

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
    """The helper run in .venv-teacher: ``python -m mp3d.eval_multiview teach JOB.json``.

    JOB.json: {"imgsz", "conf", "jobs": [{"video", "frames", "peer" (one bool per frame),
    "out"}]}; writes each job's frames with `save_frames`."""
    ap = argparse.ArgumentParser(prog="python -m mp3d.eval_multiview")
    ap.add_argument("what", choices=["teach"])
    ap.add_argument("job")
    a = ap.parse_args(argv)
    import cv2
    import torch

    from mp3d.imagedata import open_dataset
    from mp3d.teachers import make_teacher

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


# ------------------------------------------------------------------------------------------------
# Pseudo ground truth


def undistorted_teacher(cams: Sequence[mv.Camera], outs: Sequence[dict[int, FrameTeacher]],
                        frame: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """COCO keypoints (P_v, 17, 2) in undistorted px and confidences (P_v, 17) of every view."""
    kps = [mv.undistort_points(c, o[frame].kp) for c, o in zip(cams, outs)]
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


def calibration_observations(cams: Sequence[mv.Camera], outs: Sequence[dict[int, FrameTeacher]],
                             frames: Sequence[int], cfg: mv.TriangulationConfig
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kept observations of the accepted people's joints on `frames`: obs_view (M,),
    obs_point (M,), obs_uv (M, 2) undistorted px, obs_weight (M,) teacher confidence."""
    ov, op, ouv, ow = [], [], [], []
    n = 0
    for f in frames:
        kps, confs = undistorted_teacher(cams, outs, f)
        for p in mv.triangulate_people(cams, kps, confs, cfg):
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


def refine_cameras(cams: list[mv.Camera], outs: Sequence[dict[int, FrameTeacher]],
                   frames: Sequence[int], cfg: MultiviewConfig
                   ) -> tuple[list[mv.Camera], RefineReport]:
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
        cams, _, _ = mv.bundle_adjust(cams, *obs, cfg=cfg.bundle, centres=centres)
    assert first is not None
    rep = RefineReport(float(np.nanmedian(mv.observation_errors(start, *first))),
                       float(np.nanmedian(mv.observation_errors(cams, *first))), len(first[0]),
                       [float(np.linalg.norm(c.centre - c0)) for c, c0 in zip(cams, centres)],
                       [rotation_deg(a.R, b.R) for a, b in zip(start, cams)])
    return cams, rep


@dataclass
class StepTruth:
    """Pseudo ground truth of one time step: the accepted people and all groups tried, and for
    each view the teacher detections that belong to no accepted person (ignored in precision)."""

    frame: int
    people: list[mv.TriangulatedPerson]
    rejected: list[mv.TriangulatedPerson]
    unclaimed: list[list[int]]
    heights: list[float] = field(default_factory=list)  # per person: stature (m) over its track


def pseudo_ground_truth(cams: Sequence[mv.Camera], outs: Sequence[dict[int, FrameTeacher]],
                        frames: Sequence[int], cfg: mv.TriangulationConfig) -> list[StepTruth]:
    """Triangulated people of each time step in `frames` (see `mp3d.multiview`)."""
    out = []
    for f in frames:
        kps, confs = undistorted_teacher(cams, outs, f)
        people = mv.triangulate_people(cams, kps, confs, cfg)
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
        "gt_joints_per_person": float(np.mean([p.valid[list(mv.COCO_BACKED)].sum()
                                               for p in people])) if people else 0.0,
    }
    inl = np.concatenate([p.inlier_errors for p in people]) if people else np.zeros(0)
    allv = np.concatenate([p.reproj[np.isfinite(p.reproj)] for p in people]) if people else inl
    q["gt_reproj_median_px"] = float(np.median(inl)) if len(inl) else float("nan")
    q["gt_reproj_median_all_px"] = float(np.median(allv)) if len(allv) else float("nan")
    q["gt_used_observation_frac"] = len(inl) / max(len(allv), 1)
    dims = mv.body_dimensions(np.stack([p.joints for p in people])) if people else {}
    q.update({f"gt_{k}": v for k, v in dims.items()})
    tracks = person_tracks(truth)
    q["gt_tracks"] = len(tracks)
    cv = [(len(t), mv.bone_length_cv(t)) for t in tracks.values()]
    cv = [(n, c) for n, c in cv if np.isfinite(c)]
    q["gt_bone_cv"] = (float(np.average([c for _, c in cv], weights=[n for n, _ in cv]))
                       if cv else float("nan"))
    return q


def person_tracks(truth: Sequence[StepTruth]) -> dict[int, np.ndarray]:
    """The pseudo ground truth's people linked over time steps: {id: (n, 17, 3) joints}, most
    seen first. Sets each step's `heights` (a person's stature from its whole track: one step
    rarely has every joint)."""
    ids = mv.link_tracks([np.array([p.joints[sk.ROOT] for p in s.people]).reshape(-1, 3)
                          for s in truth])
    out: dict[int, list[np.ndarray]] = {}
    for s, idx in zip(truth, ids):
        for p, i in zip(s.people, idx):
            out.setdefault(int(i), []).append(p.joints)
    tracks = {k: np.stack(v) for k, v in sorted(out.items(), key=lambda kv: -len(kv[1]))}
    height = {k: mv.body_dimensions(v)["height_m"] for k, v in tracks.items()}
    for s, idx in zip(truth, ids):
        s.heights = [height[int(i)] for i in idx]
    return tracks


# ------------------------------------------------------------------------------------------------
# Scoring


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


def view_truth(cam: mv.Camera, people: Sequence[mv.TriangulatedPerson], min_visible: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
    """Projected truth in one view: gt2d (G, 17, 2) undistorted px, mask (G, 17), size (G,), and
    the indices of the people that count in this view (root and >= min_visible joints inside)."""
    if not people:
        return np.zeros((0, sk.NUM_JOINTS, 2)), np.zeros((0, sk.NUM_JOINTS), bool), np.zeros(0), []
    J = np.stack([p.joints for p in people])
    uv = mv.project(cam, J)
    inside = (np.all(np.isfinite(uv), axis=-1) & (uv[..., 0] >= -0.5)
              & (uv[..., 0] <= cam.width - 0.5) & (uv[..., 1] >= -0.5)
              & (uv[..., 1] <= cam.height - 0.5))
    mask = inside & np.stack([p.valid for p in people])
    size = np.array([np.ptp(u[m], axis=0).max() if m.sum() >= 2 else 0.0
                     for u, m in zip(uv, mask)])
    count = [g for g in range(len(people)) if mask[g, sk.ROOT] and mask[g].sum() >= min_visible]
    return uv, mask, size, count


def score_view(tally: Tally, cam: mv.Camera, step: StepTruth, view: int, pred: Predictions,
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
            height = step.heights[g] if step.heights else mv.body_dimensions(gt[None])["height_m"]
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


def teacher_ignore_targets(cam: mv.Camera, out: FrameTeacher, idx: Sequence[int], min_conf: float
                           ) -> tuple[np.ndarray, np.ndarray]:
    """MuPoTS 2D (T, 17, 2) undistorted px and masks (T, 17) of the given teacher detections."""
    if not idx:
        return np.zeros((0, sk.NUM_JOINTS, 2)), np.zeros((0, sk.NUM_JOINTS), bool)
    kp, conf = sk.coco_to_mupots(mv.undistort_points(cam, out.kp[list(idx)]), out.conf[list(idx)])
    return kp, conf >= min_conf


def crop_rotation(cam: mv.Camera, centre_xy: np.ndarray) -> np.ndarray:
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


def peer_predictions(cam: mv.Camera, out: FrameTeacher, min_vis: float = 0.5) -> Predictions:
    """The peer's people in one view: BlazePose image landmarks (undistorted) and world landmarks
    (hip-centred, camera-aligned axes of the crop) rotated into the camera, then into the world;
    both mapped to the 17 joints through COCO-17."""
    from mp3d.teachers import BLAZEPOSE_TO_COCO

    assert out.has_peer, "peer outputs missing"
    ok = out.bp_ok
    sel = list(BLAZEPOSE_TO_COCO)
    n = int(ok.sum())
    kp2d = np.zeros((n, sk.NUM_JOINTS, 2))
    world = np.zeros((n, sk.NUM_JOINTS, 3))
    mask = np.zeros((n, sk.NUM_JOINTS), bool)
    for k, i in enumerate(np.flatnonzero(ok)):
        uv = mv.undistort_points(cam, out.bp_kp[i][sel])
        kp2d[k], c = sk.coco_to_mupots(uv, out.bp_vis[i][sel])
        mask[k] = c >= min_vis
        centre = mv.undistort_points(cam, out.bp_crop[i][:2])
        j3, _ = sk.coco_to_mupots(out.bp_world[i][sel], np.ones(len(sel)))
        j3 = np.nan_to_num(j3)
        world[k] = (j3 @ crop_rotation(cam, centre).T) @ cam.R  # virtual -> camera -> world
    return Predictions(kp2d, world, mask, absolute=False)


def student_predictions(cam: mv.Camera, people: Sequence) -> Predictions:
    """The student's people (mp3d.people.Person, on the undistorted image) in the world frame."""
    n = len(people)
    kp2d = np.array([p.keypoints_2d for p in people]).reshape(n, sk.NUM_JOINTS, 2)
    cam3d = np.array([p.joints_3d for p in people]).reshape(n, sk.NUM_JOINTS, 3)
    world = (cam3d - cam.t) @ cam.R  # R^T (X - t)
    conf = np.array([p.joint_scores for p in people]).reshape(n, sk.NUM_JOINTS)
    return Predictions(kp2d, world, np.ones((n, sk.NUM_JOINTS), bool), absolute=True, conf=conf)


def mean_pose_pa(mean_pose: np.ndarray, truth: Sequence[StepTruth], cams: Sequence[mv.Camera],
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


# ------------------------------------------------------------------------------------------------
# The command


def register_parser(which: argparse._SubParsersAction) -> None:
    q = which.add_parser("multiview", help="3D on real calibrated multi-view video, pseudo ground "
                         "truth triangulated from the teacher (no labels)",
                         description=__doc__.splitlines()[0])
    add_arguments(q)
    q.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of `mp3d eval multiview`: 0 on success, 2 on bad input."""
    try:
        return _run(args)
    except (InputError, mv.CalibrationError, FileNotFoundError) as exc:
        print(f"mp3d eval multiview: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import cv2
    import torch

    from mp3d.estimator import Estimator

    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    cfg = MultiviewConfig()
    if not Path(args.model).is_file():
        raise InputError(f"model not found: {args.model}")
    rig = load_rig(args.data, args.calib)
    try:
        est = Estimator(args.model, device=args.device, peak_threshold=args.threshold)
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


def rotation_deg(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Angle (degrees) of the rotation between two (3, 3) rotation matrices."""
    c = (np.trace(Rb @ Ra.T) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _print_report(args: argparse.Namespace, rig: Rig, cams: Sequence[mv.Camera],
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
        d = mv.body_dimensions(J)
        root = np.nanmedian(J[:, sk.ROOT], axis=0)
        cv = 100 * mv.bone_length_cv(J)
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


def main(argv: list[str] | None = None) -> int:
    """``python -m mp3d.eval_multiview teach JOB.json`` (the teacher helper) or the evaluation's
    own arguments (same as `mp3d eval multiview`)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "teach":
        return teacher_main(argv)
    ap = argparse.ArgumentParser(prog="mp3d eval multiview", description=__doc__.splitlines()[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
