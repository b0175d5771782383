"""RViz markers from a Person3DArray: a pure function, message in, MarkerArray out."""

from __future__ import annotations

import colorsys

from geometry_msgs.msg import Point
from mp3d.common import skeleton as sk
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from mp3d_msgs.msg import Person3DArray

# One namespace for all markers, so a DELETEALL clears them both in RViz versions that scope
# DELETEALL to its namespace and in those that clear the whole display.
NAMESPACE = "mp3d"
# Marker ids: 2 per person slot; a tracked person's slot is its track id, so ids stay stable.
_IDS_PER_PERSON = 2


def track_colour(track_id: int, alpha: float = 1.0) -> ColorRGBA:
    """A stable, distinct colour for a track id (golden-ratio hue steps), channels in 0..1.
    Untracked people (-1) are grey."""
    if track_id < 0:
        return ColorRGBA(r=0.7, g=0.7, b=0.7, a=float(alpha))
    hue = (track_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return ColorRGBA(r=float(r), g=float(g), b=float(b), a=float(alpha))


def confidence_alpha(confidence: float) -> float:
    """Marker alpha of a joint: 0.2 at confidence 0 rising to 1 at confidence 1."""
    return 0.2 + 0.8 * min(max(float(confidence), 0.0), 1.0)


def people_markers(msg: Person3DArray, joint_radius: float = 0.05, bone_width: float = 0.025,
                   min_confidence: float = 0.0) -> MarkerArray:
    """Markers for every person: a SPHERE_LIST of joints and a LINE_LIST of bones each.

    The first marker is DELETEALL, so people who left vanish. Every marker carries `msg.header`.
    Ids: tracked person t uses 2t and 2t+1; untracked people take slots after the largest track
    id. Joints and bones whose confidence is below `min_confidence` are left out; the others
    carry per-point colours whose alpha follows their confidence (`confidence_alpha`), so RViz
    shows guessed (occluded, out-of-frame) joints faint.
    """
    out = MarkerArray()
    clear = Marker(header=msg.header, action=Marker.DELETEALL)
    clear.ns = NAMESPACE
    out.markers.append(clear)
    names = list(msg.joint_names)
    index = {n: i for i, n in enumerate(names)}
    bones = [(index[sk.JOINT_NAMES[p]], index[sk.JOINT_NAMES[c]]) for p, c in sk.BONES
             if sk.JOINT_NAMES[p] in index and sk.JOINT_NAMES[c] in index]
    next_free = 1 + max((p.track_id for p in msg.people), default=-1)
    for person in msg.people:
        if person.track_id >= 0:
            slot = person.track_id
        else:
            slot, next_free = next_free, next_free + 1
        colour = track_colour(person.track_id)
        conf = list(person.joint_confidences) or [1.0] * len(person.joints)
        ok = [c >= min_confidence for c in conf]

        joints = Marker(header=msg.header, ns=NAMESPACE, id=_IDS_PER_PERSON * slot,
                        type=Marker.SPHERE_LIST, action=Marker.ADD)
        joints.pose.orientation.w = 1.0
        joints.scale.x = joints.scale.y = joints.scale.z = float(joint_radius) * 2.0
        joints.color = colour
        joints.points = [Point(x=q.x, y=q.y, z=q.z) for q, k in zip(person.joints, ok) if k]
        alpha = [confidence_alpha(c) for c in conf]
        joints.colors = [track_colour(person.track_id, a) for a, k in zip(alpha, ok) if k]

        lines = Marker(header=msg.header, ns=NAMESPACE, id=_IDS_PER_PERSON * slot + 1,
                       type=Marker.LINE_LIST, action=Marker.ADD)
        lines.pose.orientation.w = 1.0
        lines.scale.x = float(bone_width)
        lines.color = colour
        for a, b in bones:
            if ok[a] and ok[b]:
                pa, pb = person.joints[a], person.joints[b]
                lines.points += [Point(x=pa.x, y=pa.y, z=pa.z), Point(x=pb.x, y=pb.y, z=pb.z)]
                lines.colors += [track_colour(person.track_id, alpha[a]),
                                 track_colour(person.track_id, alpha[b])]
        out.markers += [joints, lines]
    return out
