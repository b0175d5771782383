"""Train the image student S by cross-modal alignment on unlabeled images (METHOD.md).

On each unlabeled frame, the frozen teacher's keypoints (cached by `mp3d teach`) are rendered to
P's inputs, and the frozen pose-map network P gives person maps: those are S's targets. S is
trained so that (1) its centre map agrees with P's (focal loss), (2) its codes agree with P's at
P's people (latent z, orientation, depth, offset: the shared latent space), and its decoded poses
agree with P's, (3) its decoded people, placed at its own depth and projected with the
intrinsics, land on the teacher's confident keypoints (reprojection), and (4) its codes stay
inside the prior's support. No image has a label. Horizontal flips double the data: the flipped
frame's targets come from P on the flipped teacher keypoints. Several processes train with DDP
when started by torchrun (gloo on CPU, NCCL on GPUs).
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_checkpoint, save_checkpoint
from mp3d.common.devices import resolve_device
from mp3d.common.paths import default_model
from mp3d.data.images.skips import FrameSkips
from mp3d.data.pool import PoolConfig, Source, build_pool
from mp3d.model.heatmaps import grid_to_image
from mp3d.model.networks import BACKBONES, StudentConfig, StudentNet, count_parameters
from mp3d.model.personmaps import MapConfig, decode_maps, depth_from_code, find_peaks, gather
from mp3d.model.posemap import load_posemap, posemap_inputs
from mp3d.model.prior import PosePrior, rot6d_to_matrix
from mp3d.model.student import load_student, student_checkpoint
from mp3d.train.logs import CsvLog, plot_curves
from mp3d.train.losses import focal_loss

LOG_FIELDS = ["step", "loss", "centre", "z", "rot", "depth", "offset", "pose", "reproj", "prior",
              "conf", "lr"]


@dataclass(frozen=True)
class StudentLossWeights:
    centre: float = 1.0
    z: float = 0.05
    rot: float = 0.5
    depth: float = 1.0
    offset: float = 1.0
    pose: float = 5.0
    reproj: float = 1.0
    prior: float = 1e-3
    conf: float = 0.5       # BCE of per-joint confidence against P's


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append",
                   help="unlabeled images: video, folder or rosbag2, as PATH or "
                   "PATH@START:END (fractions of its time span) or PATH@START:END@TOPIC; "
                   "repeat for a pool of several cameras")
    p.add_argument("--topic", help="image topic (bags)")
    p.add_argument("--start-frac", type=float, default=0.0,
                   help="time range of sources given without @START:END")
    p.add_argument("--end-frac", type=float, default=1.0)
    p.add_argument("--views", type=int, default=4,
                   help="samples per frame: the letterbox plus random zooms, crops, rotations")
    p.add_argument("--frame-step", type=int, default=1, help="use every n-th frame")
    p.add_argument("--init", help="start from this student checkpoint's weights (a new run: "
                   "fresh optimiser and schedule), e.g. the shipped general model")
    p.add_argument("--backbone", choices=list(BACKBONES), default="plain",
                   help="student encoder of a new run (--init and --resume keep theirs)")
    p.add_argument("--input-size", default="512x384", help="WIDTHxHEIGHT of a new run's input "
                   "(images are letterboxed to it; multiples of 16)")
    p.add_argument("--pretrained", default="cache/pretrained/yolo11n_backbone.pt",
                   help="pretrained encoder weights for --backbone yolo11n (made by "
                   "scripts/extract_yolo_backbone.py in .venv-teacher)")
    p.add_argument("--teacher-cache", default="cache/teacher")
    p.add_argument("--teacher", default="yolo11n-pose")
    p.add_argument("--prior", default=str(default_model("prior.pt")))
    p.add_argument("--posemap", default=str(default_model("posemap.pt")))
    p.add_argument("--hfov", type=float, default=60.0,
                   help="assumed horizontal field of view (deg) when the data has no intrinsics")
    p.add_argument("--out", default="runs/student")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--save-every", type=int, default=100)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--min-teacher-conf", type=float, default=0.5,
                   help="teacher keypoints used by the reprojection loss")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first pool frame that cannot be decoded (default: skip it, "
                   "count it, and print a summary line)")


@dataclass
class Prepared:
    """Everything training reads, computed once: the pool's samples, P's targets on them and the
    teacher keypoints at P's people. Index f: sample f of the pool."""

    samples: list             # mp3d.data.pool.Sample: JPEG image, intrinsics, teacher people
    intr: np.ndarray          # (F, 4) sample intrinsics fx, fy, cx, cy
    p_maps: torch.Tensor      # (F, 4, gh, gw) float16: P's centre logit, depth, offset
    peak_index: list[np.ndarray]    # per f: cells of P's people
    peak_code: list[np.ndarray]     # per f: (M, D + 6 + 17) P's z, rot6d, joint conf logits
    peak_teacher: list[np.ndarray]  # per f: (M, 17, 3) teacher joints (MuPoTS order) x, y, conf
    peak_size: list[np.ndarray]     # per f: (M,) teacher person size (px), 0 if unassociated


def parse_size(spec: str) -> tuple[int, int]:
    """"WIDTHxHEIGHT" -> (width, height), multiples of 16."""
    try:
        w, h = (int(v) for v in spec.lower().split("x"))
    except ValueError:
        raise ValueError(f"bad size {spec!r}: expected WIDTHxHEIGHT, e.g. 512x384") from None
    if w <= 0 or h <= 0 or w % 16 or h % 16:
        raise ValueError(f"bad size {spec!r}: width and height must be positive multiples of 16")
    return w, h


def pool_sources(args: argparse.Namespace) -> list[Source]:
    """The --data sources; a source without its own @START:END takes --start-frac/--end-frac."""
    out = []
    for spec in args.data:
        src = Source.parse(spec)
        if "@" not in spec:
            src = Source(src.path, args.start_frac, args.end_frac, args.topic)
        out.append(src)
    return out


def teacher_at_peaks(root2d: np.ndarray, kp: np.ndarray, conf: np.ndarray, min_conf: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The teacher person nearest each of P's people: root2d (M, 2) P's root pixels; kp (N, 17,
    2), conf (N, 17) teacher COCO-17 -> (M, 17, 3) MuPoTS joints x, y, conf (conf 0 below
    min_conf) and (M,) the person's 2D size (0: no teacher person within max(8 px, 0.3 size))."""
    tj = np.zeros((len(root2d), 17, 3))
    size = np.zeros(len(root2d))
    if not len(kp) or not len(root2d):
        return tj, size
    joints, jconf = sk.coco_to_mupots(kp, conf)
    ok = jconf >= min_conf
    hips = joints[:, sk.ROOT]
    psize = np.array([np.ptp(joints[n][ok[n]], axis=0).max() if ok[n].sum() >= 2 else 0.0
                      for n in range(len(kp))])
    for m, r in enumerate(root2d):
        d = np.linalg.norm(hips - r, axis=-1)
        d[~ok[:, sk.ROOT]] = np.inf
        n = int(np.argmin(d))
        if d[n] <= max(8.0, 0.3 * psize[n]) and psize[n] > 0:
            tj[m, :, :2] = np.nan_to_num(joints[n])
            tj[m, :, 2] = np.where(ok[n], jconf[n], 0.0)
            size[m] = psize[n]
    return tj, size


def prepare(args: argparse.Namespace, scfg: StudentConfig, posemap_path: str,
            prior: PosePrior) -> Prepared:
    net_p, pcfg = load_posemap(load_checkpoint(posemap_path, "mp3d.posemap"))
    W, H = scfg.input_width, scfg.input_height
    pool_cfg = PoolConfig(width=W, height=H, views=args.views)
    samples = build_pool(pool_sources(args), args.teacher_cache, args.teacher, args.hfov,
                         pool_cfg, np.random.default_rng(args.seed), args.frame_step,
                         progress=_rank() == 0, skips=FrameSkips(strict=args.strict))
    if not samples:
        raise ValueError("the training pool is empty: no frames in the given time ranges")
    F = len(samples)
    intr = np.stack([smp.intrinsics for smp in samples])
    maps, peak_index, peak_code, peak_teacher, peak_size = [], [], [], [], []
    for s in tqdm(range(0, F, 16), desc="P targets", disable=_rank() != 0):
        idx = list(range(s, min(F, s + 16)))
        q = max([len(samples[i].keypoints) for i in idx] + [1])
        kp = np.full((len(idx), q, 17, 2), np.nan)
        cf = np.zeros((len(idx), q, 17))
        for j, i in enumerate(idx):
            n = len(samples[i].keypoints)
            kp[j, :n] = samples[i].keypoints
            cf[j, :n] = samples[i].conf
        with torch.no_grad():
            out = net_p(posemap_inputs(kp, cf, intr[idx], W, H, pcfg.heatmap))
            dec = decode_maps(out, intr[idx], prior.decoder, pcfg.maps, net_p.heads.codes)
            peaks = find_peaks(torch.sigmoid(out["centre"]), pcfg.maps)
            maps.append(torch.cat([out[k] for k in ("centre", "depth", "offset")], 1).half())
            for j, i in enumerate(idx):
                codes = net_p.heads.codes(gather(out["feat"][j:j + 1], peaks[j][1][None])[0])
                peak_code.append(torch.cat(codes, -1).numpy())
                peak_index.append(peaks[j][1].numpy())
                tj, size = teacher_at_peaks(dec[j].root2d, samples[i].keypoints,
                                            samples[i].conf, args.min_teacher_conf)
                peak_teacher.append(tj)
                peak_size.append(size)
    return Prepared(samples, intr, torch.cat(maps), peak_index, peak_code, peak_teacher,
                    peak_size)


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _photometric(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and colour gains, and a little noise; x (B, 3, H, W) in 0..1."""
    B = x.shape[0]
    gain = 1 + 0.25 * (torch.rand(B, 1, 1, 1, generator=gen) * 2 - 1)
    colour = 1 + 0.08 * (torch.rand(B, 3, 1, 1, generator=gen) * 2 - 1)
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + 0.25 * (torch.rand(B, 1, 1, 1, generator=gen) * 2 - 1)
    x = ((x - mean) * contrast + mean) * gain * colour
    return (x + 0.01 * torch.randn(x.shape, generator=gen)).clamp(0, 1)


def student_loss(s: dict[str, torch.Tensor], p: dict[str, torch.Tensor], index: torch.Tensor,
                 mask: torch.Tensor, p_code: torch.Tensor, teacher: torch.Tensor,
                 size: torch.Tensor, intr: torch.Tensor, decoder: torch.nn.Module, codes,
                 mcfg: MapConfig, w: StudentLossWeights) -> tuple[torch.Tensor, dict[str, float]]:
    """S's loss against P's maps. s: S's maps; p: P's dense maps (centre, depth, offset);
    index/mask (B, M): P's people cells; p_code (B, M, D + 6): P's z and rot6d there;
    teacher (B, M, 17, 3) teacher joints (x, y, conf) in input pixels; size (B, M) their 2D size
    (0: none); intr (B, 4) input-space intrinsics; codes: S's CodeHead."""
    target = torch.sigmoid(p["centre"].float())
    B, _, gh, gw = target.shape
    flat = target.view(B, -1)
    b_idx = torch.arange(B)[:, None].expand_as(index)
    flat = flat.clone()
    flat[b_idx[mask], index[mask]] = 1.0
    terms = {"centre": focal_loss(s["centre"], flat.view_as(target))}
    zero = s["centre"].sum() * 0
    if not bool(mask.any()):
        return w.centre * terms["centre"], {"centre": float(terms["centre"].detach())}
    g = {k: gather(s[k], index)[mask] for k in ("depth", "offset")}
    g["z"], g["rot6d"], g["conf"] = codes(gather(s["feat"], index)[mask])
    t = {k: gather(p[k].float(), index)[mask] for k in ("depth", "offset")}
    d = g["z"].shape[-1]
    t["z"], t["rot6d"], t["conf"] = (p_code[mask][:, :d], p_code[mask][:, d:d + 6],
                                     p_code[mask][:, d + 6:])
    rot_s, rot_p = rot6d_to_matrix(g["rot6d"]), rot6d_to_matrix(t["rot6d"])
    rel_s = torch.einsum("nij,nkj->nki", rot_s, decoder(g["z"]))
    with torch.no_grad():
        rel_p = torch.einsum("nij,nkj->nki", rot_p, decoder(t["z"]))
    terms["z"] = ((g["z"] - t["z"]) ** 2).sum(-1).mean()
    terms["rot"] = ((rot_s - rot_p) ** 2).sum((-1, -2)).mean()
    terms["depth"] = (g["depth"] - t["depth"]).abs().mean()
    terms["offset"] = (g["offset"] - t["offset"]).abs().sum(-1).mean()
    terms["pose"] = (rel_s - rel_p).abs().sum(-1).mean()
    terms["prior"] = 0.5 * (g["z"] ** 2).sum(-1).mean()
    terms["conf"] = torch.nn.functional.binary_cross_entropy_with_logits(
        g["conf"], torch.sigmoid(t["conf"]))
    # Reprojection: S's person, at S's depth and root pixel, projected onto the teacher's joints.
    sz = size[mask]
    have = sz > 0
    if bool(have.any()):
        fx, fy, cx, cy = (intr[:, i, None].expand_as(index)[mask] for i in range(4))
        cells = index[mask]
        cell_xy = torch.stack([cells % gw, cells // gw], -1).float()
        u, v = grid_to_image(cell_xy + g["offset"] - 0.5, mcfg.stride).unbind(-1)
        depth = depth_from_code(g["depth"][:, 0], fx, mcfg)
        root = torch.stack([(u - cx) / fx * depth, (v - cy) / fy * depth, depth], -1)
        joints = rel_s + root[:, None]
        zc = joints[..., 2].clamp_min(0.1)
        proj = torch.stack([fx[:, None] * joints[..., 0] / zc + cx[:, None],
                            fy[:, None] * joints[..., 1] / zc + cy[:, None]], -1)
        tj = teacher[mask]
        err = (proj - tj[..., :2]).norm(dim=-1) / sz[:, None].clamp_min(1.0)
        huber = torch.where(err < 0.1, 0.5 * err ** 2 / 0.1, err - 0.05)
        wgt = tj[..., 2] * have[:, None]
        terms["reproj"] = (huber * wgt).sum() / wgt.sum().clamp_min(1.0)
    else:
        terms["reproj"] = zero
    loss = sum(getattr(w, k) * v for k, v in terms.items())
    return loss, {k: float(v.detach()) for k, v in terms.items()}


def _batch(data: Prepared, ids: np.ndarray, gen: torch.Generator):
    imgs = np.stack([data.samples[i].rgb() for i in ids])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    x = _photometric(x, gen)
    M = max([len(data.peak_index[i]) for i in ids] + [1])
    B = len(ids)
    index = torch.zeros(B, M, dtype=torch.long)
    mask = torch.zeros(B, M, dtype=torch.bool)
    code = torch.zeros(B, M, data.peak_code[ids[0]].shape[-1])
    teacher = torch.zeros(B, M, 17, 3)
    size = torch.zeros(B, M)
    for j, i in enumerate(ids):
        n = len(data.peak_index[i])
        index[j, :n] = torch.from_numpy(data.peak_index[i])
        mask[j, :n] = True
        code[j, :n] = torch.from_numpy(data.peak_code[i])
        teacher[j, :n] = torch.from_numpy(data.peak_teacher[i]).float()
        size[j, :n] = torch.from_numpy(data.peak_size[i]).float()
    pm = data.p_maps[ids].float()
    p = {"centre": pm[:, :1], "depth": pm[:, 1:2], "offset": pm[:, 2:4]}
    return x, p, index, mask, code, teacher, size, torch.from_numpy(data.intr[ids]).float()


def train_student(args: argparse.Namespace) -> Path:
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = resolve_device(args.device)
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = _rank()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    prior = PosePrior.from_checkpoint(load_checkpoint(args.prior, "mp3d.prior"))
    prior.requires_grad_(False)
    ckpt_path = out / "student.pt"
    ckpt, start = None, 0
    if args.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, "mp3d.student")
        net, _, _ = load_student(ckpt)
        start = int(ckpt["step"])
    elif args.init:
        net, _, _ = load_student(load_checkpoint(args.init, "mp3d.student"))
    else:
        width, height = parse_size(args.input_size)
        net = StudentNet(StudentConfig(backbone=args.backbone, input_width=width,
                                       input_height=height))
        if args.backbone.startswith("yolo11n"):
            from mp3d.model.backbones import load_pretrained

            load_pretrained(net.encoder, args.pretrained)
    scfg = net.cfg
    _, pcfg = load_posemap(load_checkpoint(args.posemap, "mp3d.posemap"))
    data = prepare(args, scfg, args.posemap, prior)
    F = len(data.samples)
    net.to(device).train()
    model = torch.nn.parallel.DistributedDataParallel(net) if distributed else net
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    rng = np.random.default_rng([args.seed, rank, start])
    gen = torch.Generator().manual_seed(args.seed * 1000 + rank + start)
    weights = StudentLossWeights()
    decoder = prior.decoder.to(device)

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / max(1, min(100, args.steps // 10)))
        return args.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))

    def save(step: int) -> None:
        if rank == 0:
            save_checkpoint(student_checkpoint(
                net, pcfg.maps, prior.decoder, step=step, optimizer=opt.state_dict(),
                data=[src.spec() for src in pool_sources(args)], init=args.init,
                teacher=args.teacher, parameters=count_parameters(net)), ckpt_path)

    log = CsvLog(out / "student_log.csv", LOG_FIELDS, resume=args.resume) if rank == 0 else None
    t0 = time.time()
    bar = tqdm(range(start, args.steps), desc="student", initial=start, total=args.steps,
               disable=rank != 0)
    for step in bar:
        for gr in opt.param_groups:
            gr["lr"] = lr_at(step)
        ids = rng.integers(0, F, args.batch)
        x, p, index, mask, code, teacher, size, intr = _batch(data, ids, gen)
        s = model(x.to(device))
        loss, logs = student_loss(s, {k: v.to(device) for k, v in p.items()}, index.to(device),
                                  mask.to(device), code.to(device), teacher.to(device),
                                  size.to(device), intr.to(device), decoder, net.heads.codes,
                                  pcfg.maps, weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if log is not None and (step % 25 == 0 or step == args.steps - 1):
            log.write({"step": step, "loss": float(loss.detach()), "lr": lr_at(step), **logs})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        if (step + 1) % args.save_every == 0:
            save(step + 1)
    save(args.steps)
    if rank == 0:
        plot_curves(out / "student_log.csv", out / "student_loss.png")
        print(f"trained {args.steps - start} steps in {time.time() - t0:.0f} s -> {ckpt_path}")
    if distributed:
        dist.destroy_process_group()
    return ckpt_path
