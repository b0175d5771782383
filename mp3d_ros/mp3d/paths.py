"""Where the shipped models live: $MP3D_MODELS, else the source tree's models/, else the ROS share
folder of an installed mp3d_ros; and the content hash that names files in caches and cards."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def models_dir() -> Path:
    env = os.environ.get("MP3D_MODELS")
    if env:
        return Path(env)
    src = Path(__file__).resolve().parents[1] / "models"  # symlinked/source checkouts
    if src.is_dir():
        return src
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("mp3d_ros")) / "models"
    except (ImportError, LookupError):
        return src


def default_model(name: str) -> Path:
    """Path of a shipped model file by name (it may not exist)."""
    return models_dir() / name


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's content, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
