"""ROS4HRI (REP-155) output (``hri: true``) and per-joint orientations.

Without processes: the hri_msgs type hashes against the released ones, the human URDF and its
joint states against the joints (a small forward kinematics of the URDF text here), the
Skeleton2D and ROI mapping, body ids, and the bodies' life cycle (new, seen, gone, reset).

Over DDS: the live pose node with ``hri:=true publish_tf_joints:=true`` in a real process, the
bundled demo clip played into it with ``mp3d play``, and in this process a listener subscribed as
a ROS4HRI client is (libhri: ``/humans/bodies/tracked`` first, then each new body's topics, the
URDF transient-local). Every body is checked against the node's own ``/people`` and ``/tf`` of
the same stamps; then frames with nobody, stamped past the tracker's age limit, empty the list
and take the bodies' publishers down.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import cv2
import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PointStamped, TwistStamped
from hri_msgs.msg import IdsList, NormalizedRegionOfInterest2D, Skeleton2D
from mp3d.common import skeleton as sk
from mp3d.data import bags
from mp3d.infer import orientations as ori
from mp3d.infer.people import Person
from mp3d_ros.hri import OPENPOSE18, HriBodies, HriPublisher, new_body_id, normalised
from mp3d_ros.pose_config import PoseNodeConfig
from node_harness import Listener, start_node, stop
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, JointState
from std_msgs.msg import Header, String
from tf2_msgs.msg import TFMessage

from mp3d_ros import human_urdf

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"

# RIHS01 hashes of the released hri_msgs 2.3.x types, recomputed from their definitions with
# rosidl's algorithm (rosidl_generator_type_description; the same computation reproduces the
# published hashes of builtin_interfaces/Time and std_msgs/Header).
RELEASED_HASHES = {
    "hri_msgs/msg/IdsList":
        "RIHS01_7e0812d1ac945c98fd3e393568d581ad0ab567f37b24eff633eab778c1bfe62d",
    "hri_msgs/msg/NormalizedRegionOfInterest2D":
        "RIHS01_2e50c93f1ca166ee77af9a5424dc951ae4e452b740162a7f83c082d917dcaff5",
    "hri_msgs/msg/NormalizedPointOfInterest2D":
        "RIHS01_cc1d2f720c82afeb850ff1dbf66f41ecb7caf19f842987f1247e66160cf03953",
    "hri_msgs/msg/Skeleton2D":
        "RIHS01_1cb61f012db6ca43c48fa0097ccab9a00108ea39323c13f01bb983323c1e3420",
}


def test_hri_msgs_type_hashes_are_the_released_ones():
    """Both where rosidl wrote them (share/hri_msgs/msg/*.json) and as the middleware reports
    them for a publisher of each type (the hash DDS discovery compares)."""
    from ament_index_python.packages import get_package_share_directory
    from rclpy.context import Context
    from rclpy.node import Node

    share = Path(get_package_share_directory("hri_msgs")) / "msg"
    for name, want in RELEASED_HASHES.items():
        doc = json.loads((share / f"{name.rsplit('/', 1)[1]}.json").read_text())
        hashes = {h["type_name"]: h["hash_string"] for h in doc["type_hashes"]}
        assert hashes[name] == want, name
    import hri_msgs.msg

    ctx = Context()
    rclpy.init(context=ctx)
    try:
        node = Node("hash_probe", context=ctx)
        for i, name in enumerate(RELEASED_HASHES):
            msg_type = getattr(hri_msgs.msg, name.rsplit("/", 1)[1])
            node.create_publisher(msg_type, f"/hash_probe_{i}", 1)
            (info,) = node.get_publishers_info_by_topic(f"/hash_probe_{i}")
            assert str(info.topic_type_hash) == RELEASED_HASHES[name], name
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)


# --------------------------------------------------------------------------- the human URDF


def urdf_fk(urdf: str, js: JointState) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every link's (rotation, origin) in the URDF's root link, from the URDF text and a joint
    state: what robot_state_publisher computes (revolute and prismatic joints, origins without
    rpy, as the human model writes them)."""
    root = ET.fromstring(urdf)
    value = dict(zip(js.name, js.position))
    joints = list(root.iter("joint"))
    children = {j.find("child").get("link") for j in joints}
    (base,) = [link.get("name") for link in root.iter("link")
               if link.get("name") not in children]
    pose = {base: (np.eye(3), np.zeros(3))}
    while len(pose) < len(children) + 1:
        for j in joints:
            parent, child = j.find("parent").get("link"), j.find("child").get("link")
            if parent not in pose or child in pose:
                continue
            rot, t = pose[parent]
            assert j.find("origin").get("rpy") == "0 0 0"
            t = t + rot @ np.array(j.find("origin").get("xyz").split(), dtype=float)
            axis = np.array(j.find("axis").get("xyz").split(), dtype=float)
            q = value[j.get("name")]
            if j.get("type") == "prismatic":
                t = t + rot @ (axis * q)
            else:
                assert j.get("type") == "revolute"
                rot = rot @ ori.axis_rotation("xyz"[int(np.argmax(axis))], q)
            pose[child] = (rot, t)
    return pose


def check_urdf_pose(urdf: str, js: JointState, body_id: str, joints: np.ndarray,
                    rots: np.ndarray, atol: float = 1e-6) -> None:
    """The URDF posed by the joint state puts every skeleton joint's link where ``joints`` and
    ``rots`` (in the camera frame) say, once the body frame is applied."""
    pose = urdf_fk(urdf, js)
    origin, body = ori.body_axes(joints)
    for j, name in enumerate(sk.JOINT_NAMES):
        rot, t = pose[f"{name}_{body_id}"]
        np.testing.assert_allclose(origin + body @ t, joints[j], atol=atol, err_msg=name)
        np.testing.assert_allclose(body @ rot, rots[j], atol=atol, err_msg=name)


def test_urdf_and_joint_states_give_the_joints():
    rng = np.random.default_rng(7)
    first = sk.REST_POSE + [0.2, 0.0, 4.0]
    lengths = human_urdf.bone_lengths(first)
    urdf = human_urdf.human_urdf("qwert", lengths)
    root = ET.fromstring(urdf)
    links = [link.get("name") for link in root.iter("link")]
    joints = list(root.iter("joint"))
    assert len(set(links)) == len(links) and len({j.get("name") for j in joints}) == len(joints)
    assert all(n.endswith("_qwert") for n in links + [j.get("name") for j in joints])
    assert {f"{n}_qwert" for n in sk.JOINT_NAMES} | {"body_qwert"} <= set(links)
    assert len(joints) == len(human_urdf.JOINT_NAMES) == 63
    assert sum(j.get("type") == "revolute" for j in joints) == 46
    for _ in range(30):  # the person moves; their bones change length a little
        pose = first @ ori.quaternion_matrix(rng.normal(size=4)).T \
            + rng.normal(scale=0.03, size=(17, 3)) + [0, 0, 4.0]
        rots = ori.joint_orientations(pose)
        values = human_urdf.joint_values(pose, rots, lengths)
        js = human_urdf.joint_state(Header(), "qwert", values)
        assert js.name == [j.get("name") for j in joints]
        check_urdf_pose(urdf, js, "qwert", pose, rots)


# --------------------------------------------------------------------------- per-frame messages

HDR = Header(stamp=Time(sec=100), frame_id="cam")
SIZE = (640, 480)


def person(shift=(0.0, 0.0, 4.0), track_id=0, kp_shift=(0.0, 0.0)) -> Person:
    joints = sk.REST_POSE + shift
    kp = joints[:, :2] / joints[:, 2:] * 500 + [320, 240] + kp_shift
    return Person(joints, kp, np.linspace(0.5, 1.0, 17), 0.9, track_id)


def test_skeleton2d_and_roi():
    p = person(kp_shift=(300.0, 0.0))  # the left hand leaves the image (its right edge)
    bodies = HriBodies()
    frame = bodies.update([p], [ori.joint_orientations(p.joints_3d)], [0], False, HDR, SIZE,
                          100 * 10**9)
    (b,) = frame.bodies
    skel, roi = b.skeleton2d, b.roi
    assert skel.header == HDR and roi.header == HDR and len(skel.skeleton) == 18
    xy, inside = normalised(p.keypoints_2d, SIZE)
    assert not inside.all() and inside.any()
    for slot in (Skeleton2D.NOSE, Skeleton2D.LEFT_EYE, Skeleton2D.RIGHT_EYE, Skeleton2D.LEFT_EAR,
                 Skeleton2D.RIGHT_EAR):
        assert skel.skeleton[slot].c == 0.0
    for slot, j in enumerate(OPENPOSE18):
        if j is None:
            continue
        pt = skel.skeleton[slot]
        assert (pt.x, pt.y) == pytest.approx(tuple(xy[j]), abs=1e-6)
        assert pt.c == (pytest.approx(p.joint_scores[j]) if inside[j] else 0.0)
    assert skel.skeleton[Skeleton2D.NECK].x == pytest.approx(xy[sk.INDEX["thorax"], 0])
    assert skel.skeleton[Skeleton2D.LEFT_KNEE].y == pytest.approx(xy[sk.INDEX["l_knee"], 1])
    # the right side (image left) has x < the left side's
    assert skel.skeleton[Skeleton2D.RIGHT_SHOULDER].x < skel.skeleton[Skeleton2D.LEFT_SHOULDER].x
    u = (p.keypoints_2d + 0.5) / SIZE
    assert (roi.xmin, roi.ymin) == pytest.approx(tuple(np.clip(u.min(0), 0, 1)), abs=1e-6)
    assert (roi.xmax, roi.ymax) == (pytest.approx(1.0), pytest.approx(u[:, 1].max(), abs=1e-6))
    assert roi.c == pytest.approx(0.9)


def test_body_ids_are_never_reused():
    ids = [new_body_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch("[a-z]{5}", i) for i in ids)


def test_bodies_appear_move_leave_and_reset():
    bodies = HriBodies(smoothing=0.5)
    a, b = person(track_id=0), person((1.0, 0.0, 5.0), track_id=1)
    rot = [ori.joint_orientations(p.joints_3d) for p in (a, b)]
    f1 = bodies.update([a, b], rot, [0, 1], False, HDR, SIZE, 10 * 10**9)
    ida, idb = f1.body_ids[0], f1.body_ids[1]
    assert f1.tracked.ids == [ida, idb] and f1.tracked.header == HDR
    assert set(f1.new) == {ida, idb} and not f1.gone
    assert all(b.velocity is None for b in f1.bodies)  # one stamp: no velocity yet
    a2 = person((0.1, 0.0, 4.0), track_id=0)
    f2 = bodies.update([a2], rot[:1], [0, 1], False, HDR, SIZE,
                       10_500_000_000)  # b missed, still tracked
    assert f2.tracked.ids == [ida, idb] and not f2.new and not f2.gone
    (msgs,) = f2.bodies
    # position: the mid-hip (the body frame's origin) in the image's frame, the image's header
    assert msgs.body_id == ida and msgs.position.header == HDR
    assert (msgs.position.point.x, msgs.position.point.y, msgs.position.point.z) == \
        pytest.approx((0.1, 0.0, 4.0))
    # velocity: 0.1 m to the camera's right in 0.5 s, in the body frame's axes (facing the
    # camera, its y (left) is the camera's x): the image's stamp, the body's frame
    v = msgs.velocity
    assert v.header.stamp == HDR.stamp and v.header.frame_id == f"body_{ida}"
    assert (v.twist.linear.x, v.twist.linear.y, v.twist.linear.z) == \
        pytest.approx((0.0, 0.2, 0.0), abs=1e-12)
    assert (v.twist.angular.x, v.twist.angular.y, v.twist.angular.z) == (0.0, 0.0, 0.0)
    a3 = person((0.2, 0.0, 4.0), track_id=0)
    f3 = bodies.update([a3], rot[:1], [0], False, HDR, SIZE, 11 * 10**9)  # b's track dropped
    assert f3.tracked.ids == [ida] and f3.gone == [idb]
    assert f3.bodies[0].velocity.twist.linear.y == pytest.approx(0.2)
    f4 = bodies.update([a], rot[:1], [0], True, HDR, SIZE, 10**9)  # reset: track 0 is new
    assert f4.gone == [ida] and f4.tracked.ids == list(f4.new) and ida not in f4.new
    assert f4.bodies[0].velocity is None
    none = bodies.update([], [], [], False, HDR, SIZE, None)
    assert none.tracked.ids == [] and len(none.gone) == 1


def test_velocity_frame_carries_the_tf_prefix_and_turns_with_the_body():
    bodies = HriBodies(smoothing=1.0, prefix="front/")
    turn = ori.axis_rotation("y", np.pi / 2)  # about the camera's down axis: now faces its left
    a = person(track_id=3)
    a = Person((a.joints_3d - a.root) @ turn.T + a.root, a.keypoints_2d, a.joint_scores, 0.9, 3)
    a2 = Person(a.joints_3d + [0.0, 0.0, 0.5], a.keypoints_2d, a.joint_scores, 0.9, 3)
    bodies.update([a], [ori.joint_orientations(a.joints_3d)], [3], False, HDR, SIZE, 10**9)
    f = bodies.update([a2], [ori.joint_orientations(a2.joints_3d)], [3], False, HDR, SIZE,
                      2 * 10**9)
    v = f.bodies[0].velocity
    assert v.header.frame_id == f"front/body_{f.body_ids[3]}"
    _, axes = sk.body_frame(a2.joints_3d)
    lin = np.array([v.twist.linear.x, v.twist.linear.y, v.twist.linear.z])
    np.testing.assert_allclose(axes @ lin, [0.0, 0.0, 0.5], atol=1e-12)  # back in the camera's
    assert lin[1] == pytest.approx(-0.5)  # moving away from the camera: to the body's right


def test_hri_needs_tracking():
    with pytest.raises(ValueError, match="hri=True needs tracking=True"):
        PoseNodeConfig(hri=True, tracking=False)
    assert PoseNodeConfig().hri is False  # off by default: existing graphs are unchanged


# --------------------------------------------------------------------------- over DDS


class HriClient(Listener):
    """The pose node's /people and /tf, and the ROS4HRI topics as a libhri client subscribes
    them: /humans/bodies/tracked, then each new body's topics (the URDF transient-local)."""

    TOPICS = {"roi": NormalizedRegionOfInterest2D, "skeleton2d": Skeleton2D,
              "joint_states": JointState, "position": PointStamped, "velocity": TwistStamped}

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.tfs: list[TFMessage] = []
        self.tracked: list[IdsList] = []
        self.body: dict[str, dict[str, list]] = {}
        self.node.create_subscription(TFMessage, "/tf", self.tfs.append, qos)
        self.node.create_subscription(IdsList, "/humans/bodies/tracked", self.on_tracked, qos)

    def on_tracked(self, msg: IdsList) -> None:
        self.tracked.append(msg)
        qos = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        for bid in msg.ids:
            if bid in self.body:
                continue
            got = self.body[bid] = {name: [] for name in [*self.TOPICS, "urdf"]}
            for name, t in self.TOPICS.items():
                self.node.create_subscription(t, f"/humans/bodies/{bid}/{name}",
                                              got[name].append, qos)
            self.node.create_subscription(String, f"/humans/bodies/{bid}/urdf",
                                          got["urdf"].append, latched)


def _jpeg(h: int, w: int, stamp_ns: int) -> CompressedImage:
    ok, data = cv2.imencode(".jpg", np.full((h, w, 3), 128, np.uint8))
    assert ok
    return CompressedImage(header=Header(stamp=Time(sec=stamp_ns // 10**9,
                                                    nanosec=stamp_ns % 10**9),
                                         frame_id="camera_optical_frame"),
                           format="jpeg", data=data.tobytes())


def _key(header) -> tuple[int, int]:
    return int(header.stamp.sec), int(header.stamp.nanosec)


def _clip_info() -> tuple[int, int, int]:
    """(width, height, last image stamp in ns) of the demo clip."""
    size, last = None, 0
    for topic, _, _, msg in bags.read_messages(CLIP):
        if topic == "/camera_info" and size is None:
            size = (int(msg.width), int(msg.height))
        if topic == "/image/compressed":
            last = max(last, int(msg.header.stamp.sec) * 10**9 + int(msg.header.stamp.nanosec))
    assert size is not None
    return size[0], size[1], last


def test_ros4hri_client_sees_every_body_of_the_demo_clip(ros_env):
    width, height, last_ns = _clip_info()
    # the node as the other node tests run it (the clip's input size, /cam/... remapped)
    node = start_node(ros_env, "image_transport:=compressed", "image_reliability:=reliable",
                      "image_queue_depth:=20", "hri:=true", "publish_tf_joints:=true")
    lis = HriClient(ros_env)
    try:
        grey = lis.node.create_publisher(CompressedImage, "/cam/image/compressed", QoSProfile(
            depth=10, reliability=ReliabilityPolicy.RELIABLE))
        assert lis.spin_until(lambda: grey.get_subscription_count() > 0, 60, [node])
        # warm up (before the clip's stamps) until people and tracked lists come back: DDS has
        # matched the outputs to this listener
        for i in range(100):
            grey.publish(_jpeg(height, width, last_ns - 10**12 + i * 10**8))
            if lis.spin_until(lambda: lis.people and lis.tracked, 0.5, [node]):
                break
        assert lis.people and lis.tracked and not any(m.ids for m in lis.tracked)
        lis.people.clear()
        lis.tracked.clear()
        play = subprocess.Popen(
            [sys.executable, "-m", "mp3d_ros.player", str(CLIP), "--wait-for-subscribers", "20",
             "--rate", "0.5", "--ros-args", "-r", "/image/compressed:=/cam/image/compressed",
             "-r", "/camera_info:=/cam/camera_info"],
            env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lis.spin_until(lambda: play.poll() is not None, 90, [node])
        assert play.returncode == 0, play.communicate()
        n = -1
        while n != len(lis.people):  # until the node has answered the last frame
            n = len(lis.people)
            lis.spin_until(lambda: False, 2.0, [node])
        clip_people = list(lis.people)
        assert len(clip_people) >= 15, len(clip_people)  # of 60 (the node drops when loaded)
        bodies = list(lis.body)
        # nobody, stamped past the tracker's age limit: every body leaves
        for i in range(1, 5):
            grey.publish(_jpeg(height, width, last_ns + i * 5 * 10**8))
        assert lis.spin_until(lambda: lis.tracked and _key(lis.tracked[-1].header) == _key(
            _jpeg(1, 1, last_ns + 20 * 10**8).header), 20, [node])
        assert lis.tracked[-1].ids == []

        def unadvertised() -> bool:
            return all(lis.node.count_publishers(f"/humans/bodies/{bid}/{name}") == 0
                       for bid in bodies for name in [*HriClient.TOPICS, "urdf"])

        assert lis.spin_until(unadvertised, 10, [node])
        rc, err = stop(node, signal.SIGINT)
        assert rc == 0 and "Traceback" not in err, err
    finally:
        if node.poll() is None:
            node.kill()
        lis.close()
    check_clip(lis, clip_people, bodies, (width, height))


def check_clip(lis: HriClient, people_msgs: list, bodies: list[str], size) -> None:
    people_at = {_key(m.header): m for m in people_msgs}
    tracked_at = {_key(m.header): m for m in lis.tracked}
    tf_at: dict[tuple[int, int], dict[str, object]] = {}
    for m in lis.tfs:
        for t in m.transforms:
            tf_at.setdefault(_key(t.header), {})[t.child_frame_id] = t
    # every frame's tracked list, with the frame's header; body <-> track from the body frames
    body_of: dict[int, str] = {}
    for key, pm in people_at.items():
        assert key in tracked_at and tracked_at[key].header == pm.header
        frames = tf_at.get(key, {})
        for p in pm.people:
            if p.track_id < 0:
                continue
            joints = np.array([[q.x, q.y, q.z] for q in p.joints])
            mid = joints[[sk.INDEX["l_hip"], sk.INDEX["r_hip"]]].mean(0)
            (bid,) = [c[5:] for c, t in frames.items() if c.startswith("body_") and np.allclose(
                [t.transform.translation.x, t.transform.translation.y,
                 t.transform.translation.z], mid, atol=1e-9)]
            assert body_of.setdefault(p.track_id, bid) == bid  # the same id all along
            assert bid in tracked_at[key].ids
            check_person_frames(p, frames, bid, pm.header)
    ids = list(body_of.values())
    assert len(set(ids)) == len(ids) and all(re.fullmatch("[a-z]{5}", i) for i in ids)
    assert set(ids) == {i for m in people_at for i in tracked_at[m].ids}
    assert set(ids) == set(bodies)  # the client subscribed to every body
    track_of = {b: t for t, b in body_of.items()}
    seen = {b: [(k, p) for k, pm in sorted(people_at.items()) for p in pm.people
                if p.track_id == track_of[b]] for b in ids}
    check_tracked_lists(sorted(people_at), tracked_at, {b: [k for k, _ in v]
                                                        for b, v in seen.items()})
    for bid in ids:
        got = lis.body[bid]
        assert len(got["urdf"]) == 1, (bid, len(got["urdf"]))  # transient-local: even late
        urdf = got["urdf"][0].data
        assert f'<link name="body_{bid}"/>' in urdf
        by_key = dict(seen[bid])
        if len(seen[bid]) >= 10:  # time to discover and subscribe before it was last seen
            assert all(got[name] for name in HriClient.TOPICS), (bid, len(seen[bid]), {
                k: len(v) for k, v in got.items()})
        for name in HriClient.TOPICS:
            for m in got[name]:
                image = people_at[_key(m.header)].header  # the image's stamp; its frame, but
                frame = f"body_{bid}" if name == "velocity" else image.frame_id  # velocity's
                assert m.header.stamp == image.stamp and m.header.frame_id == frame, name
                assert _key(m.header) in by_key, name  # only in the frames it is seen in
        for m in got["position"]:  # the mid-hip: body_<id>'s origin
            origin, _ = sk.body_frame(_joints(by_key[_key(m.header)]))
            np.testing.assert_allclose([m.point.x, m.point.y, m.point.z], origin, atol=1e-12)
        for m in got["roi"]:
            kp = np.array([[q.x, q.y] for q in by_key[_key(m.header)].keypoints_2d])
            xy, _ = normalised(kp, size)
            assert (m.xmin, m.ymin, m.xmax, m.ymax) == pytest.approx(
                (*xy.min(0), *xy.max(0)), abs=1e-6)
        for m in got["skeleton2d"]:
            kp = np.array([[q.x, q.y] for q in by_key[_key(m.header)].keypoints_2d])
            xy, _ = normalised(kp, size)
            neck = m.skeleton[Skeleton2D.NECK]
            assert (neck.x, neck.y) == pytest.approx(tuple(xy[sk.INDEX["thorax"]]), abs=1e-6)
            assert m.skeleton[Skeleton2D.NOSE].c == 0.0
        for m in got["joint_states"]:  # the URDF posed by them: the joints and orientations
            p = by_key[_key(m.header)]
            joints = np.array([[q.x, q.y, q.z] for q in p.joints])
            rots = ori.quaternion_matrix(np.array([[q.x, q.y, q.z, q.w]
                                                   for q in p.joint_orientations]))
            check_urdf_pose(urdf, m, bid, joints, rots)
        # velocity: the mid-hip's difference over the stamps of the frames the body is seen in,
        # smoothed (tracker.velocity_smoothing 0.5), from its second frame, in body_<id>'s axes
        expect, prev, v = {}, None, None
        for key, p in seen[bid]:
            t, (origin, axes) = key[0] * 10**9 + key[1], sk.body_frame(_joints(p))
            if prev is not None:
                step = (origin - prev[1]) / ((t - prev[0]) * 1e-9)
                v = step if v is None else 0.5 * step + 0.5 * v
                expect[key] = axes.T @ v
            prev = (t, origin)
        for m in got["velocity"]:
            lin, ang = m.twist.linear, m.twist.angular
            np.testing.assert_allclose([lin.x, lin.y, lin.z], expect[_key(m.header)], atol=1e-6)
            assert (ang.x, ang.y, ang.z) == (0.0, 0.0, 0.0)


def _joints(p) -> np.ndarray:
    """A Person3D's joints, (17, 3) (the messages' joint order is mp3d's)."""
    return np.array([[q.x, q.y, q.z] for q in p.joints])


def check_tracked_lists(keys: list, tracked_at: dict, seen_at: dict[str, list]) -> None:
    """Each processed frame's tracked list holds exactly the bodies whose track the tracker
    still holds (config/pose_node.yaml: unseen for at most tracker.max_age_frames processed
    frames and tracker.max_age_s seconds): a person who leaves is dropped in the first frame
    past that, and never comes back. ``keys``: every processed frame's stamp, in order;
    ``seen_at``: body id -> the stamps of the frames in which it was seen."""
    max_frames, max_s = 15, 1.0  # config/pose_node.yaml's tracker.max_age_frames, max_age_s
    ns = {k: k[0] * 10**9 + k[1] for k in keys}
    index = {k: i for i, k in enumerate(keys)}
    for i, key in enumerate(keys):
        want, unsure = set(), set()
        for bid, at in seen_at.items():
            before = [index[k] for k in at if k <= key]
            if not before:
                continue
            missed = i - before[-1] - 1  # processed frames missed since last seen
            late = (ns[key] - ns[keys[before[-1]]]) * 1e-9 - max_s
            if abs(late) < 1e-3:
                unsure.add(bid)  # at the age limit: float rounding decides
            elif missed <= max_frames and late < 0:
                want.add(bid)
        ids = set(tracked_at[key].ids)
        assert ids - unsure == want - unsure, (key, sorted(ids), sorted(want))
    for bid in seen_at:  # in one unbroken run of frames
        present = [i for i, k in enumerate(keys) if bid in tracked_at[k].ids]
        assert present == list(range(present[0], present[-1] + 1)), bid


def check_person_frames(p, frames: dict, bid: str, header) -> None:
    """Person3D's orientations rebuild its joints by forward kinematics (with its bone lengths)
    and are the joint frames on /tf (``<joint>_<body id>`` in ``body_<body id>``)."""
    joints = np.array([[q.x, q.y, q.z] for q in p.joints])
    quats = np.array([[q.x, q.y, q.z, q.w] for q in p.joint_orientations])
    assert quats.shape == (17, 4)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=1), 1.0, atol=1e-9)
    rots = ori.quaternion_matrix(quats)
    rebuilt = ori.primary_forward_kinematics(joints[sk.ROOT], rots, sk.bone_lengths(joints),
                                             joints)
    assert np.abs(rebuilt - joints).max() < 1e-3
    body = frames[f"body_{bid}"]
    assert body.header == header
    q = body.transform.rotation
    body_rot = ori.quaternion_matrix([q.x, q.y, q.z, q.w])
    origin = body.transform.translation
    origin = np.array([origin.x, origin.y, origin.z])
    for j, name in enumerate(sk.JOINT_NAMES):
        t = frames[f"{name}_{bid}"]
        assert t.header.frame_id == f"body_{bid}" and t.header.stamp == header.stamp
        r = t.transform.rotation
        np.testing.assert_allclose(body_rot @ ori.quaternion_matrix([r.x, r.y, r.z, r.w]),
                                   rots[j], atol=1e-9)
        tr = t.transform.translation
        np.testing.assert_allclose(origin + body_rot @ [tr.x, tr.y, tr.z], joints[j], atol=1e-9)


def test_hri_publisher_destroys_a_gone_body_s_publishers(ros_env):
    """The node side alone: publishers appear with a body and go with it (no DDS peer)."""
    from rclpy.context import Context
    from rclpy.node import Node

    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = Node("hri_probe", context=ctx)
        pub, bodies = HriPublisher(node, 10), HriBodies()
        p = person()
        f1 = bodies.update([p], [ori.joint_orientations(p.joints_3d)], [0], False, HDR, SIZE, 10**9)
        pub.publish(f1)
        (bid,) = f1.tracked.ids
        names = {n for n, _ in node.get_topic_names_and_types()}
        assert {f"/humans/bodies/{bid}/{t}" for t in HriPublisher.TYPES} <= names
        pub.publish(bodies.update([], [], [], False, HDR, SIZE, 2 * 10**9))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and node.count_publishers(f"/humans/bodies/{bid}/roi"):
            time.sleep(0.05)
        assert node.count_publishers(f"/humans/bodies/{bid}/roi") == 0
        assert not pub.bodies
        pub.close()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=ctx)
