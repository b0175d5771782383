"""People to TF frames: one ``body_<track id>`` frame per tracked person (REP-155: origin
mid-hip, x forward out of the chest, y left, z up along the spine), and optionally one
``body_<id>_<joint>`` frame per joint (position only, parented to the body frame). Every frame is
parented to the people's header frame (the image's optical frame) and stamped with the image
stamp. Untracked people (track id -1) and people whose hips and thorax do not give a frame get
none; people who leave are simply not published any more."""

from __future__ import annotations

import numpy as np
from geometry_msgs.msg import Quaternion, Transform, TransformStamped, Vector3
from mp3d.common import skeleton as sk
from mp3d.infer.people import Person
from scipy.spatial.transform import Rotation
from std_msgs.msg import Header


def _transform(parent: Header, child: str, t: np.ndarray, rot: np.ndarray) -> TransformStamped:
    x, y, z, w = Rotation.from_matrix(rot).as_quat()
    return TransformStamped(header=parent, child_frame_id=child, transform=Transform(
        translation=Vector3(x=float(t[0]), y=float(t[1]), z=float(t[2])),
        rotation=Quaternion(x=float(x), y=float(y), z=float(z), w=float(w))))


def body_frame_name(track_id: int, prefix: str = "") -> str:
    return f"{prefix}body_{track_id}"


def people_transforms(people: list[Person], header: Header, joints: bool = False,
                      prefix: str = "") -> list[TransformStamped]:
    """The TF frames of the tracked people (see the module docstring); ``prefix`` goes before
    every frame name (e.g. 'front/' with several cameras, whose track ids are their own)."""
    out = []
    for p in people:
        if p.track_id < 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            origin, rot = sk.body_frame(p.joints_3d)
        if not (np.isfinite(origin).all() and np.isfinite(rot).all()):
            continue
        body = body_frame_name(p.track_id, prefix)
        out.append(_transform(header, body, origin, rot))
        if joints:
            local = (p.joints_3d - origin) @ rot  # joints in the body frame
            child_header = Header(stamp=header.stamp, frame_id=body)
            out += [_transform(child_header, f"{body}_{name}", local[j], np.eye(3))
                    for j, name in enumerate(sk.JOINT_NAMES)]
    return out
