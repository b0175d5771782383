"""People from the student's anchors: person NMS, the heads' inputs at the kept anchors, decoding.

The trunk (the teacher's network) scores every anchor of its three grids as a person candidate
with a box and 17 COCO keypoints; that grid plays the centre map's part (one candidate per cell,
no keypoint grouping). Decoding keeps the candidates whose score passes `peak_threshold`, removes
overlapping ones by box IoU (greedy NMS, best first, as the teacher does), runs the paper's heads
(mp3d.model.student.PersonHead) on the kept anchors only, and turns each into a 3D person:
decoder(z) rotated by the head's orientation, the root placed at its pixel and depth by the
intrinsics, optionally refined against the anchor's own confident keypoints (mp3d.model.refine).
So the cost grows with the number of people only through a tiny per-person MLP and decoder.

Pixel convention: integer coordinates are pixel centres; everything here is in the pixels of the
network's input image (letterboxed); intrinsics (fx, fy, cx, cy) are those of that image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mp3d.common import skeleton as sk
from mp3d.model.personmaps import DecodedPeople
from mp3d.model.prior import rot6d_to_matrix

NUM_COCO = len(sk.COCO_NAMES)
# MuPoTS joints read from COCO keypoints (15 of 17: head_top and spine have no COCO source).
COCO_BACKED: tuple[int, ...] = tuple(j for j, src in enumerate(sk.COCO_TO_MUPOTS) if src)


@dataclass(frozen=True)
class DecodeConfig:
    """How people are kept and decoded (stored in the student checkpoint)."""

    peak_threshold: float = 0.25    # person score threshold (the teacher's own default)
    iou_threshold: float = 0.7      # NMS: a candidate overlapping a better one more is dropped
    max_candidates: int = 100       # best-scoring anchors considered by NMS per image
    max_people: int = 32            # at most this many people per image
    min_kp_conf: float = 0.3        # keypoints trusted as 2D (output and refinement)
    outside_conf_scale: float = 0.3  # confidence of a joint projected outside the image, x this
    refine_steps: int = 2           # Gauss-Newton steps of code, orientation and root (0: off)
    refine_code_weight: float = 0.1  # pull of the refined code toward the head's code
    refine_prior_weight: float = 0.02  # pull of the refined code toward the prior's mean (0)
    refine_dims: tuple[int, ...] = ()  # latent dimensions refined (the prior's active ones; ():
    # all); a VAE leaves some dimensions unused, and each refined one costs a decoder pass

    def __post_init__(self) -> None:
        if not (0 <= self.peak_threshold <= 1 and 0 < self.iou_threshold <= 1):
            raise ValueError(f"bad thresholds in {self}")
        if self.max_people < 1 or self.max_candidates < 1 or self.refine_steps < 0:
            raise ValueError(f"bad counts in {self}")


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes, (N, 4) x (M, 4) -> (N, M)."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp_min(0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp_min(0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp_min(0).prod(-1)
    return inter / (area_a[:, None] + area_b[None, :] - inter).clamp_min(1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: indices (into boxes) kept, best first. (K, 4), (K,)."""
    order = torch.argsort(scores, descending=True, stable=True)
    iou = box_iou(boxes[order], boxes[order])
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1:] &= iou[i, i + 1:] <= iou_threshold
    return order[keep]


def select_people(score: torch.Tensor, boxes: torch.Tensor, cfg: DecodeConfig) -> torch.Tensor:
    """Anchors kept as people in one image: score (A,), boxes (A, 4) -> indices, best first."""
    k = min(cfg.max_candidates, score.shape[0])
    top, idx = torch.topk(score, k)
    idx = idx[top >= cfg.peak_threshold]
    keep = nms(boxes[idx], score[idx], cfg.iou_threshold)[: cfg.max_people]
    return idx[keep]


def head_inputs(feat: torch.Tensor, kpts: torch.Tensor, boxes: torch.Tensor, intr: torch.Tensor,
                has_image: bool = True) -> torch.Tensor:
    """The heads' input for N people: feat (N, F) anchor features (zeros, with has_image False,
    for people without an image: synthetic scenes); kpts (N, 17, 3) COCO x, y (px), confidence;
    boxes (N, 4) xyxy px; intr (N, 4) fx, fy, cx, cy -> (N, F + 17 * 3 + 4): the features, the
    keypoints relative to the box centre in box sizes, their confidences, the ray through the
    box centre, log(box size / fx) and the has-image flag."""
    n = kpts.shape[0]
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = box_size(boxes)
    rel = (kpts[..., :2] - centre[:, None]) / size[:, None, None]
    fx, fy, cx, cy = intr.unbind(-1)
    geo = torch.stack([(centre[:, 0] - cx) / fx, (centre[:, 1] - cy) / fy,
                       torch.log(size / fx)], -1)
    flag = torch.full((n, 1), 1.0 if has_image else 0.0, device=kpts.device)
    return torch.cat([feat, rel.flatten(1), kpts[..., 2], geo, flag], -1)


def box_size(boxes: torch.Tensor) -> torch.Tensor:
    """The longer side of xyxy boxes (N, 4) -> (N,), at least 1 px."""
    return (boxes[:, 2:] - boxes[:, :2]).amax(-1).clamp_min(1.0)


def person_geometry(head: dict[str, torch.Tensor], boxes: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """The heads' root pixel (N, 2) and log(Z / fx) (N,) of people with these boxes (N, 4):
    root = box centre + offset * box size; log(Z / fx) = head log size - log(box size in px)
    (pinhole: a person H metres tall at depth Z spans fx H / Z pixels)."""
    size = box_size(boxes)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    return centre + head["offset"] * size[:, None], head["log_zf"] - torch.log(size)


def coco_to_mupots_torch(kpts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """COCO keypoints (N, 17, 3) x, y, conf -> MuPoTS (N, 17, 2) points and (N, 17) confidences
    (a mean joint's confidence is its sources' minimum; joints without a COCO source: 0, NaN)."""
    out = torch.full(kpts.shape[:-2] + (sk.NUM_JOINTS, 2), float("nan"), device=kpts.device)
    conf = torch.zeros(kpts.shape[:-2] + (sk.NUM_JOINTS,), device=kpts.device)
    for j, src in enumerate(sk.COCO_TO_MUPOTS):
        if src:
            out[..., j, :] = kpts[..., list(src), :2].mean(-2)
            conf[..., j] = kpts[..., list(src), 2].amin(-1)
    return out, conf


def place_root(root2d: torch.Tensor, log_zf: torch.Tensor, intr: torch.Tensor) -> torch.Tensor:
    """Root pixel (N, 2) and log(Z / fx) (N,) -> root (N, 3) in the camera frame (metres)."""
    fx, fy, cx, cy = intr.unbind(-1)
    z = fx * torch.exp(log_zf)
    return torch.stack([(root2d[:, 0] - cx) / fx * z, (root2d[:, 1] - cy) / fy * z, z], -1)


def project(points: torch.Tensor, intr: torch.Tensor) -> torch.Tensor:
    """(N, J, 3) camera-frame points -> (N, J, 2) pixels (depth clamped at 1 cm)."""
    fx, fy, cx, cy = (v[:, None] for v in intr.unbind(-1))
    z = points[..., 2].clamp_min(0.01)
    return torch.stack([fx * points[..., 0] / z + cx, fy * points[..., 1] / z + cy], -1)


def lift_people(head: dict[str, torch.Tensor], kpts: torch.Tensor, boxes: torch.Tensor,
                intr: torch.Tensor, decoder: torch.nn.Module, cfg: DecodeConfig,
                refine: Callable[..., tuple[torch.Tensor, ...]] | None = None
                ) -> dict[str, torch.Tensor]:
    """N people in 3D from the heads' outputs at their anchors: decoder(z) turned by the head's
    orientation, the root at its pixel and depth, refined against the people's own confident
    keypoints when `refine` (mp3d.model.refine.refine_people) is given and cfg.refine_steps > 0.
    kpts (N, 17, 3) COCO x, y, conf; boxes (N, 4); intr (N, 4). Returns z (N, D), rot (N, 3, 3),
    root (N, 3), rel and joints (N, 17, 3), proj (N, 17, 2) the joints' projections, kp2d (N, 17,
    2) the 2D output (the keypoints where confident, else the projection), conf (N, 17)."""
    root2d, log_zf = person_geometry(head, boxes)
    z, rot = head["z"], rot6d_to_matrix(head["rot6d"])
    root = place_root(root2d, log_zf, intr)
    kp2d, kp_conf = coco_to_mupots_torch(kpts)
    if refine is not None and cfg.refine_steps > 0 and len(z):
        z, rot, root = refine(z, rot, root, kp2d, kp_conf, intr, decoder, cfg)
    rel = torch.einsum("nij,nkj->nki", rot, decoder(z))
    joints = rel + root[:, None]
    proj = project(joints, intr)
    trusted = (kp_conf >= cfg.min_kp_conf)[..., None]
    return {"z": z, "rot": rot, "root": root, "rel": rel, "joints": joints, "proj": proj,
            "kp2d": torch.where(trusted, kp2d.nan_to_num(), proj),
            "conf": torch.sigmoid(head["conf_logit"])}


@torch.no_grad()
def decode_people(dense: dict[str, torch.Tensor], intrinsics: np.ndarray,
                  heads: Callable[[torch.Tensor], dict[str, torch.Tensor]],
                  decoder: torch.nn.Module, cfg: DecodeConfig,
                  refine: Callable[..., tuple[torch.Tensor, ...]] | None = None
                  ) -> list[DecodedPeople]:
    """The student's dense outputs of a batch -> people per image.

    dense: boxes (B, A, 4), score (B, A), kpts (B, A, 17, 3), feat (B, A, F); intrinsics (B, 4)
    fx, fy, cx, cy of the input images; heads: the student's PersonHead (head inputs (N, C) ->
    z, rot6d, log_zf, offset, conf_logit); refine: mp3d.model.refine.refine_people or None.
    Everything runs on the dense outputs' device; results come back as numpy (see
    `lift_people` for what each person's 2D and 3D are)."""
    device = dense["score"].device
    intr_all = torch.as_tensor(np.asarray(intrinsics, np.float64), dtype=torch.float32,
                               device=device)
    assert intr_all.shape == (dense["score"].shape[0], 4), intr_all.shape
    out = []
    for b in range(dense["score"].shape[0]):
        idx = select_people(dense["score"][b], dense["boxes"][b], cfg)
        kpts, boxes = dense["kpts"][b, idx].float(), dense["boxes"][b, idx].float()
        intr = intr_all[b].expand(len(idx), 4)
        head = heads(head_inputs(dense["feat"][b, idx].float(), kpts, boxes, intr))
        p = lift_people(head, kpts, boxes, intr, decoder, cfg, refine)
        root2d = project(p["root"][:, None], intr)[:, 0]
        np_ = {k: v.double().cpu().numpy() for k, v in p.items()}
        out.append(DecodedPeople(
            dense["score"][b, idx].double().cpu().numpy(), root2d.double().cpu().numpy(),
            np_["root"][:, 2], p["z"].float().cpu().numpy(), p["rot"].float().cpu().numpy(),
            np_["rel"], np_["joints"], np_["kp2d"], np_["conf"]))
    return out
