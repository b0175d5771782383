"""Crash recovery: :func:`recover_bag` salvages every complete message of splits without footer.

What is kept of a damaged split, and when its copy is removed, is described in
:mod:`mp3d.data.bags`.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml
from mcap.exceptions import EndOfFile, McapError
from mcap.reader import make_reader
from mcap.records import Channel, Chunk, Message, Schema
from mcap.stream_reader import CRCValidationError, StreamReader, breakup_chunk

from mp3d.data.bags.reader import _custom_data, _has_footer
from mp3d.data.bags.types import BagError
from mp3d.data.bags.writer import _bag_info, _SplitFile, _SplitInfo, _Topic, _write_metadata

_OP_CHUNK = 0x06
_SPLIT_INDEX = re.compile(r"_(\d+)\.mcap$")
# What a truncated or torn record raises inside mcap's readers (CRC errors are ValueErrors).
_TRUNCATION_ERRORS = (McapError, struct.error, ValueError)


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

