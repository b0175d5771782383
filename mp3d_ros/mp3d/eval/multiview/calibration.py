"""Calibration files: Qualisys .qca.txt, Pose2Sim .toml and mp3d's YAML, read into Cameras, and
YAML written.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mp3d.eval.multiview.camera import CalibrationError, Camera


def _rodrigues(rvec: np.ndarray) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_rotvec(np.asarray(rvec, dtype=np.float64).reshape(3)).as_matrix()


def _floats(tag: ET.Element, names: Sequence[str], path: Path) -> list[float]:
    out = []
    for n in names:
        v = tag.get(n)
        if v is None:
            raise CalibrationError(f"{path}: <{tag.tag}> of a camera lacks attribute {n!r}")
        try:
            out.append(float(v))
        except ValueError:
            raise CalibrationError(f"{path}: <{tag.tag} {n}={v!r}> is not a number") from None
    return out


def read_qca(path: str | Path) -> list[Camera]:
    """Cameras of a Qualisys ``.qca.txt`` calibration, in file order (see the module docstring
    for the conversion). Raises CalibrationError for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise CalibrationError(f"{path}: not a Qualisys XML calibration ({exc})") from None
    cams = []
    for tag in root.findall("cameras/camera"):
        name = tag.get("serial") or f"cam{len(cams) + 1:02d}"
        fov, tr, it = tag.find("fov_video"), tag.find("transform"), tag.find("intrinsic")
        if fov is None or tr is None or it is None:
            raise CalibrationError(f"{path}: camera {name} lacks fov_video, transform or "
                                   "intrinsic")
        left, top, right, bottom = _floats(fov, ("left", "top", "right", "bottom"), path)
        # Pose2Sim's reading of 'video_resolution' (e.g. "720p"): sizes given for 1080 lines.
        res = tag.get("video_resolution")
        scale = 1.0 if res in (None, "N/A") else float(res.rstrip("p")) / 1080.0
        m = np.array(_floats(tr, [f"r{i}{j}" for i in (1, 2, 3) for j in (1, 2, 3)], path))
        centre = np.array(_floats(tr, ("x", "y", "z"), path)) / 1000.0
        fu, fv, cu, cv = _floats(it, ("focalLengthU", "focalLengthV", "centerPointU",
                                      "centerPointV"), path)
        k1, k2, k3, p1, p2 = _floats(it, ("radialDistortion1", "radialDistortion2",
                                          "radialDistortion3", "tangentalDistortion1",
                                          "tangentalDistortion2"), path)
        M = m.reshape(3, 3)
        if np.abs(M @ M.T - np.eye(3)).max() > 1e-5:
            raise CalibrationError(f"{path}: camera {name}: transform r11..r33 is not a rotation")
        R = np.diag([1.0, -1.0, -1.0]) @ M
        K = np.array([[fu / 64.0 * scale, 0.0, (cu / 64.0 - left) * scale],
                      [0.0, fv / 64.0 * scale, (cv / 64.0 - top) * scale],
                      [0.0, 0.0, 1.0]])
        cams.append(Camera(name, K, [k1, k2, p1, p2, k3], R, -R @ centre,
                           round((right - left + 1) * scale), round((bottom - top + 1) * scale)))
    if not cams:
        raise CalibrationError(f"{path}: no <cameras/camera> entries")
    return cams


def read_pose2sim_toml(path: str | Path) -> list[Camera]:
    """Cameras of a Pose2Sim calibration TOML (one table per camera; [metadata] is skipped)."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        import tomllib  # Python >= 3.11
    except ImportError:  # Python 3.10: the same parser as the tomli package
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"{path}: not a TOML file ({exc})") from None
    cams = []
    for key, tab in data.items():
        if key == "metadata" or not isinstance(tab, dict):
            continue
        missing = [k for k in ("matrix", "rotation", "translation", "size") if k not in tab]
        if missing:
            raise CalibrationError(f"{path}: [{key}] lacks {missing}")
        if tab.get("fisheye", False):
            raise CalibrationError(f"{path}: [{key}] is a fisheye camera (not supported)")
        try:
            w, h = (float(v) for v in tab["size"])
            cams.append(Camera(str(tab.get("name", key)), np.array(tab["matrix"], float),
                               np.array(tab.get("distortions", []), float),
                               _rodrigues(tab["rotation"]), np.array(tab["translation"], float),
                               round(w), round(h)))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: [{key}]: {exc}") from None
    if not cams:
        raise CalibrationError(f"{path}: no camera tables")
    return cams


def read_yaml_calibration(path: str | Path) -> list[Camera]:
    """Cameras of a YAML calibration (format in the module docstring), in file order."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: not a YAML file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cameras"), dict):
        raise CalibrationError(f"{path}: expected a top-level 'cameras:' mapping of name -> camera")
    cams = []
    for name, c in data["cameras"].items():
        if not isinstance(c, dict):
            raise CalibrationError(f"{path}: camera {name} is not a mapping")
        missing = [k for k in ("size", "K", "t") if k not in c]
        if missing or ("R" not in c) == ("rvec" not in c):
            raise CalibrationError(f"{path}: camera {name} needs size, K, t and one of R / rvec "
                                   f"(missing {missing})")
        try:
            R = np.array(c["R"], float) if "R" in c else _rodrigues(c["rvec"])
            w, h = (int(v) for v in c["size"])
            cams.append(Camera(str(name), np.array(c["K"], float),
                               np.array(c.get("dist") or [], float), R,
                               np.array(c["t"], float), w, h))
        except (TypeError, ValueError) as exc:
            raise CalibrationError(f"{path}: camera {name}: {exc}") from None
    if not cams:
        raise CalibrationError(f"{path}: no cameras")
    return cams


def write_yaml_calibration(cams: Sequence[Camera], path: str | Path) -> None:
    """Write cameras in the YAML format `read_yaml_calibration` reads (full float precision)."""
    import yaml

    data = {"cameras": {c.name: {"size": [c.width, c.height], "K": c.K.tolist(),
                                 "dist": c.dist.tolist(), "R": c.R.tolist(), "t": c.t.tolist()}
                        for c in cams}}
    header = ("# mp3d multi-view calibration (OpenCV convention): x_cam = R x_world + t, metres;\n"
              "# size = width, height (px); dist = k1 k2 p1 p2 k3\n")
    Path(path).write_text(header + yaml.safe_dump(data, sort_keys=False,
                                                  default_flow_style=None, width=100))


def read_calibration(path: str | Path) -> list[Camera]:
    """Cameras of a calibration file by its name: ``*.qca.txt`` / ``*.qca`` (Qualisys),
    ``*.toml`` (Pose2Sim), ``*.yaml`` / ``*.yml`` (mp3d YAML)."""
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise CalibrationError(f"calibration file not found: {path}")
    if name.endswith((".qca.txt", ".qca")):
        return read_qca(path)
    if name.endswith(".toml"):
        return read_pose2sim_toml(path)
    if name.endswith((".yaml", ".yml")):
        return read_yaml_calibration(path)
    raise CalibrationError(f"{path}: unknown calibration format (want .qca.txt, .toml or .yaml)")
