"""`mp3d eval lifting` on the shipped prior and P, with the supervised peer, in a tiny run."""

import json
import subprocess
import sys

import numpy as np
from mp3d.eval.lifting import match

KEYS = ("recall", "precision", "mpjpe_mm", "pa_mpjpe_mm", "pck150", "auc", "root_depth_err_m",
        "conf_auc", "conf_auc_hidden", "conf_mean_truncated", "conf_mean_visible")


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
    # The shipped P's per-joint confidence tells right joints from wrong ones, and hidden
    # (truncated) joints score lower than visible ones.
    assert res["conf_auc"] > 0.7, res["conf_auc"]
    assert res["conf_mean_truncated"] < res["conf_mean_visible"] - 0.1
    assert (tmp_path / "peer.pt").exists()  # the trained peer is saved and reused next time


def test_joint_confidence_target():
    import torch
    from mp3d.common import skeleton as sk
    from mp3d.eval.metrics import joint_right
    from mp3d.train.losses import joint_conf_loss

    gt = torch.from_numpy(sk.REST_POSE[None]).float()
    pred = gt.clone()
    pred[0, sk.INDEX["r_wrist"]] += torch.tensor([0.5, 0.0, 0.0])  # far beyond 15% of height
    right = joint_right(pred, gt, 0.15)
    assert right.sum() == 16 and not right[0, sk.INDEX["r_wrist"]]
    visible = torch.ones(1, 17, dtype=torch.bool)
    visible[0, sk.INDEX["l_ankle"]] = False
    # The best logits: +inf for right and visible, -inf for wrong, logit(0.25) for right but
    # hidden; any other confidence costs more.
    best = torch.full((1, 17), 20.0)
    best[0, sk.INDEX["r_wrist"]] = -20.0
    best[0, sk.INDEX["l_ankle"]] = float(np.log(0.25 / 0.75))
    worse = best.clone()
    worse[0, sk.INDEX["l_ankle"]] = 20.0
    assert joint_conf_loss(best, pred, gt, visible, 0.15, 0.25) < joint_conf_loss(
        worse, pred, gt, visible, 0.15, 0.25)


def test_matching_is_greedy_by_score_and_gated_by_size():
    pred = np.array([[10.0, 10.0], [12.0, 10.0], [200.0, 200.0]])
    pairs = match(pred, np.array([0.5, 0.9, 0.8]), np.array([[11.0, 10.0], [100.0, 100.0]]),
                  np.array([40.0, 40.0]))
    assert pairs == [(1, 0)]  # the better-scored prediction wins; far ones are not matched
