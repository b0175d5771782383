"""Losses: P's on synthetic scenes (centre focal loss, pose, code, orientation, depth, offset,
per-joint confidence) and the targets it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mp3d.common import skeleton as sk
from mp3d.data.scenes.batch import SceneBatch
from mp3d.eval.metrics import joint_right
from mp3d.model.personmaps import MapConfig, MapTargets, encode_targets, gather
from mp3d.model.prior import rot6d_to_matrix


@dataclass(frozen=True)
class LossWeights:
    centre: float = 1.0
    pose: float = 5.0      # L1 of root-relative joints, metres
    latent: float = 0.1    # squared distance to the prior encoder's code of the true pose
    rot: float = 1.0       # Frobenius distance of orientation matrices
    depth: float = 1.0     # L1 of the depth code (log depth)
    offset: float = 1.0    # L1 of the sub-cell root offset (cells)
    conf: float = 0.5      # BCE of per-joint confidence against "this joint is right"
    conf_correct_frac: float = 0.15  # a joint is right within this fraction of body height
    conf_hidden: float = 0.25  # target of a right joint that is truncated or occluded: the


def scene_targets(batch: SceneBatch, cfg: MapConfig) -> MapTargets:
    """Exact person-map targets of synthetic scenes."""
    root = batch.joints_cam[:, :, sk.ROOT]
    return encode_targets(batch.root2d, root[..., 2], batch.rot,
                          batch.joints_cam - root[:, :, None], batch.size2d, batch.valid,
                          batch.intrinsics[:, 0], batch.width, batch.height, cfg,
                          batch.in_image & ~batch.occluded)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
               beta: float = 4.0) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss on a Gaussian-splatted target, normalised by the
    number of peaks (cells where target == 1)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = -torch.log(p) * (1 - p) ** alpha * pos
    neg_loss = -torch.log(1 - p) * p ** alpha * (1 - target) ** beta * (1 - pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp_min(1.0)


def posemap_loss(out: dict[str, torch.Tensor], t: MapTargets, decoder: torch.nn.Module,
                 z_target: torch.Tensor, codes, w: LossWeights = LossWeights()
                 ) -> tuple[torch.Tensor, dict[str, float]]:
    """P's training loss. out: network maps; t: targets; z_target (B, P, D): the prior encoder's
    code of each true canonical pose; codes: P's CodeHead. Returns the loss and per-term logs
    (pose term also in mm)."""
    logs: dict[str, float] = {}
    loss_c = focal_loss(out["centre"], t.centre)
    m = t.mask
    if not bool(m.any()):
        return w.centre * loss_c, {"centre": float(loss_c.detach())}
    z, r6, conf_logit = codes(gather(out["feat"], t.index)[m])
    dep = gather(out["depth"], t.index)[m][:, 0]
    off = gather(out["offset"], t.index)[m]
    rot = rot6d_to_matrix(r6)
    rel = torch.einsum("nij,nkj->nki", rot, decoder(z))
    gt_rel = t.joints_rel[m]
    gt_rot = rot6d_to_matrix(t.rot6d[m])
    terms = {
        "centre": loss_c,
        "pose": (rel - gt_rel).abs().sum(-1).mean(),
        "latent": ((z - z_target[m]) ** 2).sum(-1).mean(),
        "rot": ((rot - gt_rot) ** 2).sum((-1, -2)).mean(),
        "depth": (dep - t.depth[m]).abs().mean(),
        "offset": (off - t.offset[m]).abs().sum(-1).mean(),
        "conf": joint_conf_loss(conf_logit, rel.detach(), gt_rel, t.visible[m],
                                w.conf_correct_frac, w.conf_hidden),
    }
    loss = sum(getattr(w, k) * v for k, v in terms.items())
    logs = {k: float(v.detach()) for k, v in terms.items()}
    logs["mpjpe_mm"] = 1000.0 * float((rel - gt_rel).norm(dim=-1).mean().detach())
    return loss, logs


def joint_conf_loss(conf_logit: torch.Tensor, pred_rel: torch.Tensor, gt_rel: torch.Tensor,
                    visible: torch.Tensor, frac: float, hidden_target: float) -> torch.Tensor:
    """BCE of confidence logits (N, 17) against `joint_right` of the (detached) prediction;
    a right joint that is not visible (N, 17) has the soft target `hidden_target`."""
    right = joint_right(pred_rel, gt_rel, frac).float()
    target = right * torch.where(visible, 1.0, hidden_target)
    return torch.nn.functional.binary_cross_entropy_with_logits(conf_logit, target)
