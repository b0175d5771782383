"""Offline replay: run the pose estimator over a recorded bag and write the results to a new bag.

``mp3d replay IN_BAG OUT_BAG [--image-topic T] [--camera-info-topic T] [--model M] [--fx F ...]``
(also the console script ``mp3d_replay``). No ROS graph is involved: the input bag (rosbag2 MCAP or
sqlite3, read by ``mp3d_ros.bagio``) is read image by image, each image (``sensor_msgs/Image`` or
``CompressedImage``) goes through :class:`mp3d.estimator.Estimator` with the intrinsics of the
CameraInfo nearest in header stamp (else ``--fx/--fy/--cx/--cy``, else the estimator's
field-of-view fallback), and a NEW bag (MCAP, written by ``bagio.BagWriter``; the input is only
read) receives, per image:

- ``/people`` (mp3d_msgs/msg/Person3DArray) and ``/people/markers``
  (visualization_msgs/msg/MarkerArray), both with the image's header (stamp and frame_id), written
  at bag time = the image's header stamp, so ``use_sim_time`` consumers see them in step;
- the image itself and the camera info, copied byte for byte under their own topic names (bag time
  = their header stamps), so RViz or Foxglove show pictures and skeletons together.

The output is deterministic for the same input and model: thresholds come from the checkpoint (or
``--threshold`` / ``--max-people``), people are sorted by score (ties by root position) and nothing
depends on wall time. Track ids are -1 (no tracking here).

Exit status 0; 1 when the input bag is truncated (run ``python -m mp3d_ros.bagio recover BAG``),
unreadable, lacks the image topic (the error lists its topics) or the output exists already: these
are found before the output is created. An image that cannot be decoded stops the replay with
exit status 1, leaving a closed output bag with the frames before it.
rclpy and torch are imported only when the command runs, so ``register`` costs nothing.
"""

from __future__ import annotations

import argparse
import bisect
import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
PEOPLE_TOPIC = "/people"
MARKERS_TOPIC = "/people/markers"
PEOPLE_TYPE = "mp3d_msgs/msg/Person3DArray"
MARKERS_TYPE = "visualization_msgs/msg/MarkerArray"


class ReplayError(RuntimeError):
    """The replay cannot start or go on; the message says why and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay's options (shared by ``mp3d_replay`` and ``mp3d replay``)."""
    from mp3d.paths import default_model

    parser.add_argument("in_bag", help="input rosbag2 folder (read only, never modified)")
    parser.add_argument("out_bag", help="output rosbag2 folder to create (must not exist)")
    parser.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic "
                        "(default: the bag's only image topic)")
    parser.add_argument("--camera-info-topic", default="auto",
                        help="CameraInfo topic; 'auto' (default): the image topic's sibling "
                        "camera_info, else the bag's only CameraInfo topic; 'none': use none")
    parser.add_argument("--model", default=str(default_model("student.pt")),
                        help="student checkpoint (.pt)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threshold", type=float,
                        help="person score threshold (default: the checkpoint's)")
    parser.add_argument("--max-people", type=int, help="default: the checkpoint's")
    parser.add_argument("--fx", type=float, help="focal length in pixels; when given it is used "
                        "instead of CameraInfo (default: CameraInfo, else a 60 deg hfov)")
    parser.add_argument("--fy", type=float, help="default: fx")
    parser.add_argument("--cx", type=float, help="default: image centre")
    parser.add_argument("--cy", type=float, help="default: image centre")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``replay`` to the ``mp3d`` command (see mp3d/cli.py)."""
    p = sub.add_parser("replay", help="run the estimator over a bag, write people to a new bag")
    add_arguments(p)
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- topic choice


def _topic_list(topics: dict[str, Any]) -> str:
    return ", ".join(f"{n} ({t.msgtype}, {t.message_count} msgs)"
                     for n, t in sorted(topics.items())) or "none"


def choose_topics(topics: dict[str, Any], image_topic: str | None,
                  camera_info_topic: str | None) -> tuple[str, str | None]:
    """(image topic, CameraInfo topic or None) from a bag's ``bagio.bag_topics``; ReplayError
    listing the bag's topics when the image topic is missing, ambiguous or of another type."""
    where = f"the bag's topics: {_topic_list(topics)}"
    if image_topic is None:
        images = sorted(n for n, t in topics.items() if t.msgtype in IMAGE_TYPES)
        if len(images) != 1:
            raise ReplayError(f"{'no' if not images else 'more than one'} image topic; pass "
                              f"--image-topic ({where})")
        image_topic = images[0]
    elif image_topic not in topics:
        raise ReplayError(f"image topic {image_topic!r} is not in the bag; {where}")
    elif topics[image_topic].msgtype not in IMAGE_TYPES:
        raise ReplayError(f"{image_topic!r} is {topics[image_topic].msgtype}, not one of "
                          f"{IMAGE_TYPES}; {where}")
    if camera_info_topic in (None, "", "none"):
        return image_topic, None
    if camera_info_topic != "auto":
        if topics.get(camera_info_topic) is None:
            raise ReplayError(f"camera info topic {camera_info_topic!r} is not in the bag; {where}")
        if topics[camera_info_topic].msgtype != CAMERA_INFO_TYPE:
            raise ReplayError(f"{camera_info_topic!r} is {topics[camera_info_topic].msgtype}, not "
                              f"{CAMERA_INFO_TYPE}")
        return image_topic, camera_info_topic
    base = image_topic.removesuffix("/compressed").rsplit("/", 1)[0]
    sibling = f"{base}/camera_info"
    infos = sorted(n for n, t in topics.items() if t.msgtype == CAMERA_INFO_TYPE)
    if sibling in infos:
        return image_topic, sibling
    return image_topic, (infos[0] if len(infos) == 1 else None)


# --------------------------------------------------------------------------- per-frame helpers


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


class CameraInfos:
    """CameraInfo messages of a bag by header stamp; :meth:`intrinsics` picks the nearest."""

    def __init__(self, infos: Sequence[tuple[int, Any]]) -> None:
        self.infos = sorted(infos, key=lambda x: x[0])
        self.stamps = [stamp for stamp, _ in self.infos]
        self.bad: set[int] = set()

    def intrinsics(self, stamp_ns: int, width: int, height: int) -> Any:
        """mp3d.geometry.Intrinsics for an image of ``width`` x ``height`` at ``stamp_ns`` from the
        nearest CameraInfo (ties: the earlier), rescaled if its size differs; None when there is
        none or it is uncalibrated."""
        from mp3d.geometry import intrinsics_from_camera_info, resize_intrinsics

        if not self.infos:
            return None
        k = bisect.bisect_left(self.stamps, stamp_ns)
        i = min((j for j in (k - 1, k) if 0 <= j < len(self.infos)),
                key=lambda j: (abs(self.stamps[j] - stamp_ns), j))
        info = self.infos[i][1]
        w, h = int(info.width) or width, int(info.height) or height
        try:
            intr = intrinsics_from_camera_info(list(info.k), w, h)
        except ValueError as exc:
            if i not in self.bad:
                self.bad.add(i)
                print(f"warning: CameraInfo at {self.infos[i][0]} ns unusable ({exc}); using the "
                      "field-of-view fallback", file=sys.stderr)
            return None
        return intr if (w, h) == (width, height) else resize_intrinsics(intr, width, height)


def _sorted_people(people: list[Any]) -> list[Any]:
    """People by descending score; ties by root position, so the order is reproducible."""
    return sorted(people, key=lambda p: (-round(float(p.score), 9),
                                         *(round(float(v), 9) for v in p.root)))


def _canonical(store: Any, raw: bytes, msgtype: str) -> bytes:
    """The same message re-serialised by rosbags, which zeroes CDR alignment padding; rclpy's
    serialiser leaves whatever was in memory there, so equal messages would differ in bytes."""
    return bytes(store.serialize_cdr(store.deserialize_cdr(raw, msgtype), msgtype))


def _fixed_intrinsics(args: argparse.Namespace) -> Callable[[int, int], Any] | None:
    """Intrinsics from --fx/--fy/--cx/--cy for a width x height image, or None without --fx."""
    if args.fx is None:
        return None
    from mp3d.geometry import Intrinsics

    def make(width: int, height: int) -> Any:
        return Intrinsics(args.fx, args.fy or args.fx,
                          args.cx if args.cx is not None else (width - 1) / 2.0,
                          args.cy if args.cy is not None else (height - 1) / 2.0, width, height)

    return make


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="replay", disable=not enabled, file=sys.stderr)


# --------------------------------------------------------------------------- the replay


def replay(in_bag: str | Path, out_bag: str | Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run the replay described by ``args`` (see :func:`add_arguments`); returns a summary.
    Raises ReplayError (or bagio.BagError) before anything is written when the input is unusable."""
    from builtin_interfaces.msg import Time
    from mp3d.estimator import FALLBACK_HFOV_DEG, Estimator
    from mp3d.imagecodec import ImageConversionError, msg_to_rgb
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from mp3d_ros import bagio
    from mp3d_ros.conversions import people_to_msg
    from mp3d_ros.markers import people_markers

    src, dst = Path(in_bag).resolve(), Path(out_bag).resolve()
    if dst == src or src in dst.parents:
        raise ReplayError(f"the output {dst} must lie outside the input bag {src}")
    if dst.exists():
        raise ReplayError(f"{dst} exists already; the replay never overwrites a bag")
    try:
        topics = bagio.bag_topics(src)
    except bagio.TruncatedBagError as exc:
        raise ReplayError(f"the input bag is truncated: {exc}. Repair it first with "
                          f"`python -m mp3d_ros.bagio recover {src}`") from exc
    image_topic, info_topic = choose_topics(topics, args.image_topic, args.camera_info_topic)
    compressed = topics[image_topic].msgtype == IMAGE_TYPES[1]
    store = bagio.default_typestore()
    estimator = Estimator(args.model, device=args.device, peak_threshold=args.threshold,
                          max_people=args.max_people)
    fixed = _fixed_intrinsics(args)
    infos = CameraInfos([] if info_topic is None or fixed is not None else [
        (_stamp_ns(m.header), m) for _, msgtype, _, raw in bagio.read_raw(src, [info_topic])
        for m in [store.deserialize_cdr(raw, msgtype)]])
    if fixed is None and info_topic is None:
        print(f"warning: no CameraInfo topic and no --fx: assuming a {FALLBACK_HFOV_DEG} deg "
              "horizontal field of view", file=sys.stderr)

    wanted = [image_topic] + ([info_topic] if info_topic else [])
    frames = people_total = 0
    started = time.perf_counter()
    infer_s = 0.0
    with bagio.BagWriter(dst, custom_data={"mp3d.replay.source": str(src),
                                           "mp3d.replay.model": str(args.model)}) as writer:
        for name in wanted:
            t = topics[name]
            writer.add_topic(name, t.msgtype, [bagio.qos_dict(t.reliability or "reliable",
                                                              t.durability or "volatile")])
        writer.add_topic(PEOPLE_TOPIC, PEOPLE_TYPE, [bagio.qos_dict()])
        writer.add_topic(MARKERS_TOPIC, MARKERS_TYPE, [bagio.qos_dict()])
        bar = _progress(topics[image_topic].message_count, not args.no_progress)
        try:
            for topic, msgtype, _, raw in _messages(bagio.read_raw(src, wanted)):
                msg = store.deserialize_cdr(raw, msgtype)
                stamp = _stamp_ns(msg.header)
                writer.write(topic, msgtype, raw, stamp)  # the copy, at its header stamp
                if topic != image_topic:
                    continue
                try:
                    rgb = msg_to_rgb(msg)
                except ImageConversionError as exc:
                    raise ReplayError(f"image {frames} (stamp {stamp} ns) of {image_topic}: "
                                      f"{exc}; {dst} holds the frames before it") from exc
                h, w = rgb.shape[:2]
                intr = fixed(w, h) if fixed is not None else infos.intrinsics(stamp, w, h)
                t0 = time.perf_counter()
                people = _sorted_people(estimator(rgb, intr))
                infer_s += time.perf_counter() - t0
                header = Header(stamp=Time(sec=int(msg.header.stamp.sec),
                                           nanosec=int(msg.header.stamp.nanosec)),
                                frame_id=str(msg.header.frame_id))
                people_msg = people_to_msg(people, header)
                writer.write(PEOPLE_TOPIC, PEOPLE_TYPE,
                             _canonical(store, serialize_message(people_msg), PEOPLE_TYPE), stamp)
                writer.write(MARKERS_TOPIC, MARKERS_TYPE, _canonical(
                    store, serialize_message(people_markers(people_msg)), MARKERS_TYPE), stamp)
                frames += 1
                people_total += len(people)
                bar.update(1)
        finally:
            bar.close()
    wall = time.perf_counter() - started
    return {"in_bag": str(src), "out_bag": str(dst), "image_topic": image_topic,
            "camera_info_topic": info_topic, "frames": frames, "people": people_total,
            "seconds": round(wall, 3), "fps": round(frames / wall, 2) if wall > 0 else None,
            "inference_fps": round(frames / infer_s, 2) if infer_s > 0 else None}


def _messages(it: Iterator[tuple[str, str, int, bytes]]) -> Iterator[tuple[str, str, int, bytes]]:
    """Pass bag messages through, turning read errors mid-bag into ReplayError."""
    from mp3d_ros import bagio

    try:
        yield from it
    except bagio.BagError as exc:
        raise ReplayError(f"reading the input bag failed: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    """Replay ``args.in_bag`` into ``args.out_bag``; prints a JSON summary line, returns the exit
    status (1 with an ``error:`` line on stderr when the bag cannot be replayed)."""
    from mp3d_ros import bagio

    try:
        summary = replay(args.in_bag, args.out_bag, args)
    except (ReplayError, bagio.BagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console script ``mp3d_replay``: ``argv`` without the program name (default sys.argv[1:])."""
    parser = argparse.ArgumentParser(prog="mp3d_replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
