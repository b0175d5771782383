"""Offline replay: run the pose estimator over a recorded bag and write the results to a new bag.

``mp3d replay IN_BAG OUT_BAG [--image-topic T] [--camera-info-topic T] [--params-file YAML] ...``
(also the console script ``mp3d_replay``). No ROS graph is involved: the input bag (rosbag2 MCAP or
sqlite3, read by ``mp3d.data.bags``) is read in recording order, and every image and CameraInfo
goes through :class:`mp3d_ros.frame_pipeline.FramePipeline`, the per-frame function the live
pose node calls, with the node's configuration (``--params-file``: the node's YAML, e.g.
``config/pose_node.yaml``; the options below override it). So the output says what the live
node would have published for the same frames: same people, same track ids, same intrinsics
policy. A NEW bag (MCAP, written by ``bags.BagWriter``; the input is only read) receives, per
image:

- ``/people`` (mp3d_msgs/msg/Person3DArray), ``/people/markers`` (visualization_msgs/msg/
  MarkerArray), with ``--debug-image`` ``/people/debug_image`` and with the parameter
  ``publish_tf`` ``/tf`` (a frame per tracked person), all with the image's header
  (stamp and frame_id), written at bag time = the image's header stamp, so ``use_sim_time``
  consumers see them in step;
- the image itself and the camera info, copied byte for byte under their own topic names (bag time
  = their header stamps), so RViz or Foxglove show pictures and skeletons together.

A frame that cannot be processed (an unsupported encoding, a corrupt JPEG, an estimator error) is
skipped and counted by reason, as the node does; the summary line lists the counts, and
``--strict`` makes the first bad frame fatal instead. The output is deterministic for the same
input and model: nothing depends on wall time.

Exit status 0; 2 with one ``error:`` line when the input bag is truncated (run ``python -m
mp3d.data.bags recover BAG``), unreadable, lacks the image topic (the error lists its topics), the
output exists already or the model cannot be loaded (all found before the output is created), or,
with ``--strict``, at the first bad frame (the output then holds the frames before it).
rclpy and torch are imported only when the command runs, so ``register`` costs nothing.

Many bags (``mp3d replay BAG... --out DIR [--workers N | --ray [ADDRESS]] [--overwrite]``): one
output bag per input under DIR, replayed by worker processes or Ray actors that each load the
model once, resumable, with a JSON manifest beside the outputs; :mod:`mp3d_ros.fleet` does it,
calling :func:`replay` for every bag (this module hands it its functions: the fleet never
imports this module, so the two stay free of import circles).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mp3d.data import bags

from mp3d_ros import fleet

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
CAMERA_INFO_TYPE = "sensor_msgs/msg/CameraInfo"
PEOPLE_TOPIC = "/people"
MARKERS_TOPIC = "/people/markers"
DEBUG_TOPIC = "/people/debug_image"
PEOPLE_TYPE = "mp3d_msgs/msg/Person3DArray"
MARKERS_TYPE = "visualization_msgs/msg/MarkerArray"
DEBUG_TYPE = "sensor_msgs/msg/Image"
TF_TOPIC, TF_TYPE = "/tf", "tf2_msgs/msg/TFMessage"
EXIT_ERROR = 2


class ReplayError(RuntimeError):
    """The replay cannot start or go on; the message says why and what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The replay's options (shared by ``mp3d_replay`` and ``mp3d replay``)."""
    parser.add_argument("bags", nargs="+", metavar="BAG",
                        help="IN_BAG OUT_BAG: the input rosbag2 folder (read only, never "
                        "modified) and the output folder to create (must not exist); with --out "
                        "DIR: input bags, globs or text files of paths, one output each in DIR")
    parser.add_argument("--image-topic", help="sensor_msgs/Image or CompressedImage topic "
                        "(default: the bag's only image topic)")
    parser.add_argument("--camera-info-topic", default="auto",
                        help="CameraInfo topic; 'auto' (default): the image topic's sibling "
                        "camera_info, else the bag's only CameraInfo topic; 'none': use none")
    parser.add_argument("--params-file", help="the pose node's parameter YAML (as passed to "
                        "--ros-args --params-file); default: the node's defaults")
    parser.add_argument("--model", help="student checkpoint (.pt; default: the parameters', "
                        "else the shipped one)")
    parser.add_argument("--device", help="cpu, cuda or auto (default: cpu)")
    parser.add_argument("--backend", choices=("torch", "onnxruntime", "tensorrt"),
                        help="default: the parameters', else torch")
    parser.add_argument("--onnx", help="the model's ONNX export for the ONNX backends "
                        "(default: exported into the cache)")
    parser.add_argument("--fp16", action="store_true", help="float16 on CUDA")
    parser.add_argument("--cpu-threads", type=int, help="CPU threads of the network and "
                        "decoding (default: the parameters', else one per core)")
    parser.add_argument("--threshold", type=float,
                        help="person score threshold (default: the checkpoint's)")
    parser.add_argument("--max-people", type=int, help="default: the checkpoint's")
    parser.add_argument("--input-size", type=int, help="long side of the network input, px "
                        "(default: the parameters', else the checkpoint's)")
    parser.add_argument("--refine-steps", type=int, help="3D-to-2D refinement steps (0: off; "
                        "default: the parameters', else the checkpoint's)")
    parser.add_argument("--fx", type=float, help="fallback focal length in pixels, used when "
                        "there is no usable CameraInfo (default: a 60 deg hfov)")
    parser.add_argument("--fy", type=float, help="fallback fy (default: fx)")
    parser.add_argument("--cx", type=float, help="fallback cx (default: image centre)")
    parser.add_argument("--cy", type=float, help="fallback cy (default: image centre)")
    parser.add_argument("--no-tracking", action="store_true", help="track ids -1")
    parser.add_argument("--debug-image", action="store_true",
                        help=f"also write {DEBUG_TOPIC} (the image with 2D skeletons)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first bad frame (default: skip and count it)")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    fleet.add_arguments(parser)


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
    """(image topic, CameraInfo topic or None) from a bag's ``bags.bag_topics``; ReplayError
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


# --------------------------------------------------------------------------- configuration


def node_config(args: argparse.Namespace) -> Any:
    """The pose node's configuration for this replay: ``--params-file`` (the node's YAML; the
    first node section, usually ``/**``), then the options given on the command line."""
    from mp3d_ros.pose_config import config_from_values, read_params_file

    values: dict[str, object] = {"device": "cpu"}
    try:
        if args.params_file:
            values.update(read_params_file(args.params_file))
        given = {"model": args.model, "device": args.device, "backend": args.backend,
                 "onnx": args.onnx, "fp16": args.fp16 or None, "cpu_threads": args.cpu_threads,
                 "peak_threshold": args.threshold,
                 "max_people": args.max_people, "input_size": args.input_size,
                 "refine_steps": args.refine_steps, "fallback_fx": args.fx, "fallback_fy": args.fy,
                 "fallback_cx": args.cx, "fallback_cy": args.cy}
        values.update({k: v for k, v in given.items() if v is not None})
        if args.no_tracking:
            values["tracking"] = False
        values["publish_debug_image"] = bool(args.debug_image)
        return config_from_values(values)
    except (TypeError, ValueError) as exc:
        raise ReplayError(f"bad parameters: {exc}") from exc


def _canonical(store: Any, raw: bytes, msgtype: str) -> bytes:
    """The same message re-serialised by rosbags, which zeroes CDR alignment padding; rclpy's
    serialiser leaves whatever was in memory there, so equal messages would differ in bytes."""
    return bytes(store.serialize_cdr(store.deserialize_cdr(raw, msgtype), msgtype))


def load_estimator(cfg: Any) -> Any:
    """The Estimator of the node configuration ``cfg``; ReplayError when it cannot be loaded."""
    from mp3d_ros.frame_pipeline import make_estimator

    try:
        return make_estimator(cfg)
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        raise ReplayError(f"cannot load the model: {exc}") from exc


class DepthIndex:
    """The depth images of a bag's ``depth_topic`` by header stamp: :meth:`near` gives the one
    within ``tolerance_s`` of a colour image's stamp, as the live node matches them (by stamp,
    never by arrival or bag order). No depth_topic: always None."""

    def __init__(self, bag: Path, topic: str, tolerance_s: float, topics: dict[str, Any]) -> None:

        self.reader = None
        if not topic:
            return
        if topic not in topics:
            raise ReplayError(f"depth_topic {topic!r} is not in the bag; the bag's topics: "
                              f"{_topic_list(topics)}")
        self.reader = bags.TopicReader(bag, topic)
        self.tolerance_ns = tolerance_s * 1e9

    def near(self, stamp: int) -> Any:
        import numpy as np

        if self.reader is None or not len(self.reader):
            return None
        gaps = np.abs(self.reader.stamp_ns - stamp)
        i = int(np.argmin(gaps))
        return self.reader.message(i) if gaps[i] <= self.tolerance_ns else None


def _deserialize(store: Any, raw: bytes, msgtype: str) -> tuple[Any, Any]:
    """(message, None), or (None, BadFrameError 'bad_message') for bytes that do not decode."""
    from mp3d_ros.frame_pipeline import BadFrameError

    try:
        return store.deserialize_cdr(raw, msgtype), None
    except Exception as exc:  # noqa: BLE001 - rosbags raises many types for garbled CDR
        return None, BadFrameError("bad_message", f"cannot deserialise {msgtype}: "
                                              f"{type(exc).__name__}: {exc}")


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="replay", disable=not enabled, file=sys.stderr)


# --------------------------------------------------------------------------- the replay


def replay(in_bag: str | Path, out_bag: str | Path, args: argparse.Namespace, *,
           estimator: Any = None, progress: Any = None) -> dict[str, Any]:
    """Run the replay described by ``args`` (see :func:`add_arguments`); returns a summary.
    Raises ReplayError (or bags.BagError) before anything is written when the input is unusable,
    and at the first bad frame with ``--strict``. ``estimator``: one already loaded for the same
    options (the fleet's workers load it once for many bags); ``progress``: counts the images
    instead of a tqdm bar (``update(n)``, ``close()``)."""
    from rclpy.serialization import serialize_message

    from mp3d_ros.frame_pipeline import BadFrameError, FramePipeline, stamp_ns

    src, dst = Path(in_bag).resolve(), Path(out_bag).resolve()
    if dst == src or src in dst.parents:
        raise ReplayError(f"the output {dst} must lie outside the input bag {src}")
    if dst.exists():
        raise ReplayError(f"{dst} exists already; the replay never overwrites a bag")
    try:
        topics = bags.bag_topics(src)
    except bags.TruncatedBagError as exc:
        raise ReplayError(f"the input bag is truncated: {exc}. Repair it first with "
                          f"`mp3d bag recover {src}`") from exc
    image_topic, info_topic = choose_topics(topics, args.image_topic, args.camera_info_topic)
    cfg = node_config(args)
    store = bags.default_typestore()
    if estimator is None:
        estimator = load_estimator(cfg)

    for note in estimator.notes:
        print(f"warning: {note}", file=sys.stderr)

    def warn(kind: str, text: str) -> None:
        print(f"warning: {kind}: {text} (once; counted in the summary)", file=sys.stderr)

    pipeline = FramePipeline(estimator, cfg, image_topic, warn)
    depths = DepthIndex(src, cfg.depth_topic, cfg.depth_sync_tolerance_s, topics)
    tf_type = None
    if cfg.publish_tf or cfg.hri:  # hri: the body frames too (its /humans topics are not written)
        from mp3d_ros.pose_node import require_tf2_msgs

        try:
            require_tf2_msgs()
        except ValueError as exc:
            raise ReplayError(str(exc)) from exc
        from tf2_msgs import msg as tf2

        tf_type = tf2.TFMessage
    wanted = [image_topic] + ([info_topic] if info_topic else [])
    frames = people_total = 0
    skipped: Counter[str] = Counter()
    started = time.perf_counter()
    infer_s = 0.0
    with bags.BagWriter(dst, custom_data={"mp3d.replay.source": str(src),
                                           "mp3d.replay.model": str(estimator.path)}) as writer:
        for name in wanted:
            t = topics[name]
            writer.add_topic(name, t.msgtype, [bags.qos_dict(t.reliability or "reliable",
                                                              t.durability or "volatile")])
        outputs = [(PEOPLE_TOPIC, PEOPLE_TYPE)]
        outputs += [(MARKERS_TOPIC, MARKERS_TYPE)] if cfg.markers.enabled else []
        outputs += [(DEBUG_TOPIC, DEBUG_TYPE)] if cfg.publish_debug_image else []
        outputs += [(TF_TOPIC, TF_TYPE)] if tf_type is not None else []
        for name, msgtype in outputs:
            writer.add_topic(name, msgtype, [bags.qos_dict()])
        bar = progress if progress is not None else _progress(
            topics[image_topic].message_count, not args.no_progress)
        try:
            for topic, msgtype, log_ns, raw in _messages(bags.read_raw(src, wanted)):
                msg, problem = _deserialize(store, raw, msgtype)
                stamp = stamp_ns(msg.header) if msg is not None else log_ns
                writer.write(topic, msgtype, raw, stamp)  # the copy, at its header stamp
                if topic != image_topic:
                    if msg is None:
                        pipeline.note("bad_camera_info", str(problem))
                    else:
                        pipeline.on_camera_info(msg)
                    continue
                bar.update(1)
                if problem is None:
                    t0 = time.perf_counter()
                    try:
                        result = pipeline.process(msg, depths.near(stamp))
                    except BadFrameError as exc:
                        problem = exc
                    infer_s += time.perf_counter() - t0
                if problem is not None:
                    skipped[problem.reason] += 1
                    if args.strict:
                        raise ReplayError(f"image {frames + sum(skipped.values()) - 1} (stamp "
                                          f"{stamp} ns) of {topic}: {problem}; --strict: "
                                          f"stopped, {dst} holds the frames before it")
                    continue
                writer.write(PEOPLE_TOPIC, PEOPLE_TYPE, _canonical(
                    store, serialize_message(result.people_msg), PEOPLE_TYPE), stamp)
                if result.markers is not None:
                    writer.write(MARKERS_TOPIC, MARKERS_TYPE, _canonical(
                        store, serialize_message(result.markers), MARKERS_TYPE), stamp)
                if result.debug_image is not None:
                    writer.write(DEBUG_TOPIC, DEBUG_TYPE, _canonical(
                        store, serialize_message(result.debug_image), DEBUG_TYPE), stamp)
                if result.transforms:
                    writer.write(TF_TOPIC, TF_TYPE, _canonical(store, serialize_message(
                        tf_type(transforms=result.transforms)), TF_TYPE), stamp)
                frames += 1
                people_total += len(result.people)
        finally:
            bar.close()
    wall = time.perf_counter() - started
    return {"in_bag": str(src), "out_bag": str(dst), "image_topic": image_topic,
            "camera_info_topic": info_topic, "backend": estimator.describe(), "frames": frames,
            "people": people_total,
            "skipped": dict(sorted(skipped.items())),
            "warnings": dict(sorted(pipeline.notes.items())),
            "seconds": round(wall, 3), "fps": round(frames / wall, 2) if wall > 0 else None,
            "inference_fps": round(frames / infer_s, 2) if infer_s > 0 else None}


def _messages(it: Iterator[tuple[str, str, int, bytes]]) -> Iterator[tuple[str, str, int, bytes]]:
    """Pass bag messages through, turning read errors mid-bag into ReplayError."""

    try:
        yield from it
    except bags.BagError as exc:
        raise ReplayError(f"reading the input bag failed: {exc}") from exc


def fleet_replayer() -> fleet.Replayer:
    """What :mod:`mp3d_ros.fleet` calls of this module (handed in, never imported by it)."""
    if __name__ == "__main__":  # `python -m mp3d_ros.replay`: workers need importable names
        import importlib

        return importlib.import_module("mp3d_ros.replay").fleet_replayer()
    return fleet.Replayer(config=node_config, load=load_estimator, replay=replay,
                          choose_topics=choose_topics, input_errors=(ReplayError, bags.BagError))


def run(args: argparse.Namespace) -> int:
    """Replay ``IN_BAG`` into ``OUT_BAG``; prints a JSON summary line (and a line counting skipped
    frames on stderr), returns the exit status (2 with an ``error:`` line on stderr when the bag
    cannot be replayed). With ``--out DIR``: many bags, by :func:`mp3d_ros.fleet.run`."""
    if args.out is not None:
        return fleet.run(args, fleet_replayer())
    if len(args.bags) != 2 or fleet.uses_fleet_options(args):
        print("error: give IN_BAG OUT_BAG, or input bags with --out DIR (needed by --workers, "
              "--ray, --overwrite and --retries)", file=sys.stderr)
        return EXIT_ERROR
    args.in_bag, args.out_bag = args.bags
    try:
        summary = replay(args.in_bag, args.out_bag, args)
    except (ReplayError, bags.BagError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if summary["skipped"]:
        total = summary["frames"] + sum(summary["skipped"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in summary["skipped"].items())
        print(f"skipped {sum(summary['skipped'].values())} of {total} frames: {reasons}",
              file=sys.stderr)
    print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Console script ``mp3d_replay``: ``argv`` without the program name (default sys.argv[1:])."""
    parser = argparse.ArgumentParser(prog="mp3d_replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
