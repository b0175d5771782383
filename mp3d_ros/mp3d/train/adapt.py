"""Adapting the trunk to one camera: see at the deployed input size what the teacher sees larger.

The teacher finds far, small people only at a large input (YOLO11n-pose needs imgsz 960 on
vtest.avi's 80 px walkers), which costs four times the deployed size. On the user's own unlabeled
frames the teacher's outputs at that large size (cached by `mp3d teach --imgsz 960`) become the
targets of the trunk at the deployed size: for every teacher person, the anchors whose centres lie
in the middle of its box, at the levels whose stride suits its size, learn its box (1 - IoU and L1),
its score (the IoU of their own box, YOLO's quality target; every other anchor 0) and its
confident keypoints (L1 in box sizes, and their confidence). So that nothing the trunk knew is
lost, the frozen original trunk's own outputs on the same frames are a second target on every
anchor (its person scores, and the keypoints where it saw a person). Batch-norm statistics stay
frozen; the learning rate is small. No frame has a human label: only the teacher's own outputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812
from tqdm import tqdm

from mp3d.common.skeleton import COCO_MIRROR_PERM
from mp3d.model.anchors import box_iou
from mp3d.model.yolo_pose import Yolo11Pose


@dataclass(frozen=True)
class AdaptConfig:
    steps: int = 400
    batch: int = 4
    lr: float = 2e-4
    centre_frac: float = 0.25    # positives: anchor centre within this fraction of the box size
    min_stride_frac: float = 2.5  # a level suits a box of at least this many strides ...
    max_stride_frac: float = 40.0  # ... and at most this many
    kp_min_conf: float = 0.5     # teacher keypoints learned
    keep: float = 1.0            # weight of the frozen trunk's own outputs (nothing is lost)
    box: float = 2.0
    kpt: float = 4.0


@dataclass
class Frame:
    """One letterboxed training frame: image (H, W, 3) uint8 and the teacher's people in its
    pixels: boxes (N, 4) xyxy, kpts (N, 17, 3) x, y, conf."""

    image: np.ndarray
    boxes: np.ndarray
    kpts: np.ndarray


def assign(boxes: torch.Tensor, anchor_xy: torch.Tensor, stride: torch.Tensor,
           cfg: AdaptConfig) -> torch.Tensor:
    """Which teacher person each anchor learns: boxes (N, 4), anchor centres (A, 2) px, strides
    (A,) -> (A,) person index, -1 for none. An anchor belongs to the smallest box whose middle
    holds its centre at a level suiting the box's size."""
    a = anchor_xy.shape[0]
    owner = torch.full((a,), -1, dtype=torch.long)
    if not len(boxes):
        return owner
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp_min(1.0)
    size = wh.amax(-1)
    half = torch.maximum(cfg.centre_frac * wh[None], 0.5 * stride[:, None, None])
    inside = ((anchor_xy[:, None] - centre[None]).abs() <= half).all(-1)       # (A, N)
    suits = (size[None] >= cfg.min_stride_frac * stride[:, None]) & (
        size[None] <= cfg.max_stride_frac * stride[:, None])
    ok = inside & suits
    cost = torch.where(ok, size[None].expand_as(ok), torch.full_like(ok, math.inf, dtype=size
                                                                      .dtype))
    best, idx = cost.min(-1)
    owner[torch.isfinite(best)] = idx[torch.isfinite(best)]
    return owner


def _bce(p: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), target, reduction="none")


def adapt_loss(out: dict[str, torch.Tensor], ref: dict[str, torch.Tensor],
               frames: Sequence[Frame], cfg: AdaptConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """The adaptation loss of a batch: out, the trunk's outputs; ref, the frozen trunk's (score,
    kpts); frames, the teacher's people per image."""
    terms = {"score": 0.0, "box": 0.0, "kpt": 0.0, "keep": 0.0}
    n_pos = 0
    for b, fr in enumerate(frames):
        boxes = torch.from_numpy(fr.boxes).float()
        kpts = torch.from_numpy(fr.kpts).float()
        owner = assign(boxes, out["anchor_xy"][0], out["stride"], cfg)
        pos = owner >= 0
        target = torch.zeros_like(out["score"][b])
        if bool(pos.any()):
            gt = boxes[owner[pos]]
            pred = out["boxes"][b][pos]
            iou = box_iou(pred, gt).diagonal()
            target[pos] = iou.detach().clamp_min(0.3)
            size = (gt[:, 2:] - gt[:, :2]).amax(-1).clamp_min(1.0)[:, None]
            terms["box"] = terms["box"] + ((1 - iou) + ((pred - gt).abs() / size).mean(-1)).sum()
            gk = kpts[owner[pos]]
            seen = (gk[..., 2] >= cfg.kp_min_conf).float()
            pk = out["kpts"][b][pos]
            err = ((pk[..., :2] - gk[..., :2]).abs().sum(-1) / size) * seen
            terms["kpt"] = terms["kpt"] + err.sum() / 17 + _bce(pk[..., 2], seen).mean(-1).sum()
            n_pos += int(pos.sum())
        terms["score"] = terms["score"] + _bce(out["score"][b], target).sum()
        saw = ref["score"][b] > 0.25
        keep = _bce(out["score"][b], ref["score"][b]).mean()
        if bool(saw.any()):
            rb = ref["boxes"][b][saw]
            size = (rb[:, 2:] - rb[:, :2]).amax(-1).clamp_min(1.0)[:, None]
            keep = keep + ((out["kpts"][b][saw][..., :2] - ref["kpts"][b][saw][..., :2]).abs()
                           .sum(-1) / size).mean()
        terms["keep"] = terms["keep"] + keep
    n = max(n_pos, 1)
    loss = (terms["score"] / n + cfg.box * terms["box"] / n + cfg.kpt * terms["kpt"] / n
            + cfg.keep * terms["keep"] / len(frames))
    return loss, {k: float(v.detach() if torch.is_tensor(v) else v) / (
        n if k != "keep" else len(frames)) for k, v in terms.items()}


def flip(fr: Frame) -> Frame:
    """The frame mirrored left-right, its people too (COCO left and right swapped)."""
    w = fr.image.shape[1]
    boxes = fr.boxes.copy()
    boxes[:, [0, 2]] = w - 1 - fr.boxes[:, [2, 0]]
    kpts = fr.kpts[:, list(COCO_MIRROR_PERM)].copy()
    kpts[..., 0] = w - 1 - kpts[..., 0]
    return Frame(np.ascontiguousarray(fr.image[:, ::-1]), boxes, kpts)


def adapt_trunk(trunk: Yolo11Pose, frames: Sequence[Frame], cfg: AdaptConfig,
                rng: np.random.Generator, log=None) -> Yolo11Pose:
    """Fine-tune `trunk` in place on `frames` (all of one letterbox shape) toward the teacher's
    people in them, keeping its own outputs elsewhere; returns it in eval mode."""
    import copy

    frozen = copy.deepcopy(trunk).eval().requires_grad_(False)
    trunk.eval()  # batch norm keeps its statistics
    params = [p for p in trunk.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    bar = tqdm(range(cfg.steps), desc="adapting the trunk")
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        batch = [frames[i] for i in rng.integers(0, len(frames), cfg.batch)]
        batch = [flip(f) if rng.random() < 0.5 else f for f in batch]
        x = torch.from_numpy(np.stack([f.image for f in batch])).permute(0, 3, 1, 2).float()
        x = x / 255
        with torch.no_grad():
            ref = frozen(x)
        out = trunk(x)
        loss, logs = adapt_loss(out, ref, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if log is not None and (step % 10 == 0 or step == cfg.steps - 1):
            log({"step": step, "loss": float(loss.detach()), **logs})
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return trunk.eval()


def teacher_frames(sources, teacher_cache: str, teacher: str, shape: tuple[int, int],
                   frame_step: int = 1, min_score: float = 0.25) -> list[Frame]:
    """Frames of the pool sources (mp3d.data.pool.Source) letterboxed to shape (W, H), with the
    cached teacher's people (`mp3d teach`, at a large imgsz) moved into the letterbox."""
    from mp3d.data.images import open_dataset
    from mp3d.data.images.dataset import split_by_time
    from mp3d.data.images.skips import FrameSkips
    from mp3d.data.teachers.cache import TeacherCache, teacher_name_for
    from mp3d.infer.estimator import letterbox_image

    cache, skips, out = TeacherCache(teacher_cache), FrameSkips(), []
    for src in sources:
        ds = open_dataset(src.path, topic=src.topic) if src.topic else open_dataset(src.path)
        frames = split_by_time(ds, src.start_frac, src.end_frac)
        name = teacher_name_for(teacher_cache, src.path, teacher)
        for i in range(0, len(frames), frame_step):
            rgb = skips.read(frames[i])
            people = None if rgb is None else cache.lookup(frames[i], name)
            if people is None:
                continue
            image, lb = letterbox_image(rgb, *shape)
            keep = people.person_scores >= min_score
            boxes = lb.to_out(people.boxes[keep].reshape(-1, 2, 2)).reshape(-1, 4)
            kp = lb.to_out(people.keypoints[keep])
            out.append(Frame(image, boxes.astype(np.float32), np.concatenate(
                [kp, people.scores[keep][..., None]], -1).astype(np.float32)))
        ds.close()
    return out
