"""Offline replay (mp3d_ros.replay): real vtest.avi frames in a real bag, the real student model.

The input bag holds FRAMES rgb8 Images of vtest.avi (pedestrians) at 10 Hz, each after its
CameraInfo, recorded at bag time = header stamp + RECEIVE_DELAY, so the test can tell that the
output is stamped with the images' header stamps and not with the input's bag times.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import CLIP_INPUT_SIZE
from mp3d.data import bags
from mp3d_ros.image_conversion import rgb_to_image
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header

from mp3d_ros import replay

FRAMES, HZ = 3, 10
T0 = 1_700_000_000 * 10**9
RECEIVE_DELAY = 7_000_000  # ns between an image's header stamp and its bag time in the input
IMAGE, INFO = "/cam/image_raw", "/cam/camera_info"
FRAME_ID = "camera_optical_frame"


def _stamp(i: int) -> int:
    return T0 + i * 10**9 // HZ


def _tree_hash(folder: Path) -> str:
    """sha256 over every file's relative path and bytes (and so over any file added)."""
    h = hashlib.sha256()
    for f in sorted(folder.rglob("*")):
        h.update(str(f.relative_to(folder)).encode())
        if f.is_file():
            h.update(f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def src_bag(vtest_video: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FRAMES frames (every 20th) of vtest.avi as rgb8 Images with a 768x576 CameraInfo."""
    cap = cv2.VideoCapture(str(vtest_video))
    pictures = []
    while len(pictures) < FRAMES:
        for _ in range(20):
            ok, bgr = cap.read()
            assert ok, "vtest.avi ended early"
        pictures.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    h, w = pictures[0].shape[:2]
    path = tmp_path_factory.mktemp("replay") / "input"
    with bags.BagWriter(path) as writer:
        for i, rgb in enumerate(pictures):
            ns = _stamp(i)
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=FRAME_ID)
            f = 0.5 * w / np.tan(np.radians(30.0))
            info = CameraInfo(header=header, width=w, height=h, distortion_model="plumb_bob",
                              d=[0.0] * 5, k=[f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1],
                              r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                              p=[f, 0, (w - 1) / 2, 0, 0, f, (h - 1) / 2, 0, 0, 0, 1, 0])
            writer.write(INFO, "sensor_msgs/msg/CameraInfo", serialize_message(info),
                         ns + RECEIVE_DELAY)
            writer.write(IMAGE, "sensor_msgs/msg/Image",
                         serialize_message(rgb_to_image(rgb, "rgb8", header=header)),
                         ns + RECEIVE_DELAY)
    return path


def _args(in_bag: Path, out_bag: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    return parser.parse_args([str(in_bag), str(out_bag), "--no-progress", "--input-size",
                              str(CLIP_INPUT_SIZE), *extra])


@pytest.fixture(scope="module")
def replayed(src_bag: Path) -> dict[str, object]:
    """The input replayed twice in-process; the input's hash before and after."""
    before = _tree_hash(src_bag)
    outs = [src_bag.parent / "out_a", src_bag.parent / "out_b"]
    codes = [replay.run(_args(src_bag, out)) for out in outs]
    return {"codes": codes, "outs": outs, "before": before, "after": _tree_hash(src_bag)}


def test_one_people_array_and_marker_array_per_image(src_bag: Path, replayed: dict) -> None:
    assert replayed["codes"] == [0, 0]
    out = replayed["outs"][0]
    images = {}
    for _, _, stamp, msg in bags.read_messages(src_bag, [IMAGE]):
        images[stamp - RECEIVE_DELAY] = msg.header
    by_topic: dict[str, list[tuple[int, object]]] = {}
    for topic, _, stamp, msg in bags.read_messages(out):
        by_topic.setdefault(topic, []).append((stamp, msg))
    assert {t: len(v) for t, v in by_topic.items()} == {
        "/people": FRAMES, "/people/markers": FRAMES, IMAGE: FRAMES, INFO: FRAMES}
    for topic in ("/people", IMAGE, INFO):
        for stamp, msg in by_topic[topic]:  # bag time = header stamp, header = the image's
            assert stamp in images
            header = images[stamp]
            assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (
                header.stamp.sec, header.stamp.nanosec, header.frame_id) == (
                stamp // 10**9, stamp % 10**9, FRAME_ID)
    for stamp, markers in by_topic["/people/markers"]:
        assert markers.markers[0].action == 3  # DELETEALL first
        for m in markers.markers:
            assert (m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, m.header.frame_id) == (
                stamp, FRAME_ID)
    counts = [len(m.people) for _, m in by_topic["/people"]]
    assert all(c >= 1 for c in counts), counts  # vtest.avi always shows pedestrians
    for (_, people), (_, markers) in zip(by_topic["/people"], by_topic["/people/markers"]):
        assert len(markers.markers) == 1 + 2 * len(people.people)
        scores = [p.score for p in people.people]
        assert scores == sorted(scores, reverse=True)
        ids = [p.track_id for p in people.people]
        assert min(ids) >= 0 and len(set(ids)) == len(ids)  # tracked, as the node does
        for p in people.people:
            assert 0.5 < p.root.z < 60.0  # in front of the camera


def test_output_bag_readable_by_rosbags(replayed: dict) -> None:
    with Reader(replayed["outs"][0]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert reader.message_count == 4 * FRAMES
    assert types == {"/people": "mp3d_msgs/msg/Person3DArray",
                     "/people/markers": "visualization_msgs/msg/MarkerArray",
                     IMAGE: "sensor_msgs/msg/Image", INFO: "sensor_msgs/msg/CameraInfo"}


def test_replay_is_deterministic_and_copies_inputs(src_bag: Path, replayed: dict) -> None:
    a, b = (list(bags.read_raw(out)) for out in replayed["outs"])
    assert a == b
    copied = [(t, raw) for t, _, _, raw in a if t in (IMAGE, INFO)]
    assert copied == [(t, raw) for t, _, _, raw in bags.read_raw(src_bag)]


def test_input_bag_untouched(replayed: dict) -> None:
    assert replayed["before"] == replayed["after"]


def test_truncated_input_is_a_clear_error(src_bag: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(src_bag, broken)
    (broken / "metadata.yaml").unlink()  # what a SIGKILLed recorder leaves: no metadata, no footer
    split = next(broken.glob("*.mcap"))
    data = split.read_bytes()
    split.write_bytes(data[: len(data) * 2 // 3])
    assert replay.run(_args(broken, tmp_path / "out")) == 2
    err = capsys.readouterr().err
    assert "truncated" in err and f"mp3d bag recover {broken}" in err, err
    assert not (tmp_path / "out").exists()


def test_missing_topic_lists_topics(src_bag: Path, tmp_path: Path) -> None:
    """Through the console-script entry point in a real process."""
    res = subprocess.run([sys.executable, "-m", "mp3d_ros.replay", str(src_bag),
                          str(tmp_path / "out"), "--image-topic", "/front/image_raw"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: "), res.stderr
    assert "'/front/image_raw' is not in the bag" in res.stderr, res.stderr
    assert f"{IMAGE} (sensor_msgs/msg/Image, {FRAMES} msgs)" in res.stderr, res.stderr
    assert f"{INFO} (sensor_msgs/msg/CameraInfo" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists()


def test_existing_output_is_refused(src_bag: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "out").mkdir()
    assert replay.run(_args(src_bag, tmp_path / "out")) == 2
    assert "exists already" in capsys.readouterr().err
    assert replay.run(_args(src_bag, src_bag / "inside")) == 2
    assert "outside the input bag" in capsys.readouterr().err


@pytest.mark.parametrize("line, message", [
    ("peak_threshold: 5.0", "peak_threshold=5.0 not in [0.0, 1.0]"),
    ("peak_threshold: abc", "peak_threshold='abc' is a str, expected a float like 0.0"),
    ("cpu_threads: 1.5", "cpu_threads=1.5 is a float, expected an int like 0"),
    ("backend: openvino", "backend='openvino' not one of ('torch', 'onnxruntime', 'tensorrt')"),
])
def test_a_params_file_is_checked_as_the_node_checks_it(src_bag: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str],
                                                         line: str, message: str) -> None:
    params = tmp_path / "pose.yaml"
    params.write_text(f"/**:\n  ros__parameters:\n    {line}\n")
    assert replay.run(_args(src_bag, tmp_path / "out", "--params-file", str(params))) == 2
    assert capsys.readouterr().err == f"error: bad parameters: {message}\n"
    assert not (tmp_path / "out").exists()


def test_choose_topics_picks_the_image_and_its_camera_info() -> None:
    def topic(name: str, msgtype: str) -> bags.BagTopic:
        return bags.BagTopic(name, msgtype, 1)

    topics = {t.name: t for t in [
        topic("/a/image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
        topic("/a/camera_info", "sensor_msgs/msg/CameraInfo"),
        topic("/b/camera_info", "sensor_msgs/msg/CameraInfo"),
        topic("/tf", "tf2_msgs/msg/TFMessage")]}
    assert replay.choose_topics(topics, None, "auto") == ("/a/image_raw/compressed",
                                                          "/a/camera_info")
    assert replay.choose_topics(topics, None, "/b/camera_info")[1] == "/b/camera_info"
    assert replay.choose_topics(topics, None, "none")[1] is None
    with pytest.raises(replay.ReplayError, match="is tf2_msgs/msg/TFMessage, not one of"):
        replay.choose_topics(topics, "/tf", "auto")
    two = {**topics, "/c/image": topic("/c/image", "sensor_msgs/msg/Image")}
    with pytest.raises(replay.ReplayError, match="more than one image topic.*/c/image"):
        replay.choose_topics(two, None, "auto")


def _bad_frames_bag(path: Path, picture: np.ndarray, compressed: bool) -> tuple[Path, int]:
    """Good frames of `picture` among bad ones, each after a CameraInfo; returns the bag and
    the number of good frames. The CameraInfos are: fine, NaN K, zero K, another size."""
    from mp3d_ros.image_conversion import rgb_to_compressed
    from sensor_msgs.msg import CompressedImage, Image

    h, w = picture.shape[:2]
    f = 600.0
    good_k = [f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1]
    infos = [(w, h, good_k), (w, h, [float("nan")] * 9), (w, h, [0.0] * 9),
             (w // 2, h // 2, [f / 2, 0, w / 4, 0, f / 2, h / 4, 0, 0, 1])]
    if compressed:
        jpeg = rgb_to_compressed(picture, "jpeg")
        frames = [jpeg, CompressedImage(format="jpeg", data=bytes(jpeg.data[:200])),
                  CompressedImage(format="jpeg"), CompressedImage(format="png", data=bytes(99)),
                  jpeg]
        msgtype = "sensor_msgs/msg/CompressedImage"
    else:
        good = rgb_to_image(picture, "bgr8", step_padding=3)
        frames = [good, Image(height=4, width=4, encoding="32FC1", step=16, data=bytes(64)),
                  Image(height=h, width=w, encoding="rgb8", step=3 * w - 1, data=bytes(3 * w * h)),
                  Image(height=h, width=w, encoding="rgb8", step=3 * w, data=bytes(100)),
                  Image(height=0, width=0, encoding="rgb8", step=0), good]
        msgtype = "sensor_msgs/msg/Image"
    with bags.BagWriter(path) as writer:
        for i, msg in enumerate(frames):
            ns = _stamp(i)
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=FRAME_ID)
            iw, ih, k = infos[i % len(infos)]
            writer.write(INFO, "sensor_msgs/msg/CameraInfo",
                         serialize_message(CameraInfo(header=header, width=iw, height=ih, k=k)),
                         ns)
            msg.header = header
            writer.write(IMAGE, msgtype, serialize_message(msg), ns)
    return path, 2


@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "compressed"])
def test_bad_frames_are_skipped_counted_and_strict_stops(
        vtest_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        compressed: bool) -> None:
    cap = cv2.VideoCapture(str(vtest_video))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    picture = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (384, 288))
    bag, good = _bad_frames_bag(tmp_path / "mixed", picture, compressed)
    total = len(list(bags.read_raw(bag, [IMAGE])))
    assert replay.run(_args(bag, tmp_path / "out")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["frames"] == good
    assert summary["skipped"] == {"bad_image": total - good}, summary
    assert f"skipped {total - good} of {total} frames: bad_image {total - good}" in captured.err
    assert "Traceback" not in captured.err
    # the good frames come after the CameraInfos 0 (fine) and, raw, 5 (NaN K)
    assert summary["warnings"] == ({} if compressed else {"camera_info_unusable": 1}), summary
    people = [m for _, _, _, m in bags.read_messages(tmp_path / "out", ["/people"])]
    assert len(people) == good and all(len(m.people) >= 1 for m in people)
    copied = len(list(bags.read_raw(tmp_path / "out", [IMAGE])))
    assert copied == total  # nothing recorded is lost: every input image is copied
    assert replay.run(_args(bag, tmp_path / "strict", "--strict")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: image 1 ") and "--strict" in err, err
    assert len(list(bags.read_raw(tmp_path / "strict", ["/people"]))) == 1
