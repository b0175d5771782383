"""The live pose node against bad input and faults, in a real process over DDS.

Each test starts one node (reliable QoS, so nothing is lost in transport) and sends it, one at a
time, the cases of the bad-input matrix (docs/bad_input.md): every frame must come out as a
published Person3DArray with the input's header or as a counted drop with its reason, warnings
(CameraInfo unusable or of another size, zero or backwards stamps) are counted, and the node
must still answer a good frame afterwards, stop cleanly on SIGINT and never print a traceback.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from mp3d.data.imagecodec import SUPPORTED_ENCODINGS
from mp3d_ros.image_conversion import rgb_to_compressed, rgb_to_image
from node_harness import CONFIG, Probe, header
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from mp3d_msgs.msg import Person3DArray

W, H = 128, 96
FX = 110.0
# Encodings ROS defines (sensor_msgs/image_encodings.hpp) that are not colour images we read.
UNSUPPORTED = ("32FC1", "16SC1", "64FC1", "8SC3", "32SC4", "bayer_rggb8", "bayer_grbg16",
               "nv21", "")


def _info(i: int, width: int = W, height: int = H, k: list[float] | None = None) -> CameraInfo:
    k = k if k is not None else [FX, 0, (width - 1) / 2, 0, FX, (height - 1) / 2, 0, 0, 1]
    return CameraInfo(header=header(i), width=width, height=height, k=k)


def _good(i: int, width: int = W, height: int = H) -> Image:
    return rgb_to_image(np.full((height, width, 3), 90, np.uint8), "rgb8", header=header(i))


def test_bad_raw_images_and_camera_infos_are_counted_and_the_node_goes_on(ros_env):
    probe = Probe(ros_env)
    try:
        probe.send(_good(0), _info(0))
        bad: list[Image] = [Image(header=header(1), height=4, width=4, encoding=e, step=64,
                                  data=bytes(256)) for e in UNSUPPORTED]
        bad += [
            Image(header=header(1), height=0, width=0, encoding="rgb8", step=0),  # zero-sized
            Image(header=header(1), height=H, width=W, encoding="rgb8", step=3 * W - 1,
                  data=bytes(3 * W * H)),  # step smaller than the row
            Image(header=header(1), height=H, width=W, encoding="rgb8", step=3 * W,
                  data=bytes(3 * W * H - 1)),  # data shorter than step * height
            Image(header=header(1), height=10000, width=10000, encoding="rgb8", step=30000,
                  data=bytes(1000)),  # claims 10000x10000, holds 1000 bytes
            Image(header=header(1), height=4, width=5, encoding="yuv422", step=10,
                  data=bytes(40)),  # odd width in a pixel-pair encoding
        ]
        for msg in bad:
            probe.send(msg)
        assert probe.counts()["bad_image"] == str(len(bad)), probe.counts()
        # odd sizes that are valid images: processed
        odd = [rgb_to_image(np.zeros((1, 1, 3), np.uint8), header=header(2)),
               rgb_to_image(np.zeros((97, 129, 3), np.uint8), "bgr8", header=header(3),
                            step_padding=5),
               rgb_to_image(np.zeros((2, 4000, 3), np.uint8), header=header(4)),
               rgb_to_image(np.zeros((4000, 2, 3), np.uint8), "mono8", header=header(5))]
        for msg in odd:
            probe.send(msg)
        # CameraInfos that cannot be used, or of another size: warned, counted, frame processed
        k = [FX, 0, 63.5, 0, FX, 47.5, 0, 0, 1]
        for i, info in enumerate([_info(6, k=[0.0] * 9), _info(7, k=[float("nan")] + k[1:]),
                                  _info(8, k=[-FX] + k[1:]), _info(9, W * 2, H * 2)]):
            probe.send(_good(6 + i), info)
        # the camera changes resolution mid-stream, with a matching CameraInfo: no warning
        probe.send(_good(10, W * 2, H * 2), _info(10, W * 2, H * 2))
        # stamps: zero, then backwards
        zero = _good(0)
        zero.header.stamp.sec = zero.header.stamp.nanosec = 0
        probe.send(zero)
        probe.send(_good(11))
        probe.send(_good(5))
        assert probe.lis.spin_until(lambda: int(probe.counts()["frames_out"]) == 13, 5)
        c = probe.counts()
        out = probe.lis.people
        assert [m.header for m in out] == [_good(i).header for i in (0, 2, 3, 4, 5, 6, 7, 8, 9,
                                                                      10)] + [zero.header] + [
            _good(i).header for i in (11, 5)]
        # The CameraInfo nearest in stamp is used. Unusable: infos 6, 7, 8, and 6 again for the
        # backwards frame 5. Rescaled: the four odd sizes (info 0 is 128x96), frame 9 (info 9
        # is twice the size) and frame 11 (after the camera switched to 256x192).
        assert (c["warning_camera_info_unusable"], c["warning_camera_info_rescaled"]) == (
            "4", "6"), c
        assert (c["warning_stamp_zero"], c["warning_stamp_backwards"]) == ("1", "1"), c
        assert c["estimator_error"] == c["processing_error"] == c["worker_restarts"] == "0", c
        assert c["intrinsics"] == "fallback"  # the last frame, 5, met the zero K of info 6
        assert all(np.isfinite(p.root.z) for m in out for p in m.people)
    finally:
        err = probe.close()
    assert err.count("bad_image: unsupported encoding") >= 1, err


def test_bad_compressed_images_are_counted(ros_env):
    probe = Probe(ros_env, compressed=True)
    try:
        good = rgb_to_compressed(np.full((H, W, 3), 90, np.uint8), "jpeg", header=header(0))
        png = rgb_to_compressed(np.full((H, W, 3), 90, np.uint8), "png", header=header(1))
        probe.send(good, _info(0))
        bad = [CompressedImage(header=header(1), format="jpeg", data=bytes(good.data[:40])),
               CompressedImage(header=header(1), format="jpeg"),
               CompressedImage(header=header(1), format="png", data=bytes(png.data[:-30])),
               CompressedImage(header=header(1), format="jpeg", data=bytes(range(256)) * 4),
               CompressedImage(header=header(1), format="16UC1; compressedDepth",
                               data=bytes(png.data))]
        for msg in bad:
            probe.send(msg)
        probe.send(png)
        c = probe.counts()
        assert c["bad_image"] == str(len(bad)) and c["frames_out"] == "2", c
        assert [m.header for m in probe.lis.people] == [good.header, png.header]
    finally:
        probe.close()


def _set_parameter(probe: Probe, name: str, value: ParameterValue) -> tuple[bool, str]:
    client = probe.lis.node.create_client(SetParameters, "/pose_node/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name=name,
                                                                           value=value)]))
    assert probe.lis.spin_until(future.done, 10, [probe.proc])
    result = future.result().results[0]
    return result.successful, result.reason


def test_camera_restart_subscriber_return_and_runtime_parameters(ros_env):
    probe = Probe(ros_env)
    try:
        probe.send(_good(0), _info(0))
        # the camera stops: the diagnostics say so; then it comes back on a new publisher
        probe.lis.node.destroy_publisher(probe.image)
        assert probe.lis.spin_until(lambda: probe.lis.diags
                                    and probe.lis.diag_status[-1][1] == "no images", 5)
        qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        probe.image = probe.lis.node.create_publisher(Image, "/cam/image", qos)
        assert probe.lis.spin_until(lambda: probe.image.get_subscription_count() > 0, 10)
        probe.send(_good(1))
        # the subscriber of the outputs goes away and returns: the node goes on
        probe.lis.node.destroy_subscription(probe.lis.people_sub)
        probe.send(_good(2))
        probe.lis.people_sub = probe.lis.node.create_subscription(
            Person3DArray, "/people", probe.lis.people.append, qos)
        assert probe.lis.spin_until(lambda: probe.lis.node.count_subscribers("/people") > 0
                                    and probe.image.get_subscription_count() > 0, 10)
        probe.lis.spin_until(lambda: False, 0.5)
        probe.send(_good(3))
        assert [m.header for m in probe.lis.people] == [_good(i).header for i in (0, 1, 3)]
        assert probe.lis.diag_status[-1][0] == 0, probe.lis.diag_status[-1]  # OK
        # parameters are read-only: a change at run time is refused, with the reason
        ok, reason = _set_parameter(probe, "peak_threshold", ParameterValue(
            type=ParameterType.PARAMETER_DOUBLE, double_value=5.0))
        assert not ok and "read-only" in reason.lower(), reason
        ok, _ = _set_parameter(probe, "device", ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value="cuda"))
        assert not ok
        probe.send(_good(4))
        assert len(probe.lis.people) == 4
    finally:
        probe.close()


@pytest.mark.parametrize("param", ["peak_threshold:=2.0", "image_queue_depth:=0",
                                   "stall_timeout_s:=0.0", "intrinsics_matrix:=Q",
                                   "image_transport:=theora", "warn_drop_rate:=-1.0",
                                   "tracker.min_hits:=0", "markers.joint_radius:=-0.1",
                                   "fallback_fx:=abc", "backend:=tensorrt", "fp16:=true",
                                   "backend:=openvino"])
def test_parameters_out_of_range_exit_2_with_one_line(ros_env, param):
    # A -p of the wrong type is dropped by rclpy when a params file sets the same name, so the
    # type error is checked without the file.
    with_file = ["--params-file", str(CONFIG)] if param != "fallback_fx:=abc" else []
    cmd = [sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", *with_file, "-p", param]
    res = subprocess.run(cmd, env=ros_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, (param, res.stderr)
    assert "Traceback" not in res.stderr and "cannot start" in res.stderr, res.stderr
    assert param.split(":=")[0] in res.stderr, res.stderr
    assert len([x for x in res.stderr.splitlines() if x.strip()]) == 1, res.stderr


def test_every_supported_encoding_is_not_in_the_unsupported_list():
    assert not set(UNSUPPORTED) & set(SUPPORTED_ENCODINGS)


def test_the_onnx_backend_runs_in_the_node_and_says_so(ros_env, tmp_path):
    probe = Probe({**ros_env, "MP3D_CACHE": str(tmp_path)}, "backend:=onnxruntime")
    try:
        probe.send(_good(0), _info(0))
        assert probe.lis.spin_until(lambda: probe.counts()["frames_out"] == "1", 5)
        assert probe.counts()["backend"] == "onnxruntime on cpu", probe.counts()
        assert probe.lis.people[0].header == _good(0).header
    finally:
        probe.close()
    assert len(list((tmp_path / "onnx").glob("*.onnx"))) == 1  # exported once, into the cache
