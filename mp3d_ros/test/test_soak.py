"""The soak script (scripts/soak_node.py), reduced: 300 frames at 60 Hz into the live node; and a
short smoke run of the node benchmark (scripts/bench_node.py). Both over mp3d_ros.node_load.

Every frame the player published reaches the node and is answered or counted as dropped, the
node's memory stays flat after warm-up, no traceback. The full run (10,000 frames) is on demand:
``python scripts/soak_node.py``; so is the benchmark at 15, 30 and 60 Hz per backend.
"""

import json
import subprocess
import sys

from conftest import REPO


def test_reduced_soak_accounts_for_every_frame_and_memory_is_flat(ros_env):
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "soak_node.py"), "--frames",
                          "300", "--json"], env=ros_env, capture_output=True, text=True,
                         timeout=300)
    s = json.loads(res.stdout.strip().splitlines()[-1])
    assert res.returncode == 0 and s["ok"], (s, res.stderr[-2000:])
    assert s["published"] == s["received"] == 300
    assert s["answered"] + sum(s["dropped"].values()) == 300 and s["unaccounted"] == 0
    assert s["answered"] == s["people_messages"] >= 10
    assert abs(s["rss_growth_pct"]) <= 5.0
    # no queue growth: a frame waits at most for the one in progress (and a diagnostics tick)
    assert s["latency_ms_max"] < 3 * s["processing_ms_mean"] + 1000, s
    # the player-to-people latency covers at least the node's own (receive to publish) time
    assert 0 < s["player_to_people_ms_p50"] <= s["player_to_people_ms_p95"], s
    assert s["player_to_people_ms_max"] >= 0.5 * s["processing_ms_mean"], s
    assert s["backend_reported"].startswith("torch"), s


def test_node_benchmark_smoke(ros_env):
    res = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_node.py"), "--rates",
                          "15", "--frames", "60", "--backends", "onnxruntime", "--size",
                          "320x240", "--json"], env=ros_env, capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    (run,) = out["runs"]
    assert run["backend"] == "onnxruntime" and run["rate_hz"] == 15
    assert run["backend_reported"].startswith("onnxruntime"), run
    assert run["received"] == 60 and run["unaccounted"] == 0 and run["output_hz"] > 0, run
    assert run["latency_ms_mean"] > 0 and run["player_to_people_ms_p50"] > 0, run
    assert out["machine"]["cores"] >= 1
    assert any(line.startswith("onnxruntime") for line in res.stdout.splitlines())
