"""Foxglove opens the bags this project writes: MCAP files (ros2 profile) whose every channel has a
``ros2msg`` schema named after the channel's type and holding the full definition, every nested
type in its own section after a line of 80 '=' and ``MSG: pkg/Name``, as ``ros2 bag record``
writes them. Foxglove decodes from those schemas alone; so does this test, with mcap_ros2's
decoder (no typestore, no installed messages), and compares every field of every message with
rclpy's own decoding of the same bytes. Each section's fields are also compared with the
installed ``.msg`` file of its type, the definition the publishing nodes were built from.

The bags: the bundled demo clip (written by the recorder node), an ``mp3d replay`` output of a cut
of it (people, markers, debug image and /tf), and what ``mp3d_record`` (scripts/demo.sh's output
recorder, a real process over DDS) writes for the demo's topics /people, /people/markers and
/diagnostics, plus /tf.
"""

from __future__ import annotations

import argparse
import array
import importlib
import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from mcap.reader import make_reader
from mcap_ros2.decoder import DecoderFactory
from mp3d.data import bags
from rclpy.context import Context
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message

from mp3d_ros import replay

PKG = Path(__file__).resolve().parents[1]
CLIP = PKG / "data" / "demo_clip"
RULE = "=" * 80
PRIMITIVES = {"bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16", "uint16",
              "int32", "uint32", "int64", "uint64", "string", "wstring"}
DEMO_TOPICS = ("/people", "/people/markers", "/diagnostics")  # what scripts/demo.sh records
CUT_MESSAGES = 6  # of the demo clip: 3 frames with their CameraInfos


# --------------------------------------------------------------------------- the bags


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mp3d replay` of the demo clip's first frames, with debug images and /tf."""
    root = tmp_path_factory.mktemp("foxglove")
    cut = root / "cut"
    with bags.BagWriter(cut) as writer:
        for i, (topic, msgtype, stamp, raw) in enumerate(bags.read_raw(CLIP)):
            if i == CUT_MESSAGES:
                break
            writer.write(topic, msgtype, raw, stamp)
    params = root / "params.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {"publish_tf": True}}}))
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    out = root / "replayed"
    args = parser.parse_args([str(cut), str(out), "--no-progress", "--debug-image",
                              "--params-file", str(params)])
    assert replay.run(args) == 0
    return out


def _message_class(msgtype: str) -> type:
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _wait(done: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


@pytest.fixture(scope="module")
def recorded(replayed: Path, ros_env: dict[str, str],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """mp3d_record in its own process records the demo's topics (and /tf) published here; the
    people, markers and transforms are the replay's, the diagnostics made up."""
    sent: dict[str, list[Any]] = {t: [] for t in (*DEMO_TOPICS, "/tf")}
    for topic, msgtype, _, raw in bags.read_raw(replayed, ["/people", "/people/markers", "/tf"]):
        sent[topic].append(deserialize_message(raw, _message_class(msgtype)))
    for i, level in enumerate((DiagnosticStatus.OK, DiagnosticStatus.WARN)):
        sent["/diagnostics"].append(DiagnosticArray(
            header=sent["/people"][i].header, status=[DiagnosticStatus(
                level=level, name="pose_node: pose", message="ok" if i == 0 else "no images",
                hardware_id="mp3d", values=[KeyValue(key="frames_in", value=str(i))])]))
    out = tmp_path_factory.mktemp("foxglove") / "people_bag"
    rec = subprocess.Popen(
        [sys.executable, "-m", "mp3d_ros.topic_recorder", str(out), "--topics", *sent,
         "--idle-timeout", "1.0", "--discovery-timeout", "30"],
        env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = Node("foxglove_test_publisher", context=ctx)
    try:
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        pubs = {t: node.create_publisher(type(msgs[0]), t, qos) for t, msgs in sent.items()}
        assert _wait(lambda: all(p.get_subscription_count() > 0 for p in pubs.values())
                     or rec.poll() is not None, 30), "mp3d_record did not subscribe"
        assert rec.poll() is None, rec.communicate()
        for topic, msgs in sent.items():
            for msg in msgs:
                pubs[topic].publish(msg)
        stdout, stderr = rec.communicate(timeout=30)  # it stops 1 s after the last message
    finally:
        if rec.poll() is None:
            rec.kill()
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    assert rec.returncode == 0, stderr
    counts = json.loads(stdout.strip().splitlines()[-1])["counts"]
    assert counts == {t: len(m) for t, m in sent.items()}, (counts, stderr)
    return out, counts


@pytest.fixture(params=["demo_clip", "replay_output", "mp3d_record_output"])
def bag(request: pytest.FixtureRequest) -> Path:
    if request.param == "demo_clip":
        return CLIP
    if request.param == "replay_output":
        return request.getfixturevalue("replayed")
    return request.getfixturevalue("recorded")[0]


def _splits(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """(the bag's MCAP files, topic -> type) from its metadata.yaml."""
    info = yaml.safe_load((folder / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    types = {t["topic_metadata"]["name"]: t["topic_metadata"]["type"]
             for t in info["topics_with_message_count"]}
    files = [folder / f for f in info["relative_file_paths"]]
    assert files and all(f.suffix == ".mcap" for f in files), files
    return files, types


# --------------------------------------------------------------------------- definitions


def _normal_type(type_text: str, package: str) -> tuple[str, str]:
    """(``pkg/Name`` or primitive, array suffix) of a field type as .msg files write it."""
    base, suffix = re.match(r"^([^\[]+)(\[.*\])?$", type_text).groups()
    base = re.sub(r"<=\d+$", "", base)  # bounded strings
    if base in PRIMITIVES:
        return base, suffix or ""
    if "/" not in base:
        base = "std_msgs/Header" if base == "Header" else f"{package}/{base}"
    pkg, *rest = base.split("/")
    return f"{pkg}/{rest[-1]}", suffix or ""


def _definition(lines: list[str], package: str) -> tuple[list[tuple[str, str]], set[str]]:
    """(fields as (normalised type with array suffix, name), constant names) of one message."""
    fields, constants = [], set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        constant = re.match(r"^(\S+)\s+([A-Za-z][A-Za-z0-9_]*)\s*=", line)
        if constant:
            constants.add(constant.group(2))
            continue
        type_text, name = line.split()[:2]
        base, suffix = _normal_type(type_text, package)
        fields.append((base + suffix, name))
    return fields, constants


def schema_sections(name: str, text: str) -> dict[str, list[str]]:
    """The schema's message definitions by type: the top one first, then each ``MSG:`` one;
    separators must be lines of exactly 80 '='."""
    sections: dict[str, list[str]] = {_normal_type(name, "")[0]: []}
    current = sections[_normal_type(name, "")[0]]
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"=+", line.strip()):
            assert line == RULE, f"{name}: separator {line!r} is not 80 '='"
            header = lines[i + 1] if i + 1 < len(lines) else ""
            assert header.startswith("MSG: "), f"{name}: {header!r} after a separator"
            nested = _normal_type(header[5:].strip(), "")[0]
            assert nested not in sections, f"{name}: {nested} defined twice"
            sections[nested] = current = []
            i += 2
            continue
        current.append(line)
        i += 1
    return sections


def installed_definition(msgtype: str) -> list[str]:
    """The lines of ``share/<pkg>/msg/<Name>.msg`` of the first AMENT_PREFIX_PATH prefix with it."""
    package, name = msgtype.split("/")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = Path(prefix) / "share" / package / "msg" / f"{name}.msg"
        if prefix and path.is_file():
            return path.read_text().split("\n")
    raise AssertionError(f"no installed {package}/msg/{name}.msg under AMENT_PREFIX_PATH")


def check_schema(name: str, text: str) -> dict[str, list[tuple[str, str]]]:
    """Every type the definition uses is defined in it, once, field for field as installed."""
    sections = schema_sections(name, text)
    fields = {}
    for msgtype, lines in sections.items():
        package = msgtype.split("/")[0]
        fields[msgtype], constants = _definition(lines, package)
        want_fields, want_constants = _definition(installed_definition(msgtype), package)
        assert fields[msgtype] == want_fields, f"{name}: {msgtype} differs from the installed"
        assert constants == want_constants, f"{name}: {msgtype}'s constants differ"
    used = {t.split("[")[0] for fs in fields.values() for t, _ in fs} - PRIMITIVES
    assert used <= set(sections), f"{name}: {sorted(used - set(sections))} not defined"
    assert set(sections) - {_normal_type(name, "")[0]} <= used, f"{name}: unused sections"
    return fields


# --------------------------------------------------------------------------- decoding


def same(decoded: Any, ref: Any, where: str) -> None:
    """``decoded`` (mcap_ros2, from the schema) holds exactly what ``ref`` (rclpy) does."""
    if hasattr(type(ref), "get_fields_and_field_types"):
        for name in ref.get_fields_and_field_types():
            same(getattr(decoded, name), getattr(ref, name), f"{where}.{name}")
    elif isinstance(ref, (bytes, bytearray)) or (isinstance(ref, array.array)
                                                 and ref.typecode in "bB"):
        got = bytes([decoded]) if isinstance(decoded, int) else bytes(decoded)  # `byte` fields
        assert got == bytes(ref), where
    elif isinstance(ref, (list, tuple, array.array, np.ndarray)):
        assert len(decoded) == len(ref), where
        for i, (d, r) in enumerate(zip(decoded, ref)):
            same(d, r, f"{where}[{i}]")
    elif isinstance(ref, float):
        assert decoded == ref or (math.isnan(decoded) and math.isnan(ref)), (where, decoded, ref)
    else:
        assert decoded == ref, (where, decoded, ref)


# --------------------------------------------------------------------------- the tests


def test_every_channel_has_its_full_ros2msg_schema(bag: Path) -> None:
    files, types = _splits(bag)
    for path in files:
        with path.open("rb") as f:
            reader = make_reader(f)
            assert reader.get_header().profile == "ros2"
            summary = reader.get_summary()
            assert summary is not None, f"{path} has no summary (not closed?)"
            assert {c.topic for c in summary.channels.values()} == set(types)
            for channel in summary.channels.values():
                assert channel.message_encoding == "cdr", channel
                assert channel.schema_id in summary.schemas, f"{channel.topic}: no schema"
                schema = summary.schemas[channel.schema_id]
                assert schema.encoding == "ros2msg", (channel.topic, schema.encoding)
                assert schema.name == types[channel.topic], (channel.topic, schema.name)
                check_schema(schema.name, schema.data.decode())


def test_foxglove_decodes_every_message_from_the_schema_alone(bag: Path) -> None:
    files, types = _splits(bag)
    factory = DecoderFactory()
    for path in files:
        decoders: dict[int, Any] = {}
        counts: dict[int, int] = {}
        with path.open("rb") as f:
            reader = make_reader(f)
            summary = reader.get_summary()
            for schema, channel, message in reader.iter_messages():
                if channel.id not in decoders:
                    decoders[channel.id] = factory.decoder_for(channel.message_encoding, schema)
                    assert decoders[channel.id] is not None, channel.topic
                decoded = decoders[channel.id](message.data)
                ref = deserialize_message(message.data, _message_class(schema.name))
                same(decoded, ref, f"{channel.topic}@{message.log_time}")
                counts[channel.id] = counts.get(channel.id, 0) + 1
        assert counts == summary.statistics.channel_message_counts
        assert set(counts) == set(summary.channels), "a channel without messages"


def test_the_bags_hold_what_the_demo_and_replay_write(replayed: Path,
                                                      recorded: tuple[Path, dict]) -> None:
    assert _splits(CLIP)[1] == {"/image/compressed": "sensor_msgs/msg/CompressedImage",
                                "/camera_info": "sensor_msgs/msg/CameraInfo"}
    assert _splits(replayed)[1] == {
        "/image/compressed": "sensor_msgs/msg/CompressedImage",
        "/camera_info": "sensor_msgs/msg/CameraInfo",
        "/people": "mp3d_msgs/msg/Person3DArray",
        "/people/markers": "visualization_msgs/msg/MarkerArray",
        "/people/debug_image": "sensor_msgs/msg/Image", "/tf": "tf2_msgs/msg/TFMessage"}
    assert _splits(recorded[0])[1] == {
        "/people": "mp3d_msgs/msg/Person3DArray",
        "/people/markers": "visualization_msgs/msg/MarkerArray",
        "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray", "/tf": "tf2_msgs/msg/TFMessage"}
    assert all(recorded[1].values())


def test_person_array_schema_holds_every_nested_type(replayed: Path) -> None:
    (path,), _ = _splits(replayed)
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    schemas = {s.name: s.data.decode() for s in summary.schemas.values()}
    people = schemas["mp3d_msgs/msg/Person3DArray"]
    assert set(schema_sections("mp3d_msgs/msg/Person3DArray", people)) == {
        "mp3d_msgs/Person3DArray", "mp3d_msgs/Person3D", "geometry_msgs/Point",
        "geometry_msgs/Quaternion", "std_msgs/Header", "builtin_interfaces/Time"}
    for nested in ("mp3d_msgs/Person3D", "geometry_msgs/Point", "geometry_msgs/Quaternion",
                   "std_msgs/Header", "builtin_interfaces/Time"):
        assert f"\n{RULE}\nMSG: {nested}\n" in people, nested
    assert set(schema_sections("tf2_msgs/msg/TFMessage", schemas["tf2_msgs/msg/TFMessage"])) == {
        "tf2_msgs/TFMessage", "geometry_msgs/TransformStamped", "std_msgs/Header",
        "builtin_interfaces/Time", "geometry_msgs/Transform", "geometry_msgs/Vector3",
        "geometry_msgs/Quaternion"}
    markers = check_schema("visualization_msgs/msg/MarkerArray",
                           schemas["visualization_msgs/msg/MarkerArray"])
    assert ("geometry_msgs/Point[]", "points") in markers["visualization_msgs/Marker"]
