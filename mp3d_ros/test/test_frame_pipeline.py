"""The per-frame pipeline (mp3d_ros.frame_pipeline) in-process, and the node's health rules.

The pipeline runs the shipped model on real frames of vtest.avi; the DDS tests of the same
behaviour are in test_node_hardening.py and test_pose_node.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from builtin_interfaces.msg import Time
from conftest import CLIP_INPUT_SIZE
from diagnostic_msgs.msg import DiagnosticStatus
from mp3d.common.paths import default_model
from mp3d.infer.estimator import Estimator
from mp3d.infer.people import Person
from mp3d_ros.frame_pipeline import BadFrameError, CameraInfoBuffer, FramePipeline
from mp3d_ros.image_conversion import rgb_to_image
from mp3d_ros.pose_config import PoseNodeConfig
from mp3d_ros.pose_node import PoseNode
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

FX = 500.0


def _header(ns: int, frame_id: str = "cam") -> Header:
    return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=frame_id)


def _info(ns: int, fx: float = FX, width: int = 384, height: int = 288,
          frame_id: str = "cam") -> CameraInfo:
    k = [fx, 0, (width - 1) / 2, 0, fx, (height - 1) / 2, 0, 0, 1]
    p = [fx / 2, 0, (width - 1) / 2, 0, 0, fx / 2, (height - 1) / 2, 0, 0, 0, 1, 0]
    return CameraInfo(header=_header(ns, frame_id), width=width, height=height, k=k, p=p)


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    return Estimator(default_model("student.pt"), input_size=CLIP_INPUT_SIZE)


@pytest.fixture(scope="module")
def picture(vtest_video) -> np.ndarray:
    cap = cv2.VideoCapture(str(vtest_video))
    ok, bgr = cap.read()
    cap.release()
    assert ok
    return cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (384, 288))


def _pipeline(est, topic: str = "/cam/image_raw", **cfg) -> tuple[FramePipeline, list]:
    warnings: list[tuple[str, str]] = []
    return FramePipeline(est, PoseNodeConfig(**cfg), topic,
                         lambda k, t: warnings.append((k, t))), warnings


def test_camera_info_buffer_nearest_stamp_same_frame_first():
    buf = CameraInfoBuffer(kept=3)
    assert buf.nearest("cam", 0) is None
    for ns in (100, 300, 200):
        buf.add("cam", ns, SimpleNamespace(ns=ns))
    assert buf.nearest("cam", 140)[0] == 100
    assert buf.nearest("cam", 150)[0] == 200  # a tie goes to the newest received
    assert buf.nearest("cam", 10**9)[0] == 300
    buf.add("other", 5, SimpleNamespace(ns=5))
    assert buf.nearest("cam", 0)[2] is True
    assert buf.nearest("nobody", 0)[:3:2] == (5, False)  # newest of any frame, flagged
    buf.add("cam", 400, SimpleNamespace(ns=400))
    assert [s for s, _ in buf.by_frame["cam"]] == [300, 200, 400]  # only `kept` are kept


def test_intrinsics_policy_in_the_pipeline(estimator):
    pipe, warnings = _pipeline(estimator)
    assert pipe.intrinsics("cam", 0, 384, 288).source == "fallback"
    pipe.on_camera_info(_info(10))
    r = pipe.intrinsics("cam", 10, 384, 288)
    assert (r.source, r.intrinsics.fx) == ("camera_info", FX)
    r = pipe.intrinsics("cam", 10, 768, 576)
    assert (r.source, r.intrinsics.fx) == ("camera_info_rescaled", 2 * FX)
    pipe.on_camera_info(_info(20, fx=float("nan")))
    assert pipe.intrinsics("cam", 20, 384, 288).source == "fallback"
    assert pipe.intrinsics("cam", 11, 384, 288).intrinsics.fx == FX  # nearest stamp: 10
    rect, _ = _pipeline(estimator, "/cam/image_rect_color")
    rect.on_camera_info(_info(0))
    assert rect.intrinsics("cam", 0, 384, 288).intrinsics.fx == FX / 2  # P for rectified
    k_only, _ = _pipeline(estimator, "/cam/image_rect", intrinsics_matrix="K")
    k_only.on_camera_info(_info(0))
    assert k_only.intrinsics("cam", 0, 384, 288).intrinsics.fx == FX
    assert [k for k, _ in warnings] == ["no_camera_info", "camera_info_rescaled",
                                        "camera_info_unusable"]  # once per kind
    assert pipe.notes["camera_info_rescaled"] == 1 and pipe.notes["no_camera_info"] == 1
    late, _ = _pipeline(estimator, camera_info_timeout_s=0.5)
    late.on_camera_info(_info(0))
    assert late.intrinsics("cam", 2 * 10**9, 384, 288).source == "fallback"
    assert late.notes["camera_info_stale"] == 1


def test_a_frame_gives_people_and_messages_with_its_header(estimator, picture):
    pipe, _ = _pipeline(estimator, publish_debug_image=True, output_frame="")
    pipe.on_camera_info(_info(5))
    msg = rgb_to_image(picture, "bgr8", header=_header(5), step_padding=2)
    res = pipe.process(msg)
    assert res.people and res.intrinsics_source == "camera_info"
    assert res.people_msg.header == msg.header
    assert all(m.header == msg.header for m in res.markers.markers)
    assert res.debug_image.header == msg.header and res.debug_image.width == 384
    scores = [p.score for p in res.people]
    assert scores == sorted(scores, reverse=True)
    assert [p.track_id for p in res.people] == list(range(len(res.people)))


@pytest.mark.parametrize("shape", [(1, 1), (2, 4000), (4000, 2), (10000, 10000)])
def test_extreme_sizes_are_processed(estimator, shape):
    pipe, _ = _pipeline(estimator)
    msg = Image(header=_header(1), height=shape[0], width=shape[1], encoding="mono8",
                step=shape[1], data=bytes(shape[0] * shape[1]))
    res = pipe.process(msg)
    assert res.people_msg.header == msg.header and res.people == []


def test_bad_frames_raise_with_their_reason(estimator, picture, monkeypatch):
    pipe, _ = _pipeline(estimator)
    with pytest.raises(BadFrameError) as err:
        pipe.process(Image(header=_header(1), height=2, width=2, encoding="32FC1", step=8,
                           data=bytes(16)))
    assert err.value.reason == "bad_image" and "unsupported encoding '32FC1'" in err.value.text
    good = rgb_to_image(picture, header=_header(2))

    def broken(*_a, **_k):
        raise cv2.error("resize failed")

    monkeypatch.setattr(pipe, "est", broken)
    with pytest.raises(BadFrameError) as err:
        pipe.process(good)
    assert err.value.reason == "processing_error" and "resize failed" in err.value.text

    def nan_person(*_a, **_k):
        bad = Person(np.full((17, 3), np.nan), np.zeros((17, 2)), np.ones(17), 0.9, -1)
        fine = Person(np.ones((17, 3)) * [0, 0, 5], np.ones((17, 2)), np.ones(17), 0.8, -1)
        return [bad, fine]

    monkeypatch.setattr(pipe, "est", nan_person)
    res = pipe.process(good)
    assert len(res.people) == 1 and pipe.notes["nonfinite_person"] == 1


def test_stamps_zero_and_backwards_are_noted(estimator, picture):
    pipe, warnings = _pipeline(estimator)
    for ns in (2 * 10**9, 0, 3 * 10**9, 1 * 10**9):
        pipe.process(rgb_to_image(picture, header=_header(ns)))
    assert pipe.notes["stamp_zero"] == 1 and pipe.notes["stamp_backwards"] == 1


def _health(last_publish, first_in, win, notes=None, stall=3.0, rate=0.2):
    fake = SimpleNamespace(last_publish=last_publish, first_in=first_in,
                           cfg=PoseNodeConfig(stall_timeout_s=stall, warn_drop_rate=rate))
    return PoseNode.health(fake, 100.0, win, notes or Counter())


def test_diagnostic_levels():
    busy = {"in": [99.5] * 10, "drop": []}
    assert _health(99.9, 90.0, busy) == (DiagnosticStatus.OK, "ok")
    level, text = _health(95.0, 90.0, busy)  # images arrive, nothing out for 5 s
    assert level == DiagnosticStatus.ERROR and "nothing published for 5.0 s" in text
    level, _ = _health(None, 96.0, busy)  # never published anything in 4 s
    assert level == DiagnosticStatus.ERROR
    assert _health(None, None, {"in": [], "drop": []})[1] == "no images"
    level, text = _health(99.9, 90.0, {"in": [99.5] * 10, "drop": [99.6] * 3})
    assert level == DiagnosticStatus.WARN and "30% of frames dropped" in text
    level, text = _health(99.9, 90.0, busy, Counter(camera_info_rescaled=2))
    assert level == DiagnosticStatus.WARN and "camera_info_rescaled" in text


def test_a_dead_worker_is_restarted():
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    fake = SimpleNamespace(stopping=False, counts=Counter(), worker=dead,
                           log=SimpleNamespace(error=lambda _t: None))
    fresh = SimpleNamespace(is_alive=lambda: True)
    fake.start_worker = lambda: fresh
    PoseNode.ensure_worker(fake)
    assert fake.worker is fresh and fake.counts["worker_restarts"] == 1
    PoseNode.ensure_worker(fake)  # alive: left alone
    assert fake.counts["worker_restarts"] == 1


def test_node_and_replay_make_one_estimator_with_their_cpu_threads(tmp_path):
    """`make_estimator` is what the node's load and the replay run: cpu_threads from the
    parameters file, overridden by --cpu-threads, reaches ONNX Runtime and torch."""
    import argparse

    import torch
    from mp3d_ros.frame_pipeline import make_estimator
    from mp3d_ros.replay import add_arguments, node_config

    params = tmp_path / "pose.yaml"
    params.write_text("/**:\n  ros__parameters:\n    backend: onnxruntime\n    cpu_threads: 2\n")
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["in", "out", "--params-file", str(params)]
    assert node_config(parser.parse_args(base)).cpu_threads == 2
    cfg = node_config(parser.parse_args([*base, "--cpu-threads", "1"]))
    assert (cfg.cpu_threads, cfg.backend, cfg.device) == (1, "onnxruntime", "cpu")
    before = torch.get_num_threads()
    try:
        est = make_estimator(cfg)
        assert torch.get_num_threads() == 1
        assert est.dense.session.get_session_options().intra_op_num_threads == 1
        assert est.describe() == "onnxruntime on cpu (1 thread)"
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="cpu_threads"):
        PoseNodeConfig(cpu_threads=-1)
