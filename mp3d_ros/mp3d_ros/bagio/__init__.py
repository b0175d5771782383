"""Write, read and repair rosbag2 MCAP bags in pure Python, with splits and crash recovery.

rosbag2 itself (``rosbag2_py``, ``ros2 bag``) is not needed: writing uses the ``mcap`` package,
reading uses ``rosbags``, message definitions come from rosbags' typestore (standard types) or from
the ``.msg`` files of installed packages (``share/<pkg>/msg`` under ``AMENT_PREFIX_PATH``).

What :class:`BagWriter` writes is the layout of ``ros2 bag record -s mcap`` (Jazzy and newer,
metadata version 9): a folder ``NAME/`` holding ``metadata.yaml`` and the splits ``NAME_0.mcap``,
``NAME_1.mcap``, ... Each split has the ``ros2`` profile, one ``ros2msg`` schema per type (the full
definition with its dependencies, so ``ros2 bag play``, rosbags and Foxglove decode custom types),
one ``cdr`` channel per topic (metadata ``offered_qos_profiles`` and ``topic_type_hash``),
uncompressed chunks and a ``rosbag2`` metadata record.

Crash safety (SIGKILL, OOM kill; after a power loss only what was fsynced, the closed splits):

- A split is closed (summary, footer, fsync) once it holds ``split_max_seconds`` of bag time or
  would pass ``split_max_bytes``; the next split is created, and then ``metadata.yaml`` is
  rewritten atomically to list every closed split, never the open one. After a crash every
  closed split is whole and listed, so rosbags' reader opens them, and there is always one
  unlisted split without footer, so the crash cannot go unnoticed.
- :meth:`BagWriter.flush` ends the current chunk and hands it to the OS: whatever was written
  before it survives SIGKILL. Without flushes, at most ``chunk_bytes`` of messages are lost.
- :func:`read_messages` refuses a bag with an unclosed split (:class:`TruncatedBagError`, naming
  :func:`recover_bag`) instead of silently returning only the closed splits.
- :func:`recover_bag` does what ``ros2 bag reindex`` does for MCAP: it reads each split that has no
  footer record by record (mcap's ``StreamReader``; from a half-written uncompressed chunk it takes
  every complete message record too), writes every complete message into a new, properly closed
  split of the same name, and rewrites ``metadata.yaml`` for all splits.

Recovery never deletes user data it has not copied: the damaged file is renamed
``<split>.mcap.damaged`` and kept, unless the salvage was provably complete, i.e. the file ended
exactly at a record boundary (nothing was half-written) and the new split reads back with exactly
the salvaged message count; only then is the damaged copy removed, as it holds nothing the new
split lacks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml
from mcap import __version__ as mcap_version
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import CRCValidationError, StreamReader, breakup_chunk
from mcap.writer import CompressionType
from mcap.writer import Writer as McapFileWriter
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import Reader as Rosbag2Reader
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore

__all__ = [
    "BagError",
    "BagTopic",
    "BagWriter",
    "RecoveryReport",
    "TruncatedBagError",
    "bag_topics",
    "check_bag_closed",
    "default_typestore",
    "ensure_types",
    "main",
    "qos_dict",
    "read_messages",
    "read_raw",
    "recover_bag",
]

METADATA_VERSION = 9
MCAP_MAGIC = b"\x89MCAP0\r\n"
MB = 1_000_000
LIBRARY = f"mp3d_ros.bagio (mcap {mcap_version})"
_OP_CHUNK = 0x06
_OP_FOOTER = 0x02
_FOOTER_RECORD = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, crc
_SPLIT_INDEX = re.compile(r"_(\d+)\.mcap$")
# What a truncated or torn record raises inside mcap's readers (CRC errors are ValueErrors).
_TRUNCATION_ERRORS = (McapError, struct.error, ValueError)


class BagError(RuntimeError):
    """A bag cannot be written, read or repaired; the message says why."""


class TruncatedBagError(BagError):
    """A bag whose recording did not close (crash, SIGKILL): run :func:`recover_bag` on it."""


# --------------------------------------------------------------------------- message types


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


# --------------------------------------------------------------------------- writing


@dataclass
class _Topic:
    """A topic as the bag records it."""

    name: str
    msgtype: str
    msgdef: str
    msgdef_encoding: str = "ros2msg"
    type_hash: str = ""
    offered_qos: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _SplitInfo:
    """What metadata.yaml says about one closed split."""

    path: str
    start_ns: int = 2**63 - 1
    end_ns: int = 0
    message_count: int = 0
    topic_counts: dict[str, int] = field(default_factory=dict)

    def add(self, topic: str, timestamp_ns: int) -> None:
        self.start_ns = min(self.start_ns, timestamp_ns)
        self.end_ns = max(self.end_ns, timestamp_ns)
        self.message_count += 1
        self.topic_counts[topic] = self.topic_counts.get(topic, 0) + 1


class _SplitFile:
    """One MCAP split being written (rosbag2's ros2 profile)."""

    def __init__(self, path: Path, chunk_bytes: int) -> None:
        self.path = path
        self._file = path.open("xb")
        self._mcap = McapFileWriter(self._file, chunk_size=chunk_bytes,
                                    compression=CompressionType.NONE)
        self._mcap.start(profile="ros2", library=LIBRARY)
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, int] = {}
        self.info = _SplitInfo(path.name)
        self.bytes = 0

    def write(self, topic: _Topic, data: bytes, log_time: int, publish_time: int) -> None:
        if topic.name not in self._channels:
            if topic.msgtype not in self._schemas:
                self._schemas[topic.msgtype] = self._mcap.register_schema(
                    topic.msgtype, topic.msgdef_encoding, topic.msgdef.encode())
            metadata = {"offered_qos_profiles": yaml.safe_dump(topic.offered_qos).strip(),
                        "topic_type_hash": topic.type_hash}
            self._channels[topic.name] = self._mcap.register_channel(
                topic.name, "cdr", self._schemas[topic.msgtype], metadata)
        self._mcap.add_message(self._channels[topic.name], log_time, bytes(data), publish_time)
        self.info.add(topic.name, log_time)
        self.bytes += len(data)

    def flush(self) -> None:
        self._mcap.flush()

    def close(self, serialized_metadata: str) -> _SplitInfo:
        self._mcap.add_metadata("rosbag2", {"serialized_metadata": serialized_metadata})
        self._mcap.finish()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return self.info


def _bag_info(splits: Sequence[_SplitInfo], topics: Iterable[_Topic],
              custom_data: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``rosbag2_bagfile_information`` mapping for these closed splits."""
    used = [s for s in splits if s.message_count]
    start = min((s.start_ns for s in used), default=0)
    end = max((s.end_ns for s in used), default=0)
    counts: dict[str, int] = {}
    for s in splits:
        for name, n in s.topic_counts.items():
            counts[name] = counts.get(name, 0) + n
    return {
        "version": METADATA_VERSION,
        "storage_identifier": "mcap",
        "relative_file_paths": [s.path for s in splits],
        "duration": {"nanoseconds": end - start},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(s.message_count for s in splits),
        "topics_with_message_count": [
            {"topic_metadata": {"name": t.name, "type": t.msgtype,
                                "serialization_format": "cdr",
                                "offered_qos_profiles": t.offered_qos,
                                "type_description_hash": t.type_hash},
             "message_count": counts.get(t.name, 0)}
            for t in topics],
        "compression_format": "",
        "compression_mode": "",
        "files": [{"path": s.path,
                   "starting_time": {"nanoseconds_since_epoch":
                                     s.start_ns if s.message_count else 0},
                   "duration": {"nanoseconds": max(0, s.end_ns - s.start_ns)},
                   "message_count": s.message_count} for s in splits],
        "custom_data": dict(custom_data or {}),
        "ros_distro": os.environ.get("ROS_DISTRO", ""),
    }


def _write_metadata(folder: Path, info: Mapping[str, Any]) -> None:
    """Replace ``folder/metadata.yaml`` atomically (write, fsync, rename)."""
    tmp = folder / "metadata.yaml.tmp"
    with tmp.open("w") as f:
        yaml.safe_dump({"rosbag2_bagfile_information": dict(info)}, f, sort_keys=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / "metadata.yaml")
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class BagWriter:
    """Write a rosbag2 MCAP bag from already CDR-serialised messages, split for crash safety.

    ``split_max_seconds`` (bag time between a split's first and last message) and
    ``split_max_bytes`` (message bytes per split) close the current split and start the next;
    0 disables either. ``chunk_bytes`` bounds an MCAP chunk (and so the data an un-flushed crash
    loses). Message types resolve through ``typestore`` (default: :func:`default_typestore`) and
    :func:`ensure_types`. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike, *, split_max_seconds: float = 0.0,
                 split_max_bytes: int = 0, chunk_bytes: int = 1 << 20, typestore: Any = None,
                 msg_dirs: Sequence[Path] = (), custom_data: Mapping[str, str] | None = None
                 ) -> None:
        if split_max_seconds < 0 or split_max_bytes < 0 or chunk_bytes <= 0:
            raise ValueError(f"split_max_seconds={split_max_seconds}, split_max_bytes="
                             f"{split_max_bytes} must be >= 0 and chunk_bytes={chunk_bytes} > 0")
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f"{self.path} exists already; a bag is never overwritten")
        self.path.mkdir(parents=True)
        self.typestore = typestore if typestore is not None else default_typestore()
        self._msg_dirs = tuple(msg_dirs)
        self._split_ns = int(split_max_seconds * 1e9)
        self._split_bytes = int(split_max_bytes)
        self._chunk_bytes = int(chunk_bytes)
        self._custom = dict(custom_data or {})
        self._topics: dict[str, _Topic] = {}
        self._closed: list[_SplitInfo] = []
        self._split: _SplitFile | None = None
        self._open = True
        self.message_count = 0
        self.bytes_written = 0

    # -- public API
    def add_topic(self, topic: str, msgtype: str,
                  offered_qos: Sequence[Mapping[str, Any]] = ()) -> None:
        """Declare a topic (optional: :meth:`write` declares unknown topics itself).
        ``offered_qos``: rosbag2 QoS mappings (see :func:`qos_dict`) stored for replay."""
        if topic in self._topics:
            if self._topics[topic].msgtype != msgtype:
                raise BagError(f"topic {topic!r} already has type "
                               f"{self._topics[topic].msgtype!r}, not {msgtype!r}")
            return
        try:
            ensure_types(self.typestore, [msgtype], self._msg_dirs)
            msgdef, _ = self.typestore.generate_msgdef(msgtype, ros_version=2)
            type_hash = self.typestore.hash_rihs01(msgtype)
        except TypesysError as exc:
            raise BagError(f"cannot build the definition of {msgtype!r}: {exc}") from exc
        self._topics[topic] = _Topic(topic, msgtype, msgdef, type_hash=type_hash,
                                     offered_qos=[dict(q) for q in offered_qos])

    def write(self, topic: str, msgtype: str, data: bytes | bytearray | memoryview,
              timestamp_ns: int, publish_time_ns: int | None = None) -> None:
        """Append one CDR-serialised message (with its 4-byte encapsulation header, as rclpy's
        ``raw=True`` subscriptions and rosbags' ``serialize_cdr`` give it) at bag time
        ``timestamp_ns``."""
        if not self._open:
            raise BagError(f"{self.path} is closed")
        self.add_topic(topic, msgtype)
        split = self._split_for(int(timestamp_ns), len(data))
        split.write(self._topics[topic], data, int(timestamp_ns),
                    int(timestamp_ns if publish_time_ns is None else publish_time_ns))
        self.message_count += 1
        self.bytes_written += len(data)

    def flush(self) -> None:
        """End the current chunk and hand it to the OS: a later SIGKILL keeps it."""
        if self._split is not None:
            self._split.flush()

    def close(self) -> None:
        """Close the open split and write the final metadata.yaml. Idempotent."""
        if not self._open:
            return
        self._open = False
        if self._split is not None:
            self._roll(open_next=False)
        elif not self._closed:
            _write_metadata(self.path, _bag_info([], self._topics.values(), self._custom))

    @property
    def splits(self) -> list[str]:
        """File names of the closed splits (each whole and listed in metadata.yaml)."""
        return [s.path for s in self._closed]

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- splitting
    def _split_for(self, timestamp_ns: int, size: int) -> _SplitFile:
        split = self._split
        if split is not None and split.info.message_count and (
                (self._split_ns and timestamp_ns - split.info.start_ns >= self._split_ns)
                or (self._split_bytes and split.bytes + size > self._split_bytes)):
            self._roll(open_next=True)
        if self._split is None:
            self._split = self._new_split()
        return self._split

    def _new_split(self) -> _SplitFile:
        index = len(self._closed)
        return _SplitFile(self.path / f"{self.path.name}_{index}.mcap", self._chunk_bytes)

    def _roll(self, open_next: bool) -> None:
        """Close the open split, open the next one if asked, then list the closed splits. The
        next split exists before metadata.yaml is rewritten, so while recording there is always
        an unlisted split: a crash at any moment leaves a bag read_messages calls truncated."""
        assert self._split is not None
        pending = [*self._closed, self._split.info]
        info = _bag_info(pending, self._topics.values(), self._custom)
        self._closed.append(self._split.close(yaml.safe_dump(info, sort_keys=False)))
        self._split = self._new_split() if open_next else None
        _write_metadata(self.path, _bag_info(self._closed, self._topics.values(), self._custom))


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class BagTopic:
    """A topic of a bag: type, count, and the first offered QoS (None when not recorded)."""

    name: str
    msgtype: str
    message_count: int
    reliability: str | None = None
    durability: str | None = None


def _custom_data(folder: Path) -> dict[str, str]:
    """custom_data of the folder's metadata.yaml; empty without one."""
    try:
        info = yaml.safe_load((folder / "metadata.yaml").read_text())
        return dict(info["rosbag2_bagfile_information"].get("custom_data") or {})
    except FileNotFoundError:
        return {}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise BagError(f"{folder / 'metadata.yaml'} is not rosbag2 metadata: {exc}") from exc


def _listed(folder: Path) -> list[str] | None:
    """The files metadata.yaml lists, or None without a metadata.yaml."""
    meta = folder / "metadata.yaml"
    if not meta.exists():
        return None
    try:
        info = yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
        return [Path(p).name for p in info["relative_file_paths"]]
    except (yaml.YAMLError, KeyError, TypeError) as exc:
        raise BagError(f"{meta} is not rosbag2 metadata: {exc}") from exc


def _has_footer(path: Path) -> bool:
    """True if the MCAP file ends with a footer record and the closing magic."""
    size = path.stat().st_size
    if size < len(MCAP_MAGIC) * 2 + _FOOTER_RECORD:
        return False
    with path.open("rb") as f:
        f.seek(size - _FOOTER_RECORD - len(MCAP_MAGIC))
        tail = f.read()
    return tail[0] == _OP_FOOTER and tail.endswith(MCAP_MAGIC)


def check_bag_closed(path: str | os.PathLike) -> None:
    """Raise TruncatedBagError if the recording of the bag folder ``path`` did not close: MCAP
    splits without metadata.yaml, splits metadata.yaml does not list, or a split without its
    footer. BagError if ``path`` is no bag folder."""
    folder = Path(path)
    if not folder.is_dir():
        raise BagError(f"{folder} is not a rosbag2 folder (a directory with metadata.yaml)")
    listed = _listed(folder)
    mcaps = sorted(folder.glob("*.mcap"))
    fix = (f"run mp3d_ros.bagio.recover_bag({str(folder)!r}) (or `python -m mp3d_ros.bagio "
           f"recover {folder}`) to salvage every complete message")
    if listed is None:
        if mcaps:
            raise TruncatedBagError(
                f"{folder} has {len(mcaps)} MCAP file(s) but no metadata.yaml: its recording "
                f"never closed (crash or SIGKILL); {fix}")
        if list(folder.glob("*.db3")):
            raise TruncatedBagError(f"{folder} has sqlite3 files but no metadata.yaml: run "
                                    "`ros2 bag reindex` on it (recover_bag handles MCAP only)")
        raise BagError(f"{folder} has no metadata.yaml: not a rosbag2 folder")
    unlisted = [m.name for m in mcaps if m.name not in listed]
    if unlisted:
        raise TruncatedBagError(
            f"{folder}: split(s) {unlisted} are not in metadata.yaml, so the recording did not "
            f"close (crash or SIGKILL) and their messages would be missed; {fix}")
    open_ = [m.name for m in mcaps if not _has_footer(m)]
    if open_:
        raise TruncatedBagError(f"{folder}: split(s) {open_} have no MCAP footer (writer died); "
                                f"{fix}")


def bag_topics(path: str | os.PathLike) -> dict[str, BagTopic]:
    """The topics of a closed rosbag2 bag (sqlite3 or MCAP), by name."""
    check_bag_closed(path)
    try:
        with Rosbag2Reader(Path(path)) as reader:
            out = {}
            for conn in reader.connections:
                qos = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
                out[conn.topic] = BagTopic(
                    conn.topic, conn.msgtype, conn.msgcount,
                    qos[0].reliability.name.lower() if qos else None,
                    qos[0].durability.name.lower() if qos else None)
            return out
    except ReaderError as exc:
        raise BagError(f"{path}: {exc}") from exc


def read_raw(path: str | os.PathLike, topics: Iterable[str] | None = None
             ) -> Iterator[tuple[str, str, int, bytes]]:
    """Iterate ``(topic, msgtype, timestamp_ns, cdr_bytes)`` in time order, from a closed rosbag2
    bag (sqlite3 or MCAP), optionally only for ``topics``; nothing is deserialised. Checks the
    bag at once (see :func:`read_messages`)."""
    check_bag_closed(path)
    return _read_raw(Path(path), None if topics is None else set(topics))


def _read_raw(path: Path, wanted: set[str] | None) -> Iterator[tuple[str, str, int, bytes]]:
    try:
        with Rosbag2Reader(path) as reader:
            conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
            if not conns:
                return
            for conn, timestamp, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, timestamp, bytes(raw)
    except ReaderError as exc:
        raise BagError(f"{path}: {exc}") from exc


def read_messages(path: str | os.PathLike, topics: Iterable[str] | None = None,
                  typestore: Any = None) -> Iterator[tuple[str, str, int, Any]]:
    """Yield ``(topic, msgtype, timestamp_ns, message)`` in time order from a closed rosbag2 bag
    (sqlite3 or MCAP), messages deserialised by rosbags (types from the bag's own definitions,
    else ``typestore``). Raises at once TruncatedBagError, naming :func:`recover_bag`, for a bag
    whose recording did not close, and BagError (while iterating) for anything rosbags refuses."""
    check_bag_closed(path)
    store = typestore if typestore is not None else default_typestore()
    return _read_messages(Path(path), None if topics is None else set(topics), store)


def _read_messages(path: Path, wanted: set[str] | None, store: Any
                   ) -> Iterator[tuple[str, str, int, Any]]:
    try:
        with AnyReader([path], default_typestore=store) as reader:
            conns = [c for c in reader.connections if wanted is None or c.topic in wanted]
            if not conns:
                return
            for conn, timestamp, raw in reader.messages(connections=conns):
                yield conn.topic, conn.msgtype, timestamp, reader.deserialize(raw, conn.msgtype)
    except (AnyReaderError, ReaderError) as exc:
        raise BagError(f"{path}: rosbags cannot read it: {exc}") from exc


# --------------------------------------------------------------------------- recovery


@dataclass
class RecoveryReport:
    """What :func:`recover_bag` did."""

    path: Path
    salvaged: dict[str, int] = field(default_factory=dict)  # rewritten split -> messages saved
    from_partial_chunks: dict[str, int] = field(default_factory=dict)  # of which, half chunks
    kept_damaged: list[str] = field(default_factory=list)  # *.damaged files left in place
    removed_damaged: list[str] = field(default_factory=list)  # fully copied, so deleted
    splits: list[str] = field(default_factory=list)  # splits listed in metadata.yaml afterwards
    message_count: int = 0  # messages in the bag afterwards

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "salvaged": self.salvaged,
                "from_partial_chunks": self.from_partial_chunks,
                "kept_damaged": self.kept_damaged, "removed_damaged": self.removed_damaged,
                "splits": self.splits, "message_count": self.message_count}


def _split_key(path: Path) -> tuple[int, str]:
    m = _SPLIT_INDEX.search(path.name)
    return (int(m.group(1)) if m else 1 << 30, path.name)


def _topic_from(channel: Channel, schema: Schema | None) -> _Topic:
    """A bag topic from an MCAP channel and its schema."""
    qos_text = channel.metadata.get("offered_qos_profiles", "")
    try:
        qos = yaml.safe_load(qos_text) if qos_text else []
    except yaml.YAMLError:
        qos = []  # only replay QoS is lost; the messages are what recovery is about
    if not isinstance(qos, list):
        qos = []
    return _Topic(channel.topic, schema.name if schema else "",
                  schema.data.decode() if schema else "",
                  schema.encoding if schema else "ros2msg",
                  channel.metadata.get("topic_type_hash", ""), qos)


def _scan_closed(path: Path) -> tuple[_SplitInfo, list[_Topic]]:
    """Split info and topics of a closed split, from its MCAP summary."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    if summary is None or summary.statistics is None:
        raise BagError(f"{path} has a footer but no summary statistics; cannot index it")
    stats = summary.statistics
    info = _SplitInfo(path.name, stats.message_start_time, stats.message_end_time,
                      stats.message_count)
    topics = []
    for cid, channel in summary.channels.items():
        info.topic_counts[channel.topic] = (info.topic_counts.get(channel.topic, 0)
                                            + stats.channel_message_counts.get(cid, 0))
        topics.append(_topic_from(channel, summary.schemas.get(channel.schema_id)))
    if not stats.message_count:
        info.start_ns = info.end_ns = 0
    return info, topics


class _Salvage:
    """Copies the complete messages of a damaged split into a new split file."""

    def __init__(self, out: Path, chunk_bytes: int) -> None:
        self.out = out
        self.chunk_bytes = chunk_bytes
        self.schemas: dict[int, Schema] = {}
        self.channels: dict[int, Channel] = {}
        self.topics: dict[int, _Topic] = {}
        self.split: _SplitFile | None = None
        self.count = 0
        self.orphans = 0

    def take(self, record: object) -> None:
        if isinstance(record, Schema):
            self.schemas[record.id] = record
        elif isinstance(record, Channel):
            self.channels[record.id] = record
        elif isinstance(record, Message):
            channel = self.channels.get(record.channel_id)
            if channel is None:
                self.orphans += 1
                return
            if record.channel_id not in self.topics:
                self.topics[record.channel_id] = _topic_from(
                    channel, self.schemas.get(channel.schema_id))
            if self.split is None:
                self.split = _SplitFile(self.out, self.chunk_bytes)
            self.split.write(self.topics[record.channel_id], record.data, record.log_time,
                             record.publish_time)
            self.count += 1


def _salvage_partial_chunk(tail: bytes, sink: _Salvage) -> int:
    """Take every complete record inside a half-written uncompressed chunk (``tail`` starts at the
    chunk's opcode). Returns the number of messages taken."""
    before = sink.count
    header = 1 + 8 + 8 + 8 + 8 + 4
    if len(tail) < header + 4 + 8 or tail[0] != _OP_CHUNK:
        return 0
    (name_len,) = struct.unpack_from("<I", tail, header)
    if name_len:
        return 0  # compressed: no record boundary can be found in a cut compressed stream
    start = header + 4 + 8
    (records_len,) = struct.unpack_from("<Q", tail, start - 8)
    reader = StreamReader(BytesIO(tail[start:start + records_len]), skip_magic=True)
    try:
        for record in reader.records:
            sink.take(record)
    except _TRUNCATION_ERRORS:
        pass  # the cut: the records before it were taken
    return sink.count - before


def _repair_split(path: Path, chunk_bytes: int, report: RecoveryReport) -> None:
    """Rewrite a split without footer from its complete records (see the module docstring)."""
    tmp = path.with_name(path.name + ".recovering")
    if tmp.exists():
        tmp.unlink()  # our own leftover from an interrupted recovery, never user data
    sink = _Salvage(tmp, chunk_bytes)
    size = path.stat().st_size
    good_end = 0
    cut: BaseException | None = None
    with path.open("rb") as f:
        reader = StreamReader(f, emit_chunks=True, validate_crcs=True)
        try:
            for record in reader.records:
                if isinstance(record, Chunk):
                    for inner in breakup_chunk(record, validate_crc=True):
                        sink.take(inner)
                else:
                    sink.take(record)
                good_end = f.tell()
        except _TRUNCATION_ERRORS as exc:
            cut = exc
        partial = 0
        if good_end < size and not isinstance(cut, CRCValidationError):
            f.seek(good_end)
            partial = _salvage_partial_chunk(f.read(), sink)
    complete = good_end == size and (cut is None or isinstance(cut, EndOfFile))
    verified = False
    if sink.split is not None:
        info = _bag_info([sink.split.info], sink.topics.values())
        sink.split.close(yaml.safe_dump(info, sort_keys=False))
        with tmp.open("rb") as f:
            summary = make_reader(f).get_summary()
        verified = (summary is not None and summary.statistics is not None
                    and summary.statistics.message_count == sink.count)
    damaged = path.with_name(path.name + ".damaged")
    os.replace(path, damaged)
    if sink.split is not None:
        os.replace(tmp, path)
        report.salvaged[path.name] = sink.count
        report.from_partial_chunks[path.name] = partial
    if complete and (verified or sink.split is None and sink.count == 0):
        damaged.unlink()
        report.removed_damaged.append(damaged.name)
    else:
        report.kept_damaged.append(damaged.name)


def recover_bag(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> RecoveryReport:
    """Make the rosbag2 MCAP bag folder ``path`` readable after its recorder died.

    Every ``*.mcap`` split without a footer is rewritten from its complete messages (see the
    module docstring for what is kept of the damaged file), closed splits are left untouched, and
    metadata.yaml is rewritten to list every split. A bag that was closed properly is unchanged
    apart from a rewritten metadata.yaml. Raises BagError for a folder without MCAP splits.
    """
    folder = Path(path)
    mcaps = sorted(folder.glob("*.mcap"), key=_split_key) if folder.is_dir() else []
    if not mcaps:
        raise BagError(f"{folder}: no *.mcap split to recover")
    report = RecoveryReport(folder)
    custom = _custom_data(folder)
    for split in mcaps:
        if not _has_footer(split):
            _repair_split(split, chunk_bytes, report)
    infos: list[_SplitInfo] = []
    topics: dict[str, _Topic] = {}
    for split in sorted(folder.glob("*.mcap"), key=_split_key):
        info, split_topics = _scan_closed(split)
        infos.append(info)
        for t in split_topics:
            topics.setdefault(t.name, t)
    _write_metadata(folder, _bag_info(infos, topics.values(), custom))
    report.splits = [i.path for i in infos]
    report.message_count = sum(i.message_count for i in infos)
    return report


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mp3d_ros.bagio {info,recover} BAG``: print a bag's topics, or repair it."""
    parser = argparse.ArgumentParser(prog="mp3d_bag", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="topics, types and counts of a closed bag").add_argument("bag")
    sub.add_parser("recover", help="salvage a bag whose recorder died").add_argument("bag")
    args = parser.parse_args(argv)
    try:
        if args.command == "recover":
            print(json.dumps(recover_bag(args.bag).as_dict()))
        else:
            print(json.dumps({name: t.__dict__ for name, t in bag_topics(args.bag).items()}))
    except BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

