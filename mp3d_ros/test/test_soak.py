"""The soak script (scripts/soak_node.py), reduced: 300 frames at 60 Hz into the live node.

Every frame the player published reaches the node and is answered or counted as dropped, the
node's memory stays flat after warm-up, no traceback. The full run (10,000 frames) is on demand:
``python scripts/soak_node.py``.
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
