"""Node: records the self-test frames it receives into an .npz, and prints a one-line summary."""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import rclpy
from mp3d.data.imagecodec import image_to_rgb
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from mp3d_msgs.msg import Person3DArray
from mp3d_ros import selftest
from mp3d_ros.conversions import msg_to_people


def _stamp(h) -> int:
    return h.stamp.sec * 10**9 + h.stamp.nanosec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10, help="stop after this many of each")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", required=True, help="where to write the received frames (.npz)")
    argv = list(sys.argv if argv is None else argv)
    args = parser.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])

    rclpy.init(args=argv)
    node = Node("mp3d_selftest_listener")
    got: dict[str, list] = {"image": [], "info": [], "people": []}
    node.create_subscription(Image, selftest.TOPIC_IMAGE, got["image"].append, 10)
    node.create_subscription(CameraInfo, selftest.TOPIC_INFO, got["info"].append, 10)
    node.create_subscription(Person3DArray, selftest.TOPIC_PEOPLE, got["people"].append, 10)
    deadline = time.monotonic() + args.timeout
    try:
        while min(len(v) for v in got.values()) < args.frames and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()

    record: dict[str, np.ndarray] = {
        "image_rgb": np.stack([image_to_rgb(m) for m in got["image"]]) if got["image"] else
        np.zeros((0, 0, 0, 3), np.uint8),
        "image_stamp": np.array([_stamp(m.header) for m in got["image"]], np.int64),
        "image_frame_id": np.array([m.header.frame_id for m in got["image"]]),
        "image_encoding": np.array([m.encoding for m in got["image"]]),
        "info_k": np.array([list(m.k) for m in got["info"]]),
        "people_stamp": np.array([_stamp(m.header) for m in got["people"]], np.int64),
        "people_frame_id": np.array([m.header.frame_id for m in got["people"]]),
        "skeleton": np.array([m.skeleton for m in got["people"]]),
        "joint_names": np.array([list(m.joint_names) for m in got["people"]]),
    }
    for i, m in enumerate(got["people"]):
        ps = msg_to_people(m)
        record[f"people_{i}_joints"] = np.array([p.joints_3d for p in ps])
        record[f"people_{i}_kp2d"] = np.array([p.keypoints_2d for p in ps])
        record[f"people_{i}_conf"] = np.array([p.joint_scores for p in ps])
        record[f"people_{i}_score"] = np.array([p.score for p in ps])
        record[f"people_{i}_track"] = np.array([p.track_id for p in ps])
        record[f"people_{i}_root"] = np.array([[q.root.x, q.root.y, q.root.z] for q in m.people])
    np.savez(args.out, **record)
    counts = {k: len(v) for k, v in got.items()}
    print(json.dumps({"received": counts, "out": args.out}))
    return 0 if min(counts.values()) >= args.frames else 1


if __name__ == "__main__":
    sys.exit(main())
