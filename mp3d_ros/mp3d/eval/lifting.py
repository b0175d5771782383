"""`mp3d eval lifting`: 2D to 3D on synthetic scenes built from held-out motion.

Scenes carry teacher-like corruption. The ground-truth people are those whose root projects into
the image. Two lifters are scored on them, and optionally the supervised peer:

- **student**: the deployed path, the student's person head (`--model`) on each person the
  simulated teacher found, from that person's own teacher keypoints and a detector-like box
  (mp3d.data.scenes.batch.person_boxes; no image: the head's features are zeros), then the
  refinement against those keypoints (mp3d.model.refine; `--refine-steps`, default the
  checkpoint's). Its recall is the share of people the teacher found (a person the teacher
  misses has no anchor); every found person is matched to its truth by construction.
- **P**: the pose-map network and the map decoder on the whole scene's heatmaps; predictions are
  matched greedily, best score first, to the nearest unmatched person whose root lies within
  max(min_px, frac * 2D size) of the predicted root.

Root-relative metrics (MPJPE, PA-MPJPE, 3DPCK@150 mm and AUC on the 14 MuPoTS joints) are over
matched people; root depth error over matched people too. `--baseline`: the supervised peer
(Martinez et al.) on the same teacher-found people.

Per-joint confidence (as the Estimator reports it: P's confidence branch, scaled down where the
joint projects outside the image, `mp3d.model.personmaps.seen_confidence`): a joint is "right" when
its root-relative error is within `conf_frac` (0.15) of the person's body height
(`mp3d.train.losses.joint_right`). Reported: the area
under the ROC of confidence against right, over all joints of matched people (`conf_auc`) and over
the joints that the scene truncated (outside the image) or occluded (behind a closer person),
together with the visible joints of the same people (`conf_auc_hidden`: does confidence tell the
hidden joints that went wrong from the rest), plus the mean confidence of truncated, occluded and
visible joints.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from mp3d.common import skeleton as sk
from mp3d.eval import metrics

MATCH_MIN_PX = 8.0
MATCH_FRAC = 0.25


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mp3d.common.paths import default_model

    p.add_argument("--bvh", required=True, help="held-out motion: BVH file/folder or .npz")
    p.add_argument("--prior", default=str(default_model("prior.pt")))
    p.add_argument("--posemap", default=str(default_model("posemap.pt")))
    p.add_argument("--model", default=str(default_model("student.pt")),
                   help="student checkpoint whose person head and refinement are scored")
    p.add_argument("--refine-steps", type=int, help="refinement steps (default: the model's)")
    p.add_argument("--people", default="1..8", help="people per scene: N or A..B")
    p.add_argument("--scenes", type=int, default=60, help="scenes per number of people")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--baseline", action="store_true",
                   help="also train (or load) the supervised lifting peer and evaluate it")
    p.add_argument("--baseline-train", nargs="+",
                   help="training motion for the peer (BVH or .npz, one or more); "
                   "default: the posemap checkpoint's training motion")
    p.add_argument("--baseline-ckpt", default="runs/baseline/baseline.pt",
                   help="peer checkpoint: loaded if it exists, else trained and saved here")
    p.add_argument("--baseline-steps", type=int, default=3000)
    p.add_argument("--conf-frac", type=float, default=0.15,
                   help="a joint is right within this fraction of body height (confidence AUC)")
    p.add_argument("--json", action="store_true", help="last line: one JSON object")


def parse_people(s: str) -> list[int]:
    if ".." in s:
        a, b = s.split("..")
        return list(range(int(a), int(b) + 1))
    return [int(s)]


def match(pred_root: np.ndarray, pred_score: np.ndarray, gt_root: np.ndarray,
          gt_size: np.ndarray) -> list[tuple[int, int]]:
    """Greedy matching by 2D root distance: (N,2),(N,),(M,2),(M,) -> [(pred, gt)]."""
    pairs, used = [], set()
    for i in np.argsort(-pred_score):
        if len(gt_root) == 0:
            break
        d = np.linalg.norm(gt_root - pred_root[i], axis=-1)
        d[list(used)] = np.inf
        j = int(np.argmin(d))
        if d[j] <= max(MATCH_MIN_PX, MATCH_FRAC * gt_size[j]):
            pairs.append((int(i), j))
            used.add(j)
    return pairs


def confidence_summary(conf: np.ndarray, right: np.ndarray, hidden: np.ndarray,
                       truncated: np.ndarray) -> dict[str, float]:
    """AUCs and means of per-joint confidence, (N, 17) arrays: conf in [0, 1]; right, hidden
    (truncated or occluded) and truncated bool."""
    assert conf.shape == right.shape == hidden.shape == truncated.shape, conf.shape
    people = hidden.any(-1)
    occluded = hidden & ~truncated
    return {"conf_auc": metrics.roc_auc(conf, right),
            "conf_auc_hidden": metrics.roc_auc(conf[people], right[people]),
            "conf_right_frac": float(right.mean()) if right.size else float("nan"),
            "conf_mean_truncated": float(conf[truncated].mean()) if truncated.any() else
            float("nan"),
            "conf_mean_occluded": float(conf[occluded].mean()) if occluded.any() else
            float("nan"),
            "conf_mean_visible": float(conf[~hidden].mean()) if (~hidden).any() else
            float("nan")}


def _summary(rec: dict[str, list], conf_frac: float = 0.15, mean_pose: np.ndarray | None = None
             ) -> dict[str, float]:
    """Recall, precision, root-relative errors, root depth, confidence and (with mean_pose, the
    prior's decoder at z = 0, (17, 3)) the PA distance of predicted and true poses to it."""
    from mp3d.eval.metrics import joint_right

    pred = np.array(rec["pred_rel"]).reshape(-1, 17, 3)
    gt = np.array(rec["gt_rel"]).reshape(-1, 17, 3)
    n_gt, n_pred, n_match = sum(rec["n_gt"]), sum(rec["n_pred"]), len(gt)
    out = {"recall": n_match / max(n_gt, 1), "precision": n_match / max(n_pred, 1),
           "people": n_gt, "matched": n_match}
    if n_match:
        dz = np.abs(np.array(rec["pred_z"]) - np.array(rec["gt_z"]))
        out.update({
            "mpjpe_mm": float(metrics.mpjpe(pred, gt).mean()),
            "pa_mpjpe_mm": float(metrics.pa_mpjpe(pred, gt).mean()),
            "pck150": float(metrics.pck3d(pred, gt).mean()),
            "auc": float(metrics.auc3d(pred, gt).mean()),
            "root_depth_err_m": float(dz.mean()),
            "root_depth_err_pct": float(100 * (dz / np.array(rec["gt_z"])).mean()),
        })
        if mean_pose is not None:  # how far poses sit from the prior's mean (shrinkage)
            mean = np.broadcast_to(mean_pose, pred.shape)
            out["pred_to_mean_mm"] = float(metrics.pa_mpjpe(pred, mean).mean())
            out["true_to_mean_mm"] = float(metrics.pa_mpjpe(gt, mean).mean())
        right = joint_right(torch.from_numpy(pred), torch.from_numpy(gt), conf_frac).numpy()
        out.update(confidence_summary(np.array(rec["conf"]).reshape(-1, 17), right,
                                      np.array(rec["hidden"]).reshape(-1, 17),
                                      np.array(rec["truncated"]).reshape(-1, 17)))
    return out


@torch.no_grad()
def student_lift(student, decode, decoder, batch, b: np.ndarray, p: np.ndarray
                 ) -> dict[str, np.ndarray]:
    """The deployed lifting of people (b, p) of a SceneBatch: the student's person head on each
    one's teacher keypoints and box (no image), then mp3d.model.anchors.lift_people with the
    refinement; rel (N, 17, 3), depth (N,), kp2d (N, 17, 2), conf (N, 17) as numpy."""
    from mp3d.data.scenes.batch import person_boxes
    from mp3d.model.anchors import head_inputs, lift_people
    from mp3d.model.refine import refine_people
    from mp3d.model.student import feature_dim

    kp = np.nan_to_num(batch.teacher_kp[b, p])
    kpts = torch.from_numpy(np.concatenate([kp, batch.teacher_conf[b, p][..., None]], -1)).float()
    boxes = torch.from_numpy(person_boxes(batch, b, p)).float()
    intr = torch.from_numpy(batch.intrinsics[b]).float()
    x = head_inputs(torch.zeros(len(b), feature_dim(student.cfg)), kpts, boxes, intr, False)
    out = lift_people(student.head(x), kpts, boxes, intr, decoder, decode, refine_people)
    return {"rel": out["rel"].double().numpy(), "depth": out["root"][:, 2].double().numpy(),
            "kp2d": out["kp2d"].double().numpy(), "conf": out["conf"].double().numpy()}


def _baseline_summary(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    return {"mpjpe_mm": float(metrics.mpjpe(pred, gt).mean()),
            "pa_mpjpe_mm": float(metrics.pa_mpjpe(pred, gt).mean()),
            "pck150": float(metrics.pck3d(pred, gt).mean()),
            "auc": float(metrics.auc3d(pred, gt).mean())}


def run(args: argparse.Namespace) -> int:
    from mp3d.common.checkpoints import load_checkpoint, save_checkpoint
    from mp3d.data.posebank import load_canonical
    from mp3d.data.scenes.batch import teacher_found
    from mp3d.data.scenes.config import SceneConfig
    from mp3d.data.scenes.sample import sample_scenes
    from mp3d.eval.baseline import LiftingMLP, scene_people, train_baseline
    from mp3d.model.personmaps import decode_maps, seen_confidence
    from mp3d.model.posemap import load_posemap, posemap_inputs
    from mp3d.model.prior import PosePrior
    from mp3d.model.student import KIND, load_student

    t0 = time.time()
    heldout = load_canonical(args.bvh)
    student, decode, s_decoder = load_student(load_checkpoint(args.model, KIND), args.model)
    if args.refine_steps is not None:
        decode = replace(decode, refine_steps=args.refine_steps)
    prior = PosePrior.from_checkpoint(load_checkpoint(args.prior, "mp3d.prior"))
    pm_ckpt = load_checkpoint(args.posemap, "mp3d.posemap")
    net, cfg = load_posemap(pm_ckpt)
    peer = None
    if args.baseline:
        from pathlib import Path

        path = Path(args.baseline_ckpt)
        if path.exists():
            peer = LiftingMLP.from_checkpoint(load_checkpoint(path, "mp3d.baseline"))
        else:
            train_src = args.baseline_train or pm_ckpt.get("train_data")
            print(f"training the lifting peer on {train_src} ({args.baseline_steps} steps)")
            srcs = [train_src] if isinstance(train_src, str) else list(train_src)
            banks = [load_canonical(t) for t in srcs]
            # Each source weighs the same, as in `mp3d train posemap` with several sources.
            n = max(len(b) for b in banks)
            peer = train_baseline(np.concatenate([np.resize(b, (n,) + b.shape[1:])
                                                  for b in banks]), args.baseline_steps,
                                  np.random.default_rng(args.seed + 1), SceneConfig())
            save_checkpoint(peer.checkpoint(train_data=str(train_src)), path)

    rng = np.random.default_rng(args.seed)
    keys = ("n_gt", "n_pred", "pred_rel", "gt_rel", "pred_z", "gt_z", "conf", "hidden",
            "truncated")
    per_n: dict[int, dict[str, list]] = {}
    per_n_student: dict[int, dict[str, list]] = {}
    base_pred: dict[int, list] = {}
    base_gt: dict[int, list] = {}
    for n in parse_people(args.people):
        rec = per_n[n] = {k: [] for k in keys}
        rec_s = per_n_student[n] = {k: [] for k in keys}
        scfg = replace(SceneConfig(), people=(n, n))
        for start in range(0, args.scenes, 16):
            batch = sample_scenes(heldout, min(16, args.scenes - start), scfg, rng)
            x = posemap_inputs(batch.teacher_kp, batch.teacher_conf, batch.intrinsics,
                               batch.width, batch.height, cfg.heatmap)
            with torch.no_grad():
                people = decode_maps(net(x), batch.intrinsics, prior.decoder, cfg.maps,
                                     net.heads.codes)
            root = batch.joints_cam[:, :, sk.ROOT]
            in_img = ((batch.root2d >= 0) & (batch.root2d <= [batch.width - 1,
                                                               batch.height - 1])).all(-1)
            gt_mask = batch.valid & in_img & (root[..., 2] > 0)
            for b, dec in enumerate(people):
                gts = np.nonzero(gt_mask[b])[0]
                rec["n_gt"].append(len(gts))
                rec["n_pred"].append(len(dec))
                for i, j in match(dec.root2d, dec.score, batch.root2d[b, gts],
                                  batch.size2d[b, gts]):
                    p = gts[j]
                    rec["pred_rel"].append(dec.joints_rel[i])
                    rec["gt_rel"].append(batch.joints_cam[b, p] - root[b, p][None])
                    rec["pred_z"].append(dec.depth[i])
                    rec["gt_z"].append(root[b, p, 2])
                    rec["conf"].append(seen_confidence(dec.joint_conf[i], dec.keypoints_2d[i],
                                                       batch.width, batch.height,
                                                       cfg.maps.outside_conf_scale))
                    truncated = ~batch.in_image[b, p]
                    rec["truncated"].append(truncated)
                    rec["hidden"].append(truncated | batch.occluded[b, p])
            sel = gt_mask & teacher_found(batch)
            rec_s["n_gt"].append(int(gt_mask.sum()))
            rec_s["n_pred"].append(int(sel.sum()))
            if sel.any():
                bs, ps = np.nonzero(sel)
                lifted = student_lift(student, decode, s_decoder, batch, bs, ps)
                for i, (b, p) in enumerate(zip(bs, ps)):
                    rec_s["pred_rel"].append(lifted["rel"][i])
                    rec_s["gt_rel"].append(batch.joints_cam[b, p] - root[b, p][None])
                    rec_s["pred_z"].append(lifted["depth"][i])
                    rec_s["gt_z"].append(root[b, p, 2])
                    rec_s["conf"].append(seen_confidence(
                        lifted["conf"][i], lifted["kp2d"][i], batch.width, batch.height,
                        decode.outside_conf_scale))
                    truncated = ~batch.in_image[b, p]
                    rec_s["truncated"].append(truncated)
                    rec_s["hidden"].append(truncated | batch.occluded[b, p])
            if peer is not None:
                feats, target = scene_people(batch, sel)
                with torch.no_grad():
                    base_pred.setdefault(n, []).append(peer(torch.from_numpy(feats)).numpy())
                base_gt.setdefault(n, []).append(target)

    with torch.no_grad():
        mean_pose = s_decoder(torch.zeros(1, s_decoder.cfg.latent_dim))[0].double().numpy()
    rows = {str(n): _summary(r, args.conf_frac) for n, r in per_n_student.items()}
    overall = _summary({k: sum((r[k] for r in per_n_student.values()), []) for k in keys},
                       args.conf_frac, mean_pose)
    p_rows = {str(n): _summary(r, args.conf_frac) for n, r in per_n.items()}
    with torch.no_grad():
        p_mean = prior.decoder(torch.zeros(1, prior.cfg.latent_dim))[0].double().numpy()
    p_all = _summary({k: sum((r[k] for r in per_n.values()), []) for k in keys}, args.conf_frac,
                     p_mean)
    for name, row in p_rows.items():
        rows[name].update({f"posemap_{k}": v for k, v in row.items()})
    overall.update({f"posemap_{k}": v for k, v in p_all.items()})
    if peer is not None:
        for n in per_n:
            rows[str(n)].update({f"baseline_{k}": v for k, v in _baseline_summary(
                np.concatenate(base_pred[n]), np.concatenate(base_gt[n])).items()})
        overall.update({f"baseline_{k}": v for k, v in _baseline_summary(
            np.concatenate(sum(base_pred.values(), [])),
            np.concatenate(sum(base_gt.values(), []))).items()})

    cols = ["people", "recall", "precision", "mpjpe_mm", "pa_mpjpe_mm", "pck150", "auc",
            "root_depth_err_m", "root_depth_err_pct", "conf_auc", "conf_auc_hidden",
            "posemap_recall", "posemap_pa_mpjpe_mm"]
    if peer is not None:
        cols += ["baseline_mpjpe_mm", "baseline_pa_mpjpe_mm", "baseline_pck150"]
    print(f"held-out motion {args.bvh}: {len(heldout)} poses; {args.scenes} scenes per count; "
          f"teacher-like corruption on; student {args.model} (refinement: "
          f"{decode.refine_steps} steps), P {args.posemap}; {time.time() - t0:.0f} s")
    print("columns: the student's lifting; posemap_*: P's; baseline_*: the supervised peer's")
    print(f"distance to the prior's mean pose (PA-MPJPE, mm): student "
          f"{overall.get('pred_to_mean_mm', float('nan')):.0f}, P "
          f"{overall.get('posemap_pred_to_mean_mm', float('nan')):.0f}, truth "
          f"{overall.get('true_to_mean_mm', float('nan')):.0f}")
    print("n      " + " ".join(f"{c[:11]:>11s}" for c in cols))
    for name, row in list(rows.items()) + [("all", overall)]:
        print(f"{name:6s} " + " ".join(f"{row.get(c, float('nan')):11.3f}" for c in cols))
    if args.json:
        print(json.dumps({**overall, "per_people": rows}))
    return 0
