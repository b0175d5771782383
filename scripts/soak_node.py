"""Load and soak test of the live pose node: FRAMES images from a bag, played as fast as the
player can, into a real node process, watched over DDS (machinery: mp3d_ros.node_load).

    python scripts/soak_node.py [--frames 10000] [--size 320x240] [--rate 2] [--json]

The bag is made from the bundled demo clip (60 JPEG frames, resized, cycled, fresh stamps at
30 Hz), played at ``--rate`` times that (default 2: 60 Hz, the fastest cameras robots carry;
``--rate 1000`` is as fast as the player can, where DDS itself overwrites what the node's
subscription queue cannot hold: reported as lost in transport). The node runs with reliable QoS
and a deep subscription queue, so at camera rates no frame is lost in transport. While it runs, the
node's resident memory (VmRSS) is sampled twice a second. At the end it prints: frames
published, received, answered (published people) and dropped by reason; frames neither
answered nor counted (must be 0); RSS after warm-up (the first 20% of the time from the node's
first answer to the end) and its growth to the end (must stay within 5%); the node's latency
(image in to people out; no queue growth means it stays near the processing time) and the
player-to-people latency (p50, p95). Exit status 0 when every check holds, 1 otherwise.
Run it after ``. scripts/env.sh``; CI runs a reduced version (test_soak.py). Node throughput at
several rates and backends: scripts/bench_node.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from mp3d_ros.node_load import HZ, load_run

RSS_LIMIT_PCT = 5.0


def soak(frames: int, width: int, height: int, rate: float) -> dict:
    """One load run (mp3d_ros.node_load.load_run) and whether every soak check holds ("ok")."""
    s = load_run(frames, width, height, rate)
    s["ok"] = (s["unaccounted"] == 0
               and (s["lost_in_transport"] == 0 or rate > 10)
               and s["answered"] == s["people_messages"]
               and abs(s["rss_growth_pct"]) <= RSS_LIMIT_PCT and not s["node_traceback"])
    return s


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
              f"({s['output_hz']} Hz), dropped {s['dropped']}, unaccounted "
              f"{s['unaccounted']}, lost in transport {s['lost_in_transport']}")
        print(f"RSS after warm-up {s['rss_mb_after_warmup']} MB, at the end {s['rss_mb_end']} "
              f"MB (growth {s['rss_growth_pct']}%, limit {RSS_LIMIT_PCT}%), max "
              f"{s['rss_mb_max']} MB; processing {s['processing_ms_mean']} ms per frame, "
              f"latency mean {s['latency_ms_mean']:.0f} ms, max {s['latency_ms_max']:.0f} ms; "
              f"player to people p50 {s['player_to_people_ms_p50']} ms, p95 "
              f"{s['player_to_people_ms_p95']} ms")
        print("ok" if s["ok"] else "FAILED")
    print(json.dumps(s))
    return 0 if s["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
