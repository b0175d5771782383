"""Where the pose-map network P's 3D error comes from: a diagnosis on scenes of held-out motion.

Same scenes, matching and metric definitions as `mp3d eval lifting` (mp3d.eval.lifting), plus:

  (a) teacher corruption: the same scene geometry (same random numbers) seen through several
      TeacherNoise settings: the shipped corruption, no outlier jumps, Gaussian jitter only, and
      clean 2D (exact projections, nothing missed, no false people);
  (b) the embedding's floor: the prior's reconstruction decoder(encoder(truth)) of the true poses;
  (c) orientation vs articulation: MPJPE after root alignment, after a best rotation about the
      root (no scale), after Procrustes; P's orientation error (degrees); P's canonical pose
      decoder(z_P) against the true canonical pose (articulation only); the true pose's
      reconstruction turned by P's orientation (orientation only); decoder(z_P) against
      decoder(z_true) (how far P's code is from the code it was trained to hit);
  (d) decoding: the codes read at the detected peak cell vs at the true root's cell, a centre-
      probability-weighted mean of the codes over the 3x3 cells around the peak, and the best of
      the 3x3 cells around the true cell (an oracle); root depth read at the peak vs the true cell;
  (e) coverage: each held-out pose's distance to the nearest training pose (MPJPE, mm, canonical
      frame: root at the origin, heading removed; the training set and its mirror image), with
      the within-training-clip distance (nearest pose at least --self-gap frames away) as a
      reference, and P's error binned by that distance.

Usage (from the repository root, after `. scripts/env.sh` and `bash scripts/fetch_mocap.sh`):
  OMP_NUM_THREADS=1 python scripts/diagnose_lifting.py --bvh cache/mocap/lafan1/test2.bvh \
      --train cache/mocap/lafan1/test.bvh --scenes 60 --people 1..4 --json
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_checkpoint
from mp3d.common.paths import default_model
from mp3d.data.posebank import load_canonical
from mp3d.data.scenes.config import SceneConfig, TeacherNoise
from mp3d.data.scenes.sample import sample_scenes
from mp3d.eval import metrics
from mp3d.eval.lifting import match, parse_people
from mp3d.model.heatmaps import grid_size, image_to_grid
from mp3d.model.personmaps import decode_maps, find_peaks, gather
from mp3d.model.posemap import load_posemap, posemap_inputs
from mp3d.model.prior import PosePrior, rot6d_to_matrix

_CLEAN = dict(jitter_sigma=0.0, jitter_floor_px=0.0, person_sigma=0.0, outlier_prob=0.0,
              swap_prob=0.0, miss_joint_visible=0.0, miss_joint_occluded=0.0,
              guess_truncated_prob=0.0, miss_person_base=0.0, miss_person_small_prob=0.0,
              miss_person_occluded_prob=0.0, false_person_prob=0.0)
_DEFAULT = TeacherNoise()
# Teacher corruption settings compared in (a). Every setting draws the same random numbers, so
# the scene geometry is identical across them.
CONDITIONS: dict[str, TeacherNoise] = {
    "teacher": _DEFAULT,
    "no_outliers": replace(_DEFAULT, outlier_prob=0.0),
    "jitter_only": replace(_DEFAULT, **{k: v for k, v in _CLEAN.items()
                                        if k not in ("jitter_sigma", "jitter_floor_px",
                                                     "person_sigma")}),
    "clean": replace(_DEFAULT, **_CLEAN),
}


def parse_args() -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bvh", required=True, help="held-out motion: BVH file/folder or .npz")
    p.add_argument("--train", required=True, help="training motion (for the coverage check)")
    p.add_argument("--prior", default=str(default_model("prior.pt")))
    p.add_argument("--posemap", default=str(default_model("posemap.pt")))
    p.add_argument("--people", default="1..4", help="people per scene: N or A..B")
    p.add_argument("--scenes", type=int, default=60, help="scenes per number of people")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--conditions", default=",".join(CONDITIONS),
                   help=f"comma-separated subset of {', '.join(CONDITIONS)} (empty: only the "
                        "coverage check)")
    p.add_argument("--extra", nargs="*", default=[], metavar="MOTION",
                   help="more motion (BVH, DeepMimic clips, folders, .npz): coverage of the "
                        "held-out poses by the training motion plus this")
    p.add_argument("--coverage-samples", type=int, default=20000,
                   help="augmented poses and prior samples drawn for the coverage comparison "
                        "(0: skip that comparison)")
    p.add_argument("--self-gap", type=int, default=30,
                   help="within-clip reference: ignore training frames closer than this")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", metavar="FILE", nargs="?", const="-",
                   help="write all numbers as JSON to FILE (or as the last stdout line)")
    return p.parse_args()


# ------------------------------------------------------------------------------------------------
# Geometry helpers.


def rotation_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Best rotation of each root-relative pred about the root onto gt (no scale, no shift),
    (N, 17, 3) x2 -> (N, 17, 3)."""
    assert pred.shape == gt.shape and pred.ndim == 3, (pred.shape, gt.shape)
    h = np.einsum("nji,njk->nik", pred, gt)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    u = u.copy()
    u[:, :, -1] *= d[:, None]
    r = np.einsum("nij,njk->nik", u, vt)
    return np.einsum("nji,nik->njk", pred, r)


def rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle of a^T b for rotation matrices (N, 3, 3) x2 -> (N,) degrees."""
    assert a.shape == b.shape and a.shape[1:] == (3, 3), (a.shape, b.shape)
    tr = np.einsum("nij,nij->n", a, b)
    return np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))


def nearest_mpjpe(query: np.ndarray, ref: np.ndarray, query_frames: np.ndarray | None = None,
                  gap: int = 0, chunk: int = 32) -> np.ndarray:
    """Per query pose, the MPJPE (mm) to its nearest reference pose, (Q, 17, 3), (R, 17, 3) ->
    (Q,). query_frames (Q,): the queries' own frame numbers in ref; reference frames closer than
    `gap` frames to them are skipped (within-clip distances)."""
    assert query.shape[1:] == ref.shape[1:] == (sk.NUM_JOINTS, 3), (query.shape, ref.shape)
    q = torch.from_numpy(np.asarray(query, np.float32))
    r = torch.from_numpy(np.asarray(ref, np.float32))
    out = np.empty(len(q))
    for s in range(0, len(q), chunk):
        d = (q[s:s + chunk, None] - r[None]).norm(dim=-1).mean(-1)  # (c, R)
        if query_frames is not None:
            own = torch.from_numpy(np.asarray(query_frames[s:s + chunk]))[:, None]
            d = torch.where((torch.arange(len(r))[None] - own).abs() < gap, torch.inf, d)
        out[s:s + chunk] = 1000.0 * d.min(1).values.numpy()
    return out


def _err(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """MPJPE and PA-MPJPE means (mm) of root-relative poses (N, 17, 3) x2."""
    return {"mpjpe": float(metrics.mpjpe(pred, gt).mean()),
            "pa_mpjpe": float(metrics.pa_mpjpe(pred, gt).mean())}


# ------------------------------------------------------------------------------------------------
# The scene loop.


def run_condition(name: str, noise: TeacherNoise, heldout: np.ndarray, people: list[int],
                  n_scenes: int, seed: int, prior: PosePrior, net: torch.nn.Module, cfg
                  ) -> dict[str, np.ndarray]:
    """Evaluate P on scenes seen through `noise`; per matched person, everything needed later."""
    decoder = prior.decoder

    def decode_feat(f: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        z, r6, _ = net.heads.codes(f)
        rot = rot6d_to_matrix(r6.float())
        canon = decoder(z.float())
        rel = torch.einsum("nij,nkj->nki", rot, canon)
        return rel.double().numpy(), canon.double().numpy(), rot.double().numpy()

    rng = np.random.default_rng(seed)
    rec: dict[str, list] = {k: [] for k in (
        "n_gt", "n_pred", "pred_rel", "gt_rel", "gt_canon", "gt_rot", "pred_z", "pred_rot",
        "pred_canon", "pred_depth", "gt_depth", "gtcell_rel", "gtcell_depth", "at_gt_cell",
        "smooth_rel", "oracle_rel", "pose_index", "geometry")}
    for n in people:
        scfg = replace(SceneConfig(), people=(n, n), noise=noise)
        for start in range(0, n_scenes, 16):
            batch = sample_scenes(heldout, min(16, n_scenes - start), scfg, rng)
            rec["geometry"].append(float(np.abs(batch.joints_cam).sum()))
            x = posemap_inputs(batch.teacher_kp, batch.teacher_conf, batch.intrinsics,
                               batch.width, batch.height, cfg.heatmap)
            with torch.no_grad():
                maps = net(x)
                people_dec = decode_maps(maps, batch.intrinsics, decoder, cfg.maps,
                                         net.heads.codes)
                peaks = find_peaks(torch.sigmoid(maps["centre"].float()), cfg.maps)
            gh, gw = maps["centre"].shape[-2:]
            assert (gw, gh) == grid_size(batch.width, batch.height, cfg.maps.stride)
            root = batch.joints_cam[:, :, sk.ROOT]
            in_img = ((batch.root2d >= 0) & (batch.root2d <= [batch.width - 1,
                                                               batch.height - 1])).all(-1)
            gt_mask = batch.valid & in_img & (root[..., 2] > 0)
            prob = torch.sigmoid(maps["centre"].float())
            for b, dec in enumerate(people_dec):
                gts = np.nonzero(gt_mask[b])[0]
                rec["n_gt"].append(len(gts))
                rec["n_pred"].append(len(dec))
                pairs = match(dec.root2d, dec.score, batch.root2d[b, gts], batch.size2d[b, gts])
                if not pairs:
                    continue
                pi = np.array([i for i, _ in pairs])
                pp = gts[np.array([j for _, j in pairs])]
                peak_idx = peaks[b][1].numpy()[pi]
                g = image_to_grid(batch.root2d[b, pp], cfg.maps.stride)
                cell = np.clip(np.floor(g + 0.5).astype(np.int64), 0, [gw - 1, gh - 1])
                gt_idx = cell[:, 1] * gw + cell[:, 0]
                with torch.no_grad():
                    feat_b = maps["feat"][b:b + 1]
                    rel_gc, _, _ = decode_feat(gather(feat_b, torch.from_numpy(gt_idx)[None])[0])
                    dcode = gather(maps["depth"][b:b + 1], torch.from_numpy(gt_idx)[None])[0, :, 0]
                    gt_cell_depth = (batch.intrinsics[b, 0]
                                     * np.exp(dcode.double().numpy() - cfg.maps.depth_offset))
                    # 3x3 neighbourhoods: around the peak (centre-weighted mean of features) and
                    # around the true cell (oracle: best cell by MPJPE).
                    smooth, oracle = [], []
                    for k in range(len(pi)):
                        for centre_idx, dst in ((peak_idx[k], smooth), (gt_idx[k], oracle)):
                            cy, cx = divmod(int(centre_idx), gw)
                            ys = np.clip(np.arange(cy - 1, cy + 2), 0, gh - 1)
                            xs = np.clip(np.arange(cx - 1, cx + 2), 0, gw - 1)
                            nb = torch.from_numpy((ys[:, None] * gw + xs[None]).reshape(-1))
                            f = gather(feat_b, nb[None])[0]
                            if dst is smooth:
                                w = gather(prob[b:b + 1], nb[None])[0, :, 0].double()
                                fm = (f.double() * (w / w.sum())[:, None]).sum(0, keepdim=True)
                                dst.append(decode_feat(fm.float())[0][0])
                            else:
                                rels = decode_feat(f)[0]
                                gt_k = batch.joints_cam[b, pp[k]] - root[b, pp[k]][None]
                                best = np.argmin(np.linalg.norm(rels - gt_k, axis=-1).mean(-1))
                                dst.append(rels[best])
                rec["pred_rel"] += list(dec.joints_rel[pi])
                rec["gt_rel"] += list(batch.joints_cam[b, pp] - root[b, pp][:, None])
                rec["gt_canon"] += list(batch.pose_canonical[b, pp])
                rec["gt_rot"] += list(batch.rot[b, pp])
                rec["pred_z"] += list(dec.z[pi])
                rec["pred_rot"] += list(dec.rot[pi])
                rec["pred_depth"] += list(dec.depth[pi])
                rec["gt_depth"] += list(root[b, pp, 2])
                rec["gtcell_rel"] += list(rel_gc)
                rec["gtcell_depth"] += list(gt_cell_depth)
                rec["at_gt_cell"] += list(peak_idx == gt_idx)
                rec["smooth_rel"] += smooth
                rec["oracle_rel"] += oracle
                rec["pose_index"] += list(batch.pose_index[b, pp])
    out = {k: np.array(v) for k, v in rec.items()}
    with torch.no_grad():
        out["pred_canon"] = decoder(torch.from_numpy(out["pred_z"]).float()).double().numpy()
    print(f"[{name}] {int(out['n_gt'].sum())} people, {len(out['gt_rel'])} matched")
    return out


def summarise(r: dict[str, np.ndarray], prior: PosePrior, nn_heldout: np.ndarray
              ) -> dict[str, object]:
    """The diagnosis numbers of one condition."""
    pred, gt = r["pred_rel"], r["gt_rel"]
    with torch.no_grad():
        z_gt = prior.encode(torch.from_numpy(r["gt_canon"]).float())[0]
        recon_canon = prior.decoder(z_gt).double().numpy()
        mean_canon = prior.decoder(torch.zeros(1, prior.cfg.latent_dim)).double().numpy()
    recon_cam = np.einsum("nij,nkj->nki", r["gt_rot"], recon_canon)
    recon_p_rot = np.einsum("nij,nkj->nki", r["pred_rot"], recon_canon)
    mean_cam_gt_rot = np.einsum("nij,nkj->nki", r["gt_rot"],
                                np.broadcast_to(mean_canon, recon_canon.shape))
    mean_cam_p_rot = np.einsum("nij,nkj->nki", r["pred_rot"],
                               np.broadcast_to(mean_canon, recon_canon.shape))
    ang = rotation_angle_deg(r["pred_rot"], r["gt_rot"])
    dz = np.abs(r["pred_depth"] - r["gt_depth"])
    dz_gc = np.abs(r["gtcell_depth"] - r["gt_depth"])
    pa = metrics.pa_mpjpe(pred, gt)
    out: dict[str, object] = {
        "people": int(r["n_gt"].sum()), "matched": len(gt),
        "recall": len(gt) / max(int(r["n_gt"].sum()), 1),
        "precision": len(gt) / max(int(r["n_pred"].sum()), 1),
        "P": {**_err(pred, gt),
              "rot_aligned_mpjpe": float(metrics.mpjpe(rotation_align(pred, gt), gt).mean()),
              "pa_mpjpe_se": float(pa.std() / np.sqrt(len(pa))),
              "pck150": float(metrics.pck3d(pred, gt).mean())},
        "orientation_err_deg": {"mean": float(ang.mean()), "median": float(np.median(ang)),
                                "frac_over_30": float((ang > 30).mean()),
                                "frac_over_90": float((ang > 90).mean())},
        "articulation_only": _err(r["pred_canon"], r["gt_canon"]),       # decoder(z_P) vs truth
        "orientation_only": _err(recon_p_rot, gt),                       # P's rot, true pose
        "prior_floor": _err(recon_cam, gt),                              # decoder(enc(truth))
        "code_err": _err(r["pred_canon"], recon_canon),                  # decoder(z_P) vs recon
        "z_dist": float(np.linalg.norm(r["pred_z"] - z_gt.double().numpy(), axis=-1).mean()),
        "mean_pose_gt_rot": _err(mean_cam_gt_rot, gt),
        "mean_pose_P_rot": _err(mean_cam_p_rot, gt),
        "decode": {"peak": _err(pred, gt), "gt_cell": _err(r["gtcell_rel"], gt),
                   "smooth3x3_peak": _err(r["smooth_rel"], gt),
                   "oracle3x3_gt_cell": _err(r["oracle_rel"], gt),
                   "frac_peak_at_gt_cell": float(r["at_gt_cell"].mean()),
                   "depth_err_m_peak": float(dz.mean()), "depth_err_m_gt_cell": float(dz_gc.mean()),
                   "depth_err_pct_peak": float(100 * (dz / r["gt_depth"]).mean())},
    }
    # Poses the training clip never shows: a wrist above the head (canonical frame: y down).
    gc = r["gt_canon"]
    up = np.minimum(gc[:, sk.INDEX["r_wrist"], 1], gc[:, sk.INDEX["l_wrist"], 1]) \
        < gc[:, sk.INDEX["head"], 1]
    out["arms_up"] = {"fraction": float(up.mean()),
                      "P_pa_mpjpe": float(pa[up].mean()) if up.any() else float("nan"),
                      "P_pa_mpjpe_other": float(pa[~up].mean()) if (~up).any() else float("nan")}
    # P's error by the true pose's distance to the nearest training pose (quartiles).
    d = nn_heldout[r["pose_index"]]
    if np.ptp(d) == 0:  # evaluated on the training motion itself
        out["by_nn_distance"], out["corr_nn_vs_pa"] = [], float("nan")
        return out
    edges = np.quantile(d, [0, 0.25, 0.5, 0.75, 1.0])
    bins = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (d >= lo) & (d <= hi)
        bins.append({"nn_mm": [float(lo), float(hi)], "n": int(m.sum()),
                     "P_pa_mpjpe": float(pa[m].mean()),
                     "P_articulation_mpjpe": float(metrics.mpjpe(r["pred_canon"][m],
                                                                 r["gt_canon"][m]).mean()),
                     "prior_floor_mpjpe": float(metrics.mpjpe(recon_canon[m],
                                                              r["gt_canon"][m]).mean())})
    out["by_nn_distance"] = bins
    out["corr_nn_vs_pa"] = float(np.corrcoef(d, pa)[0, 1])
    return out


def coverage(heldout: np.ndarray, train: np.ndarray, gap: int, prior: PosePrior
             ) -> tuple[dict[str, object], np.ndarray]:
    """(e) and (b) on the whole pose banks: nearest-training-pose distances and the prior's
    reconstruction. Returns the numbers and the per-held-out-pose distances (mm)."""
    ref = np.concatenate([train, sk.mirror(train)])
    t0 = time.time()
    nn_h = nearest_mpjpe(heldout, ref)
    # Within-clip reference: nearest training pose at least `gap` frames away (no mirror, so
    # that a frame's own mirror image does not count).
    sub = np.arange(0, len(train), 8)
    nn_self = nearest_mpjpe(train[sub], train, query_frames=sub, gap=gap)
    with torch.no_grad():
        rec_h = prior(torch.from_numpy(heldout).float())[0].double().numpy()
        rec_t = prior(torch.from_numpy(train).float())[0].double().numpy()

    def q(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean()), "median": float(np.median(x)),
                "p90": float(np.percentile(x, 90)), "frac_over_100": float((x > 100).mean()),
                "frac_over_150": float((x > 150).mean())}

    out = {"heldout_to_train_nn_mm": q(nn_h), "train_within_clip_nn_mm": q(nn_self),
           "prior_recon_heldout": _err(rec_h, heldout), "prior_recon_train": _err(rec_t, train),
           "seconds": time.time() - t0}
    return out, nn_h


def coverage_sources(heldout: np.ndarray, train: np.ndarray, extra: list[str], n: int,
                     prior: PosePrior, seed: int) -> dict[str, dict[str, float]]:
    """(e) for candidate pose sources: how close every 4th held-out pose comes to each (nearest
    MPJPE, mm; every source with its mirror image, as scenes mirror half the people): the
    training motion, it as P's training augments it (mp3d.data.posebank.augment), prior samples, and
    the training motion plus `extra` motion (with and without augmentation)."""
    from mp3d.data.posebank import augment

    if n <= 0:
        return {}
    rng = np.random.default_rng(seed)
    query = heldout[::4]

    def aug(bank: np.ndarray, k: int = n) -> np.ndarray:
        return augment(bank[rng.integers(0, len(bank), k)], rng, mirror_p=0.0).astype(np.float64)

    with torch.no_grad():
        samples = prior.sample(n, torch.Generator().manual_seed(seed)).double().numpy()
    sources = {"train": train, "train+augment": aug(train), "prior samples": samples}
    if extra:
        more = np.concatenate([load_canonical(e) for e in extra]).astype(np.float64)
        sources["extra only"] = more
        sources["train+extra"] = np.concatenate([train, more])
        # Half from each source, as large as the train+augment bank.
        sources["train+extra+augment"] = np.concatenate([aug(train, n - n // 2),
                                                         aug(more, n // 2)])
    out = {}
    for name, bank in sources.items():
        d = nearest_mpjpe(query, np.concatenate([bank, sk.mirror(bank)]))
        out[name] = {"poses": len(bank), "mean": float(d.mean()), "median": float(np.median(d)),
                     "p90": float(np.percentile(d, 90)), "frac_over_100": float((d > 100).mean())}
        print(f"coverage by {name}: {out[name]}")
    return out


def main() -> int:
    """Run the diagnosis and print a table (and JSON)."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    heldout = load_canonical(args.bvh)
    train = load_canonical(args.train)
    prior = PosePrior.from_checkpoint(load_checkpoint(args.prior, "mp3d.prior"))
    net, cfg = load_posemap(load_checkpoint(args.posemap, "mp3d.posemap"))
    cov, nn_h = coverage(heldout.astype(np.float64), train.astype(np.float64), args.self_gap,
                         prior)
    print(f"coverage: {json.dumps(cov)}")
    cov["sources"] = coverage_sources(heldout.astype(np.float64), train.astype(np.float64),
                                      args.extra, args.coverage_samples, prior, args.seed)
    people = parse_people(args.people)
    results: dict[str, object] = {"coverage": cov, "conditions": {}}
    geometry = None
    for name in [c for c in args.conditions.split(",") if c]:
        r = run_condition(name, CONDITIONS[name], heldout, people, args.scenes, args.seed, prior,
                          net, cfg)
        if geometry is None:
            geometry = r["geometry"]
        assert np.allclose(geometry, r["geometry"]), "scene geometry differs across conditions"
        results["conditions"][name] = summarise(r, prior, nn_h)
    results["command"] = {k: v for k, v in vars(args).items()}
    results["seconds"] = time.time() - t0

    conds = results["conditions"]
    rows = [
        ("recall", lambda c: c["recall"]),
        ("P MPJPE (root-aligned)", lambda c: c["P"]["mpjpe"]),
        ("P MPJPE after best rotation", lambda c: c["P"]["rot_aligned_mpjpe"]),
        ("P PA-MPJPE", lambda c: c["P"]["pa_mpjpe"]),
        ("  (standard error)", lambda c: c["P"]["pa_mpjpe_se"]),
        ("P orientation error, mean deg", lambda c: c["orientation_err_deg"]["mean"]),
        ("P orientation error, median deg", lambda c: c["orientation_err_deg"]["median"]),
        ("articulation only: dec(z_P) vs truth, MPJPE", lambda c: c["articulation_only"]["mpjpe"]),
        ("orientation only: R_P dec(enc(truth)), MPJPE",
         lambda c: c["orientation_only"]["mpjpe"]),
        ("prior floor dec(enc(truth)), MPJPE", lambda c: c["prior_floor"]["mpjpe"]),
        ("prior floor, PA-MPJPE", lambda c: c["prior_floor"]["pa_mpjpe"]),
        ("dec(z_P) vs dec(enc(truth)), MPJPE", lambda c: c["code_err"]["mpjpe"]),
        ("mean pose, true rot, MPJPE", lambda c: c["mean_pose_gt_rot"]["mpjpe"]),
        ("mean pose, PA-MPJPE", lambda c: c["mean_pose_gt_rot"]["pa_mpjpe"]),
        ("codes at true cell, MPJPE", lambda c: c["decode"]["gt_cell"]["mpjpe"]),
        ("codes at true cell, PA-MPJPE", lambda c: c["decode"]["gt_cell"]["pa_mpjpe"]),
        ("3x3 weighted codes at peak, PA-MPJPE",
         lambda c: c["decode"]["smooth3x3_peak"]["pa_mpjpe"]),
        ("best of 3x3 at true cell (oracle), MPJPE", lambda c: c["decode"]["oracle3x3_gt_cell"]
         ["mpjpe"]),
        ("peak at the true cell, fraction", lambda c: c["decode"]["frac_peak_at_gt_cell"]),
        ("root depth error m, peak", lambda c: c["decode"]["depth_err_m_peak"]),
        ("root depth error m, true cell", lambda c: c["decode"]["depth_err_m_gt_cell"]),
        ("corr(NN distance, PA-MPJPE)", lambda c: c["corr_nn_vs_pa"]),
        ("wrist above head: fraction of people", lambda c: c["arms_up"]["fraction"]),
        ("  P PA-MPJPE, wrist above head", lambda c: c["arms_up"]["P_pa_mpjpe"]),
        ("  P PA-MPJPE, the others", lambda c: c["arms_up"]["P_pa_mpjpe_other"]),
    ]
    names = list(conds)
    print(f"\nheld-out {args.bvh}: {len(heldout)} poses; {args.scenes} scenes x people "
          f"{args.people}; {results['seconds']:.0f} s")
    print(f"{'(mm unless said)':46s}" + "".join(f"{n:>13s}" for n in names))
    for label, f in rows:
        print(f"{label:46s}" + "".join(f"{f(conds[n]):13.3f}" for n in names))
    for n in names:
        print(f"by nearest-training-pose distance [{n}]: " + "; ".join(
            f"{b['nn_mm'][0]:.0f}-{b['nn_mm'][1]:.0f} mm: PA {b['P_pa_mpjpe']:.1f}, artic "
            f"{b['P_articulation_mpjpe']:.1f}, floor {b['prior_floor_mpjpe']:.1f}"
            for b in conds[n]["by_nn_distance"]))
    if args.json == "-":
        print(json.dumps(results))
    elif args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
