"""Where the shipped models live: $MP3D_MODELS, else the source tree's models/, else the ROS share
folder of an installed mp3d_ros; their expected SHA-256 (the model card's table); and the content
hash that names files in caches and cards."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# In a source checkout (or a symlinked colcon install): the package folder mp3d_ros/ and the
# repository around it (scripts/, cache/, .venv-teacher/).
PACKAGE_DIR = Path(__file__).resolve().parents[2]
REPO = PACKAGE_DIR.parent


def models_dir() -> Path:
    env = os.environ.get("MP3D_MODELS")
    if env:
        return Path(env)
    src = PACKAGE_DIR / "models"  # symlinked/source checkouts
    if src.is_dir():
        return src
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("mp3d_ros")) / "models"
    except (ImportError, LookupError):
        return src


# SHA-256 of the shipped models, as in models/MODEL_CARD.md's table (a test checks they agree).
SHIPPED_SHA256: dict[str, str] = {
    "prior.pt": "d46244285fc8466733fc7719bd7a4ace4755c95b763b49e44ee86dccc500adb1",
    "posemap.pt": "491938ad77e0a093d054fd1e0fdb02acfc74c21336d7705d949c6f2ad1fdf6d8",
    "student.pt": "fb8bf39c70353903cc5760a6182bc245dfb63d6ac7a06483b8a48131a159a22f",
}


def cache_dir() -> Path:
    """Where derived files (ONNX exports, TensorRT engines) are kept: $MP3D_CACHE, else
    ~/.cache/mp3d. Everything there can be deleted; it is rebuilt on use."""
    env = os.environ.get("MP3D_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "mp3d"


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


def shipped_name(path: str | Path) -> str | None:
    """The shipped model's name (a key of SHIPPED_SHA256) when `path` is its default location
    (`default_model(name)`, symlinks resolved), else None: a user's model."""
    p = Path(path).resolve()
    return next((n for n in SHIPPED_SHA256 if default_model(n).resolve() == p), None)


def check_shipped(path: str | Path) -> None:
    """ValueError, one line, when `path` is a shipped model's default location and its content is
    not the one the model card lists (a damaged or replaced file); other paths pass unread."""
    name = shipped_name(path)
    if name is None:
        return
    got, want = file_sha256(path), SHIPPED_SHA256[name]
    if got != want:
        raise ValueError(f"shipped model {name} ({path}) has SHA-256 {got}, the model card says "
                         f"{want}; restore it with git checkout -- {path}")
