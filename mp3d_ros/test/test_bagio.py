"""rosbag2 MCAP bags from mp3d.data.bags: round trips, splits, SIGKILL and recovery, real files.

Run as a script (``python test_bagio.py BAG SPLIT_S FLUSH``), this file is the writer that the
SIGKILL tests kill: it writes numbered 64x48 images forever and prints each index once written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from mcap.reader import make_reader
from mcap_ros2.reader import read_ros2_messages
from mp3d.data import bags
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from sensor_msgs.msg import CameraInfo, Image

from mp3d_msgs.msg import Person3DArray
from mp3d_ros import selftest

TOPICS = {"/cam/image_raw": "sensor_msgs/msg/Image", "/cam/camera_info":
          "sensor_msgs/msg/CameraInfo", "/people": "mp3d_msgs/msg/Person3DArray"}
KILL_AFTER = 150  # messages the killed writer has reported written


def _stamp_ns(header) -> int:
    return header.stamp.sec * 10**9 + header.stamp.nanosec


def _write_selftest_bag(path: Path, frames: int, **kwargs) -> list[tuple]:
    """A bag of the DDS self-test frames (rclpy messages serialised by rclpy)."""
    sent = []
    with bags.BagWriter(path, **kwargs) as writer:
        for i in range(frames):
            msgs = selftest.frame(i)
            stamp = _stamp_ns(msgs[0].header)
            for (topic, msgtype), msg in zip(TOPICS.items(), msgs):
                writer.write(topic, msgtype, serialize_message(msg), stamp)
            sent.append(msgs)
    return sent


def _share_hash(package: str, name: str) -> str:
    """The type hash rosidl generated for an installed message."""
    for prefix in os.environ["AMENT_PREFIX_PATH"].split(os.pathsep):
        path = Path(prefix, "share", package, "msg", f"{name}.json")
        if path.exists():
            return json.loads(path.read_text())["type_hashes"][0]["hash_string"]
    raise AssertionError(f"no {package}/msg/{name}.json installed")


def test_round_trip_image_camera_info_people(tmp_path):
    bag = tmp_path / "bag"
    sent = _write_selftest_bag(bag, 3)

    # rosbags' own reader: rclpy reads the raw bytes back into the very messages it sent.
    with Reader(bag) as reader:
        assert reader.message_count == 9
        assert {c.topic: c.msgtype for c in reader.connections} == TOPICS
        raw = [(c.topic, ts, bytes(data)) for c, ts, data in reader.messages()]
    classes = {"/cam/image_raw": Image, "/cam/camera_info": CameraInfo, "/people": Person3DArray}
    for k, (topic, stamp, data) in enumerate(raw):
        i = k // 3
        original = sent[i][list(TOPICS).index(topic)]
        assert stamp == _stamp_ns(original.header)
        # Not compared as bytes: rclpy leaves CDR padding bytes uninitialised. Compared with the
        # original after its own round trip, which rounds float32 fields as the bag must.
        cls = classes[topic]
        assert deserialize_message(data, cls) == deserialize_message(
            serialize_message(original), cls)

    # read_messages: rosbags-deserialised, field by field.
    got = list(bags.read_messages(bag))
    assert [(t, m) for t, m, _, _ in got] == [(t, m) for t, m in TOPICS.items()] * 3
    for k, (topic, _, stamp, msg) in enumerate(got):
        img, info, people = sent[k // 3]
        assert stamp == _stamp_ns(img.header)
        assert msg.header.frame_id == selftest.FRAME_ID
        if topic == "/cam/image_raw":
            assert (msg.height, msg.width, msg.encoding, msg.step) == (
                img.height, img.width, img.encoding, img.step)
            np.testing.assert_array_equal(msg.data, np.frombuffer(img.data, np.uint8))
        elif topic == "/cam/camera_info":
            np.testing.assert_array_equal(msg.k, info.k)
            np.testing.assert_array_equal(msg.p, info.p)
            assert msg.distortion_model == info.distortion_model
        else:
            assert msg.skeleton == people.skeleton
            assert list(msg.joint_names) == list(people.joint_names)
            assert len(msg.people) == len(people.people)
            for a, b in zip(msg.people, people.people):
                assert (a.track_id, a.score) == (b.track_id, pytest.approx(b.score))
                assert [(p.x, p.y, p.z) for p in a.joints] == [(p.x, p.y, p.z) for p in b.joints]
                np.testing.assert_allclose(a.joint_confidences, b.joint_confidences)
    assert [t for t, *_ in bags.read_messages(bag, topics=["/people"])] == ["/people"] * 3

    # What ros2 bag and Foxglove need: rosidl's type hashes, definitions that decode alone.
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    hashes = {t["topic_metadata"]["type"]: t["topic_metadata"]["type_description_hash"]
              for t in meta["topics_with_message_count"]}
    assert hashes["mp3d_msgs/msg/Person3DArray"] == _share_hash("mp3d_msgs", "Person3DArray")
    assert hashes["sensor_msgs/msg/Image"] == _share_hash("sensor_msgs", "Image")
    decoded = list(read_ros2_messages(str(bag / "bag_0.mcap"), topics=["/people"]))
    assert [m.ros_msg.people[0].track_id for m in decoded] == [0, 0, 0]


def test_splits_are_whole_and_listed(tmp_path):
    bag = tmp_path / "bag"
    _write_selftest_bag(bag, 20, split_max_seconds=0.5)
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    names = [f"bag_{k}.mcap" for k in range(4)]  # 20 frames 0.1 s apart, 0.5 s per split
    assert meta["relative_file_paths"] == names == sorted(p.name for p in bag.glob("*.mcap"))
    assert [f["message_count"] for f in meta["files"]] == [15] * 4
    for name in names:  # every split opens on its own
        with open(bag / name, "rb") as f:
            assert make_reader(f).get_summary().statistics.message_count == 15
    with AnyReader([bag]) as reader:
        assert reader.message_count == 60

    by_size = tmp_path / "by_size"
    # 2 frames: an image and up to 8 kB of CameraInfo and people (up to 3, ~1.5 kB each with
    # their joint orientations) each
    _write_selftest_bag(by_size, 6, split_max_bytes=2 * (640 * 480 * 3 + 8192))
    meta = yaml.safe_load((by_size / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert len(meta["relative_file_paths"]) == 3 and meta["message_count"] == 18
    with pytest.raises(bags.BagError, match="exists already"):
        bags.BagWriter(by_size)


def test_read_messages_reads_sqlite3_bags(tmp_path):
    store = bags.default_typestore()
    bags.ensure_types(store, ["mp3d_msgs/msg/Person3DArray"])
    bag = tmp_path / "sqlite"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.SQLITE3) as writer:
        conn = writer.add_connection("/people", "mp3d_msgs/msg/Person3DArray", typestore=store)
        for i in range(3):
            people = selftest.frame(i)[2]
            writer.write(conn, 10 + i, serialize_message(people))
    got = list(bags.read_messages(bag))
    assert [(t, s, len(m.people)) for t, _, s, m in got] == [
        ("/people", 10 + i, 1 + i % 3) for i in range(3)]
    assert [len(r) for *_, r in bags.read_raw(bag)] == [
        len(serialize_message(selftest.frame(i)[2])) for i in range(3)]


def test_topic_reader_indexes_one_topic_for_random_and_sequential_access(tmp_path):
    import pickle

    bag = tmp_path / "bag"
    sent = _write_selftest_bag(bag, 4)
    raw = [r for t, _, _, r in bags.read_raw(bag) if t == "/cam/image_raw"]
    for path in (bag, bag / "bag_0.mcap"):  # the folder, and its bare storage file
        with bags.TopicReader(path, "/cam/image_raw") as reader:
            assert len(reader) == 4 and reader.msgtype == "sensor_msgs/msg/Image"
            assert reader.stamp_ns.tolist() == [_stamp_ns(m[0].header) for m in sent]
            assert [reader.raw(i) for i in (3, 0)] == [raw[3], raw[0]]
            assert list(reader.raws([1, 3])) == [(1, raw[1]), (3, raw[3])]
            assert reader.message(2).header.frame_id == selftest.FRAME_ID
            clone = pickle.loads(pickle.dumps(reader))  # no file handle travels
            assert clone.raw(1) == raw[1]
            clone.close()
    with pytest.raises(ValueError, match="increasing"):
        list(bags.TopicReader(bag, "/people").raws([2, 1]))
    with pytest.raises(bags.BagError, match=r"no topic '/nope'.*/people \(mp3d_msgs"):
        bags.TopicReader(bag, "/nope")
    assert list(bags.bag_topics(bag / "bag_0.mcap")) == list(TOPICS)


def _mcap_bag(folder: Path, schemas: dict[str, tuple[str, bytes]], messages: list[tuple]) -> Path:
    """A closed bag written with mcap directly: ``schemas`` topic -> (type, definition text),
    ``messages`` (topic, time, cdr bytes); metadata.yaml from recover_bag (which only indexes
    closed splits)."""
    from mcap.writer import Writer as McapWriter

    folder.mkdir()
    with open(folder / f"{folder.name}_0.mcap", "wb") as f:
        writer = McapWriter(f)
        writer.start(profile="ros2", library="test")
        channels = {topic: writer.register_channel(topic, "cdr", writer.register_schema(
            msgtype, "ros2msg", text), {}) for topic, (msgtype, text) in schemas.items()}
        for topic, t, data in messages:
            writer.add_message(channels[topic], t, data, t)
        writer.finish()
    assert bags.recover_bag(folder).salvaged == {}
    return folder


def test_a_topic_of_unknown_type_leaves_the_others_readable(tmp_path):
    """A type the bag does not define (empty schema) and no typestore knows: listed, readable
    raw, refused by name only when asked for; a known type with an empty schema decodes from the
    typestore (rosbags alone would decode it as a one-byte struct)."""
    store = bags.default_typestore()
    image_def = store.generate_msgdef("sensor_msgs/msg/Image", ros_version=2)[0].encode()
    point = store.types["geometry_msgs/msg/Point"](x=1.0, y=2.0, z=3.5)
    text = bytes(store.serialize_cdr(point, "geometry_msgs/msg/Point"))
    widget = b"\x00\x01\x00\x00\x07\x00\x00\x00"
    bag = _mcap_bag(tmp_path / "odd", {
        "/cam/image_raw": ("sensor_msgs/msg/Image", image_def),
        "/acme/widget": ("acme_msgs/msg/Widget", b""),
        "/point": ("geometry_msgs/msg/Point", b"")}, [
        (topic, 10**9 + i, data) for i in range(3)
        for topic, data in (("/cam/image_raw", _image_cdr(i)), ("/acme/widget", widget),
                            ("/point", text))])

    assert {n: t.msgtype for n, t in bags.bag_topics(bag).items()} == {
        "/cam/image_raw": "sensor_msgs/msg/Image", "/acme/widget": "acme_msgs/msg/Widget",
        "/point": "geometry_msgs/msg/Point"}
    assert [r for t, _, _, r in bags.read_raw(bag) if t == "/acme/widget"] == [widget] * 3
    got = list(bags.read_messages(bag, ["/cam/image_raw", "/point"]))
    assert [m.header.frame_id for t, _, _, m in got if t == "/cam/image_raw"] == [
        f"{i:06d}" for i in range(3)]
    assert [(m.x, m.y, m.z) for t, _, _, m in got if t == "/point"] == [(1.0, 2.0, 3.5)] * 3
    for ask in (None, ["/acme/widget"]):
        with pytest.raises(bags.BagError) as err:
            bags.read_messages(bag, ask)  # at once, before any message is read
        assert "'/acme/widget' cannot be deserialised" in str(err.value)
        assert "acme_msgs/msg/Widget" in str(err.value) and "\n" not in str(err.value)
        assert "other topics read as usual: ['/cam/image_raw', '/point']" in str(err.value)
    with pytest.raises(bags.BagError, match="'/acme/widget' cannot be deserialised"):
        bags.TopicReader(bag, "/acme/widget")
    assert len(bags.TopicReader(bag, "/cam/image_raw")) == 3
    from mp3d.data.images.bag import BagDataset

    assert BagDataset(bag)[1].rgb.shape == (48, 64, 3)


def test_bare_storage_files(tmp_path):
    bag = tmp_path / "bag"
    _write_selftest_bag(bag, 2)
    split = bag / "bag_0.mcap"
    assert [t for t, *_ in bags.read_messages(split, ["/people"])] == ["/people"] * 2
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(split.read_bytes()[:-100])
    for read in (bags.bag_topics, bags.read_raw, bags.read_messages):
        with pytest.raises(bags.TruncatedBagError, match="no MCAP footer.*recover"):
            read(cut)
    with pytest.raises(bags.BagError, match="not a rosbag2 bag"):
        bags.read_raw(tmp_path / "bag" / "metadata.yaml")


def _kill_writer(bag: Path, split_s: float, flush: bool) -> int:
    """Start this file as the writer, SIGKILL it once KILL_AFTER messages are reported written;
    returns how many it reported."""
    proc = subprocess.Popen([sys.executable, __file__, str(bag), str(split_s), str(int(flush))],
                            stdout=subprocess.PIPE, text=True)
    reported = -1
    try:
        deadline = time.monotonic() + 20
        while reported + 1 < KILL_AFTER and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"writer died early: {proc.wait()}"
            reported = int(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return reported + 1


@pytest.mark.parametrize("split_s, flush, use_cli", [(0.0, True, True), (3.0, True, False),
                                                     (3.0, False, False)])
def test_sigkill_mid_write_then_recover(tmp_path, split_s, flush, use_cli):
    bag = tmp_path / "killed"
    written = _kill_writer(bag, split_s, flush)

    if split_s:  # the closed splits are whole and listed: rosbags opens them, but misses the rest
        listed = yaml.safe_load((bag / "metadata.yaml").read_text())[
            "rosbag2_bagfile_information"]["relative_file_paths"]
        assert len(listed) >= 4 and len(list(bag.glob("*.mcap"))) == len(listed) + 1
        with Reader(bag) as reader:
            assert reader.message_count == 30 * len(listed)
    else:  # no split closed: no metadata.yaml, and rosbags refuses the folder
        with pytest.raises(FileNotFoundError):
            Reader(bag)
    with pytest.raises(bags.TruncatedBagError, match="recover_bag"):
        bags.read_messages(bag)

    if use_cli:
        out = subprocess.run([sys.executable, "-m", "mp3d.cli", "bag", "recover", str(bag)],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout)
    else:
        report = bags.recover_bag(bag).as_dict()
    salvaged = sum(report["salvaged"].values())
    print(f"written {written}, salvaged from the open split {salvaged}, report {report}")
    # Flushed after each message: everything reported survives. Unflushed: at most one chunk.
    lost_at_most = 0 if flush else (1 << 20) // (64 * 48 * 3) + 1
    assert report["message_count"] >= written - lost_at_most
    assert not list(bag.glob("*.recovering"))

    with Reader(bag) as reader:  # rosbags opens it now
        assert reader.message_count == report["message_count"]
    stamps = []
    for topic, _, stamp, msg in bags.read_messages(bag):
        i = int(msg.header.frame_id)
        assert topic == "/cam/image_raw" and stamp == 10**12 + i * 10**8
        np.testing.assert_array_equal(msg.data, _pattern(i))
        stamps.append(i)
    assert stamps == list(range(len(stamps)))  # in order, nothing missing in between


def _written_bag_bytes(tmp_path: Path, frames: int) -> bytes:
    """The bytes of an unclosed single-split bag: ``frames`` messages in one flushed chunk."""
    bag = tmp_path / "whole"
    writer = bags.BagWriter(bag, chunk_bytes=1 << 24)
    for i in range(frames):
        writer.write("/cam/image_raw", "sensor_msgs/msg/Image", _image_cdr(i), 10**12 + i)
    writer.flush()
    data = (bag / "whole_0.mcap").read_bytes()
    writer.close()
    return data


def test_recover_takes_complete_messages_from_a_cut_chunk(tmp_path):
    data = _written_bag_bytes(tmp_path, 10)
    cut = data.index(b"000007") + 3  # inside message 7 of the only chunk
    bag = tmp_path / "cut"
    bag.mkdir()
    (bag / "cut_0.mcap").write_bytes(data[:cut])
    report = bags.recover_bag(bag)
    assert report.salvaged == {"cut_0.mcap": 7} and report.from_partial_chunks == {
        "cut_0.mcap": 7}
    assert report.kept_damaged == ["cut_0.mcap.damaged"]  # half a record: kept for other tools
    assert (bag / "cut_0.mcap.damaged").read_bytes() == data[:cut]
    assert [int(m.header.frame_id) for *_, m in bags.read_messages(bag)] == list(range(7))

    whole = tmp_path / "uncut"
    whole.mkdir()
    (whole / "uncut_0.mcap").write_bytes(data)  # ends at a record boundary: fully copied
    report = bags.recover_bag(whole)
    assert report.salvaged == {"uncut_0.mcap": 10} and report.removed_damaged == [
        "uncut_0.mcap.damaged"]
    assert not list(whole.glob("*.damaged"))
    assert len(list(bags.read_messages(whole))) == 10


# ------------------------------------------------------------------ the writer that gets killed


def _pattern(i: int) -> np.ndarray:
    return ((np.arange(64 * 48 * 3) + i * 7) % 251).astype(np.uint8)


def _image_cdr(i: int) -> bytes:
    store = bags.default_typestore()
    t = store.types
    stamp = 10**12 + i * 10**8
    header = t["std_msgs/msg/Header"](
        stamp=t["builtin_interfaces/msg/Time"](sec=stamp // 10**9, nanosec=stamp % 10**9),
        frame_id=f"{i:06d}")
    msg = t["sensor_msgs/msg/Image"](header=header, height=48, width=64, encoding="rgb8",
                                     is_bigendian=0, step=192, data=_pattern(i))
    return bytes(store.serialize_cdr(msg, "sensor_msgs/msg/Image"))


def _writer_main(argv: list[str]) -> int:
    """Write numbered images into the bag ``argv[0]`` until killed (capped at 100000)."""
    bag, split_s, flush = Path(argv[0]), float(argv[1]), argv[2] == "1"
    writer = bags.BagWriter(bag, split_max_seconds=split_s)
    for i in range(100_000):
        writer.write("/cam/image_raw", "sensor_msgs/msg/Image", _image_cdr(i),
                     10**12 + i * 10**8)
        if flush:
            writer.flush()
        print(i, flush=True)
        time.sleep(0.002)  # a camera, not a disk benchmark
    writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(_writer_main(sys.argv[1:]))
