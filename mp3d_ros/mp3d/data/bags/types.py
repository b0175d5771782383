"""Message types for bag I/O: the shared rosbags typestore, .msg lookup, QoS records, errors."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rosbags.typesys import Stores, get_types_from_msg, get_typestore


class BagError(RuntimeError):
    """A bag cannot be written, read or repaired; the message says why."""


class TruncatedBagError(BagError):
    """A bag whose recording did not close (crash, SIGKILL): run ``recover_bag`` on it."""


def _store_id() -> Stores:
    """The newest ROS 2 typestore this rosbags knows (Kilted, else Jazzy, ...)."""
    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_IRON", "ROS2_HUMBLE"):
        if hasattr(Stores, name):
            return getattr(Stores, name)
    return Stores.LATEST


_DEFAULT_STORE: Any = None


def default_typestore() -> Any:
    """A shared rosbags typestore for the newest ROS 2 distro; missing types are added to it by
    :func:`ensure_types`."""
    global _DEFAULT_STORE
    if _DEFAULT_STORE is None:
        _DEFAULT_STORE = get_typestore(_store_id())
    return _DEFAULT_STORE


def _msg_dirs(package: str, extra: Sequence[Path]) -> list[Path]:
    """``share/<package>/msg`` folders under AMENT_PREFIX_PATH, after the ``extra`` folders."""
    dirs = [Path(d) for d in extra]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            dirs.append(Path(prefix) / "share" / package / "msg")
    return [d for d in dirs if d.is_dir()]


def _referenced(fielddef: Any) -> Iterator[str]:
    """Names of the message types one rosbags field definition ``(consts, fields)`` uses."""
    for _, desc in fielddef[1]:
        kind, arg = desc
        while kind.name in ("ARRAY", "SEQUENCE"):
            kind, arg = arg[0]
        if kind.name == "NAME":
            yield arg


def ensure_types(store: Any, msgtypes: Iterable[str], msg_dirs: Sequence[Path] = ()) -> None:
    """Register in ``store`` every type of ``msgtypes`` (``pkg/msg/Name``) it lacks, and the types
    those use, from the ``.msg`` files of their package: first from ``msg_dirs`` (``<pkg>/msg``
    folders, e.g. a source checkout's), then from ``share/<pkg>/msg`` under every
    AMENT_PREFIX_PATH prefix. Raises BagError for a type found nowhere."""
    pending = list(msgtypes)
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        if name not in store.fielddefs:
            package, _, stem = name.partition("/msg/")
            extra = [Path(d) for d in msg_dirs if Path(d).parent.name == package]
            found = False
            for folder in _msg_dirs(package, extra):
                files = sorted(folder.glob("*.msg"))
                if not any(f.stem == stem for f in files):
                    continue
                typs: dict[str, Any] = {}
                for f in files:
                    typs.update(get_types_from_msg(f.read_text(), f"{package}/msg/{f.stem}"))
                store.register(typs)
                found = True
                break
            if not found:
                raise BagError(
                    f"unknown message type {name!r}: not in rosbags' typestore and no "
                    f"{package}/msg/{stem}.msg under share/ of AMENT_PREFIX_PATH "
                    f"({os.environ.get('AMENT_PREFIX_PATH', '')!r})")
        pending.extend(_referenced(store.fielddefs[name]))


def qos_dict(reliability: str = "reliable", durability: str = "volatile", depth: int = 10,
             history: str = "keep_last") -> dict[str, Any]:
    """One offered QoS profile as rosbag2 (metadata version 9) stores it; durations 0 mean
    "unspecified" (the RMW default)."""
    return {"history": history, "depth": depth, "reliability": reliability,
            "durability": durability, "deadline": {"sec": 0, "nsec": 0},
            "lifespan": {"sec": 0, "nsec": 0}, "liveliness": "automatic",
            "liveliness_lease_duration": {"sec": 0, "nsec": 0},
            "avoid_ros_namespace_conventions": False}
