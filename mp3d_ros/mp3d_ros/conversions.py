"""Core results (mp3d.infer.people.Person) to mp3d_msgs/Person3DArray and back."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Point, Quaternion
from mp3d.common import skeleton as sk
from mp3d.infer.orientations import joint_orientations, quaternions
from mp3d.infer.people import Person
from std_msgs.msg import Header

from mp3d_msgs.msg import Person3D, Person3DArray


def _points(xyz: np.ndarray) -> list[Point]:
    return [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in xyz]


def _quaternions(rots: np.ndarray) -> list[Quaternion]:
    return [Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))
            for x, y, z, w in quaternions(rots)]


def people_to_msg(people: list[Person], header: Header,
                  orientations: list[np.ndarray] | None = None) -> Person3DArray:
    """Build the array message; `header` is the source image's header, copied unchanged.

    People are written in descending score order. ``orientations``: each person's joint
    orientations (17, 3, 3) in the order of ``people``
    (:func:`mp3d.infer.orientations.joint_orientations`, computed here when not given).
    """
    msg = Person3DArray(header=header, skeleton=sk.NAME, joint_names=list(sk.JOINT_NAMES))
    if orientations is None:
        orientations = [joint_orientations(p.joints_3d) for p in people]
    assert len(orientations) == len(people), (len(orientations), len(people))
    order = sorted(range(len(people)), key=lambda i: -people[i].score)
    for p, rots in ((people[i], orientations[i]) for i in order):
        kp = np.concatenate([p.keypoints_2d, np.zeros((sk.NUM_JOINTS, 1))], axis=1)
        root = p.root
        msg.people.append(Person3D(
            track_id=int(p.track_id),
            score=float(p.score),
            joints=_points(p.joints_3d),
            joint_confidences=[float(c) for c in p.joint_scores],
            keypoints_2d=_points(kp),
            root=Point(x=float(root[0]), y=float(root[1]), z=float(root[2])),
            root_source=Person3D.ROOT_DEPTH if p.root_from_depth else Person3D.ROOT_MONOCULAR,
            joint_orientations=_quaternions(rots),
        ))
    return msg


def msg_to_people(msg: Person3DArray) -> list[Person]:
    """Read people back from the array message. Joints are reordered to mp3d's skeleton by name;
    raises ValueError if the message's joint names do not cover it or arrays disagree in length."""
    names = list(msg.joint_names)
    missing = [n for n in sk.JOINT_NAMES if n not in names]
    if missing:
        raise ValueError(f"message skeleton {msg.skeleton!r} lacks joints {missing}")
    order = [names.index(n) for n in sk.JOINT_NAMES]
    people = []
    for i, m in enumerate(msg.people):
        n = len(names)
        if not (len(m.joints) == len(m.keypoints_2d) == len(m.joint_confidences) == n):
            raise ValueError(f"person {i}: per-joint arrays do not match {n} joint names")
        j3 = np.array([[q.x, q.y, q.z] for q in m.joints])[order]
        k2 = np.array([[q.x, q.y] for q in m.keypoints_2d])[order]
        conf = np.asarray(m.joint_confidences, dtype=np.float64)[order]
        people.append(Person(j3, k2, conf, float(m.score), int(m.track_id),
                             int(getattr(m, "root_source", 0)) == Person3D.ROOT_DEPTH))
    return people
