"""TF frames per person: the pose node in a real process publishes ``body_<id>`` on /tf (REP-155
axes, stamped with the image, parented to its frame) and this process listens, as tf2_ros
would, and checks them against the published joints. The TFMessage type the node uses is ROS's
own (the fallback build of scripts/setup.sh has the same type hash as tf2_msgs/msg/TFMessage)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from mp3d.common import skeleton as sk
from mp3d_ros.image_conversion import rgb_to_image
from node_harness import Probe, header
from rclpy.qos import QoSProfile, ReliabilityPolicy
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo
from tf2_msgs.msg import TFMessage


def test_body_frame_of_the_rest_pose_faces_the_camera():
    origin, rot = sk.body_frame(sk.REST_POSE + [0.3, 0.1, 4.0])
    hips = sk.REST_POSE[[sk.INDEX["l_hip"], sk.INDEX["r_hip"]]].mean(0) + [0.3, 0.1, 4.0]
    np.testing.assert_allclose(origin, hips)
    np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
    assert np.linalg.det(rot) == pytest.approx(1.0)
    # camera optical frame: x right, y down, z forward; facing the camera, forward is -z
    assert rot[:, 0] @ [0, 0, -1] > 0.95  # x: out of the chest, towards the camera
    assert rot[:, 1] @ [1, 0, 0] > 0.95  # y: the person's left is the image's right
    assert rot[:, 2] @ [0, -1, 0] > 0.95  # z: up


def test_tf_prefix_and_untracked_people():
    from builtin_interfaces.msg import Time
    from mp3d.infer.people import Person
    from mp3d_ros.tf_frames import people_transforms
    from std_msgs.msg import Header

    hdr = Header(stamp=Time(sec=5), frame_id="cam")
    tracked = Person(sk.REST_POSE + [0, 0, 3.0], np.zeros((17, 2)), np.ones(17), 0.9, 4)
    untracked = Person(sk.REST_POSE + [1, 0, 3.0], np.zeros((17, 2)), np.ones(17), 0.8, -1)
    out = people_transforms([tracked, untracked], hdr, prefix="front/")
    assert [t.child_frame_id for t in out] == ["front/body_4"] and out[0].header == hdr


def test_the_tf_message_type_is_ros_own():
    from ament_index_python.packages import get_package_share_directory
    from rosbags.typesys import Stores, get_typestore

    described = Path(get_package_share_directory("tf2_msgs")) / "msg" / "TFMessage.json"
    hashes = {h["type_name"]: h["hash_string"]
              for h in json.loads(described.read_text())["type_hashes"]}
    for store in (Stores.ROS2_JAZZY, Stores.LATEST):
        assert hashes["tf2_msgs/msg/TFMessage"] == get_typestore(store).hash_rihs01(
            "tf2_msgs/msg/TFMessage")


@pytest.fixture(scope="module")
def pictures(vtest_video) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(vtest_video))
    out = []
    for _ in range(3):
        for _ in range(5):
            ok, bgr = cap.read()
            assert ok
        out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return out


def test_node_publishes_a_body_frame_per_tracked_person(ros_env, pictures):
    probe = Probe(ros_env, "publish_tf:=true", "publish_tf_joints:=true")
    tfs: list[TFMessage] = []
    probe.lis.node.create_subscription(TFMessage, "/tf", tfs.append, QoSProfile(
        depth=100, reliability=ReliabilityPolicy.RELIABLE))
    try:
        assert probe.lis.spin_until(lambda: probe.lis.node.count_publishers("/tf") > 0, 10)
        h, w = pictures[0].shape[:2]
        f = 0.5 * w / np.tan(np.radians(30))
        for i, rgb in enumerate(pictures):
            info = CameraInfo(header=header(i), width=w, height=h,
                              k=[f, 0, (w - 1) / 2, 0, f, (h - 1) / 2, 0, 0, 1])
            probe.send(rgb_to_image(rgb, header=header(i)), info)
        probe.send(rgb_to_image(np.zeros((h, w, 3), np.uint8), header=header(3)))  # nobody
        assert probe.lis.spin_until(lambda: len(tfs) == len(pictures), 5), len(tfs)
        probe.lis.spin_until(lambda: False, 0.5)
        assert len(tfs) == len(pictures)  # the empty frame publishes no frames: people left
        for people, tf in zip(probe.lis.people, tfs):
            tracked = [p for p in people.people if p.track_id >= 0]
            assert tracked
            by_child = {t.child_frame_id: t for t in tf.transforms}
            assert len(by_child) == len(tracked) * (1 + sk.NUM_JOINTS)
            for p in tracked:
                body = by_child[f"body_{p.track_id}"]
                assert body.header == people.header  # the image's stamp and optical frame
                joints = np.array([[q.x, q.y, q.z] for q in p.joints])
                order = [list(people.joint_names).index(n) for n in sk.JOINT_NAMES]
                joints = joints[order]
                t = body.transform.translation
                mid_hip = joints[[sk.INDEX["l_hip"], sk.INDEX["r_hip"]]].mean(0)
                np.testing.assert_allclose([t.x, t.y, t.z], mid_hip, atol=1e-9)
                q = body.transform.rotation
                rot = Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix()
                spine = joints[sk.INDEX["thorax"]] - mid_hip
                assert rot[:, 2] @ spine / np.linalg.norm(spine) == pytest.approx(1.0, abs=1e-6)
                hips = joints[sk.INDEX["l_hip"]] - joints[sk.INDEX["r_hip"]]
                assert rot[:, 0] @ hips == pytest.approx(0.0, abs=1e-6)  # x: out of the chest
                assert rot[:, 1] @ hips > 0  # y: to the person's left
                quats = np.array([[q.x, q.y, q.z, q.w] for q in p.joint_orientations])[order]
                for j, name in enumerate(sk.JOINT_NAMES):  # joint frames: back to the joints
                    jt = by_child[f"body_{p.track_id}_{name}"]
                    assert jt.header.frame_id == f"body_{p.track_id}"
                    assert jt.header.stamp == people.header.stamp
                    local = jt.transform.translation
                    np.testing.assert_allclose(mid_hip + rot @ [local.x, local.y, local.z],
                                               joints[j], atol=1e-6)
                    # and with the joint's orientation of Person3D (not the identity)
                    r = jt.transform.rotation
                    np.testing.assert_allclose(
                        rot @ Rotation.from_quat([r.x, r.y, r.z, r.w]).as_matrix(),
                        Rotation.from_quat(quats[j]).as_matrix(), atol=1e-6)
    finally:
        probe.close()


def test_publish_tf_without_tf2_msgs_exits_2(ros_env, tmp_path):
    """Where no tf2_msgs can be imported, publish_tf is a start-up error naming the fix."""
    import subprocess
    import sys

    blocker = tmp_path / "tf2_msgs"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('blocked in this test')\n")
    env = {**ros_env, "PYTHONPATH": f"{tmp_path}:{ros_env.get('PYTHONPATH', '')}"}
    res = subprocess.run([sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", "-p",
                          "publish_tf:=true", "-p", "device:=cpu"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "publish_tf needs the tf2_msgs package" in res.stderr, \
        res.stderr
    assert "Traceback" not in res.stderr
