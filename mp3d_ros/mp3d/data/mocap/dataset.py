"""Pose datasets from motion capture: BVH files/folders -> one cached .npz of 17-joint poses.

DeepMimic clips (humanoid3d_*.txt, mp3d.data.mocap.deepmimic) and joint-position clips
(*_joint_positions*.npy, holosoma-retargeting's climbing captures, mp3d.data.mocap.positions) are
taken beside BVH files: named directly (any .txt/.json, any .npy file) or found in folders by those
file-name patterns.

The .npz (see `PoseDataset`) holds every kept frame of every file as MuPoTS joints in metres, in
the mocap world frame (the file's axes, Y up; see mp3d.data.mocap.retarget), plus where each frame
came from. Two caches make re-runs cheap, both keyed by file content (SHA-256), mapping content, fps
and stride: the output file itself (a re-run with the same inputs and options only hashes the
inputs), and an optional per-file cache folder (adding one file to a folder converts one file).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.common.paths import file_sha256
from mp3d.data.mocap import deepmimic, positions
from mp3d.data.mocap.bvh import read_bvh
from mp3d.data.mocap.retarget import SHIPPED, Mapping, detect_mapping, load_mapping, retarget

# Bump when the conversion changes in a way that invalidates cached results.
CACHE_VERSION = 1


@dataclass(frozen=True, eq=False)
class PoseDataset:
    """Retargeted mocap poses.

    joints: (N, 17, 3) float32, metres, mocap world frame (Y up), sk.JOINT_NAMES order.
    file_index: (N,) int32, row -> index into files. frame_index: (N,) int32, source frame number.
    files: K source file names as given; file_sha256: their content hashes.
    file_ranges: (K, 2) int64, rows [start, end) of each file (files are contiguous, in order).
    file_mappings: K mapping names used. file_fps: (K,) frame rate of the kept rows per file.
    fps: the common rate of all files, NaN when they differ. stride: the --stride used.
    key: cache key of the whole dataset.
    """

    joints: np.ndarray
    file_index: np.ndarray
    frame_index: np.ndarray
    files: tuple[str, ...]
    file_sha256: tuple[str, ...]
    file_ranges: np.ndarray
    file_mappings: tuple[str, ...]
    file_fps: np.ndarray
    fps: float
    stride: int
    key: str

    def __post_init__(self) -> None:
        n, k = self.joints.shape[0], len(self.files)
        assert self.joints.shape == (n, sk.NUM_JOINTS, 3), self.joints.shape
        assert self.file_index.shape == (n,) and self.frame_index.shape == (n,), (
            self.file_index.shape, self.frame_index.shape)
        assert self.file_ranges.shape == (k, 2) and self.file_fps.shape == (k,), (
            self.file_ranges.shape, self.file_fps.shape)
        assert len(self.file_sha256) == k and len(self.file_mappings) == k

    def __len__(self) -> int:
        return int(self.joints.shape[0])

    def file_joints(self, k: int) -> np.ndarray:
        """Joints of file k, (n_k, 17, 3)."""
        s, e = self.file_ranges[k]
        return self.joints[s:e]


def find_bvh_files(inputs: Iterable[str | Path]) -> list[Path]:
    """BVH files named directly or found in folders (recursively, *.bvh in any case, DeepMimic
    clips humanoid3d_*.txt and joint-position clips *_joint_positions*.npy), sorted per folder."""
    out: list[Path] = []
    for p in map(Path, inputs):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and (
                f.suffix.lower() == ".bvh" or f.match(deepmimic.FILE_GLOB)
                or f.match(positions.FILE_GLOB)))
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    return out


def select_frames(num_frames: int, src_fps: float, fps: float | None = None,
                  stride: int = 1) -> tuple[np.ndarray, float]:
    """Source frame indices to keep and their rate: resample to `fps` (nearest frame), then stride.

    fps None (or within 0.1 % of src_fps) keeps the source rate; fps above it raises ValueError
    (no upsampling). Returns (M,) int64 indices and the rate of the kept frames.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if fps is None or abs(fps - src_fps) <= 1e-3 * src_fps:
        idx, rate = np.arange(num_frames), src_fps
    elif fps > src_fps:
        raise ValueError(f"cannot resample {src_fps:.3f} fps to {fps:.3f} fps (no upsampling)")
    elif fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    else:
        duration = (num_frames - 1) / src_fps
        t = np.arange(int(math.floor(duration * fps + 1e-9)) + 1) / fps
        idx, rate = np.minimum(np.rint(t * src_fps).astype(np.int64), num_frames - 1), fps
    return idx[::stride], rate / stride


def _mapping_key(mapping: Mapping | None) -> str:
    if mapping is None:
        return "auto:" + json.dumps([m.key() for m in SHIPPED.values()])
    return mapping.key()


def _hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def convert_file(path: str | Path, mapping: Mapping | None = None, *, fps: float | None = None,
                 stride: int = 1, allow_truncated: bool = False,
                 ) -> tuple[np.ndarray, np.ndarray, str, float]:
    """One BVH file -> joints (M, 17, 3) float32 metres, frame indices (M,), mapping name, rate.

    A DeepMimic clip (deepmimic.is_clip_path) is read by mp3d.data.mocap.deepmimic, a
    joint-position clip (.npy) by mp3d.data.mocap.positions (at positions.DEFAULT_FPS, every 4th
    frame, when fps is None); `mapping` applies to BVH files only (those skeletons are fixed) and
    their mapping names are deepmimic.MAPPING_NAME and positions.MAPPING_NAME.
    """
    if positions.is_clip_path(path):
        pclip = positions.read_clip(path)
        idx, rate = select_frames(pclip.num_frames, pclip.fps,
                                  positions.DEFAULT_FPS if fps is None else fps, stride)
        joints = positions.retarget(pclip, frames=idx).astype(np.float32)
        assert joints.shape == (len(idx), sk.NUM_JOINTS, 3), joints.shape
        return joints, idx.astype(np.int32), positions.MAPPING_NAME, rate
    if deepmimic.is_clip_path(path):
        clip = deepmimic.read_clip(path)
        idx, rate = select_frames(clip.num_frames, clip.fps, fps, stride)
        joints = deepmimic.retarget(clip, frames=idx).astype(np.float32)
        assert joints.shape == (len(idx), sk.NUM_JOINTS, 3), joints.shape
        return joints, idx.astype(np.int32), deepmimic.MAPPING_NAME, rate
    bvh = read_bvh(path, allow_truncated=allow_truncated)
    m = detect_mapping(bvh) if mapping is None else mapping
    idx, rate = select_frames(bvh.num_frames, bvh.fps, fps, stride)
    joints = retarget(bvh, m, motion=bvh.motion[idx]).astype(np.float32)
    assert joints.shape == (len(idx), sk.NUM_JOINTS, 3), joints.shape
    return joints, idx.astype(np.int32), m.name, rate


def default_cache_dir() -> Path:
    """$MP3D_CACHE_DIR/mocap, else $XDG_CACHE_HOME/mp3d/mocap, else ~/.cache/mp3d/mocap."""
    if os.environ.get("MP3D_CACHE_DIR"):
        return Path(os.environ["MP3D_CACHE_DIR"]) / "mocap"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mp3d" / "mocap"


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write an .npz atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def build_pose_dataset(inputs: Sequence[str | Path], out: str | Path, *,
                       mapping: Mapping | str | Path | None = None, fps: float | None = None,
                       stride: int = 1, cache_dir: str | Path | None = None,
                       allow_truncated: bool = False, force: bool = False,
                       progress: bool = True) -> tuple[PoseDataset, bool]:
    """Convert BVH files, DeepMimic and joint-position clips, or folders of them, into the .npz at
    `out`; returns (dataset, whether work was done).

    mapping: a Mapping, shipped name or mapping file; None auto-detects per file.
    fps, stride: see `select_frames`. cache_dir: per-file cache folder (None: none).
    force: reconvert even if `out` or the per-file cache is up to date.
    """
    from tqdm import tqdm

    out = Path(out)
    m = None if mapping is None else load_mapping(mapping)
    files = find_bvh_files(inputs)
    if not files:
        raise FileNotFoundError(f"no .bvh files (or DeepMimic {deepmimic.FILE_GLOB}, joint "
                                f"positions {positions.FILE_GLOB}) in "
                                f"{', '.join(map(str, inputs))}")
    options = {"version": CACHE_VERSION, "mapping": _mapping_key(m), "fps": fps,
               "stride": stride, "allow_truncated": allow_truncated}
    shas = [file_sha256(f) for f in files]
    # DeepMimic and joint-position conversions are keyed by their reader's version too (nothing
    # changes for BVH, so BVH-only keys stay as they were).
    dm_key = [f"deepmimic:{deepmimic.VERSION}"]
    pos_key = [f"positions:{positions.VERSION}"]
    key = _hash(options, [str(f) for f in files], shas,
                *(dm_key if any(deepmimic.is_clip_path(f) for f in files) else []),
                *(pos_key if any(positions.is_clip_path(f) for f in files) else []))
    if out.is_file() and not force:
        with np.load(out, allow_pickle=False) as z:
            stored = str(z["key"]) if "key" in z.files else None
        if stored == key:
            return load_pose_dataset(out), False

    cdir = None if cache_dir is None else Path(cache_dir)
    parts = []
    with tqdm(list(zip(files, shas)), desc="mocap", unit="file", disable=not progress) as bar:
        for f, sha in bar:
            bar.set_postfix_str(f.name)
            fkey = _hash(options, *(dm_key if deepmimic.is_clip_path(f) else
                                    pos_key if positions.is_clip_path(f) else []))
            cpath = None if cdir is None else cdir / f"{sha[:20]}-{fkey[:20]}.npz"
            if cpath is not None and cpath.is_file() and not force:
                with np.load(cpath, allow_pickle=False) as z:
                    parts.append((z["joints"], z["frame_index"], str(z["mapping"]),
                                  float(z["fps"])))
                continue
            j, idx, name, rate = convert_file(f, m, fps=fps, stride=stride,
                                              allow_truncated=allow_truncated)
            if cpath is not None:
                _save_npz(cpath, joints=j, frame_index=idx, mapping=np.array(name),
                          fps=np.array(rate))
            parts.append((j, idx, name, rate))

    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
    ends = np.cumsum(counts)
    ranges = np.stack([ends - counts, ends], axis=1)
    file_fps = np.array([p[3] for p in parts], dtype=np.float64)
    common = float(file_fps[0]) if np.allclose(file_fps, file_fps[0], rtol=1e-3) else math.nan
    _save_npz(
        out,
        joints=np.concatenate([p[0] for p in parts]).astype(np.float32),
        file_index=np.repeat(np.arange(len(parts), dtype=np.int32), counts),
        frame_index=np.concatenate([p[1] for p in parts]).astype(np.int32),
        files=np.array([str(f) for f in files]), file_sha256=np.array(shas),
        file_ranges=ranges, file_mappings=np.array([p[2] for p in parts]),
        file_fps=file_fps, fps=np.array(round(common, 3)), stride=np.array(stride),
        joint_names=np.array(sk.JOINT_NAMES), key=np.array(key),
        units=np.array("m"), frame=np.array("mocap world: file axes, metres, +Y up"),
    )
    return load_pose_dataset(out), True


def load_pose_dataset(path: str | Path) -> PoseDataset:
    """Load a dataset written by `build_pose_dataset` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        names = tuple(str(n) for n in z["joint_names"])
        if names != sk.JOINT_NAMES:
            raise ValueError(f"{path}: joint names {names} are not {sk.NAME}")
        return PoseDataset(
            joints=z["joints"], file_index=z["file_index"], frame_index=z["frame_index"],
            files=tuple(str(f) for f in z["files"]),
            file_sha256=tuple(str(s) for s in z["file_sha256"]),
            file_ranges=z["file_ranges"], file_mappings=tuple(str(s) for s in z["file_mappings"]),
            file_fps=z["file_fps"], fps=float(z["fps"]), stride=int(z["stride"]),
            key=str(z["key"]),
        )
