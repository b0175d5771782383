"""Node: publishes the self-test frames (image, CameraInfo, people) once a listener is matched."""

from __future__ import annotations

import argparse
import sys
import time

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image

from mp3d_msgs.msg import Person3DArray
from mp3d_ros import selftest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--rate", type=float, default=20.0, help="frames per second")
    parser.add_argument("--match-timeout", type=float, default=20.0)
    argv = list(sys.argv if argv is None else argv)
    args = parser.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])

    rclpy.init(args=argv)
    node = Node("mp3d_selftest_publisher")
    pubs = [node.create_publisher(Image, selftest.TOPIC_IMAGE, 10),
            node.create_publisher(CameraInfo, selftest.TOPIC_INFO, 10),
            node.create_publisher(Person3DArray, selftest.TOPIC_PEOPLE, 10)]
    try:
        deadline = time.monotonic() + args.match_timeout
        while any(p.get_subscription_count() == 0 for p in pubs):
            if time.monotonic() > deadline:
                node.get_logger().error("no listener matched all topics")
                return 1
            rclpy.spin_once(node, timeout_sec=0.05)
        for i in range(args.frames):
            for pub, msg in zip(pubs, selftest.frame(i)):
                pub.publish(msg)
            time.sleep(1.0 / args.rate)
        node.get_logger().info(f"published {args.frames} frames")
        # Reliable QoS: stay up until the listener has acknowledged everything.
        for pub in pubs:
            pub.wait_for_all_acked(Duration(seconds=10.0))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
