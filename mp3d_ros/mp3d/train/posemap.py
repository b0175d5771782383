"""Train the pose-map network P on synthetic multi-person scenes built from motion capture."""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mp3d.common.checkpoints import load_checkpoint, save_checkpoint
from mp3d.common.devices import resolve_device
from mp3d.data.posebank import augment, load_canonical
from mp3d.data.scenes.config import SceneConfig
from mp3d.data.scenes.sample import sample_scenes
from mp3d.model.networks import PoseMapNet, count_parameters
from mp3d.model.posemap import PoseMapConfig, load_posemap, posemap_inputs
from mp3d.model.prior import PosePrior
from mp3d.train.logs import CsvLog, plot_curves
from mp3d.train.losses import LossWeights, posemap_loss, scene_targets

LOG_FIELDS = ["step", "loss", "centre", "pose", "latent", "rot", "depth", "offset", "conf",
              "mpjpe_mm",
              "lr"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, nargs="+",
                   help="training motion: BVH or DeepMimic files/folders or .npz; with several, "
                   "each step draws equally from each")
    p.add_argument("--prior", required=True, help="prior checkpoint (its decoder stays frozen)")
    p.add_argument("--out", default="runs/posemap", help="run folder (checkpoint, CSV, PNG)")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--bank", type=int, default=2048, help="augmented poses drawn per step")
    p.add_argument("--arm-swing", type=float, default=150.0,
                   help="pose augmentation: arms swing up to this many degrees (150 lifts "
                   "them over the head, which walking motion never shows)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--save-every", type=int, default=200)
    p.add_argument("--resume", action="store_true", help="continue from OUT/posemap.pt")
    p.add_argument("--init", help="start from this P checkpoint's weights (a new run: fresh "
                   "optimiser and schedule); heads it lacks start from scratch")
    p.add_argument("--only", choices=["all", "conf"], default="all",
                   help="train every weight, or only the per-joint confidence branch")
    p.add_argument("--stop-after", type=int, help="save and stop at this step (the schedule "
                   "still spans --steps; continue with --resume)")


def train_posemap(args: argparse.Namespace) -> Path:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = resolve_device(args.device)
    sources = [load_canonical(path) for path in args.train]
    prior = PosePrior.from_checkpoint(load_checkpoint(args.prior, "mp3d.prior")).to(device)
    prior.requires_grad_(False)
    scfg = SceneConfig()

    ckpt_path = out / "posemap.pt"
    if args.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, "mp3d.posemap")
        net, cfg = load_posemap(ckpt)
        start = int(ckpt["step"])
    else:
        ckpt, start = None, 0
        cfg = PoseMapConfig()
        net = PoseMapNet(cfg.net)
        if args.init:
            net, cfg = load_posemap(load_checkpoint(args.init, "mp3d.posemap"),
                                    allow_missing=("heads.code.conf.",))
    net.to(device).train()
    params = list(net.parameters())
    if args.only == "conf":  # the rest stays exactly as it was, batch-norm statistics included
        net.eval().requires_grad_(False)
        net.heads.code.conf.requires_grad_(True)
        params = list(net.heads.code.conf.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        rng = np.random.default_rng([args.seed, start])

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / max(1, min(100, args.steps // 10)))
        return args.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))

    def save(step: int) -> None:
        save_checkpoint({"kind": "mp3d.posemap", "config": cfg.to_dict(),
                         "state_dict": net.state_dict(), "optimizer": opt.state_dict(),
                         "step": step, "prior": str(args.prior),
                         "train_data": [str(p) for p in args.train],
                         "parameters": count_parameters(net)}, ckpt_path)

    log = CsvLog(out / "posemap_log.csv", LOG_FIELDS, resume=args.resume)
    weights = LossWeights()
    t0 = time.time()
    bar = tqdm(range(start, args.steps), desc="posemap", initial=start, total=args.steps)
    for step in bar:
        if args.stop_after is not None and step >= args.stop_after:
            break
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        share = -(-args.bank // len(sources))
        bank = np.concatenate([src[rng.integers(0, len(src), share)] for src in sources])
        bank = augment(bank, rng, mirror_p=0.0, arm_swing_deg=args.arm_swing)
        batch = sample_scenes(bank, args.batch, scfg, rng)
        x = posemap_inputs(batch.teacher_kp, batch.teacher_conf, batch.intrinsics, batch.width,
                           batch.height, cfg.heatmap).to(device)
        targets = scene_targets(batch, cfg.maps)
        with torch.no_grad():
            z_target = prior.encode(torch.from_numpy(batch.pose_canonical).float().to(device))[0]
        targets = type(targets)(**{k: v.to(device) for k, v in vars(targets).items()})
        loss, logs = posemap_loss(net(x), targets, prior.decoder, z_target, net.heads.codes,
                                  weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            log.write({"step": step, "loss": float(loss.detach()), "lr": lr_at(step), **logs})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}",
                            mpjpe=f"{logs.get('mpjpe_mm', 0):.0f}mm")
        if (step + 1) % args.save_every == 0:
            save(step + 1)
    end = args.steps if args.stop_after is None else min(args.steps, args.stop_after)
    save(end)
    plot_curves(out / "posemap_log.csv", out / "posemap_loss.png")
    print(f"trained {end - start} steps in {time.time() - t0:.0f} s -> {ckpt_path}")
    return ckpt_path
