"""Node: records topics of any type into a rosbag2 MCAP bag (`ros2 bag record` without rosbag2).

``mp3d_record OUT_BAG --topics T [T ...] [--discovery-timeout S] [--idle-timeout S]``

Each topic's type is taken from the ROS graph once a publisher appears; messages are written as
received (serialised CDR, no conversion), with the receive time as bag time. Stops on SIGINT or
SIGTERM, or after --idle-timeout seconds without a message once one has arrived; the bag is
closed (metadata written) in every case. Prints "ready: ..." on stderr once every topic's
subscription is matched with its publisher, and a JSON summary line at the end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import time


def _message_class(type_name: str):
    pkg, _, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.msg"), name)


def main(argv: list[str] | None = None) -> int:
    import rclpy
    from mp3d.data.bags.writer import BagWriter
    from rclpy.node import Node

    argv = list(sys.argv if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="bag folder to create (must not exist)")
    ap.add_argument("--topics", nargs="+", required=True)
    ap.add_argument("--discovery-timeout", type=float, default=30.0)
    ap.add_argument("--idle-timeout", type=float, default=0.0, help="0: never")
    args = ap.parse_args(rclpy.utilities.remove_ros_args(argv)[1:])

    rclpy.init(args=argv)
    node = Node("mp3d_topic_recorder")
    stop: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.append(1))
    counts = {t: 0 for t in args.topics}
    last = [0.0]
    writer = BagWriter(args.out)
    try:
        pending, subs = set(args.topics), []
        deadline = time.monotonic() + args.discovery_timeout
        while pending and not stop and time.monotonic() < deadline:
            graph = dict(node.get_topic_names_and_types())
            for topic in list(pending):
                if topic in graph:
                    type_name = graph[topic][0]
                    writer.add_topic(topic, type_name)

                    def cb(data: bytes, topic=topic, type_name=type_name) -> None:
                        writer.write(topic, type_name, data, node.get_clock().now().nanoseconds)
                        counts[topic] += 1
                        last[0] = time.monotonic()

                    subs.append(node.create_subscription(_message_class(type_name), topic, cb,
                                                         50, raw=True))
                    pending.discard(topic)
            rclpy.spin_once(node, timeout_sec=0.05)
        # Ready once every subscription is matched with a publisher (not just discovered).
        while not pending and not stop and time.monotonic() < deadline and any(
                s.get_publisher_count() == 0 for s in subs):
            rclpy.spin_once(node, timeout_sec=0.05)
        if pending:
            node.get_logger().warning(f"no publisher appeared for {sorted(pending)}")
        else:
            print(f"ready: recording {' '.join(args.topics)}", file=sys.stderr, flush=True)
        while not stop:
            rclpy.spin_once(node, timeout_sec=0.1)
            if args.idle_timeout and last[0] and time.monotonic() - last[0] > args.idle_timeout:
                break
    finally:
        writer.close()
        node.destroy_node()
        rclpy.try_shutdown()
    print(json.dumps({"bag": args.out, "counts": counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
