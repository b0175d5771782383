"""Timing of synthetic scene sampling and heatmap rendering, and the fit of the teacher noise model.

    python -m mp3d.eval.bench.scenes        # ms per batch (B = 32), the simulated teacher error
    python -m mp3d.eval.bench.scenes --fit  # refit TeacherNoise to DATA.md's numbers (about 1 min)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
import torch
from scipy.optimize import minimize

from mp3d.data.scenes.batch import SceneBatch
from mp3d.data.scenes.bodies import toy_pose_bank
from mp3d.data.scenes.config import SceneConfig
from mp3d.data.scenes.corruption import simulate_teacher, teacher_error_stats
from mp3d.data.scenes.sample import sample_scenes
from mp3d.model.heatmaps import HeatmapConfig, grid_size, ray_channels, render_keypoint_heatmaps

# DATA.md: YOLO11n-pose error on real photos, fraction of the person's 2D height.
TARGETS = {"median": 0.045, "mean": 0.09, "p90": 0.20, "frac_over_10": 0.29}
# The parameters fitted, in the order of the optimiser's vector (optimised in log space).
FIT_PARAMS = ("jitter_sigma", "outlier_prob", "outlier_min", "outlier_alpha")


def _ms(fn, repeats: int) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e3


def simulated_stats(batch: SceneBatch, poses: np.ndarray, cfg: SceneConfig,
                    seed: int) -> dict[str, float]:
    """Teacher error statistics of a fresh corruption (seeded) of a batch's geometry."""
    b = replace(batch)
    b.teacher_kp, b.teacher_conf, b.teacher_missed, b.teacher_false = simulate_teacher(
        b, poses, cfg, np.random.default_rng(seed))
    return teacher_error_stats(b, cfg=cfg)


def fit_noise(cfg: SceneConfig, scenes: int = 2000, seed: int = 0) -> SceneConfig:
    """Fit FIT_PARAMS of cfg.noise to TARGETS by simulation (see scenes.TeacherNoise)."""
    poses = toy_pose_bank(2000, np.random.default_rng(seed))
    batch = sample_scenes(poses, scenes, cfg, np.random.default_rng(seed + 1))

    def with_params(x: np.ndarray) -> SceneConfig:
        vals = dict(zip(FIT_PARAMS, np.exp(x).tolist()))
        return replace(cfg, noise=replace(cfg.noise, **vals))

    def loss(x: np.ndarray) -> float:
        st = simulated_stats(batch, poses, with_params(x), seed + 2)
        return sum(((st[k] - v) / v) ** 2 for k, v in TARGETS.items())

    x0 = np.log([getattr(cfg.noise, k) for k in FIT_PARAMS])
    res = minimize(loss, x0, method="Nelder-Mead",
                   options={"xatol": 1e-3, "fatol": 1e-6, "maxiter": 400})
    print(f"fit: loss {res.fun:.2e} after {res.nfev} evaluations")
    return with_params(res.x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--fit", action="store_true", help="refit the teacher noise parameters")
    args = ap.parse_args()
    cfg, hcfg = SceneConfig(), HeatmapConfig()
    poses = toy_pose_bank(2000, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    if args.fit:
        cfg = fit_noise(cfg)
        print("fitted:", {k: round(getattr(cfg.noise, k), 4) for k in FIT_PARAMS})

    t_scene = _ms(lambda: sample_scenes(poses, args.batch, cfg, rng), args.repeats)
    b = sample_scenes(poses, args.batch, cfg, rng)
    gw, gh = grid_size(cfg.width, cfg.height, hcfg.stride)
    kp = torch.from_numpy(b.teacher_kp).float()
    conf = torch.from_numpy(b.teacher_conf).float()
    t_heat = _ms(lambda: render_keypoint_heatmaps(kp, conf, cfg.width, cfg.height, hcfg),
                 args.repeats)
    # Worst case: all Q = 10 slots full of people.
    kp10 = torch.rand(args.batch, 10, 17, 2) * torch.tensor([cfg.width, cfg.height])
    conf10 = torch.rand(args.batch, 10, 17) * 0.5 + 0.5
    t_heat10 = _ms(lambda: render_keypoint_heatmaps(kp10, conf10, cfg.width, cfg.height, hcfg),
                   args.repeats)
    intr = torch.from_numpy(b.intrinsics).float()
    t_rays = _ms(lambda: ray_channels(intr, cfg.width, cfg.height, hcfg.stride), args.repeats)
    print(f"torch threads {torch.get_num_threads()}; batch {args.batch}, image "
          f"{cfg.width}x{cfg.height}, grid {gw}x{gh}")
    print(f"sample_scenes             {t_scene:7.2f} ms/batch (P up to {cfg.people[1]})")
    print(f"render_keypoint_heatmaps  {t_heat:7.2f} ms/batch (Q = {b.teacher_conf.shape[1]} "
          f"as sampled)")
    print(f"render_keypoint_heatmaps  {t_heat10:7.2f} ms/batch (Q = 10, all slots full)")
    print(f"ray_channels              {t_rays:7.2f} ms/batch")

    big = sample_scenes(poses, 2000, cfg, np.random.default_rng(2))
    st = teacher_error_stats(big, cfg=cfg)
    print(f"simulated teacher error over {int(st['n'])} joints (target): " + ", ".join(
        f"{k} {st[k]:.3f} ({v:.3f})" for k, v in TARGETS.items()))
    v = big.valid
    print(f"people/scene {v.sum(1).mean():.2f}; joints occluded {big.occluded[v].mean():.3f}, "
          f"in image {big.in_image[v].mean():.3f}; people missed {big.teacher_missed[v].mean():.3f}"
          f"; false people/scene {big.teacher_false.sum() / len(v):.3f}")


if __name__ == "__main__":
    main()
