"""Node: plays a rosbag2 bag's topics with their recorded timing (`ros2 bag play` without rosbag2).

``mp3d_player BAG [--rate R] [--loop] [--topics T ...] [--start-paused true|false] [--clock [HZ]]
[--wait-for-subscribers S]``

Reads a closed rosbag2 bag (MCAP or sqlite3, via ``mp3d.data.bags``) and publishes each message's
CDR bytes unchanged (rclpy publishes ``bytes`` as a serialised message), on a publisher of the
recorded type: any type whose Python message package is installed (``rosidl_runtime_py`` when
present, else ``importlib`` of ``pkg.msg``); topics of other types are skipped and listed. Gaps
between messages are the recorded ones divided by ``--rate``. Publishers use the recorded offered
QoS reliability and durability (reliable, volatile when none was recorded), depth
``--queue-depth``; topic remapping works as usual (``--ros-args -r /a:=/b``).

``--clock [HZ]`` publishes ``/clock`` (rosgraph_msgs/Clock) with bag time before every message and
at HZ (default 40) in between, for nodes with ``use_sim_time`` (``--wait-for-subscribers`` then
waits for a ``/clock`` subscriber too). ``--start-paused true`` waits
until the ``paused`` parameter is set to false (``ros2 param set /mp3d_player paused false``);
setting it true pauses again. ``--wait-for-subscribers S`` waits up to S seconds until every topic
has a subscriber. At the end the player waits (``--ack-timeout``) until reliable subscribers have
acknowledged everything, then prints a JSON summary line and exits 0 (also after SIGINT/SIGTERM,
which stop playback); 1 when the bag cannot be read or has no playable topic.

The module imports neither rclpy nor the bag readers until it runs, so ``register`` can add the
``mp3d play`` subcommand to the ROS-free ``mp3d`` CLI.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import time
from collections import Counter
from typing import Any

from mp3d.data import bags


def _bool(text: str) -> bool:
    """argparse type for true/false flags."""
    value = text.strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The player's options (shared by ``mp3d_player`` and ``mp3d play``)."""
    parser.add_argument("bag", help="rosbag2 folder (metadata.yaml + .mcap or .db3 files)")
    parser.add_argument("--rate", type=_positive, default=1.0,
                        help="playback speed factor: recorded gaps are divided by it")
    parser.add_argument("--loop", action="store_true", help="play again and again until stopped")
    parser.add_argument("--topics", nargs="+", metavar="TOPIC",
                        help="play only these topics (default: all)")
    parser.add_argument("--start-paused", type=_bool, nargs="?", const=True, default=False,
                        metavar="BOOL", help="start paused; resume by setting the 'paused' "
                        "parameter to false")
    parser.add_argument("--clock", type=_positive, nargs="?", const=40.0, default=None,
                        metavar="HZ", help="publish /clock from bag time (at HZ between "
                        "messages, default 40)")
    parser.add_argument("--wait-for-subscribers", type=float, default=0.0, metavar="S",
                        help="wait up to S seconds until every topic has a subscriber")
    parser.add_argument("--queue-depth", type=int, default=100,
                        help="publisher history depth (keep-last)")
    parser.add_argument("--ack-timeout", type=float, default=5.0, metavar="S",
                        help="at the end, wait up to S seconds for reliable subscribers to "
                        "acknowledge every message")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``play`` to the ``mp3d`` command (see mp3d/cli.py)."""
    p = sub.add_parser("play", help="publish a rosbag2 bag's topics with recorded timing")
    add_arguments(p)
    p.set_defaults(func=run)


def message_class(msgtype: str) -> type:
    """The Python class of a ROS message type ``pkg/msg/Name``. Raises ImportError,
    AttributeError or ValueError when it is not installed."""
    try:
        from rosidl_runtime_py.utilities import get_message  # optional: not in the wheels
    except ImportError:
        get_message = None
    if get_message is not None:
        return get_message(msgtype)
    package, kind, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


class _Playback:
    """Publishes one bag's messages on schedule; pause, clock and stop handling."""

    def __init__(self, node: Any, executor: Any, publishers: dict[str, Any], args: Any,
                 clock_pub: Any) -> None:
        self.node, self.executor, self.publishers, self.args = node, executor, publishers, args
        self.clock_pub = clock_pub
        self.paused = bool(args.start_paused)
        self.stopped = False
        self.published: Counter[str] = Counter()
        self.first_wall: float | None = None
        self.last_wall: float | None = None
        self._anchor_wall = 0.0
        self._anchor_bag = 0
        self._next_clock = 0.0

    def _bag_now(self, wall: float) -> int:
        return self._anchor_bag + int((wall - self._anchor_wall) * self.args.rate * 1e9)

    def _publish_clock(self, bag_ns: int) -> None:
        from builtin_interfaces.msg import Time
        from rosgraph_msgs.msg import Clock

        self.clock_pub.publish(Clock(clock=Time(sec=bag_ns // 10**9, nanosec=bag_ns % 10**9)))

    def _wait_until(self, target: float) -> bool:
        """Spin until wall time ``target`` (shifted by pauses); False if stopped."""
        period = 1.0 / self.args.clock if self.clock_pub is not None else None
        while not self.stopped:
            now = time.monotonic()
            if self.paused:  # bag time stands still: shift the schedule by the pause
                self.executor.spin_once(timeout_sec=0.05)
                shift = time.monotonic() - now
                self._anchor_wall += shift
                target += shift
                continue
            if now >= target:
                return True
            timeout = min(target - now, 0.05)
            if period is not None:
                if now >= self._next_clock:
                    self._publish_clock(self._bag_now(now))
                    self._next_clock = now + period
                timeout = min(timeout, max(0.0, self._next_clock - now))
            self.executor.spin_once(timeout_sec=timeout)
        return False

    def play_once(self, messages: Any) -> None:
        """Publish one pass over ``messages`` ((topic, type, stamp, bytes), in time order)."""
        started = False
        for topic, _, stamp, raw in messages:
            pub = self.publishers.get(topic)
            if pub is None:
                continue
            if not started:
                self._anchor_wall, self._anchor_bag, started = time.monotonic(), stamp, True
            target = self._anchor_wall + (stamp - self._anchor_bag) / 1e9 / self.args.rate
            if not self._wait_until(target):
                return
            if self.clock_pub is not None:
                self._publish_clock(stamp)
            pub.publish(raw)
            self.published[topic] += 1
            self.last_wall = time.monotonic()
            if self.first_wall is None:
                self.first_wall = self.last_wall


def run(args: argparse.Namespace, ros_args: list[str] | None = None) -> int:
    """Play the bag ``args.bag`` (options: :func:`add_arguments`); returns the exit status."""
    import rclpy
    from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
    from rclpy.duration import Duration
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from rclpy.signals import SignalHandlerOptions
    from rosgraph_msgs.msg import Clock

    try:
        topics = bags.bag_topics(args.bag)
    except bags.BagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    wanted = set(args.topics) if args.topics else set(topics)
    skipped = {t: "not in the bag" for t in wanted - set(topics)}
    classes = {}
    for name in sorted(wanted & set(topics)):
        try:
            classes[name] = message_class(topics[name].msgtype)
        except (ImportError, AttributeError, ValueError) as exc:
            skipped[name] = f"type {topics[name].msgtype} not installed: {exc}"
    if not classes:
        print(f"error: no playable topic in {args.bag} ({skipped})", file=sys.stderr)
        return 1

    rclpy.init(args=ros_args, signal_handler_options=SignalHandlerOptions.NO)
    node = Node("mp3d_player")
    log = node.get_logger()
    try:
        publishers = {}
        for name, cls in classes.items():
            t = topics[name]
            qos = QoSProfile(
                depth=args.queue_depth,
                reliability=(ReliabilityPolicy.BEST_EFFORT if t.reliability == "best_effort"
                             else ReliabilityPolicy.RELIABLE),
                durability=(DurabilityPolicy.TRANSIENT_LOCAL
                            if t.durability == "transient_local" else DurabilityPolicy.VOLATILE))
            publishers[name] = node.create_publisher(cls, name, qos)
        clock_pub = node.create_publisher(Clock, "/clock", 10) if args.clock else None
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        playback = _Playback(node, executor, publishers, args, clock_pub)
        node.declare_parameter("paused", playback.paused, ParameterDescriptor(
            description="Playback is paused while true."))

        def on_set(params: list) -> SetParametersResult:
            for p in params:
                if p.name == "paused":
                    playback.paused = bool(p.value)
                    log.info("paused" if playback.paused else "playing")
            return SetParametersResult(successful=True)

        node.add_on_set_parameters_callback(on_set)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda _s, _f: setattr(playback, "stopped", True))

        waited = {**publishers, **({"/clock": clock_pub} if clock_pub is not None else {})}
        deadline = time.monotonic() + args.wait_for_subscribers
        while (not playback.stopped and time.monotonic() < deadline
               and any(p.get_subscription_count() == 0 for p in waited.values())):
            executor.spin_once(timeout_sec=0.05)
        lonely = [n for n, p in waited.items() if p.get_subscription_count() == 0]
        if args.wait_for_subscribers > 0 and lonely:
            log.warning(f"no subscriber after {args.wait_for_subscribers} s on {lonely}; "
                        "playing anyway")
        if playback.paused:
            log.info("paused: set the 'paused' parameter to false to play")
        loops = 0
        while not playback.stopped:
            playback.play_once(bags.read_raw(args.bag, list(publishers)))
            loops += 1
            if not args.loop:
                break
        unacked = []
        for name, pub in publishers.items():
            if (pub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                    and not pub.wait_for_all_acked(Duration(seconds=args.ack_timeout))):
                unacked.append(name)
        duration = (playback.last_wall - playback.first_wall) if playback.first_wall else 0.0
        summary = {"bag": str(args.bag), "published": dict(playback.published),
                   "total": sum(playback.published.values()), "loops": loops,
                   "duration_s": round(duration, 4), "rate": args.rate,
                   "interrupted": playback.stopped, "unacknowledged": unacked,
                   "skipped_topics": skipped}
        log.info(f"published {summary['total']} messages in {duration:.2f} s")
        print(json.dumps(summary))
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    """Console script ``mp3d_player``: ``argv`` as in sys.argv (program name first; the
    ``--ros-args ... [--]`` part goes to rclpy)."""
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(prog="mp3d_player", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    from rclpy.utilities import remove_ros_args

    args = parser.parse_args(remove_ros_args(argv)[1:])
    return run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
