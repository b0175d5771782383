"""DeepMimic motion clips (humanoid3d_*.txt): reading, forward kinematics, retargeting to 17 joints.

The format (DeepMimic, Peng et al. 2018; the same files ship in pybullet_data/data/motions/):
JSON `{"Loop": "wrap" | "none", "Frames": [[...44 numbers...], ...]}`, one row per key frame:

  [0]      duration of this key frame, seconds (the last row's is often 0)
  [1:4]    root position, world, metres
  [4:8]    root rotation, world, quaternion w x y z
  then each joint's rotation relative to its parent, in this order: chest (4), neck (4),
  right_hip (4), right_knee (1), right_ankle (4), right_shoulder (4), right_elbow (1),
  left_hip (4), left_knee (1), left_ankle (4), left_shoulder (4), left_elbow (1);
  spherical joints as quaternions w x y z, the revolute knees and elbows as one angle (radians)
  about their local z axis.

This order is pybullet's own DeepMimic reader (pybullet_envs/deep_mimic/env/
humanoid_pose_interpolator.py, which reorders each quaternion to x y z w for pybullet).

Skeleton (`JOINTS`, `SITES`): pybullet_data/humanoid/humanoid.urdf, whose lengths are 4 times
DeepMimic's humanoid3d character (pybullet loads it with globalScaling=0.25); the offsets below
are the URDF's times 0.25, i.e. metres, and equal DeepMimic's data/characters/humanoid3d.txt.
All joint frames have no rest rotation (URDF rpy 0), so a link's world rotation is its parent's
times its local rotation, and a child sits at parent + R_parent @ offset (as in mp3d.data.mocap.fk).
World axes: Y up; the character's rest pose faces +x with its right side at +z (walk clips move
along +x; right_hip is at +z).

Retargeting to the MuPoTS joints (the same choices as mp3d.data.mocap.retarget makes for BVH):
  pelvis     the root (exactly the midpoint of the two hip joints)
  limbs      right/left hip, knee, ankle, shoulder, elbow joints; wrist = the fixed wrist frame
  thorax     mean of the two shoulder joints
  spine      the chest joint (0.49 of the way from pelvis to thorax in the rest pose; LaFAN1's
             spine is at 0.51)
  head       centre of the head sphere of the neck link, 0.175 m above the neck joint along the
             neck link's +y: 0.157 m from the thorax at rest (LaFAN1's Head: 0.180 m on a taller
             actor)
  head_top   top of that sphere (radius 0.1025 m), 0.2775 m above the neck joint
Stature at rest (ankle 5 cm above the sole, as the foot box says): about 1.62 m.

Output: `retarget` gives (F, 17, 3) metres in the file's world frame, Y up: the "mocap world"
frame of mp3d.data.mocap.retarget, so `to_root_relative_canonical` and the pose datasets take it as
is. Errors are `DeepMimicError` (a ValueError) naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk

# Bump when the reading or retargeting changes results (it keys cached conversions).
VERSION = 1
# Mapping name recorded in pose datasets for files converted by this module.
MAPPING_NAME = "deepmimic"
# Folder scans pick DeepMimic clips by this file-name pattern (humanoid3d_walk.txt, ...).
FILE_GLOB = "humanoid3d_*.txt"

FRAME_SIZE = 44


class DeepMimicError(ValueError):
    """A malformed DeepMimic clip; the message names the file."""


@dataclass(frozen=True)
class Joint:
    """One DeepMimic joint: parent index (-1: root), offset from the parent (m, parent frame),
    kind ("root", "spherical" or "revolute") and, for its rotation, the first column in a frame
    row (root: its position starts there, then its quaternion)."""

    name: str
    parent: int
    offset: tuple[float, float, float]
    kind: str
    column: int


# The humanoid3d skeleton in frame-row order (parents first).
JOINTS: tuple[Joint, ...] = (
    Joint("root", -1, (0.0, 0.0, 0.0), "root", 1),
    Joint("chest", 0, (0.0, 0.236151, 0.0), "spherical", 8),
    Joint("neck", 1, (0.0, 0.223894, 0.0), "spherical", 12),
    Joint("right_hip", 0, (0.0, 0.0, 0.084887), "spherical", 16),
    Joint("right_knee", 3, (0.0, -0.421546, 0.0), "revolute", 20),
    Joint("right_ankle", 4, (0.0, -0.409870, 0.0), "spherical", 21),
    Joint("right_shoulder", 1, (-0.02405, 0.2435, 0.18311), "spherical", 25),
    Joint("right_elbow", 6, (0.0, -0.274788, 0.0), "revolute", 29),
    Joint("left_hip", 0, (0.0, 0.0, -0.084887), "spherical", 30),
    Joint("left_knee", 8, (0.0, -0.421546, 0.0), "revolute", 34),
    Joint("left_ankle", 9, (0.0, -0.409870, 0.0), "spherical", 35),
    Joint("left_shoulder", 1, (-0.02405, 0.2435, -0.18311), "spherical", 39),
    Joint("left_elbow", 11, (0.0, -0.274788, 0.0), "revolute", 43),
)
JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
JOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}
# Revolute joints turn about this local axis (URDF <axis xyz="0 0 1"/>).
REVOLUTE_AXIS = np.array([0.0, 0.0, 1.0])

# Points fixed in a link's frame: name -> (link, offset in metres).
HEAD_CENTRE_M = 0.175   # the neck link's head sphere: centre above the neck joint
HEAD_RADIUS_M = 0.1025  # ... and radius
SITES: dict[str, tuple[str, tuple[float, float, float]]] = {
    "right_wrist": ("right_elbow", (0.0, -0.258947, 0.0)),
    "left_wrist": ("left_elbow", (0.0, -0.258947, 0.0)),
    "head": ("neck", (0.0, HEAD_CENTRE_M, 0.0)),
    "head_top": ("neck", (0.0, HEAD_CENTRE_M + HEAD_RADIUS_M, 0.0)),
}
POINT_NAMES: tuple[str, ...] = JOINT_NAMES + tuple(SITES)

# MuPoTS joint -> the DeepMimic points it is the mean of.
MUPOTS_SOURCES: dict[str, tuple[str, ...]] = {
    "head_top": ("head_top",), "thorax": ("right_shoulder", "left_shoulder"),
    "r_shoulder": ("right_shoulder",), "r_elbow": ("right_elbow",), "r_wrist": ("right_wrist",),
    "l_shoulder": ("left_shoulder",), "l_elbow": ("left_elbow",), "l_wrist": ("left_wrist",),
    "r_hip": ("right_hip",), "r_knee": ("right_knee",), "r_ankle": ("right_ankle",),
    "l_hip": ("left_hip",), "l_knee": ("left_knee",), "l_ankle": ("left_ankle",),
    "pelvis": ("root",), "spine": ("chest",), "head": ("head",),
}
assert tuple(MUPOTS_SOURCES) == sk.JOINT_NAMES


@dataclass(frozen=True, eq=False)
class Clip:
    """One DeepMimic clip.

    frames: (F, 44) the file's rows (see the module doc for the layout).
    loop: the file's "Loop" value ("wrap": a cycle, "none": a one-off motion).
    source: file path or a label, for messages.
    """

    frames: np.ndarray
    loop: str = "none"
    source: str = "<string>"

    def __post_init__(self) -> None:
        assert self.frames.ndim == 2 and self.frames.shape[1] == FRAME_SIZE, self.frames.shape

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def frame_time(self) -> float:
        """Seconds per frame: the median key-frame duration (the last row's 0 excluded)."""
        d = self.frames[:-1, 0] if self.num_frames > 1 else self.frames[:, 0]
        return float(np.median(d))

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time


def parse_clip(data: object, source: str = "<string>") -> Clip:
    """A decoded JSON object -> Clip; DeepMimicError if it is not a humanoid3d clip."""
    if not isinstance(data, dict) or "Frames" not in data:
        raise DeepMimicError(f"{source}: not a DeepMimic clip (no 'Frames')")
    rows = data["Frames"]
    if not isinstance(rows, list) or not rows:
        raise DeepMimicError(f"{source}: 'Frames' must be a non-empty list of frames")
    bad = [i for i, r in enumerate(rows) if not isinstance(r, list) or len(r) != FRAME_SIZE]
    if bad:
        n = len(rows[bad[0]]) if isinstance(rows[bad[0]], list) else type(rows[bad[0]]).__name__
        raise DeepMimicError(f"{source}: frame {bad[0]}: expected {FRAME_SIZE} numbers (the "
                             f"humanoid3d skeleton), found {n}")
    try:
        frames = np.array(rows, dtype=np.float64)
    except (TypeError, ValueError):
        raise DeepMimicError(f"{source}: frames must hold numbers only") from None
    if not np.isfinite(frames).all():
        raise DeepMimicError(f"{source}: frames hold non-finite numbers")
    clip = Clip(frames=frames, loop=str(data.get("Loop", "none")), source=source)
    if not clip.frame_time > 0:
        raise DeepMimicError(f"{source}: key-frame durations must be positive")
    quats = frames[:, [c for j in JOINTS if j.kind != "revolute"
                       for c in range(j.column + (3 if j.kind == "root" else 0),
                                      j.column + (7 if j.kind == "root" else 4))]]
    norms = np.linalg.norm(quats.reshape(len(frames), -1, 4), axis=-1)
    if (norms < 0.5).any():
        raise DeepMimicError(f"{source}: a quaternion has norm {norms.min():.3g} (expected 1)")
    return clip


def read_clip(path: str | Path) -> Clip:
    """Read a DeepMimic clip file (JSON)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeepMimicError(f"{path}: not a DeepMimic clip (bad JSON: {exc})") from None
    return parse_clip(data, source=str(path))


def is_clip_path(path: str | Path) -> bool:
    """Whether a file is to be read as a DeepMimic clip: a .txt or .json file (BVH is .bvh)."""
    return Path(path).suffix.lower() in (".txt", ".json")


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Quaternions w x y z (..., 4), normalised here -> rotation matrices (..., 3, 3)."""
    q = np.asarray(q, dtype=np.float64)
    assert q.shape[-1] == 4, q.shape
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    out = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return out.reshape(q.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation by `angle` radians (...,) about the unit `axis` (3,) -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def local_transforms(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint local rotations (F, J, 3, 3) and the root's world position (F, 3) of frame rows
    (F, 44); the root's rotation is its world rotation."""
    frames = np.asarray(frames, dtype=np.float64)
    assert frames.ndim == 2 and frames.shape[1] == FRAME_SIZE, frames.shape
    rots = np.empty((len(frames), len(JOINTS), 3, 3))
    for j, jt in enumerate(JOINTS):
        c = jt.column
        if jt.kind == "root":
            rots[:, j] = quat_to_matrix(frames[:, c + 3:c + 7])
        elif jt.kind == "spherical":
            rots[:, j] = quat_to_matrix(frames[:, c:c + 4])
        else:
            rots[:, j] = axis_angle_to_matrix(REVOLUTE_AXIS, frames[:, c])
    return rots, frames[:, 1:4].copy()


def forward_kinematics(clip: Clip | np.ndarray, frames: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """World positions of POINT_NAMES (F, 17 points: 13 joints then SITES) and world rotations of
    the 13 joints (F, 13, 3, 3), metres, Y up.

    clip: a Clip or its (F, 44) frame rows; frames: indices of the frames to use (default all).
    """
    rows = clip.frames if isinstance(clip, Clip) else np.asarray(clip, dtype=np.float64)
    if frames is not None:
        rows = rows[np.asarray(frames)]
    local, root = local_transforms(rows)
    f = len(rows)
    pos = np.empty((f, len(JOINTS), 3))
    glob = np.empty_like(local)
    for j, jt in enumerate(JOINTS):
        if jt.parent < 0:
            pos[:, j] = root
            glob[:, j] = local[:, j]
        else:
            p = jt.parent
            pos[:, j] = pos[:, p] + glob[:, p] @ np.asarray(jt.offset)
            glob[:, j] = glob[:, p] @ local[:, j]
    sites = [pos[:, JOINT_INDEX[link]] + glob[:, JOINT_INDEX[link]] @ np.asarray(off)
             for link, off in SITES.values()]
    points = np.concatenate([pos, np.stack(sites, axis=1)], axis=1)
    assert points.shape == (f, len(POINT_NAMES), 3), points.shape
    return points, glob


def retarget(clip: Clip | np.ndarray, frames: np.ndarray | None = None) -> np.ndarray:
    """The 17 MuPoTS joints per frame, (F, 17, 3) float64, metres, the clip's world frame (Y up).

    clip: a Clip or its (F, 44) frame rows; frames: indices of the frames to use (default all).
    """
    points, _ = forward_kinematics(clip, frames)
    index = {n: i for i, n in enumerate(POINT_NAMES)}
    out = np.stack([points[:, [index[s] for s in MUPOTS_SOURCES[n]]].mean(axis=1)
                    for n in sk.JOINT_NAMES], axis=1)
    assert out.shape == (points.shape[0], sk.NUM_JOINTS, 3), out.shape
    return out


def rest_frame() -> np.ndarray:
    """One frame row (44,) of the rest pose: root at the origin, every rotation identity."""
    row = np.zeros(FRAME_SIZE)
    row[0] = 1.0 / 30.0
    for jt in JOINTS:
        if jt.kind == "root":
            row[jt.column + 3] = 1.0
        elif jt.kind == "spherical":
            row[jt.column] = 1.0
    return row
