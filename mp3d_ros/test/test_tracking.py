"""The tracker (mp3d.infer.tracking): synthetic people walking in front of a pinhole camera."""

from __future__ import annotations

import numpy as np
import pytest
from mp3d.common import skeleton as sk
from mp3d.common.geometry import Intrinsics, project
from mp3d.infer.people import Person
from mp3d.infer.tracking import Tracker, TrackerConfig

INTR = Intrinsics(500.0, 500.0, 319.5, 239.5, 640, 480)
# A rough standing body: joints spread 1.7 m tall and 0.4 m wide around the pelvis.
_OFFSETS = np.random.default_rng(0).uniform([-0.2, -0.9, -0.1], [0.2, 0.8, 0.1],
                                            (sk.NUM_JOINTS, 3))
_OFFSETS[sk.ROOT] = 0.0


def person(x: float, z: float = 4.0) -> Person:
    """A person with the pelvis at (x, 0, z) metres in the camera frame."""
    joints = np.array([x, 0.0, z]) + _OFFSETS
    return Person(joints, project(joints, INTR), np.ones(sk.NUM_JOINTS), 0.9)


def run(tracker: Tracker, frames: list[list[Person]], dt: float | None = 0.1
        ) -> list[list[int]]:
    return [[p.track_id for p in tracker.update(people, None if dt is None else k * dt)]
            for k, people in enumerate(frames)]


@pytest.mark.parametrize("dt", [0.1, None], ids=["stamps", "frames"])
def test_ids_stable_for_smooth_motion_in_any_detection_order(dt):
    frames = []
    for k in range(30):
        people = [person(-1.5 + 0.05 * k), person(1.0, 6.0 - 0.05 * k), person(0.3, 9.0)]
        frames.append(people if k % 2 else people[::-1])  # detection order is arbitrary
    ids = [frame if k % 2 else frame[::-1] for k, frame in enumerate(run(Tracker(), frames, dt))]
    assert sorted(ids[0]) == [0, 1, 2] and all(frame == ids[0] for frame in ids), ids


def test_person_leaving_and_another_arriving_gets_a_new_id():
    a = [[person(0.0), person(2.0)]] * 5
    b = [[person(0.0)]] * 3 + [[person(0.0), person(-2.0)]] * 3  # the one at x=2 left
    ids = run(Tracker(), a + b)
    assert ids[:5] == [[0, 1]] * 5
    assert ids[5:8] == [[0]] * 3
    assert ids[8:] == [[0, 2]] * 3


def test_new_person_at_the_place_of_one_that_aged_out_gets_a_new_id():
    cfg = TrackerConfig(max_age_s=0.35, max_age_frames=0)
    frames = [[person(0.0)]] * 3 + [[]] * 3 + [[person(0.0)]] * 2
    assert run(Tracker(cfg), frames) == [[0]] * 3 + [[]] * 3 + [[1]] * 2
    # a short gap (within max_age_s) keeps the id
    frames = [[person(0.0)]] * 3 + [[]] * 2 + [[person(0.05)]] * 2
    assert run(Tracker(cfg), frames) == [[0]] * 3 + [[]] * 2 + [[0]] * 2


def test_age_in_frames_without_stamps():
    cfg = TrackerConfig(max_age_frames=2, max_age_s=0.0)
    keep = [[person(0.0)]] + [[]] * 2 + [[person(0.0)]]
    assert run(Tracker(cfg), keep, dt=None) == [[0], [], [], [0]]
    die = [[person(0.0)]] + [[]] * 3 + [[person(0.0)]]
    assert run(Tracker(cfg), die, dt=None) == [[0], [], [], [], [1]]


def test_crossing_paths_at_the_same_depth_keep_their_ids():
    # Two people walk towards each other at 1 m/s and pass 0.1 m apart (different depths by
    # 0.1 m): constant-velocity prediction carries each through the crossing.
    frames = []
    for k in range(40):
        x = -2.0 + 0.1 * k
        frames.append([person(x, 4.0), person(-x, 4.1)])
    ids = run(Tracker(), frames)
    assert all(frame == [0, 1] for frame in ids), ids


def test_a_jump_beyond_the_gate_is_a_new_track_and_min_hits_delays_ids():
    frames = [[person(0.0)]] * 3 + [[person(3.0)]] * 3
    cfg = TrackerConfig(min_hits=2)
    assert run(Tracker(cfg), frames) == [[-1], [0], [0], [-1], [1], [1]]


def test_stamps_going_backwards_reset_the_tracker():
    tr = Tracker()
    assert [p.track_id for p in tr.update([person(0.0), person(2.0)], 5.0)] == [0, 1]
    assert [p.track_id for p in tr.update([person(2.0)], 0.0)] == [0]


def test_bad_config_is_rejected():
    with pytest.raises(ValueError):
        TrackerConfig(min_hits=0)
    with pytest.raises(ValueError):
        TrackerConfig(velocity_smoothing=1.5)
