"""Train and evaluate the generative pose embedding (mp3d.model.prior) on motion capture."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mp3d.common.checkpoints import load_checkpoint, save_checkpoint
from mp3d.common.devices import resolve_device
from mp3d.data.posebank import augment, load_canonical
from mp3d.eval import metrics
from mp3d.model.prior import PosePrior, PriorConfig, to_numpy
from mp3d.train.logs import CsvLog, plot_curves


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--train", required=True, nargs="+",
                   help="training motion: BVH, DeepMimic or joint-position files/folders or .npz; "
                   "with several, each step draws equally from each")
    p.add_argument("--heldout", help="held-out motion for evaluation: BVH or .npz")
    p.add_argument("--out", default="runs/prior", help="run folder (checkpoint, CSV, PNGs)")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--latent-dim", type=int, default=PriorConfig.latent_dim)
    p.add_argument("--hidden", type=int, default=PriorConfig.hidden,
                   help="width of the encoder's and decoder's MLPs (the decoder runs per person "
                   "at inference: its refinement cost grows with it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/prior.pt")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON line")


@torch.no_grad()
def evaluate_prior(model: PosePrior, heldout: np.ndarray, reference: np.ndarray,
                   n_samples: int = 4000, seed: int = 0) -> dict[str, float]:
    """Reconstruction of held-out poses (posterior mean) and plausibility of prior samples.

    heldout, reference: canonical poses (N, 17, 3); reference = real training motion, the yardstick
    for joint-angle ranges."""
    model.eval()
    recon = to_numpy(model(torch.from_numpy(heldout))[0])
    g = torch.Generator().manual_seed(seed)
    samples = to_numpy(model.sample(n_samples, g))
    real = metrics.plausibility(heldout, reference)
    fake = metrics.plausibility(samples, reference)
    return {
        "heldout_mpjpe_mm": float(metrics.mpjpe(recon, heldout).mean()),
        "heldout_pa_mpjpe_mm": float(metrics.pa_mpjpe(recon, heldout).mean()),
        **{f"samples_{k}": v for k, v in fake.items()},
        **{f"real_{k}": v for k, v in real.items()},
    }


def train_prior(args: argparse.Namespace) -> dict[str, float]:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = resolve_device(args.device)
    sources = [load_canonical(t) for t in args.train]
    train = np.concatenate(sources)
    heldout = load_canonical(args.heldout) if args.heldout else None

    ckpt_path = out / "prior.pt"
    if args.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, "mp3d.prior")
        model = PosePrior.from_checkpoint(ckpt)
        start = int(ckpt["step"])
    else:
        ckpt, start = None, 0
        model = PosePrior(PriorConfig(latent_dim=args.latent_dim, hidden=args.hidden))
        model.set_statistics(torch.from_numpy(train))
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, (s + start) / args.steps))))
    log = CsvLog(out / "prior_log.csv", ["step", "loss", "nll", "kl", "mpjpe_mm"],
                 resume=args.resume)
    t0 = time.time()
    bar = tqdm(range(start, args.steps), desc="prior", initial=start, total=args.steps)
    for step in bar:
        share = -(-args.batch // len(sources))
        batch = augment(np.concatenate([s[rng.integers(0, len(s), share)] for s in sources]), rng)
        loss, logs = model.loss(torch.from_numpy(batch).to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0 or step == args.steps - 1:
            log.write({"step": step, "loss": float(loss.detach()), **logs})
            bar.set_postfix(mpjpe=f"{logs['mpjpe_mm']:.1f}mm", kl=f"{logs['kl']:.1f}")
    model.cpu().eval()
    result = {"train_seconds": time.time() - t0, "steps": args.steps}
    if heldout is not None:
        result.update(evaluate_prior(model, heldout, train, seed=args.seed))
        g = torch.Generator().manual_seed(args.seed)
        pick = np.linspace(0, len(heldout) - 1, 8).astype(int)
        from mp3d.infer.draw import pose_grid_png

        pose_grid_png({"real (held out)": heldout[pick],
                       "reconstructed": to_numpy(model(torch.from_numpy(heldout[pick]))[0]),
                       "sampled": to_numpy(model.sample(8, g))}, str(out / "prior_poses.png"))
    save_checkpoint(model.checkpoint(step=args.steps, optimizer=opt.state_dict(), metrics=result,
                                     train_data=[str(t) for t in args.train]), ckpt_path)
    plot_curves(out / "prior_log.csv", out / "prior_loss.png")
    return result


def print_result(result: dict[str, float], as_json: bool) -> None:
    for k, v in result.items():
        print(f"{k:36s} {v:.4g}")
    if as_json:
        print(json.dumps(result))
