"""Joint-position motion clips (holosoma-retargeting's climbing captures): reading and retargeting.

The format (holosoma-retargeting 0.1.0, `demo_data/climb/mocap_climb_seq_*/
*_joint_positions_f*.npy`): one .npy array (T, 53, 3) of float32 world joint positions in metres,
Z up, at about 120 fps (the file records no rate; the package's own loader,
examples/robot_retarget.py, keeps every 4th frame for 30 fps, and so does this module by
default). Joint order: `MOCAP_DEMO_JOINTS` of the package's config_types/data_type.py, pinned
below as `JOINT_NAMES` (`joint_names_from_source` reads that file without importing it, for a
check). The world is right-handed: standing performers face +x with their left side at +y.
Bones are rigid (constant lengths to float precision: see `bone_length_spread`).

Retargeting to the MuPoTS joints follows mp3d.data.mocap.retarget's conventions for BVH (the rig
is a Mixamo/LaFAN1-like naming, Left*/Right*), as a `Mapping` (`MAPPING`):
  pelvis    mean(LeftUpLeg, RightUpLeg) (here exactly where Hips is).
  thorax    mean(LeftArm, RightArm): midpoint of the shoulder joints.
  spine     0.25 Spine + 0.75 Spine1: 0.49 of the way from pelvis to thorax (median over the 5
            clips; Spine alone is at 0.15, Spine1 at 0.60), as LaFAN1's mean(Spine1, Spine2) is
            at 0.51.
  head      Head.
  head_top  Head + 1.25 (Head - Neck), LaFAN1's rule (no End Site here either): about 18 cm
            above Head, a vertex near the 1.78 m stature the package assumes for these clips.
  limbs     shoulder/elbow/wrist = Arm/ForeArm/Hand, hip/knee/ankle = UpLeg/Leg/Foot.
Output: (F, 17, 3) metres in the "mocap world" frame of mp3d.data.mocap.retarget: the file's
axes turned to Y up by (x, y, z) -> (x, z, -y), the proper rotation retarget applies to a Z-up
mapping. `to_root_relative_canonical` and the pose datasets take it as is.

Errors are `PositionsError` (a ValueError), one line naming the file.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.mocap.retarget import Extend, Mapping, mapping_from_dict

# Bump when the reading or retargeting changes results (it keys cached conversions).
VERSION = 1
# Mapping name recorded in pose datasets for files converted by this module.
MAPPING_NAME = "holosoma_mocap"
# Folder scans pick joint-position clips by this file-name pattern; a file named directly may be
# any .npy.
FILE_GLOB = "*_joint_positions*.npy"
# The capture rate (not recorded in the files; holosoma's loader treats it as 4 x 30 fps) and the
# rate kept when the caller asks for none (every 4th frame, as holosoma does).
SOURCE_FPS = 120.0
DEFAULT_FPS = 30.0

# MOCAP_DEMO_JOINTS of holosoma_retargeting/config_types/data_type.py (0.1.0).
JOINT_NAMES: tuple[str, ...] = (
    "Hips", "Spine", "Spine1", "Neck", "Head",
    "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand",
    "LeftHandThumb1", "LeftHandThumb2", "LeftHandThumb3",
    "LeftHandIndex1", "LeftHandIndex2", "LeftHandIndex3",
    "LeftHandMiddle1", "LeftHandMiddle2", "LeftHandMiddle3",
    "LeftHandRing1", "LeftHandRing2", "LeftHandRing3",
    "LeftHandPinky1", "LeftHandPinky2", "LeftHandPinky3",
    "RightShoulder", "RightArm", "RightForeArm", "RightHand",
    "RightHandThumb1", "RightHandThumb2", "RightHandThumb3",
    "RightHandIndex1", "RightHandIndex2", "RightHandIndex3",
    "RightHandMiddle1", "RightHandMiddle2", "RightHandMiddle3",
    "RightHandRing1", "RightHandRing2", "RightHandRing3",
    "RightHandPinky1", "RightHandPinky2", "RightHandPinky3",
    "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase",
    "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase",
    "LeftFootMod", "RightFootMod",
)
NUM_SOURCE_JOINTS = len(JOINT_NAMES)
assert NUM_SOURCE_JOINTS == 53 and len(set(JOINT_NAMES)) == 53

MAPPING: Mapping = mapping_from_dict({
    "scale": 1.0, "up_axis": "z",
    "joints": {
        **{f"{s}_{part}": f"{side}{src}" for s, side in (("r", "Right"), ("l", "Left"))
           for part, src in (("shoulder", "Arm"), ("elbow", "ForeArm"), ("wrist", "Hand"),
                             ("hip", "UpLeg"), ("knee", "Leg"), ("ankle", "Foot"))},
        "pelvis": ["LeftUpLeg", "RightUpLeg"], "thorax": ["LeftArm", "RightArm"],
        "spine": {"Spine": 1, "Spine1": 3}, "head": "Head",
        "head_top": {"extend": ["Neck", "Head"], "factor": 1.25},
    },
}, MAPPING_NAME)


class PositionsError(ValueError):
    """A malformed joint-position clip; the message (one line) names the file."""


@dataclass(frozen=True, eq=False)
class PositionClip:
    """One joint-position clip.

    positions: (T, 53, 3) float32 world positions, metres, Z up, JOINT_NAMES order.
    fps: capture rate (SOURCE_FPS unless told). source: file path or a label, for messages.
    """

    positions: np.ndarray
    fps: float = SOURCE_FPS
    source: str = "<array>"

    def __post_init__(self) -> None:
        assert self.positions.shape[1:] == (NUM_SOURCE_JOINTS, 3), self.positions.shape

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[0])


def is_clip_path(path: str | Path) -> bool:
    """Whether a file is to be read as a joint-position clip: a .npy file."""
    return Path(path).suffix.lower() == ".npy"


def check_positions(array: np.ndarray, source: str = "<array>") -> PositionClip:
    """A (T, 53, 3) array of finite numbers -> PositionClip; PositionsError otherwise."""
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise PositionsError(f"{source}: expected a numeric array, got {kind}")
    if array.ndim != 3 or array.shape[1:] != (NUM_SOURCE_JOINTS, 3):
        raise PositionsError(f"{source}: expected joint positions of shape (T, "
                             f"{NUM_SOURCE_JOINTS}, 3) (holosoma MOCAP_DEMO_JOINTS), got "
                             f"{tuple(array.shape)}")
    if array.shape[0] == 0:
        raise PositionsError(f"{source}: no frames")
    finite = np.isfinite(array).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise PositionsError(f"{source}: non-finite positions in {len(bad)} of {len(finite)} "
                             f"frames (first: frame {int(bad[0])})")
    return PositionClip(positions=array.astype(np.float32, copy=False), source=source)


def read_clip(path: str | Path) -> PositionClip:
    """Read a joint-position clip (.npy, no pickles)."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise PositionsError(f"{path}: not a .npy array of joint positions ({first})") from None
    return check_positions(array, source=str(path))


def joint_names_from_source(path: str | Path, name: str = "MOCAP_DEMO_JOINTS") -> tuple[str, ...]:
    """The list `name` assigned at the top level of a Python file (holosoma's data_type.py),
    read without importing it."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return tuple(ast.literal_eval(node.value))
    raise ValueError(f"{path}: no top-level assignment to {name}")


def retarget(clip: PositionClip | np.ndarray, frames: np.ndarray | None = None,
             mapping: Mapping = MAPPING) -> np.ndarray:
    """The 17 MuPoTS joints per frame, (F, 17, 3) float64, metres, mocap world frame (Y up).

    clip: a PositionClip or its (T, 53, 3) positions; frames: indices to use (default all).
    mapping: how the joints are read from JOINT_NAMES (default MAPPING; Mean or Extend sources,
    first usable alternative, scale, then Z up turned to Y up as mp3d.data.mocap.retarget does).
    """
    pos = clip.positions if isinstance(clip, PositionClip) else np.asarray(clip)
    assert pos.shape[1:] == (NUM_SOURCE_JOINTS, 3), pos.shape
    if frames is not None:
        pos = pos[np.asarray(frames)]
    pos = pos.astype(np.float64)
    table = {n: i for i, n in enumerate(JOINT_NAMES)}
    out = np.empty((pos.shape[0], sk.NUM_JOINTS, 3))
    for j, alts in enumerate(mapping.joints):
        usable = [s for s in alts if all(n in table for n in (
            (s.base, s.tip) if isinstance(s, Extend) else s.names))]
        if not usable:
            raise PositionsError(f"mapping {mapping.name!r}: no usable source for "
                                 f"{sk.JOINT_NAMES[j]}")
        s = usable[0]
        if isinstance(s, Extend):
            base, tip = pos[:, table[s.base]], pos[:, table[s.tip]]
            out[:, j] = tip + s.factor * (tip - base)
        else:
            out[:, j] = np.einsum("fkc,k->fc", pos[:, [table[n] for n in s.names]],
                                  np.asarray(s.weights))
    out *= mapping.scale
    if mapping.up_axis == "z":  # (x, y, z) -> (x, z, -y), as mp3d.data.mocap.retarget
        out = np.stack([out[..., 0], out[..., 2], -out[..., 1]], axis=-1)
    assert out.shape == (pos.shape[0], sk.NUM_JOINTS, 3), out.shape
    return out


def bone_length_spread(joints: np.ndarray) -> np.ndarray:
    """How much each of the 16 bones changes length over a clip: (max - min) / median per bone,
    (F, 17, 3) -> (16,) in the order of sk.BONES (0 for rigid bones)."""
    lengths = sk.bone_lengths(np.asarray(joints, dtype=np.float64))
    assert lengths.ndim == 2 and lengths.shape[1] == len(sk.BONES), lengths.shape
    return (lengths.max(axis=0) - lengths.min(axis=0)) / np.median(lengths, axis=0)
