"""Writing rosbag2 MCAP bags: :class:`BagWriter`, its splits and their metadata.yaml.

The layout, split policy and crash-safety guarantees are described in :mod:`mp3d.data.bags`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from mcap import __version__ as mcap_version
from mcap.writer import CompressionType
from mcap.writer import Writer as McapFileWriter
from rosbags.typesys import TypesysError

from mp3d.data.bags.types import BagError, default_typestore, ensure_types

METADATA_VERSION = 9
LIBRARY = f"mp3d.data.bags (mcap {mcap_version})"


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
    text = yaml.safe_dump({"rosbag2_bagfile_information": dict(info)}, sort_keys=False)
    write_text_atomic(folder / "metadata.yaml", text, folder / "metadata.yaml.tmp")


def write_text_atomic(path: Path, text: str, tmp: Path) -> None:
    """Replace ``path`` by ``text``: write ``tmp``, fsync, rename, fsync the folder. A reader (or
    a crash) sees the old file or the new one, never a mix."""
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    """Make a rename or new file in ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

