"""ROS4HRI (REP-155) output of the pose node (``hri: true``): body ids, ``/humans/bodies/tracked``
and the per-body topics, as hri_body_detect publishes them and libhri/pyhri read them.

:class:`HriBodies` is the per-frame part (called by :mod:`mp3d_ros.frame_pipeline`, so the live
node and ``mp3d replay`` compute the same; the replay writes only the body frames to its bag):
which tracks are bodies, their ids, URDFs and velocities, and each frame's messages (an
:class:`HriFrame`). :class:`HriPublisher` is the node's part: the publishers, created when a
body appears and destroyed when it goes.

- **Bodies and ids**: a body is a track of :mod:`mp3d.infer.tracking` that has its track id (the
  tracker's confirmed tracks, including one missed for a few frames, which keeps its id). Its
  body id is 5 random lowercase letters (as hri_body_detect), never given out twice in a process
  (:func:`new_body_id`), so an id is never reused, even by another node in the same process or
  after a tracker reset (a stamp going backwards: every body goes, new ones come).
- **tracked** (``hri_msgs/IdsList`` on ``/humans/bodies/tracked``, every processed frame, the
  image's header): the bodies of the tracker's live tracks. A body leaves it in the frame in
  which the tracker drops its track (``tracker.max_age_frames`` / ``tracker.max_age_s`` unseen),
  and its per-body publishers are destroyed in that same frame, right after that list is
  published (no further grace period: the body published nothing since it was last seen).
- **Per body**, under ``/humans/bodies/<id>/``, in every frame in which the body is seen: ``roi``
  (``hri_msgs/NormalizedRegionOfInterest2D``: the extent of the 17 2D keypoints, normalised by
  the image size, pixel centres at (u + 0.5) / width, clamped to [0, 1]; c = the person's
  score), ``skeleton2d`` (``hri_msgs/Skeleton2D``, :data:`OPENPOSE18`: the 18 OpenPose-COCO
  slots from mp3d's joints, the neck from the thorax; nose, eyes and ears have no mp3d joint:
  c = 0 at (0, 0); a keypoint outside the image is clamped to its border with c = 0),
  ``joint_states`` (``sensor_msgs/JointState`` of the person's URDF,
  :mod:`mp3d_ros.human_urdf`), ``position`` (``geometry_msgs/PointStamped``: the mid-point of
  the hips, the origin of ``body_<id>``, in the image's frame, as hri_body_detect's "point
  between the hips") and ``velocity`` (``geometry_msgs/TwistStamped``: that point's velocity
  relative to the camera, m/s, expressed in the axes of ``body_<id>`` (x forward, y left, z
  up; header frame ``body_<id>`` as hri_body_detect's), from the mid-hip over the image stamps,
  smoothed with ``tracker.velocity_smoothing`` as the newest difference's weight (0:
  unsmoothed); from the body's second frame on, and not in a frame whose hips and thorax give
  no body frame; no angular velocity: zero). All carry the image's header (stamp and frame),
  except ``velocity``, whose frame is the body's (stamp: the image's). ``urdf``
  (``std_msgs/String``) is the person's URDF, published once when the body appears,
  transient-local (as the robot_description that hri_body_detect remaps there, and as libhri
  subscribes it).
- **QoS**: reliable, volatile (libhri's and hri_body_detect's), keeping the node's output
  history; ``urdf`` reliable, transient-local, depth 1.
- TF: the ``body_<id>`` frames (and with ``publish_tf_joints`` the ``<joint>_<id>`` frames) come
  from :mod:`mp3d_ros.tf_frames` with these ids (with ``tf_prefix`` before them, as every frame).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from geometry_msgs.msg import Point, PointStamped, Twist, TwistStamped, Vector3
from hri_msgs.msg import (
    IdsList,
    NormalizedPointOfInterest2D,
    NormalizedRegionOfInterest2D,
    Skeleton2D,
)
from mp3d.common import skeleton as sk
from mp3d.infer.people import Person
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Header, String

from mp3d_ros import human_urdf
from mp3d_ros.tf_frames import body_frame_name

ID_LETTERS, ID_LENGTH = "abcdefghijklmnopqrstuvwxyz", 5

# Skeleton2D slot -> mp3d joint (None: no mp3d joint; c = 0). Neck: the thorax.
OPENPOSE18: tuple[int | None, ...] = tuple(
    None if name is None else sk.INDEX[name] for name in (
        None,  # NOSE
        "thorax",  # NECK
        "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
        "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
        None, None, None, None,  # LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR
    ))
assert len(OPENPOSE18) == 18 and OPENPOSE18[Skeleton2D.NECK] == sk.INDEX["thorax"] \
    and OPENPOSE18[Skeleton2D.LEFT_ANKLE] == sk.INDEX["l_ankle"] \
    and OPENPOSE18[Skeleton2D.RIGHT_HIP] == sk.INDEX["r_hip"]

_ISSUED: set[str] = set()
_ISSUED_LOCK = threading.Lock()
_RANDOM = random.SystemRandom()


def new_body_id() -> str:
    """A body id: 5 random lowercase letters, never returned before in this process."""
    with _ISSUED_LOCK:
        while True:
            bid = "".join(_RANDOM.choice(ID_LETTERS) for _ in range(ID_LENGTH))
            if bid not in _ISSUED:
                _ISSUED.add(bid)
                return bid


def normalised(kp: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel keypoints (N, 2) (integer coordinates at pixel centres) -> (coordinates in [0, 1]
    of the image's extent, clamped (N, 2); whether each was inside the image (N,))."""
    w, h = size
    xy = (np.asarray(kp, dtype=np.float64) + 0.5) / [w, h]
    inside = np.isfinite(xy).all(1) & (xy >= 0).all(1) & (xy <= 1).all(1)
    return np.clip(np.nan_to_num(xy), 0.0, 1.0), inside


def roi_msg(p: Person, header: Header, size: tuple[int, int]) -> NormalizedRegionOfInterest2D:
    """The person's region: the extent of their 2D keypoints (see the module docstring)."""
    kp = p.keypoints_2d[np.isfinite(p.keypoints_2d).all(1)]
    xy, _ = normalised(kp, size) if len(kp) else (np.zeros((1, 2)), None)
    lo, hi = xy.min(0), xy.max(0)
    return NormalizedRegionOfInterest2D(header=header, xmin=float(lo[0]), ymin=float(lo[1]),
                                        xmax=float(hi[0]), ymax=float(hi[1]),
                                        c=float(np.clip(p.score, 0.0, 1.0)))


def skeleton2d_msg(p: Person, header: Header, size: tuple[int, int]) -> Skeleton2D:
    """The person's Skeleton2D (:data:`OPENPOSE18`; see the module docstring)."""
    xy, inside = normalised(p.keypoints_2d, size)
    points = []
    for j in OPENPOSE18:
        if j is None:
            points.append(NormalizedPointOfInterest2D(x=0.0, y=0.0, c=0.0))
        else:
            c = float(np.clip(p.joint_scores[j], 0.0, 1.0)) if inside[j] else 0.0
            points.append(NormalizedPointOfInterest2D(x=float(xy[j, 0]), y=float(xy[j, 1]), c=c))
    return Skeleton2D(header=header, skeleton=points)


@dataclass
class _Body:
    body_id: str
    urdf_lengths: np.ndarray  # (17,) the bone lengths of its URDF (human_urdf.bone_lengths)
    last_origin: np.ndarray | None = None  # mid-hip, image frame
    last_t: int | None = None  # ns
    velocity: np.ndarray | None = None  # of the mid-hip, image frame


@dataclass
class BodyMessages:
    """One seen body's messages of one frame."""

    body_id: str
    track_id: int
    roi: NormalizedRegionOfInterest2D
    skeleton2d: Skeleton2D
    joint_states: JointState
    position: PointStamped
    velocity: TwistStamped | None


@dataclass
class HriFrame:
    """One frame's ROS4HRI output: the tracked list, the seen bodies' messages, the bodies that
    appeared (id -> URDF) and those that went, and track id -> body id of every tracked body."""

    tracked: IdsList
    bodies: list[BodyMessages] = field(default_factory=list)
    new: dict[str, str] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)
    body_ids: dict[int, str] = field(default_factory=dict)


class HriBodies:
    """The bodies of one pipeline (see the module docstring); ``smoothing``: the newest mid-hip
    difference's weight in the velocity (``tracker.velocity_smoothing``; 0: unsmoothed);
    ``prefix``: the TF prefix of the body frames (``tf_prefix``), for the velocity's frame."""

    def __init__(self, smoothing: float = 0.5, prefix: str = "") -> None:
        self.smoothing = smoothing if smoothing > 0 else 1.0
        self.prefix = prefix
        self.bodies: dict[int, _Body] = {}  # track id -> body

    def update(self, people: list[Person], orientations: list[np.ndarray],
               live_tracks: Iterable[int], reset: bool, header: Header,
               size: tuple[int, int], stamp_ns: int | None) -> HriFrame:
        """One frame: ``people`` (tracked, as the pipeline publishes them) with their joint
        orientations, the track ids the tracker holds after this frame, whether it was reset
        in it, the image's header and size (width, height) and its stamp in nanoseconds (None:
        no usable stamp, no velocity)."""
        frame = HriFrame(tracked=IdsList(header=header))
        live = {int(t) for t in live_tracks if t >= 0}
        for tid in list(self.bodies):
            if reset or tid not in live:
                frame.gone.append(self.bodies.pop(tid).body_id)
        seen = {p.track_id: (p, rots) for p, rots in zip(people, orientations)
                if p.track_id >= 0}
        for tid in sorted(live - set(self.bodies)):
            if tid in seen:  # a track becomes a body where it is confirmed: seen
                lengths = human_urdf.bone_lengths(seen[tid][0].joints_3d)
                body = self.bodies[tid] = _Body(new_body_id(), lengths)
                frame.new[body.body_id] = human_urdf.human_urdf(body.body_id, lengths)
        for tid, (p, rots) in seen.items():
            body = self.bodies.get(tid)
            if body is not None:
                frame.bodies.append(self._messages(body, tid, p, rots, header, size, stamp_ns))
        frame.body_ids = {tid: b.body_id for tid, b in sorted(self.bodies.items())}
        frame.tracked.ids = list(frame.body_ids.values())
        return frame

    def _messages(self, body: _Body, tid: int, p: Person, rots: np.ndarray, header: Header,
                  size: tuple[int, int], stamp_ns: int | None) -> BodyMessages:
        with np.errstate(invalid="ignore", divide="ignore"):
            origin, axes = sk.body_frame(p.joints_3d)  # as the body_<id> frame on /tf
        has_frame = bool(np.isfinite(axes).all())
        if stamp_ns is not None and np.isfinite(origin).all():
            if body.last_t is not None and stamp_ns > body.last_t:
                step = (origin - body.last_origin) / ((stamp_ns - body.last_t) * 1e-9)
                a = self.smoothing
                body.velocity = step if body.velocity is None \
                    else a * step + (1 - a) * body.velocity
            if body.last_t is None or stamp_ns > body.last_t:
                body.last_origin, body.last_t = origin.copy(), stamp_ns
        velocity = None
        if body.velocity is not None and has_frame:
            v = axes.T @ body.velocity  # in the body frame's axes
            frame = Header(stamp=header.stamp,
                           frame_id=body_frame_name(0, self.prefix, body.body_id))
            velocity = TwistStamped(header=frame, twist=Twist(
                linear=Vector3(x=float(v[0]), y=float(v[1]), z=float(v[2]))))
        values = human_urdf.joint_values(p.joints_3d, rots, body.urdf_lengths)
        return BodyMessages(
            body.body_id, tid, roi_msg(p, header, size), skeleton2d_msg(p, header, size),
            human_urdf.joint_state(header, body.body_id, values),
            PointStamped(header=header, point=Point(x=float(origin[0]), y=float(origin[1]),
                                                    z=float(origin[2]))),
            velocity)


class HriPublisher:
    """The node's ROS4HRI publishers: ``tracked``, and each body's while it is tracked."""

    TYPES = {"roi": NormalizedRegionOfInterest2D, "skeleton2d": Skeleton2D,
             "joint_states": JointState, "position": PointStamped, "velocity": TwistStamped,
             "urdf": String}

    def __init__(self, node: Node, history: int) -> None:
        self.node = node
        self.qos = QoSProfile(depth=history, reliability=ReliabilityPolicy.RELIABLE,
                              durability=DurabilityPolicy.VOLATILE)
        self.urdf_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                                   durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.tracked = node.create_publisher(IdsList, "/humans/bodies/tracked", self.qos)
        self.bodies: dict[str, dict[str, object]] = {}

    def publish(self, frame: HriFrame) -> None:
        """New bodies' publishers and URDFs, the seen bodies' messages, the tracked list, then
        the gone bodies' publishers destroyed."""
        for bid, urdf in frame.new.items():
            pubs = self.bodies[bid] = {
                name: self.node.create_publisher(
                    t, f"/humans/bodies/{bid}/{name}",  # absolute: REP-155's namespace
                    self.urdf_qos if name == "urdf" else self.qos)
                for name, t in self.TYPES.items()}
            pubs["urdf"].publish(String(data=urdf))
        for b in frame.bodies:
            pubs = self.bodies[b.body_id]
            pubs["roi"].publish(b.roi)
            pubs["skeleton2d"].publish(b.skeleton2d)
            pubs["joint_states"].publish(b.joint_states)
            pubs["position"].publish(b.position)
            if b.velocity is not None:
                pubs["velocity"].publish(b.velocity)
        self.tracked.publish(frame.tracked)
        for bid in frame.gone:
            self._destroy(bid)

    def _destroy(self, bid: str) -> None:
        for pub in self.bodies.pop(bid, {}).values():
            self.node.destroy_publisher(pub)

    def close(self) -> None:
        """Destroy every publisher (a managed node's deactivate)."""
        for bid in list(self.bodies):
            self._destroy(bid)
        self.node.destroy_publisher(self.tracked)
