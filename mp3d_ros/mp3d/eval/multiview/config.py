"""The multi-view evaluation's settings and inputs: configuration, arguments, frame selection, the
rig (videos and calibration).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.common.paths import REPO
from mp3d.eval.multiview.association import TriangulationConfig
from mp3d.eval.multiview.bundle_adjust import BundleAdjustConfig
from mp3d.eval.multiview.calibration import read_calibration
from mp3d.eval.multiview.camera import Camera
from mp3d.eval.multiview.people import COCO_BACKED

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
TEACHER_SCHEMA = 1
NUM_BP = 33  # BlazePose landmarks
PCK_JOINTS = tuple(j for j in sk.EVAL_JOINTS if j in COCO_BACKED)  # 13: no head_top

THIN_GT_NOTE = (
    "note: on Demo_MultiPerson the pseudo ground truth is thin: mostly one nearly still woman who "
    "looks rendered, and the person standing at the back of the room (seen by two cameras only); "
    "the man's unusual poses, which the teacher often gets wrong, are usually rejected. It is real "
    "3D in metres, but two or three people, not a benchmark.")


class InputError(ValueError):
    """Bad command-line input (missing files, unusable frames); reported in one line, exit 2."""




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
    triangulation: TriangulationConfig = TriangulationConfig()
    loose: TriangulationConfig = TriangulationConfig(
        max_reproj_px=40.0, max_reproj_frac=0.08, assoc_max_frac=0.15)
    bundle: BundleAdjustConfig = BundleAdjustConfig()


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mp3d.common.paths import default_model
    from mp3d.infer.estimator import add_model_options

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
    add_model_options(p)
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
    video's, counted by decoding), data folder, and the videos as `mp3d.data.images` datasets."""

    videos: list[Path]
    cameras: list[Camera]
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

    from mp3d.data.images.video import VideoDataset

    folder = Path(data) if data else fetch_demo() / "Demo_MultiPerson"
    if not folder.is_dir():
        raise InputError(f"data folder not found: {folder}")
    vdir = folder / "videos" if (folder / "videos").is_dir() else folder
    videos = sorted(p for p in vdir.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if len(videos) < 2:
        raise InputError(f"need videos of at least two cameras in {vdir}, found {len(videos)}")
    cams = read_calibration(Path(calib) if calib else _find_calibration(folder))
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
