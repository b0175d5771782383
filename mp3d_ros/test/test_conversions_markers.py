"""People <-> Person3DArray, and the RViz markers built from it."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from mp3d.common import skeleton as sk
from mp3d.infer.people import Person
from mp3d_ros.conversions import msg_to_people, people_to_msg
from mp3d_ros.markers import people_markers, track_colour
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

HEADER = Header(stamp=Time(sec=17, nanosec=5), frame_id="cam_optical")


def make_people(n: int, tracked: bool = True) -> list[Person]:
    rng = np.random.default_rng(n)
    return [Person(sk.REST_POSE + [i, 0.5, 3.0 + i], rng.uniform(0, 640, (17, 2)),
                   rng.uniform(0, 1, 17), 0.5 + 0.1 * i, track_id=(3 * i + 1) if tracked else -1)
            for i in range(n)]


def test_round_trip_keeps_every_field_and_header():
    people = make_people(3)
    msg = people_to_msg(people, HEADER)
    assert msg.header == HEADER and msg.skeleton == sk.NAME
    assert list(msg.joint_names) == list(sk.JOINT_NAMES)
    assert [p.score for p in msg.people] == sorted((p.score for p in msg.people), reverse=True)
    back = sorted(msg_to_people(msg), key=lambda p: p.track_id)
    for a, b in zip(people, back):
        np.testing.assert_allclose(a.joints_3d, b.joints_3d)
        np.testing.assert_allclose(a.keypoints_2d, b.keypoints_2d)
        np.testing.assert_allclose(a.joint_scores, b.joint_scores, rtol=1e-6)
        assert a.track_id == b.track_id and a.score == pytest.approx(b.score)
    m = msg.people[0]
    assert (m.root.x, m.root.y, m.root.z) == tuple(m.joints[sk.ROOT].__getattribute__(a)
                                                     for a in "xyz")


def test_msg_with_other_joint_order_is_reordered_by_name():
    msg = people_to_msg(make_people(1), HEADER)
    order = list(range(17))[::-1]
    msg.joint_names = [msg.joint_names[i] for i in order]
    p = msg.people[0]
    p.joints = [p.joints[i] for i in order]
    p.keypoints_2d = [p.keypoints_2d[i] for i in order]
    p.joint_confidences = [p.joint_confidences[i] for i in order]
    back = msg_to_people(msg)[0]
    np.testing.assert_allclose(back.joints_3d, make_people(1)[0].joints_3d)


def test_bad_msgs_are_clear_errors():
    msg = people_to_msg(make_people(1), HEADER)
    msg.people[0].joints = msg.people[0].joints[:5]
    with pytest.raises(ValueError, match="per-joint arrays"):
        msg_to_people(msg)
    msg.joint_names = ["a"]
    with pytest.raises(ValueError, match="lacks joints"):
        msg_to_people(msg)


def test_markers_structure_ids_colours_and_header():
    msg = people_to_msg(make_people(2) + make_people(1, tracked=False), HEADER)
    ma = people_markers(msg)
    assert ma.markers[0].action == Marker.DELETEALL
    assert all(m.header == HEADER for m in ma.markers)
    body = ma.markers[1:]
    assert len(body) == 2 * 3
    spheres = [m for m in body if m.type == Marker.SPHERE_LIST]
    lines = [m for m in body if m.type == Marker.LINE_LIST]
    assert len(spheres) == len(lines) == 3
    assert all(len(m.points) == 17 for m in spheres)
    assert all(len(m.points) == 2 * len(sk.BONES) for m in lines)
    ids = [m.id for m in body]
    assert len(ids) == len(set(ids))
    # Tracked people keep ids derived from their track id, whatever else is in the frame.
    tracked_ids = {m.id for m in body if m.color != track_colour(-1)}
    assert tracked_ids == {2 * 1, 2 * 1 + 1, 2 * 4, 2 * 4 + 1}
    alone = people_markers(people_to_msg(make_people(2)[1:], HEADER))
    assert {m.id for m in alone.markers[1:]} == {8, 9}
    for m in body:
        assert 0.0 <= min(m.color.r, m.color.g, m.color.b) and max(m.color.r, m.color.g,
                                                                    m.color.b) <= 1.0
        assert m.color.a == 1.0
    assert track_colour(1) == track_colour(1) and track_colour(1) != track_colour(2)


def test_low_confidence_joints_left_out():
    people = make_people(1)
    people[0].joint_scores[:] = 1.0
    people[0].joint_scores[sk.INDEX["l_wrist"]] = 0.1
    ma = people_markers(people_to_msg(people, HEADER), min_confidence=0.3)
    spheres = [m for m in ma.markers if m.type == Marker.SPHERE_LIST][0]
    lines = [m for m in ma.markers if m.type == Marker.LINE_LIST][0]
    assert len(spheres.points) == 16 and len(lines.points) == 2 * (len(sk.BONES) - 1)


def test_marker_alpha_follows_joint_confidence():
    people = make_people(1)
    people[0].joint_scores[:] = 0.9
    ankle = sk.INDEX["r_ankle"]
    people[0].joint_scores[ankle] = 0.05
    ma = people_markers(people_to_msg(people, HEADER))
    spheres = [m for m in ma.markers if m.type == Marker.SPHERE_LIST][0]
    lines = [m for m in ma.markers if m.type == Marker.LINE_LIST][0]
    assert len(spheres.colors) == len(spheres.points) == 17
    alphas = [c.a for c in spheres.colors]
    assert alphas[ankle] == pytest.approx(0.24) and min(np.delete(alphas, ankle)) > 0.9
    assert all(0.0 <= c.r <= 1.0 and 0.0 <= c.a <= 1.0 for c in lines.colors)
    assert len(lines.colors) == len(lines.points)
    knee_ankle = [i for i, (p, c) in enumerate(sk.BONES) if c == ankle][0]
    assert lines.colors[2 * knee_ankle + 1].a == pytest.approx(0.24)


def test_empty_frame_still_clears():
    ma = people_markers(people_to_msg([], HEADER))
    assert len(ma.markers) == 1 and ma.markers[0].action == Marker.DELETEALL
