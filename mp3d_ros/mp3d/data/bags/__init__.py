"""Write, read and repair rosbag2 MCAP bags in pure Python, with splits and crash recovery.

rosbag2 itself (``rosbag2_py``, ``ros2 bag``) is not needed: writing uses the ``mcap`` package,
reading uses ``rosbags``, message definitions come from rosbags' typestore (standard types) or from
the ``.msg`` files of installed packages (``share/<pkg>/msg`` under ``AMENT_PREFIX_PATH``).
Nothing here imports rclpy, so the ROS-free datasets (``mp3d.data.images``) read bags through it.

Modules: ``types`` (typestore, :func:`ensure_types`, :func:`qos_dict`, the errors), ``writer``
(:class:`BagWriter`), ``reader`` (:func:`bag_topics`, :func:`check_bag_closed`, :func:`read_raw`,
:func:`read_messages`, :class:`TopicReader`: one topic by index), ``recovery``
(:func:`recover_bag`); the command is ``mp3d bag`` (mp3d.cli.bag; also ``mp3d_bag``).
The readers take a bag folder or a bare ``.mcap`` / ``.db3`` file, deserialise each type with the
bag's own definition else the typestore's, and refuse only the topics no definition describes
(see :mod:`mp3d.data.bags.reader`).

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

from mp3d.data.bags.reader import (
    BagTopic,
    TopicReader,
    bag_topics,
    check_bag_closed,
    read_messages,
    read_raw,
)
from mp3d.data.bags.recovery import RecoveryReport, recover_bag
from mp3d.data.bags.types import (
    BagError,
    TruncatedBagError,
    default_typestore,
    ensure_types,
    qos_dict,
)
from mp3d.data.bags.writer import BagWriter, fsync_dir, write_text_atomic

__all__ = [
    "BagError",
    "BagTopic",
    "BagWriter",
    "RecoveryReport",
    "TopicReader",
    "TruncatedBagError",
    "bag_topics",
    "check_bag_closed",
    "default_typestore",
    "ensure_types",
    "fsync_dir",
    "qos_dict",
    "read_messages",
    "read_raw",
    "recover_bag",
    "write_text_atomic",
]
