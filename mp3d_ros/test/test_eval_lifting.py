"""`mp3d eval lifting` on the shipped prior and P, with the supervised peer, in a tiny run."""

import json
import subprocess
import sys

import numpy as np
from mp3d.eval_lifting import match

KEYS = ("recall", "precision", "mpjpe_mm", "pa_mpjpe_mm", "pck150", "auc", "root_depth_err_m")


def test_eval_lifting_json_with_the_peer(lafan1_paths, tmp_path):
    out = subprocess.run([sys.executable, "-m", "mp3d.cli", "eval", "lifting", "--bvh",
                          str(lafan1_paths["test2.bvh"]), "--people", "1..3", "--scenes", "4",
                          "--baseline", "--baseline-train", str(lafan1_paths["test.bvh"]),
                          "--baseline-ckpt", str(tmp_path / "peer.pt"), "--baseline-steps", "5",
                          "--json"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for key in KEYS + ("baseline_mpjpe_mm", "baseline_pa_mpjpe_mm", "baseline_pck150"):
        assert key in res, key
    assert 0.5 <= res["recall"] <= 1 and 0.5 <= res["precision"] <= 1
    assert 0 < res["pa_mpjpe_mm"] < res["mpjpe_mm"] < 400
    assert set(res["per_people"]) == {"1", "2", "3"}
    assert (tmp_path / "peer.pt").exists()  # the trained peer is saved and reused next time


def test_matching_is_greedy_by_score_and_gated_by_size():
    pred = np.array([[10.0, 10.0], [12.0, 10.0], [200.0, 200.0]])
    pairs = match(pred, np.array([0.5, 0.9, 0.8]), np.array([[11.0, 10.0], [100.0, 100.0]]),
                  np.array([40.0, 40.0]))
    assert pairs == [(1, 0)]  # the better-scored prediction wins; far ones are not matched
