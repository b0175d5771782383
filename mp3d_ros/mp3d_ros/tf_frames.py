"""People to TF frames: one body frame per tracked person (REP-155: origin mid-hip, x forward out
of the chest, y left, z up along the spine), and optionally one frame per joint, parented to the
body frame: at the joint, with the joint's orientation (:mod:`mp3d.infer.orientations`, the same
as ``Person3D.joint_orientations``). Every body frame is parented to the people's header frame
(the image's optical frame) and stamped with the image stamp. Untracked people (track id -1) and
people whose hips and thorax do not give a frame get none; people who leave are simply not
published any more.

Names: ``body_<track id>`` and ``body_<track id>_<joint>``; with ROS4HRI ids (``body_ids``, the
pose node's ``hri: true``), REP-155's ``body_<body id>`` and ``<joint>_<body id>`` (every frame
of a body suffixed with its id), e.g. ``body_kqzmf`` and ``l_knee_kqzmf``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from mp3d.common import skeleton as sk
from mp3d.infer.orientations import joint_orientations, quaternions
from mp3d.infer.people import Person
from std_msgs.msg import Header


def _transform(parent: Header, child: str, t: np.ndarray, rot: np.ndarray) -> TransformStamped:
    x, y, z, w = quaternions(rot)
    return TransformStamped(header=parent, child_frame_id=child, transform=Transform(
        translation=Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])),
        rotation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))))


def body_frame_name(track_id: int, prefix: str = "", body_id: str | None = None) -> str:
    """``<prefix>body_<track id>``, or ``<prefix>body_<body id>`` with a ROS4HRI id."""
    return f"{prefix}body_{track_id if body_id is None else body_id}"


def joint_frame_name(track_id: int, joint: str, prefix: str = "",
                     body_id: str | None = None) -> str:
    """``<prefix>body_<track id>_<joint>``, or REP-155's ``<prefix><joint>_<body id>``."""
    if body_id is None:
        return f"{body_frame_name(track_id, prefix)}_{joint}"
    return f"{prefix}{joint}_{body_id}"


def people_transforms(people: list[Person], header: Header, joints: bool = False,
                      prefix: str = "", body_ids: Mapping[int, str] | None = None,
                      orientations: list[np.ndarray] | None = None) -> list[TransformStamped]:
    """The TF frames of the tracked people (see the module docstring); ``prefix`` goes before
    every frame name (e.g. 'front/' with several cameras, whose track ids are their own);
    ``body_ids``: track id -> ROS4HRI body id (names as REP-155; a tracked person missing from it
    gets no frame); ``orientations``: each person's joint orientations (17, 3, 3) in the order of
    ``people``, computed here when not given and needed."""
    out = []
    for i, p in enumerate(people):
        if p.track_id < 0 or (body_ids is not None and p.track_id not in body_ids):
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            origin, rot = sk.body_frame(p.joints_3d)
        if not (np.isfinite(origin).all() and np.isfinite(rot).all()):
            continue
        bid = None if body_ids is None else body_ids[p.track_id]
        body = body_frame_name(p.track_id, prefix, bid)
        out.append(_transform(header, body, origin, rot))
        if joints:
            rots = orientations[i] if orientations is not None \
                else joint_orientations(p.joints_3d)
            local = (p.joints_3d - origin) @ rot  # joints in the body frame
            child_header = Header(stamp=header.stamp, frame_id=body)
            out += [_transform(child_header, joint_frame_name(p.track_id, name, prefix, bid),
                               local[j], rot.T @ rots[j])
                    for j, name in enumerate(sk.JOINT_NAMES)]
    return out
