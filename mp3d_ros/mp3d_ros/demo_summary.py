"""The demo's report: people per frame, the node's rate and latency, and a picture, from the input
clip and the recorded outputs (`python -m mp3d_ros.demo_summary CLIP OUT_BAG --out PNG`)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from mp3d.cli.estimate import picture
    from mp3d.data.bags.reader import read_messages
    from mp3d.data.imagecodec import msg_to_rgb

    from mp3d_ros.conversions import msg_to_people

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("out_bag")
    ap.add_argument("--out", required=True, help="picture (.png)")
    ap.add_argument("--start", type=float, help="demo start (unix time) for the wall time")
    a = ap.parse_args(argv)

    images, people, diags = {}, {}, []
    for _topic, msgtype, _, msg in read_messages(a.clip):
        if msgtype.endswith("CompressedImage") or msgtype.endswith("msg/Image"):
            s = msg.header.stamp
            images[(s.sec, s.nanosec)] = msg
    for topic, _, _, msg in read_messages(a.out_bag):
        if topic == "/people":
            people[(msg.header.stamp.sec, msg.header.stamp.nanosec)] = msg_to_people(msg)
        elif topic == "/diagnostics":
            for st in msg.status:
                diags.append({kv.key: kv.value for kv in st.values})
    matched = [k for k in people if k in images]
    counts = [len(people[k]) for k in sorted(people)]
    ids = sorted({p.track_id for k in people for p in people[k]})
    print(f"input: {len(images)} frames; output: {len(people)} person arrays, every one stamped "
          f"with its image's stamp: {len(matched) == len(people)}")
    if counts:
        print(f"people per frame: mean {np.mean(counts):.2f}, min {min(counts)}, max {max(counts)}"
              f"; {len(ids)} track ids")
    busy = [d for d in diags if float(d.get("output_rate_hz", 0)) > 0]
    if busy:
        lat = np.mean([float(d["processing_ms_mean"]) for d in busy])
        rate = np.mean([float(d["output_rate_hz"]) for d in busy])
        drops = max(int(d.get("dropped_replaced", 0)) for d in diags)
        print(f"pose node: {rate:.1f} frames/s out, processing {lat:.1f} ms per frame (mean), "
              f"{drops} frames dropped as stale; device {busy[-1].get('device')}")
    if matched:
        key = max(matched, key=lambda k: len(people[k]))
        msg = images[key]
        rgb = msg_to_rgb(msg)
        picture(rgb, people[key], a.out)
        print(f"picture: {a.out}")
    print(f"output bag: {a.out_bag} (play it with `mp3d play`, view in RViz: rviz/mp3d.rviz)")
    if a.start:
        print(f"demo wall time: {time.time() - a.start:.1f} s")
    return 0 if people else 1


if __name__ == "__main__":
    sys.exit(main())
