"""Where the shipped models live: $MP3D_MODELS, else the source tree's models/, else the ROS share
folder of an installed mp3d_ros."""

from __future__ import annotations

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
