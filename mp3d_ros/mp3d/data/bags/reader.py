"""Reading closed rosbag2 bags: topics, raw and deserialised messages, one topic by index.

A bag is a rosbag2 folder (metadata.yaml and its MCAP or sqlite3 splits) or one bare ``.mcap`` /
``.db3`` storage file. Every reader first refuses a bag whose recording did not close
(:class:`TruncatedBagError`, naming ``recover_bag``), then reads through rosbags' rosbag2 reader.

Messages are deserialised per type: with the bag's own definition (the schema an MCAP split embeds,
the definition rosbag2 stores), else with the typestore (:func:`default_typestore`, extended from
installed ``.msg`` files by :func:`ensure_types`). An empty embedded definition counts as none
(rosbags would turn it into a one-byte struct and decode garbage). A topic whose type has no
definition anywhere is *undecodable*: :func:`bag_topics` lists it and :func:`read_raw` yields its
bytes like any other, every other topic deserialises as usual, and :func:`read_messages` and
:class:`TopicReader` raise BagError naming it only when it is asked for (``topics=None`` asks for
every topic).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rosbags.interfaces import MessageDefinitionFormat
from rosbags.rosbag2 import Reader as Rosbag2Reader
from rosbags.rosbag2 import ReaderError
from rosbags.serde import SerdeError
from rosbags.typesys import (
    Stores,
    TypesysError,
    get_types_from_idl,
    get_types_from_msg,
    get_typestore,
)

from mp3d.data.bags.types import (
    BagError,
    TruncatedBagError,
    _referenced,
    default_typestore,
    ensure_types,
)

MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_FOOTER = 0x02
_FOOTER_RECORD = 1 + 8 + 20  # opcode, length, summary_start, summary_offset_start, crc
STORAGE_SUFFIXES = (".mcap", ".db3")
_HEADER = "std_msgs/msg/Header"


@dataclass(frozen=True)
class BagTopic:
    """A topic of a bag: type, count, and the first offered QoS (None when not recorded)."""

    name: str
    msgtype: str
    message_count: int
    reliability: str | None = None
    durability: str | None = None


# --------------------------------------------------------------------------- is the bag closed


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
    fix = (f"run mp3d.data.bags.recover_bag({str(folder)!r}) (or `mp3d bag recover {folder}`) "
           "to salvage every complete message")
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


def _check_readable(path: Path) -> None:
    """:func:`check_bag_closed` for a folder; a bare file must be a ``.db3`` or an ``.mcap``
    with its footer."""
    if path.is_dir():
        check_bag_closed(path)
    elif not path.is_file():
        raise BagError(f"{path}: no such bag (a rosbag2 folder, or a .mcap or .db3 file)")
    elif path.suffix not in STORAGE_SUFFIXES:
        raise BagError(f"{path} is not a rosbag2 bag (a folder with metadata.yaml, or a .mcap or "
                       ".db3 file)")
    elif path.suffix == ".mcap" and not _has_footer(path):
        raise TruncatedBagError(
            f"{path} has no MCAP footer (its writer died): move it into a folder of its own and "
            "run `mp3d bag recover FOLDER` (mp3d.data.bags.recover_bag) to "
            "salvage every complete message")


# --------------------------------------------------------------------------- an open bag


def _embedded_types(conn: Any) -> dict[str, Any]:
    """The field definitions a connection's embedded definition gives (empty: none)."""
    fmt, text = conn.msgdef.format, conn.msgdef.data
    if fmt == MessageDefinitionFormat.NONE or not text.strip():
        return {}
    if fmt == MessageDefinitionFormat.MSG:
        return dict(get_types_from_msg(text, conn.msgtype))
    sep = "=" * 80 + "\n"
    if not text.startswith(f"{sep}IDL: "):
        return dict(get_types_from_idl(text))
    typs: dict[str, Any] = {}
    for part in text.split(sep)[1:]:
        typs.update(get_types_from_idl(part.split("\n", 1)[1]))
    return typs


class _Bag:
    """A checked bag, open in rosbags' reader, with its topics and a per-type decoder."""

    def __init__(self, path: Path, typestore: Any = None) -> None:
        _check_readable(path)
        self.path = path
        self.reader = Rosbag2Reader(path)
        try:
            self.reader.open()
        except ReaderError as exc:
            raise BagError(f"{path}: rosbags cannot read it: {exc}") from exc
        self.typestore = typestore if typestore is not None else default_typestore()
        self.topics: dict[str, BagTopic] = {}
        for conn in self.reader.connections:
            qos = list(getattr(conn.ext, "offered_qos_profiles", []) or [])
            self.topics[conn.topic] = BagTopic(
                conn.topic, conn.msgtype, conn.msgcount,
                qos[0].reliability.name.lower() if qos else None,
                qos[0].durability.name.lower() if qos else None)
        self._store: Any = None
        self._unknown: dict[str, str] = {}  # message type -> why it cannot be deserialised

    def close(self) -> None:
        self.reader.close()

    def connections(self, topics: Iterable[str] | None) -> list[Any]:
        wanted = None if topics is None else set(topics)
        return [c for c in self.reader.connections if wanted is None or c.topic in wanted]

    def _build_decoder(self) -> None:
        """One typestore for every type of the bag: its own definitions first, the typestore's
        (and installed .msg files') for the rest; types found nowhere go to ``_unknown``."""
        embedded: dict[str, Any] = {}
        broken: dict[str, str] = {}
        for conn in self.reader.connections:
            try:
                embedded.update(_embedded_types(conn))
            except TypesysError as exc:
                broken[conn.msgtype] = f"its definition in the bag does not parse ({exc})"
        typs: dict[str, Any] = {}
        for msgtype in sorted({c.msgtype for c in self.reader.connections}):
            need: dict[str, Any] = {}
            pending = [msgtype]
            try:
                while pending:
                    name = pending.pop()
                    if name in need:
                        continue
                    if name not in embedded:
                        ensure_types(self.typestore, [name])
                    need[name] = embedded.get(name) or self.typestore.fielddefs[name]
                    pending.extend(_referenced(need[name]))
            except BagError as exc:
                why = broken.get(msgtype, "the bag holds no definition of it")
                self._unknown[msgtype] = f"{why}; {exc}"
                continue
            typs.update(need)
        store = get_typestore(Stores.EMPTY)
        try:
            store.register(typs)
        except TypesysError as exc:
            raise BagError(f"{self.path}: its message definitions conflict: {exc}") from exc
        self._store = store

    def require_decodable(self, conns: Sequence[Any]) -> None:
        """Raise BagError naming the first of ``conns`` whose type cannot be deserialised."""
        if self._store is None:
            self._build_decoder()
        for conn in conns:
            if conn.msgtype in self._unknown:
                readable = sorted(c.topic for c in self.reader.connections
                                  if c.msgtype not in self._unknown)
                raise BagError(
                    f"{self.path}: topic {conn.topic!r} cannot be deserialised: "
                    f"{self._unknown[conn.msgtype]}; its raw bytes are in read_raw, the other "
                    f"topics read as usual: {readable}")

    def fields(self, msgtype: str) -> list[tuple[str, Any]]:
        """The fields of a decodable type: (name, rosbags field description) pairs."""
        return self._store.fielddefs[msgtype][1]

    def deserialize(self, raw: bytes | memoryview, msgtype: str, where: str) -> Any:
        try:
            return self._store.deserialize_cdr(raw, msgtype)
        except SerdeError as exc:
            raise BagError(f"{self.path}: {where} ({msgtype}) does not deserialise: "
                           f"{exc}") from exc

    def messages(self, conns: Sequence[Any], start: int | None = None, stop: int | None = None
                 ) -> Iterator[tuple[Any, int, bytes]]:
        """(connection, log time ns, raw CDR bytes) in log-time order; nothing for no conns."""
        if not conns:
            return
        try:
            yield from self.reader.messages(connections=conns, start=start, stop=stop)
        except ReaderError as exc:
            raise BagError(f"{self.path}: rosbags cannot read it: {exc}") from exc


def _header_stamp_ns(raw: bytes | memoryview) -> int:
    """header.stamp in ns of a CDR message whose first field is a std_msgs/Header: 4-byte
    encapsulation (its second byte's low bit: little endian), then int32 sec, uint32 nanosec."""
    if len(raw) < 12:
        raise ValueError(f"{len(raw)} bytes, too short for a header")
    sec, nsec = struct.unpack_from("<iI" if raw[1] & 1 else ">iI", raw, 4)
    return sec * 1_000_000_000 + nsec


# --------------------------------------------------------------------------- the functions


def bag_topics(path: str | os.PathLike) -> dict[str, BagTopic]:
    """The topics of a closed rosbag2 bag (folder, or bare .mcap / .db3 file), by name; topics
    of undecodable types too."""
    bag = _Bag(Path(path))
    bag.close()
    return bag.topics


def read_raw(path: str | os.PathLike, topics: Iterable[str] | None = None
             ) -> Iterator[tuple[str, str, int, bytes]]:
    """Iterate ``(topic, msgtype, timestamp_ns, cdr_bytes)`` in time order, from a closed rosbag2
    bag (folder, or bare .mcap / .db3 file), optionally only for ``topics``; nothing is
    deserialised, so any type reads. Checks the bag at once (see :func:`read_messages`)."""
    path = Path(path)
    _check_readable(path)
    return _read_raw(path, None if topics is None else list(topics))


def _read_raw(path: Path, topics: list[str] | None) -> Iterator[tuple[str, str, int, bytes]]:
    bag = _Bag(path)
    try:
        for conn, timestamp, raw in bag.messages(bag.connections(topics)):
            yield conn.topic, conn.msgtype, timestamp, bytes(raw)
    finally:
        bag.close()


def read_messages(path: str | os.PathLike, topics: Iterable[str] | None = None,
                  typestore: Any = None) -> Iterator[tuple[str, str, int, Any]]:
    """Yield ``(topic, msgtype, timestamp_ns, message)`` in time order from a closed rosbag2 bag
    (folder, or bare .mcap / .db3 file), for ``topics`` (None: all), deserialised with the bag's
    own definitions, else ``typestore``. Raises at once TruncatedBagError, naming
    :func:`recover_bag`, for a bag whose recording did not close, and BagError for an asked-for
    topic whose type no definition describes (see the module docstring); BagError while
    iterating for anything rosbags refuses or a message that does not deserialise."""
    path = Path(path)
    topics = None if topics is None else list(topics)
    bag = _Bag(path, typestore)
    try:
        bag.require_decodable(bag.connections(topics))
    finally:
        bag.close()
    return _read_messages(path, topics, typestore)


def _read_messages(path: Path, topics: list[str] | None, typestore: Any
                   ) -> Iterator[tuple[str, str, int, Any]]:
    bag = _Bag(path, typestore)
    try:
        conns = bag.connections(topics)
        bag.require_decodable(conns)
        for conn, timestamp, raw in bag.messages(conns):
            yield conn.topic, conn.msgtype, timestamp, bag.deserialize(
                raw, conn.msgtype, f"the message at {timestamp} ns on {conn.topic}")
    finally:
        bag.close()


# --------------------------------------------------------------------------- one topic by index


class TopicReader:
    """One topic of a closed rosbag2 bag (folder, or bare .mcap / .db3 file), indexed in one pass.

    At construction every message of ``topic`` is read once: ``log_ns`` (N,) int64 bag times
    and ``stamp_ns`` (N,) int64 header stamps (for types whose first field is a
    std_msgs/Header; the log times otherwise), in recording (log-time) order. Then
    :meth:`raw` / :meth:`message` give message ``i``, and :meth:`raws` streams a run of
    increasing indices in one pass. The bag stays open for fast access; :meth:`close` releases
    it (it reopens on the next read), and a pickled reader carries no file handle, so each
    DataLoader worker opens its own. Not thread-safe.

    Raises TruncatedBagError for an unclosed bag (naming ``recover_bag``), and BagError for a
    topic that is not in the bag or whose type cannot be deserialised, and for a message too
    short for its header.
    """

    def __init__(self, path: str | os.PathLike, topic: str, typestore: Any = None) -> None:
        self.path = Path(path)
        self.topic = topic
        self._typestore = typestore
        self._bag: _Bag | None = None
        bag = self._open()
        if topic not in bag.topics:
            have = ", ".join(f"{n} ({t.msgtype})" for n, t in sorted(bag.topics.items()))
            raise BagError(f"{self.path}: no topic {topic!r}; topics: {have or 'none'}")
        self.msgtype = bag.topics[topic].msgtype
        fields = bag.fields(self.msgtype)
        has_header = bool(fields) and fields[0][1][0].name == "NAME" and fields[0][1][1] == _HEADER
        log_ns, stamp_ns = [], []
        for _, t, raw in bag.messages(self._conns):
            log_ns.append(t)
            if has_header:
                try:
                    stamp_ns.append(_header_stamp_ns(raw))
                except ValueError as exc:
                    raise BagError(f"{self.path}: message {len(log_ns) - 1} of {topic}: "
                                   f"{exc}") from exc
        self.log_ns = np.array(log_ns, dtype=np.int64)
        self.stamp_ns = np.array(stamp_ns, dtype=np.int64) if has_header else self.log_ns.copy()
        # rank of each message among those with the same log time (to find it again)
        self._rank = np.zeros(len(log_ns), dtype=np.int64)
        for i in range(1, len(log_ns)):
            if log_ns[i] == log_ns[i - 1]:
                self._rank[i] = self._rank[i - 1] + 1

    def _open(self) -> _Bag:
        if self._bag is None:
            bag = _Bag(self.path, self._typestore)
            try:
                self._conns = bag.connections([self.topic])
                bag.require_decodable(self._conns)
            except BagError:
                bag.close()
                raise
            self._bag = bag
        return self._bag

    def __len__(self) -> int:
        return len(self.log_ns)

    def raw(self, i: int) -> bytes:
        """The CDR bytes of message ``i`` (0 <= i < len)."""
        bag = self._open()
        t, rank = int(self.log_ns[i]), int(self._rank[i])
        for k, (_, _, raw) in enumerate(bag.messages(self._conns, start=t, stop=t + 1)):
            if k == rank:
                return bytes(raw)
        raise BagError(f"{self.path}: message {i} of {self.topic} not found again")

    def deserialize(self, raw: bytes | memoryview, i: int | None = None) -> Any:
        """A message of this topic from its CDR bytes (``i``: its index, for the error)."""
        where = f"message {i} of {self.topic}" if i is not None else f"a message of {self.topic}"
        return self._open().deserialize(raw, self.msgtype, where)

    def message(self, i: int) -> Any:
        """Message ``i``, deserialised."""
        return self.deserialize(self.raw(i), i)

    def raws(self, indices: Sequence[int]) -> Iterator[tuple[int, bytes]]:
        """``(i, cdr_bytes)`` for increasing ``indices``, in one pass over the bag between the
        first and the last of them. ValueError if they are not increasing."""
        indices = list(indices)
        if any(b <= a for a, b in zip(indices, indices[1:])):
            raise ValueError("raws() needs strictly increasing indices; use raw(i) otherwise")
        if not indices:
            return
        wanted = set(indices)
        start, stop = int(self.log_ns[indices[0]]), int(self.log_ns[indices[-1]]) + 1
        i = int(np.searchsorted(self.log_ns, start))  # first message at or after `start`
        for _, _, raw in self._open().messages(self._conns, start=start, stop=stop):
            if i in wanted:
                yield i, bytes(raw)
            i += 1

    def close(self) -> None:
        """Release the bag's files (they reopen on the next read)."""
        if self._bag is not None:
            self._bag.close()
            self._bag = None

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_bag": None, "_conns": None}  # both hold open files
