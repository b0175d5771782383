"""Load runs of the live pose node, the machinery of scripts/soak_node.py and bench_node.py: a bag
made from the bundled demo clip, played by ``mp3d_ros.player`` at a chosen rate into a real pose
node process, watched over DDS by a listener in this process; and the figures of one run.

:func:`make_bag` writes the bag: the clip's frames resized, cycled, as JPEG CompressedImages with
CameraInfos, fresh stamps at ``hz``. :func:`play_into_node` starts the node (compressed transport,
reliable QoS, a deep subscription queue, so at camera rates nothing is lost in transport and
every drop is the node's own), waits for it, plays the bag at ``rate`` times its speed, and waits
until the node has gone quiet; meanwhile it samples the node's resident memory twice a second
and records the diagnostics, each people message's stamp and DDS source timestamp (when the node
published it) and each image's source timestamp (when the player published it).
:func:`summarize` turns that into figures: frames published, received, answered and dropped by
reason, output rate, the node's own latency (diagnostics: image received to people published)
and the player-to-people latency per frame (people published minus image published, both DDS
source timestamps on this machine's clock, matched by header stamp), RSS after warm-up (the
first WARMUP of the time from the node's first answer to the end) and its growth.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mp3d.data import bags

PACKAGE = Path(__file__).resolve().parents[1]  # the mp3d_ros package folder of the source tree
CLIP = PACKAGE / "data" / "demo_clip"
CONFIG = PACKAGE / "config" / "pose_node.yaml"
HZ = 30
T0 = 1_700_000_000 * 10**9  # stamp of the bag's first frame (ns)
WARMUP = 0.2  # fraction of the run before RSS counts as warmed up
IMAGE_TOPIC = "/image/compressed"
DROP_KEYS = ("dropped_replaced", "dropped_rate_limit", "bad_image", "estimator_error",
             "processing_error")


def make_bag(out: Path, frames: int, width: int, height: int, hz: float = HZ) -> None:
    """`frames` CompressedImages (the demo clip, resized to width x height, cycled) on
    IMAGE_TOPIC and CameraInfos on /camera_info, stamped from T0 at `hz`."""
    import cv2
    from builtin_interfaces.msg import Time
    from mp3d.common.geometry import Intrinsics
    from mp3d.data.imagecodec import compressed_to_rgb
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    from mp3d_ros.image_conversion import rgb_to_compressed

    pictures = [rgb_to_compressed(cv2.resize(compressed_to_rgb(m), (width, height),
                                             interpolation=cv2.INTER_AREA), "jpeg")
                for _, _, _, m in bags.read_messages(CLIP, [IMAGE_TOPIC])]
    k = Intrinsics.from_fov(width, height, 60.0).K.ravel().tolist()
    with bags.BagWriter(out) as writer:
        for i in range(frames):
            ns = T0 + round(i * 1e9 / hz)
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                            frame_id="camera_optical_frame")
            info = CameraInfo(header=header, width=width, height=height, k=k)
            writer.write("/camera_info", "sensor_msgs/msg/CameraInfo", serialize_message(info),
                         ns)
            img = pictures[i % len(pictures)]
            img.header = header
            writer.write(IMAGE_TOPIC, "sensor_msgs/msg/CompressedImage",
                         serialize_message(img), ns)


def rss_mb(pid: int) -> float | None:
    """Resident memory of process `pid` (MB), None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cdr_stamp_ns(raw: bytes) -> int:
    """Header stamp (ns) of a serialised message that starts with a std_msgs/Header (CDR: a
    4-byte encapsulation, then stamp.sec int32 and stamp.nanosec uint32)."""
    sec, nanosec = struct.unpack_from("<iI" if raw[1] == 1 else ">iI", raw, 4)
    return sec * 10**9 + nanosec


@dataclass
class Observed:
    """What one run showed. people: (header stamp ns, DDS source timestamp ns: when the node
    published); image_sent: header stamp ns -> DDS source timestamp ns (when the player
    published); diags: the node's diagnostics values, in order; rss: (monotonic s, MB or None);
    start and wall: monotonic s when playing began and the run's length (s); first_output:
    monotonic s of the first people message (0.0: none)."""

    people: list[tuple[int, int]] = field(default_factory=list)
    image_sent: dict[int, int] = field(default_factory=dict)
    diags: list[dict[str, str]] = field(default_factory=list)
    rss: list[tuple[float, float | None]] = field(default_factory=list)
    published: dict[str, int] = field(default_factory=dict)
    start: float = 0.0
    wall: float = 0.0
    first_output: float = 0.0
    node_stderr: str = ""


def node_command(params: dict[str, str]) -> list[str]:
    """The pose node listening on IMAGE_TOPIC with the defaults file and `params` (name:=value)
    on top of the load-run settings: CPU, compressed transport, reliable, queue depth 100."""
    settings = {"device": "cpu", "image_transport": "compressed",
                "image_reliability": "reliable", "image_queue_depth": "100", **params}
    cmd = [sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", "--params-file", str(CONFIG)]
    for name, value in settings.items():
        cmd += ["-p", f"{name}:={value}"]
    return cmd + ["-r", f"image/compressed:={IMAGE_TOPIC}"]


def play_into_node(bag: Path, rate: float, params: dict[str, str] | None = None,
                   start_timeout: float = 60.0, quiet_timeout: float = 60.0) -> Observed:
    """Start a pose node (:func:`node_command` with `params`) on a fresh ROS domain, play `bag`
    at `rate` times its speed into it, wait until two diagnostics in a row show nothing in or
    out, stop the node; what the listener saw. RuntimeError when the node or player fails."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage

    from mp3d_msgs.msg import Person3DArray

    env = {**os.environ, "ROS_DOMAIN_ID": str(random.randint(102, 200)), "PYTHONUNBUFFERED": "1"}
    obs = Observed()
    node = subprocess.Popen(node_command(params or {}), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
    lis = Node("load_listener", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(lis)
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)

    def on_people(m: Person3DArray, info) -> None:
        obs.first_output = obs.first_output or time.monotonic()
        obs.people.append((m.header.stamp.sec * 10**9 + m.header.stamp.nanosec,
                           info["source_timestamp"]))

    lis.create_subscription(Person3DArray, "/people", on_people, qos)
    lis.create_subscription(CompressedImage, IMAGE_TOPIC, lambda raw, info: obs.image_sent
                            .setdefault(cdr_stamp_ns(raw), info["source_timestamp"]), qos,
                            raw=True)
    lis.create_subscription(DiagnosticArray, "/diagnostics", lambda m: obs.diags.extend(
        {kv.key: kv.value for kv in s.values} for s in m.status
        if s.name.endswith("pose_node: pose")), qos)

    def spin(seconds: float, until=lambda: False) -> None:
        end, next_sample = time.monotonic() + seconds, 0.0
        while time.monotonic() < end and not until():
            if node.poll() is not None:
                raise RuntimeError(f"the node died: {node.communicate()[1][-2000:]}")
            ex.spin_once(timeout_sec=0.05)
            if time.monotonic() >= next_sample:
                obs.rss.append((time.monotonic(), rss_mb(node.pid)))
                next_sample = time.monotonic() + 0.5

    try:
        spin(start_timeout, lambda: lis.count_publishers("/people") > 0)
        obs.start = time.monotonic()
        play = subprocess.Popen(
            [sys.executable, "-m", "mp3d_ros.player", str(bag), "--rate", str(rate),
             "--wait-for-subscribers", "20"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        spin(36000, lambda: play.poll() is not None)
        out, err = play.communicate()
        if play.returncode != 0:
            raise RuntimeError(f"the player failed: {err[-2000:]}")
        obs.published = json.loads(out.strip().splitlines()[-1])["published"]
        spin(quiet_timeout, lambda: len(obs.diags) >= 2 and all(
            x["input_rate_hz"] == x["output_rate_hz"] == "0.00" for x in obs.diags[-2:]))
        obs.wall = time.monotonic() - obs.start
    finally:
        node.terminate()
        obs.node_stderr = node.communicate(timeout=30)[1]
        lis.destroy_node()
        rclpy.try_shutdown(context=ctx)
    return obs


def _weighted(diags: list[dict[str, str]], key: str) -> float:
    """Mean of a per-second diagnostics value over the seconds with output, weighted by the
    frames answered in each."""
    w = np.array([float(x["output_rate_hz"]) for x in diags])
    v = np.array([float(x[key]) for x in diags])
    return float((w * v).sum() / w.sum()) if w.sum() > 0 else 0.0


def summarize(obs: Observed) -> dict:
    """Figures of one run (see the module docstring): counts from the last diagnostics, rates,
    latencies (ms), memory (MB)."""
    d = obs.diags[-1]
    drops = {k: int(d[k]) for k in DROP_KEYS}
    sent = obs.published.get(IMAGE_TOPIC, 0)
    # Warm-up: the first WARMUP of the time the node is at work, from its first answer (the
    # first frames allocate the runtime's buffers; the player's own start-up takes seconds).
    first = obs.first_output or obs.start
    end = obs.start + obs.wall
    warm = [v for t, v in obs.rss if v is not None and t >= first + WARMUP * (end - first)]
    growth = 100.0 * (warm[-1] - warm[0]) / warm[0] if len(warm) >= 2 else float("nan")
    busy = [x for x in obs.diags if float(x["output_rate_hz"]) > 0]
    lat = np.array([(pub - obs.image_sent[stamp]) / 1e6 for stamp, pub in obs.people
                    if stamp in obs.image_sent])
    out_ns = sorted(pub for _, pub in obs.people)
    span = (out_ns[-1] - out_ns[0]) / 1e9 if len(out_ns) >= 2 else 0.0
    return {
        "published": sent, "received": int(d["frames_in"]), "answered": int(d["frames_out"]),
        "people_messages": len(obs.people), "dropped": drops,
        "unaccounted": int(d["frames_in"]) - int(d["frames_out"]) - sum(drops.values()),
        "lost_in_transport": sent - int(d["frames_in"]),
        "rss_mb_after_warmup": round(warm[0], 1) if warm else None,
        "rss_mb_end": round(warm[-1], 1) if warm else None,
        "rss_mb_max": round(max(warm), 1) if warm else None,
        "rss_growth_pct": round(growth, 2),
        "processing_ms_mean": round(_weighted(busy, "processing_ms_mean"), 1),
        "latency_ms_mean": round(_weighted(busy, "latency_ms_mean"), 1),
        "latency_ms_max": max((float(x["latency_ms_max"]) for x in busy), default=0.0),
        "output_hz_mean": round(sum(float(x["output_rate_hz"]) for x in busy)
                                / max(len(busy), 1), 2),
        "output_hz": round((len(out_ns) - 1) / span, 2) if span > 0 else 0.0,
        "player_to_people_ms_p50": round(float(np.median(lat)), 1) if len(lat) else None,
        "player_to_people_ms_p95": round(float(np.percentile(lat, 95)), 1) if len(lat) else None,
        "player_to_people_ms_max": round(float(lat.max()), 1) if len(lat) else None,
        "backend_reported": d.get("backend"),
        "wall_s": round(obs.wall, 1), "node_traceback": "Traceback" in obs.node_stderr}


def load_run(frames: int, width: int, height: int, rate: float,
             params: dict[str, str] | None = None, bag: Path | None = None) -> dict:
    """Make a bag (unless `bag` is given: one made by :func:`make_bag` at HZ), play it at `rate`
    times HZ into a node with `params`, and summarize; adds frames, size, rate_hz, bag_s."""
    with tempfile.TemporaryDirectory() as tmp:
        made_s = 0.0
        if bag is None:
            bag = Path(tmp) / "load"
            t = time.monotonic()
            make_bag(bag, frames, width, height)
            made_s = time.monotonic() - t
        obs = play_into_node(bag, rate, params)
    return {"frames": frames, "size": f"{width}x{height}", "rate_hz": HZ * rate,
            "bag_s": round(made_s, 1), **summarize(obs)}
