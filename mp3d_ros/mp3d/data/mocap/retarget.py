"""Retarget BVH skeletons onto the 17 MuPoTS joints (mp3d.common.skeleton), in metres, Y up.

A `Mapping` says how each of the 17 joints is read from a file's joints: the (weighted) mean of one
or more source joints, or a point extended past a bone (tip + factor * (tip - base)), with
alternatives tried in order. Source names may be joints or End Sites (`<Parent>_End`); an End Site
with a zero offset carries no information (it sits on its parent) and counts as absent. FBX-style
namespaces are optional: "mixamorig:Hips" also answers to "Hips".

Shipped mappings (SHIPPED; `load_mapping` also reads a user's JSON or YAML file of the same form):

  lafan1  Ubisoft LaFAN1, centimetres (scale 0.01).
  cmu     CMU MoCap BVH conversions (cgspeed / "Daz-friendly" names: LHipJoint, LowerBack, Neck1,
          ...). Their unit is the ASF length unit, (1/0.45) inch = 0.056444 m (ASF `length 0.45`
          with inches), the scale used by common CMU BVH loaders; user-settable.
  mixamo  Adobe Mixamo (mixamorig:Hips, ...; the prefix is optional), centimetres (scale 0.01).
  mocapbank  the 19-joint rig of MocapBank-style BVH (Hips, Chest, Chest2, Left/RightCollar,
          Shoulder, Elbow, Wrist, Hip, Knee, Ankle, Neck, Head; bvhtoolbox 0.1.3's
          tests/example_files/test_mocapbank.bvh), centimetres (scale 0.01).

Joint choices (same spirit for all four; the teacher's COCO mapping in mp3d.common.skeleton
also takes thorax and pelvis as the shoulder and hip midpoints):
  pelvis    mean(LeftUpLeg, RightUpLeg): midpoint of the hip joints (the BVH root "Hips" sits
            off it: 2 cm in LaFAN1, about 10 cm above it in CMU skeletons).
  thorax    mean(LeftArm, RightArm): midpoint of the shoulder joints.
  spine     the spine joint nearest the pelvis-thorax midpoint (MPI-INF-3DHP's 17-joint "spine"
            is the H36M mid-torso spine): LaFAN1 mean(Spine1, Spine2) (measured 0.51 of the
            way up), CMU Spine (0.56 on a CMU skeleton's offsets), Mixamo Spine1 (unchecked),
            mocapbank 0.4 Chest + 0.6 Chest2 (0.50 over test_mocapbank.bvh; Chest alone is at
            0.25, Chest2 at 0.67).
  head      Head.
  head_top  Mixamo: HeadTop_End. LaFAN1: its Head End Site has zero length, so head_top =
            Head + 1.25 (Head - Neck), about 15 cm above Head; that puts the vertex at about
            1.75 m on the LaFAN1 actor, matching the statures implied by shoulder height (0.81
            of stature) and hip height (0.53). CMU: the Head End Site sits only ~9 cm above Head,
            well below the vertex, so head_top = Head_End + 1.0 (Head_End - Head), or without
            that End Site Head + 1.25 (Head - Neck1) (calibrated on a CMU skeleton's offsets,
            not checked on CMU motion data). mocapbank: its Head End Site, 18 cm above Head
            (head_top 1.53 m above the ankles in its first, standing frame: a performer of
            about 1.6 m).
  limbs     shoulder/elbow/wrist = Arm/ForeArm/Hand, hip/knee/ankle = UpLeg/Leg/Foot
            (mocapbank: Shoulder/Elbow/Wrist, Hip/Knee/Ankle).
BVH "Left"/"Right" are the performer's own sides, as are MuPoTS "l_"/"r_".

Output frame ("mocap world"): the file's own axes, scaled to metres, with Y up (a mapping with
up_axis "z" is turned to Y up by (x, y, z) -> (x, z, -y), a proper rotation).
`to_root_relative_canonical` then gives the pose-prior frame: pelvis at the origin, rotated about
+Y so that the hip axis (r_hip -> l_hip) lies along +x. Right-handed, so the person faces +z:
+x = the person's left, +y = up, +z = forward (left x up = forward).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.mocap.bvh import BVH
from mp3d.data.mocap.fk import forward_kinematics

# End Sites with offsets shorter than this (file units) count as absent.
END_SITE_MIN_LENGTH = 1e-6


class MappingError(ValueError):
    """A mapping that is malformed or does not fit a file."""


@dataclass(frozen=True)
class Mean:
    """Weighted mean of source joints; weights sum to 1."""

    names: tuple[str, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class Extend:
    """A point past the tip of a bone: tip + factor * (tip - base)."""

    base: str
    tip: str
    factor: float


Source = Mean | Extend


@dataclass(frozen=True)
class Mapping:
    """How the 17 MuPoTS joints are read from a BVH skeleton.

    joints: per MuPoTS joint (sk.JOINT_NAMES order), alternatives tried in order.
    scale: file units -> metres. up_axis: "y" or "z", the file's vertical axis.
    signature: extra names a file must have for auto-detection to pick this mapping.
    """

    name: str
    joints: tuple[tuple[Source, ...], ...]
    scale: float
    up_axis: str = "y"
    signature: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        assert len(self.joints) == sk.NUM_JOINTS, len(self.joints)
        if not self.scale > 0:
            raise MappingError(f"mapping {self.name!r}: scale must be positive, got {self.scale}")
        if self.up_axis not in ("y", "z"):
            raise MappingError(f"mapping {self.name!r}: up_axis must be 'y' or 'z', "
                               f"got {self.up_axis!r}")

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON-able form (what `mapping_from_dict` reads)."""

        def src(s: Source) -> Any:
            if isinstance(s, Extend):
                return {"extend": [s.base, s.tip], "factor": s.factor}
            return dict(zip(s.names, s.weights))

        return {
            "name": self.name, "scale": self.scale, "up_axis": self.up_axis,
            "signature": list(self.signature),
            "joints": {n: {"any": [src(s) for s in alts]}
                       for n, alts in zip(sk.JOINT_NAMES, self.joints)},
        }

    def key(self) -> str:
        """A stable string identifying the mapping's content (for cache keys)."""
        return json.dumps(self.to_dict(), sort_keys=True)


def _limbs() -> dict[str, str]:
    """Limb joints of the Left*/Right* naming shared by LaFAN1, CMU and Mixamo."""
    out = {}
    for side, pre in (("r", "Right"), ("l", "Left")):
        out.update({
            f"{side}_shoulder": f"{pre}Arm", f"{side}_elbow": f"{pre}ForeArm",
            f"{side}_wrist": f"{pre}Hand", f"{side}_hip": f"{pre}UpLeg",
            f"{side}_knee": f"{pre}Leg", f"{side}_ankle": f"{pre}Foot",
        })
    return out


# Shipped mappings, in the file format that `mapping_from_dict` reads.
SHIPPED_SPECS: dict[str, dict[str, Any]] = {
    "lafan1": {
        "scale": 0.01, "up_axis": "y", "signature": ["LeftToe", "RightToe", "Spine2"],
        "joints": {
            **_limbs(),
            "pelvis": ["LeftUpLeg", "RightUpLeg"], "thorax": ["LeftArm", "RightArm"],
            "spine": ["Spine1", "Spine2"], "head": "Head",
            "head_top": {"any": ["Head_End", {"extend": ["Neck", "Head"], "factor": 1.25}]},
        },
    },
    "cmu": {
        "scale": 0.056444, "up_axis": "y", "signature": ["LHipJoint", "RHipJoint", "LowerBack",
                                                         "Neck1"],
        "joints": {
            **_limbs(),
            "pelvis": ["LeftUpLeg", "RightUpLeg"], "thorax": ["LeftArm", "RightArm"],
            "spine": "Spine", "head": "Head",
            "head_top": {"any": [{"extend": ["Head", "Head_End"], "factor": 1.0},
                                 {"extend": ["Neck1", "Head"], "factor": 1.25}]},
        },
    },
    "mixamo": {
        "scale": 0.01, "up_axis": "y", "signature": ["HeadTop_End", "Spine2", "LeftToeBase"],
        "joints": {
            **_limbs(),
            "pelvis": ["LeftUpLeg", "RightUpLeg"], "thorax": ["LeftArm", "RightArm"],
            "spine": "Spine1", "head": "Head", "head_top": "HeadTop_End",
        },
    },
    "mocapbank": {
        "scale": 0.01, "up_axis": "y", "signature": ["Chest2", "LeftCollar", "LeftAnkle"],
        "joints": {
            **{f"{s}_{part}": f"{side}{src}" for s, side in (("r", "Right"), ("l", "Left"))
               for part, src in (("shoulder", "Shoulder"), ("elbow", "Elbow"), ("wrist", "Wrist"),
                                 ("hip", "Hip"), ("knee", "Knee"), ("ankle", "Ankle"))},
            "pelvis": ["LeftHip", "RightHip"], "thorax": ["LeftShoulder", "RightShoulder"],
            "spine": {"Chest": 2, "Chest2": 3}, "head": "Head",
            "head_top": {"any": ["Head_End", {"extend": ["Neck", "Head"], "factor": 1.25}]},
        },
    },
}


def _parse_source(spec: Any, where: str) -> Source:
    if isinstance(spec, str):
        return Mean((spec,), (1.0,))
    if isinstance(spec, list) and spec and all(isinstance(s, str) for s in spec):
        spec = {n: spec.count(n) for n in dict.fromkeys(spec)}  # repeated names weigh more
    if isinstance(spec, dict) and "extend" in spec:
        ext = spec["extend"]
        if not (isinstance(ext, list) and len(ext) == 2 and all(isinstance(s, str) for s in ext)):
            raise MappingError(f"{where}: 'extend' needs [base, tip] names, got {ext!r}")
        unknown = set(spec) - {"extend", "factor"}
        if unknown:
            raise MappingError(f"{where}: unknown keys {sorted(unknown)} next to 'extend'")
        return Extend(ext[0], ext[1], float(spec.get("factor", 1.0)))
    if isinstance(spec, dict) and spec and all(isinstance(k, str) for k in spec):
        try:
            w = np.array([float(v) for v in spec.values()])
        except (TypeError, ValueError):
            raise MappingError(f"{where}: weights must be numbers, got {spec!r}") from None
        if abs(w.sum()) < 1e-12:
            raise MappingError(f"{where}: weights sum to zero: {spec!r}")
        return Mean(tuple(spec), tuple(float(x) for x in w / w.sum()))
    raise MappingError(f"{where}: expected a name, a list of names, a {{name: weight}} object or "
                       f"{{'extend': [base, tip], 'factor': f}}, got {spec!r}")


def mapping_from_dict(d: dict[str, Any], name: str | None = None) -> Mapping:
    """Build a Mapping from its file form.

    {"scale": 0.01, "up_axis": "y", "signature": [...optional...],
     "joints": {"pelvis": ["LeftUpLeg", "RightUpLeg"],             # mean
                "spine": {"Spine1": 0.5, "Spine2": 0.5},           # weighted mean
                "head_top": {"any": ["Head_End",                    # first usable alternative
                                     {"extend": ["Neck", "Head"], "factor": 1.25}]},
                "head": "Head", ...all 17 MuPoTS joints...}}
    """
    if not isinstance(d, dict):
        raise MappingError(f"a mapping must be an object, got {type(d).__name__}")
    name = str(d.get("name", name or "custom"))
    unknown = set(d) - {"name", "scale", "up_axis", "signature", "joints", "description"}
    if unknown:
        raise MappingError(f"mapping {name!r}: unknown keys {sorted(unknown)}")
    joints = d.get("joints")
    if not isinstance(joints, dict):
        raise MappingError(f"mapping {name!r}: 'joints' must be an object of the 17 MuPoTS joints")
    extra = sorted(set(joints) - set(sk.JOINT_NAMES))
    missing = [n for n in sk.JOINT_NAMES if n not in joints]
    if extra or missing:
        raise MappingError(f"mapping {name!r}: joints must be exactly the 17 MuPoTS joints; "
                           f"missing {missing}, unknown {extra}")
    alts_all = []
    for jn in sk.JOINT_NAMES:
        spec = joints[jn]
        where = f"mapping {name!r}, joint {jn!r}"
        if isinstance(spec, dict) and "any" in spec:
            if set(spec) != {"any"} or not isinstance(spec["any"], list) or not spec["any"]:
                raise MappingError(f"{where}: 'any' needs a non-empty list of alternatives")
            alts = tuple(_parse_source(s, where) for s in spec["any"])
        else:
            alts = (_parse_source(spec, where),)
        alts_all.append(alts)
    if "scale" not in d:
        raise MappingError(f"mapping {name!r}: 'scale' (file units -> metres) is required")
    try:
        scale = float(d["scale"])
    except (TypeError, ValueError):
        raise MappingError(f"mapping {name!r}: scale must be a number, "
                           f"got {d['scale']!r}") from None
    return Mapping(name=name, joints=tuple(alts_all), scale=scale,
                   up_axis=str(d.get("up_axis", "y")).lower(),
                   signature=tuple(d.get("signature", ())))


SHIPPED: dict[str, Mapping] = {n: mapping_from_dict(s, n) for n, s in SHIPPED_SPECS.items()}


def load_mapping(name_or_path: str | Path | Mapping) -> Mapping:
    """A shipped mapping by name (lafan1, cmu, mixamo, mocapbank), or a JSON / YAML mapping file."""
    if isinstance(name_or_path, Mapping):
        return name_or_path
    if str(name_or_path) in SHIPPED:
        return SHIPPED[str(name_or_path)]
    path = Path(name_or_path)
    if not path.is_file():
        raise MappingError(f"unknown mapping {str(name_or_path)!r}: not one of "
                           f"{sorted(SHIPPED)} and not a file")
    text = path.read_text()
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            d = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MappingError(f"{path}: bad YAML: {exc}") from None
    else:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            raise MappingError(f"{path}: bad JSON: {exc}") from None
    return mapping_from_dict(d, name=path.stem)


def name_columns(bvh: BVH) -> dict[str, int]:
    """Usable source names -> column in forward_kinematics(bvh, end_sites=True).

    Joints and non-degenerate End Sites; a namespaced name "ns:Name" also answers to "Name" when
    that is unambiguous.
    """
    names = bvh.all_names(end_sites=True)
    usable = [True] * bvh.num_joints + list(
        np.linalg.norm(bvh.end_offsets, axis=1) > END_SITE_MIN_LENGTH)
    table = {n: i for i, n in enumerate(names) if usable[i]}
    short: dict[str, list[int]] = {}
    for n, i in list(table.items()):
        if ":" in n:
            short.setdefault(n.rsplit(":", 1)[1], []).append(i)
    for s, cols in short.items():
        if s not in table and len(cols) == 1:
            table[s] = cols[0]
    return table


def _source_names(s: Source) -> tuple[str, ...]:
    return (s.base, s.tip) if isinstance(s, Extend) else s.names


def mapping_problems(mapping: Mapping, bvh: BVH) -> list[str]:
    """Why `mapping` does not fit `bvh`: one line per unresolvable joint (empty when it fits)."""
    table = name_columns(bvh)
    out = []
    for jn, alts in zip(sk.JOINT_NAMES, mapping.joints):
        if any(all(n in table for n in _source_names(s)) for s in alts):
            continue
        options = [", ".join(n for n in _source_names(s) if n not in table) for s in alts]
        out.append(f"{jn}: missing {' or '.join(options)}")
    return out


def missing_names(mapping: Mapping, bvh: BVH) -> list[str]:
    """Names `bvh` lacks for the joints it cannot resolve (from each one's first alternative)."""
    table = name_columns(bvh)
    out: list[str] = []
    for alts in mapping.joints:
        if not any(all(n in table for n in _source_names(s)) for s in alts):
            out += [n for n in _source_names(alts[0]) if n not in table and n not in out]
    return out


def detect_mapping(bvh: BVH) -> Mapping:
    """The one shipped mapping whose names (and signature) a file has; MappingError otherwise."""
    table = name_columns(bvh)
    fits, why = [], []
    for m in SHIPPED.values():
        probs = mapping_problems(m, bvh)
        sig = [n for n in m.signature if n not in table]
        if not probs and not sig:
            fits.append(m)
        else:
            miss = missing_names(m, bvh)
            miss += [n for n in sig if n not in miss]
            why.append(f"{m.name}: missing {', '.join(miss)}")
    if len(fits) == 1:
        return fits[0]
    if fits:
        names = ", ".join(m.name for m in fits)
        raise MappingError(f"{bvh.source}: several mappings fit ({names}); choose one")
    raise MappingError(f"{bvh.source}: no shipped mapping fits the joint names; "
                       + "; ".join(why) + ". Pass a mapping file (JSON/YAML).")


def _to_y_up(points: np.ndarray, up_axis: str) -> np.ndarray:
    if up_axis == "y":
        return points
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def retarget(bvh: BVH, mapping: Mapping | str | Path | None = None, *,
             motion: np.ndarray | None = None, translation: str = "replace") -> np.ndarray:
    """The 17 MuPoTS joints per frame, (F, C) motion -> (F, 17, 3) float64, metres, Y up.

    mapping: a Mapping, a shipped name, a mapping file, or None to auto-detect.
    motion: (F, C) channel values (default bvh.motion). Axes are the file's own (see module doc).
    """
    m = detect_mapping(bvh) if mapping is None else load_mapping(mapping)
    probs = mapping_problems(m, bvh)
    if probs:
        raise MappingError(f"{bvh.source}: mapping {m.name!r} does not fit: " + "; ".join(probs))
    table = name_columns(bvh)
    pos = forward_kinematics(bvh, motion, end_sites=True, translation=translation)
    out = np.empty((pos.shape[0], sk.NUM_JOINTS, 3))
    for j, alts in enumerate(m.joints):
        s = next(s for s in alts if all(n in table for n in _source_names(s)))
        if isinstance(s, Extend):
            base, tip = pos[:, table[s.base]], pos[:, table[s.tip]]
            out[:, j] = tip + s.factor * (tip - base)
        else:
            cols = [table[n] for n in s.names]
            out[:, j] = np.einsum("fkc,k->fc", pos[:, cols], np.asarray(s.weights))
    out = _to_y_up(out * m.scale, m.up_axis)
    assert out.shape == (pos.shape[0], sk.NUM_JOINTS, 3), out.shape
    return out


def canonical_transform(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Origin and rotation of the canonical frame, (..., 17, 3) -> (..., 3), (..., 3, 3).

    canonical = rot @ (p - origin): origin is the pelvis; rot turns about +Y so that the
    horizontal part of l_hip - r_hip points along +x (person faces +z). Where that horizontal part
    is shorter than 1e-6 m (hips stacked vertically) the heading is undefined and rot is identity.
    """
    joints = np.asarray(joints, dtype=np.float64)
    assert joints.shape[-2:] == (sk.NUM_JOINTS, 3), joints.shape
    origin = joints[..., sk.ROOT, :]
    across = joints[..., sk.INDEX["l_hip"], :] - joints[..., sk.INDEX["r_hip"], :]
    ax, az = across[..., 0], across[..., 2]
    norm = np.hypot(ax, az)
    ok = norm > 1e-6
    c = np.where(ok, ax / np.where(ok, norm, 1.0), 1.0)
    s = np.where(ok, az / np.where(ok, norm, 1.0), 0.0)
    # Rotation about +Y by atan2(az, ax): (x, z) -> (c x + s z, -s x + c z).
    rot = np.zeros(joints.shape[:-2] + (3, 3))
    rot[..., 0, 0] = c
    rot[..., 0, 2] = s
    rot[..., 1, 1] = 1.0
    rot[..., 2, 0] = -s
    rot[..., 2, 2] = c
    return origin, rot


def apply_transform(points: np.ndarray, origin: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """rot @ (points - origin) per point: (..., K, 3), (..., 3), (..., 3, 3) -> (..., K, 3)."""
    points = np.asarray(points, dtype=np.float64)
    assert points.shape[-1] == 3 and origin.shape[-1] == 3 and rot.shape[-2:] == (3, 3), (
        points.shape, origin.shape, rot.shape)
    return np.einsum("...ab,...kb->...ka", rot, points - origin[..., None, :])


def to_root_relative_canonical(joints: np.ndarray) -> np.ndarray:
    """Pelvis-relative joints facing +z with the hip axis on +x, (..., 17, 3) -> (..., 17, 3).

    Frame: +x the person's left, +y up, +z forward (right-handed); units unchanged (metres).
    """
    origin, rot = canonical_transform(joints)
    out = apply_transform(joints, origin, rot)
    assert out.shape == np.shape(joints), out.shape
    return out
