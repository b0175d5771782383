"""Deterministic frames for the DDS self-test: a 640x480 picture, its CameraInfo, its people.

The publisher sends them, the listener records what arrived, and the tests (and the README's main
command, until the demo lands) compare the two field by field.
"""

from __future__ import annotations

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from mp3d.common import skeleton as sk
from mp3d.common.geometry import Intrinsics, project
from mp3d.infer.people import Person
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from mp3d_ros.conversions import people_to_msg
from mp3d_ros.image_conversion import rgb_to_image

WIDTH, HEIGHT = 640, 480
INTRINSICS = Intrinsics(500.0, 500.0, 319.5, 239.5, WIDTH, HEIGHT)
FRAME_ID = "selftest_camera_optical_frame"
TOPIC_IMAGE = "selftest/image_raw"
TOPIC_INFO = "selftest/camera_info"
TOPIC_PEOPLE = "selftest/people"


def header(i: int) -> Header:
    """The i-th frame's header: stamps 1000 s + i * 0.1 s, so nothing depends on the clock."""
    ns = 1_000_000_000_000 + i * 100_000_000 + 123
    return Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9), frame_id=FRAME_ID)


def people(i: int) -> list[Person]:
    """1 + i % 3 people standing 2.5-5 m from the camera, drifting sideways with i."""
    out = []
    for k in range(1 + i % 3):
        root = np.array([-1.0 + k * 1.0 + 0.02 * i, 0.6, 2.5 + k * 1.2])
        j3 = sk.REST_POSE + root
        conf = np.linspace(0.5, 1.0, sk.NUM_JOINTS)
        out.append(Person(j3, project(j3, INTRINSICS), conf, 0.9 - 0.1 * k, track_id=k))
    return out


def picture(i: int) -> np.ndarray:
    """A 480x640 RGB picture with the people's 2D skeletons drawn on a gradient."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([x * 255 // WIDTH, y * 255 // HEIGHT, np.full_like(x, (i * 37) % 256)], -1)
    rgb = np.ascontiguousarray(rgb.astype(np.uint8))
    for p in people(i):
        for a, b in sk.BONES:
            pa = tuple(int(v) for v in p.keypoints_2d[a])
            pb = tuple(int(v) for v in p.keypoints_2d[b])
            cv2.line(rgb, pa, pb, (255, 255, 255), 3)
    return rgb


def frame(i: int) -> tuple[Image, CameraInfo, object]:
    """The i-th (Image, CameraInfo, Person3DArray), all with the same header."""
    h = header(i)
    img = rgb_to_image(picture(i), "rgb8", header=h)
    info = CameraInfo(header=h, width=WIDTH, height=HEIGHT, distortion_model="plumb_bob",
                      d=[0.0] * 5, k=INTRINSICS.K.ravel().tolist(),
                      r=np.eye(3).ravel().tolist(),
                      p=np.hstack([INTRINSICS.K, np.zeros((3, 1))]).ravel().tolist())
    return img, info, people_to_msg(people(i), h)
