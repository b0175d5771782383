"""Load and soak test of the live pose node: FRAMES images from a bag, played as fast as the
player can, into a real node process, watched over DDS.

    python scripts/soak_node.py [--frames 10000] [--size 320x240] [--rate 2] [--json]

The bag is made from the bundled demo clip (60 JPEG frames, resized, cycled, fresh stamps at
30 Hz), played at ``--rate`` times that (default 2: 60 Hz, the fastest cameras robots carry;
``--rate 1000`` is as fast as the player can, where DDS itself overwrites what the node's
subscription queue cannot hold: reported as lost in transport). The node runs with reliable QoS
and a deep subscription queue, so at camera rates no frame is lost in transport. While it runs, the
node's resident memory (VmRSS) is sampled twice a second. At the end it prints: frames
published, received, answered (published people) and dropped by reason; frames neither
answered nor counted (must be 0); RSS after warm-up (the first 20% of the run) and its growth
to the end (must stay within 5%); the node's latency (image in to people out; no queue growth
means it stays near the processing time). Exit status 0 when every check holds, 1 otherwise.
Run it after ``. scripts/env.sh``; CI runs a reduced version (test_soak.py).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
CONFIG = REPO / "mp3d_ros" / "config" / "pose_node.yaml"
HZ = 30
T0 = 1_700_000_000 * 10**9
WARMUP = 0.2
RSS_LIMIT_PCT = 5.0


def make_bag(out: Path, frames: int, width: int, height: int) -> None:
    """FRAMES CompressedImages (the demo clip, resized, cycled) and CameraInfos at HZ."""
    import cv2
    from builtin_interfaces.msg import Time
    from mp3d.geometry import Intrinsics
    from mp3d.imagecodec import compressed_to_rgb
    from mp3d_ros.image_conversion import rgb_to_compressed
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import CameraInfo
    from std_msgs.msg import Header

    from mp3d_ros import bagio

    pictures = [rgb_to_compressed(cv2.resize(compressed_to_rgb(m), (width, height),
                                             interpolation=cv2.INTER_AREA), "jpeg")
                for _, _, _, m in bagio.read_messages(CLIP, ["/image/compressed"])]
    k = Intrinsics.from_fov(width, height, 60.0).K.ravel().tolist()
    with bagio.BagWriter(out) as writer:
        for i in range(frames):
            ns = T0 + i * 10**9 // HZ
            header = Header(stamp=Time(sec=ns // 10**9, nanosec=ns % 10**9),
                            frame_id="camera_optical_frame")
            info = CameraInfo(header=header, width=width, height=height, k=k)
            writer.write("/camera_info", "sensor_msgs/msg/CameraInfo", serialize_message(info),
                         ns)
            img = pictures[i % len(pictures)]
            img.header = header
            writer.write("/image/compressed", "sensor_msgs/msg/CompressedImage",
                         serialize_message(img), ns)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def soak(frames: int, width: int, height: int, rate: float) -> dict:
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from mp3d_msgs.msg import Person3DArray

    env = {**os.environ, "ROS_DOMAIN_ID": str(random.randint(102, 200)),
           "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "soak"
        t = time.monotonic()
        make_bag(bag, frames, width, height)
        made_s = time.monotonic() - t
        node = subprocess.Popen(
            [sys.executable, "-m", "mp3d_ros.pose_node", "--ros-args", "--params-file",
             str(CONFIG), "-p", "device:=cpu", "-p", "image_transport:=compressed",
             "-p", "image_reliability:=reliable", "-p", "image_queue_depth:=100",
              "-r", "image/compressed:=/image/compressed"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ctx = Context()
        rclpy.init(context=ctx, domain_id=int(env["ROS_DOMAIN_ID"]))
        lis = Node("soak_listener", context=ctx)
        ex = SingleThreadedExecutor(context=ctx)
        ex.add_node(lis)
        people, diags, rss = [], [], []
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        lis.create_subscription(Person3DArray, "/people", lambda m: people.append(1), qos)
        lis.create_subscription(DiagnosticArray, "/diagnostics", lambda m: diags.extend(
            {kv.key: kv.value for kv in s.values} for s in m.status
            if s.name.startswith("pose_node")), qos)

        def spin(seconds: float, until=lambda: False) -> None:
            end, next_sample = time.monotonic() + seconds, 0.0
            while time.monotonic() < end and not until():
                if node.poll() is not None:
                    raise RuntimeError(f"the node died: {node.communicate()[1][-2000:]}")
                ex.spin_once(timeout_sec=0.05)
                if time.monotonic() >= next_sample:
                    rss.append((time.monotonic(), rss_mb(node.pid)))
                    next_sample = time.monotonic() + 0.5

        try:
            spin(60, lambda: lis.count_publishers("/people") > 0)
            start = time.monotonic()
            play = subprocess.Popen(
                [sys.executable, "-m", "mp3d_ros.player", str(bag), "--rate", str(rate),
                 "--wait-for-subscribers", "20"], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            spin(3600, lambda: play.poll() is not None)
            out, err = play.communicate()
            if play.returncode != 0:
                raise RuntimeError(f"the player failed: {err[-2000:]}")
            published = json.loads(out.strip().splitlines()[-1])["published"]
            # until the node has gone quiet: two diagnostics with nothing in or out
            spin(60, lambda: len(diags) >= 2 and all(
                x["input_rate_hz"] == x["output_rate_hz"] == "0.00" for x in diags[-2:]))
            wall = time.monotonic() - start
        finally:
            node.terminate()
            node_err = node.communicate(timeout=30)[1]
            lis.destroy_node()
            rclpy.try_shutdown(context=ctx)
    d = diags[-1]
    drops = {k: int(d[k]) for k in ("dropped_replaced", "dropped_rate_limit", "bad_image",
                                    "estimator_error", "processing_error")}
    sent = published.get("/image/compressed", 0)
    samples = [(t, v) for t, v in rss if v is not None and t >= start]
    warm = [v for t, v in samples if t >= start + WARMUP * wall]
    growth = 100.0 * (warm[-1] - warm[0]) / warm[0] if len(warm) >= 2 else float("nan")
    busy = [x for x in diags if float(x["output_rate_hz"]) > 0]
    summary = {
        "frames": frames, "size": f"{width}x{height}", "rate_hz": HZ * rate,
        "bag_s": round(made_s, 1),
        "published": sent, "received": int(d["frames_in"]), "answered": int(d["frames_out"]),
        "people_messages": len(people), "dropped": drops,
        "unaccounted": int(d["frames_in"]) - int(d["frames_out"]) - sum(drops.values()),
        "lost_in_transport": sent - int(d["frames_in"]),
        "rss_mb_after_warmup": round(warm[0], 1) if warm else None,
        "rss_mb_end": round(warm[-1], 1) if warm else None,
        "rss_mb_max": round(max(warm), 1) if warm else None,
        "rss_growth_pct": round(growth, 2),
        "processing_ms_mean": round(sum(float(x["processing_ms_mean"]) for x in busy)
                                    / max(len(busy), 1), 1),
        "latency_ms_max": max((float(x["latency_ms_max"]) for x in busy), default=0.0),
        "output_hz_mean": round(sum(float(x["output_rate_hz"]) for x in busy)
                                / max(len(busy), 1), 2),
        "wall_s": round(wall, 1), "node_traceback": "Traceback" in node_err}
    summary["ok"] = (summary["unaccounted"] == 0
                     and (summary["lost_in_transport"] == 0 or rate > 10)
                     and summary["answered"] == summary["people_messages"]
                     and abs(growth) <= RSS_LIMIT_PCT and not summary["node_traceback"])
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--size", default="320x240", help="WxH of the played images")
    ap.add_argument("--rate", type=float, default=2.0,
                    help=f"playback speed factor on the bag's {HZ} Hz")
    ap.add_argument("--json", action="store_true", help="only the JSON summary line")
    a = ap.parse_args(argv)
    width, height = (int(v) for v in a.size.lower().split("x"))
    s = soak(a.frames, width, height, a.rate)
    if not a.json:
        print(f"published {s['published']} frames ({s['size']}, {s['rate_hz']:g} Hz) in "
              f"{s['wall_s']} s; the node "
              f"received {s['received']}, answered {s['answered']} "
              f"({s['output_hz_mean']} Hz), dropped {s['dropped']}, unaccounted "
              f"{s['unaccounted']}, lost in transport {s['lost_in_transport']}")
        print(f"RSS after warm-up {s['rss_mb_after_warmup']} MB, at the end {s['rss_mb_end']} "
              f"MB (growth {s['rss_growth_pct']}%, limit {RSS_LIMIT_PCT}%), max "
              f"{s['rss_mb_max']} MB; processing {s['processing_ms_mean']} ms per frame, "
              f"latency max {s['latency_ms_max']:.0f} ms")
        print("ok" if s["ok"] else "FAILED")
    print(json.dumps(s))
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
