"""Person maps: encoding people into centre/latent/depth/offset maps, and decoding them back.

One module for both directions, so they cannot drift apart (tested by an encode-then-decode round
trip). A person is (root pixel, root depth, latent code z, orientation): the centre map peaks at
the cell of the root's projection; the code maps hold, at that cell, z (the prior's latent), the
orientation (6D), the depth code log(Z / fx) + depth_offset (depth normalised by the focal length,
so it transfers across cameras and resizes) and the root's sub-cell offset. Decoding: peaks of
the centre map (max-pool NMS, threshold) -> read the codes at each peak -> decoder(z) rotated ->
root back-projected with the intrinsics -> absolute joints in the camera frame.

Grid convention (mp3d.model.heatmaps, whose grid functions are used here): cell (i, j) of a stride-s
grid is centred on image pixel ((j + 0.5) s - 0.5, (i + 0.5) s - 0.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from mp3d.common import skeleton as sk
from mp3d.model.heatmaps import grid_size, grid_to_image, image_to_grid
from mp3d.model.prior import matrix_to_rot6d, rot6d_to_matrix


@dataclass(frozen=True)
class MapConfig:
    stride: int = 8                 # image pixels per map cell
    depth_offset: float = 4.0       # depth code = log(Z / fx) + depth_offset (keeps it near 0)
    centre_sigma_frac: float = 0.06  # centre Gaussian sigma as a fraction of the person's height
    centre_sigma_min: float = 0.8   # ... clipped to [min, max] cells
    centre_sigma_max: float = 2.5
    peak_threshold: float = 0.3     # minimum centre probability of a person
    nms_kernel: int = 3             # max-pool window for peak NMS (cells)
    max_people: int = 32            # at most this many people per image
    outside_conf_scale: float = 0.3  # confidence of a joint projected outside the image, x this


def depth_code(z: np.ndarray, fx: np.ndarray, cfg: MapConfig) -> np.ndarray:
    """Root depth (m) -> depth code, broadcasting."""
    return np.log(np.maximum(z, 1e-3) / fx) + cfg.depth_offset


def depth_from_code(code, fx, cfg: MapConfig):
    """Depth code -> root depth (m); numpy or torch."""
    lib = torch if isinstance(code, torch.Tensor) else np
    return fx * lib.exp(code - cfg.depth_offset)


@dataclass
class MapTargets:
    """Training targets for a batch. P = person slots; `mask` marks the people that have a cell."""

    centre: torch.Tensor      # (B, 1, gh, gw) in [0, 1]
    index: torch.Tensor       # (B, P) long, flat cell index i * gw + j (0 where not mask)
    mask: torch.Tensor        # (B, P) bool
    offset: torch.Tensor      # (B, P, 2) sub-cell root offset (x, y) in cells, in [0, 1)
    depth: torch.Tensor       # (B, P) depth code
    rot6d: torch.Tensor       # (B, P, 6)
    joints_rel: torch.Tensor  # (B, P, 17, 3) root-relative joints, camera frame, metres
    visible: torch.Tensor     # (B, P, 17) bool: the joint is inside the image and not occluded


def encode_targets(root2d: np.ndarray, root_z: np.ndarray, rot: np.ndarray,
                   joints_rel: np.ndarray, height_px: np.ndarray, valid: np.ndarray,
                   fx: np.ndarray, width: int, height: int, cfg: MapConfig,
                   visible: np.ndarray | None = None) -> MapTargets:
    """People -> map targets.

    root2d (B,P,2) px; root_z (B,P) m; rot (B,P,3,3); joints_rel (B,P,17,3); height_px (B,P)
    the person's 2D height in pixels; valid (B,P) bool; fx (B,) px; visible (B,P,17) bool
    (default: every joint). A person gets a cell when valid, in front of the camera and its root
    projects inside the image.
    """
    B, P = valid.shape
    assert root2d.shape == (B, P, 2) and rot.shape == (B, P, 3, 3), (root2d.shape, rot.shape)
    assert joints_rel.shape == (B, P, sk.NUM_JOINTS, 3) and fx.shape == (B,)
    gw, gh = grid_size(width, height, cfg.stride)
    g = image_to_grid(np.asarray(root2d, dtype=np.float64), cfg.stride)
    cell = np.floor(g + 0.5).astype(np.int64)  # nearest cell centre
    inside = (cell[..., 0] >= 0) & (cell[..., 0] < gw) & (cell[..., 1] >= 0) & (cell[..., 1] < gh)
    mask = valid & inside & (root_z > 0.05)
    cell = np.where(mask[..., None], cell, 0)
    # Centre heatmap: max over people of a Gaussian at the continuous root position.
    sigma = np.clip(cfg.centre_sigma_frac * height_px / cfg.stride, cfg.centre_sigma_min,
                    cfg.centre_sigma_max)
    xs, ys = np.arange(gw), np.arange(gh)
    gx = np.exp(-(xs[None, None] - g[..., 0:1]) ** 2 / (2 * sigma[..., None] ** 2))
    gy = np.exp(-(ys[None, None] - g[..., 1:2]) ** 2 / (2 * sigma[..., None] ** 2))
    blobs = gy[..., :, None] * gx[..., None, :] * mask[..., None, None]
    centre = blobs.max(axis=1) if P else np.zeros((B, gh, gw))
    # The peak cell itself is exactly 1 so focal loss sees one positive per person.
    b_idx, p_idx = np.nonzero(mask)
    centre[b_idx, cell[b_idx, p_idx, 1], cell[b_idx, p_idx, 0]] = 1.0
    fxp = np.broadcast_to(fx[:, None], (B, P))
    return MapTargets(
        centre=torch.from_numpy(centre[:, None].astype(np.float32)),
        index=torch.from_numpy(cell[..., 1] * gw + cell[..., 0]),
        mask=torch.from_numpy(mask),
        offset=torch.from_numpy((g - cell + 0.5).astype(np.float32)),
        depth=torch.from_numpy(
            depth_code(np.where(mask, root_z, 1.0), fxp, cfg).astype(np.float32)),
        rot6d=matrix_to_rot6d(torch.from_numpy(rot.astype(np.float32))),
        joints_rel=torch.from_numpy(joints_rel.astype(np.float32)),
        visible=torch.from_numpy(np.ones((B, P, sk.NUM_JOINTS), bool) if visible is None
                                 else np.asarray(visible, bool)),
    )


def gather(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of (B, C, gh, gw) maps at flat cell indices (B, P) -> (B, P, C)."""
    B, C = maps.shape[:2]
    flat = maps.reshape(B, C, -1)
    return torch.gather(flat, 2, index[:, None, :].expand(B, C, index.shape[1])).transpose(1, 2)


@dataclass
class DecodedPeople:
    """People decoded from one image's maps. N people; arrays in the camera optical frame."""

    score: np.ndarray        # (N,) centre probability at the peak
    root2d: np.ndarray       # (N, 2) image pixels
    depth: np.ndarray        # (N,) root depth (m)
    z: np.ndarray            # (N, D) latent codes
    rot: np.ndarray          # (N, 3, 3) orientation
    joints_rel: np.ndarray   # (N, 17, 3) root-relative joints (m)
    joints_cam: np.ndarray   # (N, 17, 3) absolute joints (m)
    keypoints_2d: np.ndarray  # (N, 17, 2) projections of joints_cam (px)
    joint_conf: np.ndarray   # (N, 17) probability that each joint is right (CodeHead's branch)

    def __len__(self) -> int:
        return len(self.score)


def seen_confidence(conf: np.ndarray, keypoints_2d: np.ndarray, width: int, height: int,
                    outside_scale: float) -> np.ndarray:
    """Joint confidences (N, 17) with those whose keypoints (N, 17, 2) fall outside the
    width x height image scaled by outside_scale (the configs' outside_conf_scale): a joint out
    of the frame was never seen, however plausible the guess."""
    kp = np.asarray(keypoints_2d)
    assert kp.shape[:-1] == np.shape(conf) and kp.shape[-1] == 2, (kp.shape, np.shape(conf))
    inside = (kp[..., 0] >= -0.5) & (kp[..., 0] <= width - 0.5) & (kp[..., 1] >= -0.5) & (
        kp[..., 1] <= height - 0.5)
    return np.where(inside, conf, conf * outside_scale)


def find_peaks(centre_prob: torch.Tensor, cfg: MapConfig) -> list[tuple[torch.Tensor, ...]]:
    """Local maxima above threshold: (B, 1, gh, gw) probabilities -> per image
    (scores (N,), flat indices (N,)), best first, at most cfg.max_people."""
    pooled = torch.nn.functional.max_pool2d(centre_prob, cfg.nms_kernel, 1, cfg.nms_kernel // 2)
    keep = (centre_prob == pooled) & (centre_prob >= cfg.peak_threshold)
    out = []
    for b in range(centre_prob.shape[0]):
        flat = torch.where(keep[b, 0].reshape(-1), centre_prob[b, 0].reshape(-1), -1.0)
        k = min(cfg.max_people, int((flat >= 0).sum()))
        scores, idx = torch.topk(flat, k)
        out.append((scores, idx))
    return out


@torch.no_grad()
def decode_maps(maps: dict[str, torch.Tensor], intrinsics: np.ndarray, decoder: torch.nn.Module,
                cfg: MapConfig, codes: Callable[[torch.Tensor], tuple[torch.Tensor, ...]]
                ) -> list[DecodedPeople]:
    """Person maps of a batch -> people per image.

    maps: the network's outputs (centre logits (B,1,gh,gw), depth, offset, code features feat);
    intrinsics: (B, 4) fx, fy, cx, cy in pixels of the image the maps were computed for;
    codes: code features at cells (N, C) -> (z (N, D), rot6d (N, 6), joint confidence logits
    (N, 17)) (the network's CodeHead). The maps, `codes` and `decoder` must be on one device,
    where all the torch work runs; only the results come to the CPU, as numpy.
    """
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    B, _, gh, gw = maps["centre"].shape
    assert intrinsics.shape == (B, 4), intrinsics.shape
    prob = torch.sigmoid(maps["centre"].float())
    peaks = find_peaks(prob, cfg)
    out = []
    for b, (scores, idx) in enumerate(peaks):
        fx, fy, cx, cy = intrinsics[b]
        sel = idx[None]
        z, r6, conf_logit = codes(gather(maps["feat"][b:b + 1], sel)[0])
        dcode = gather(maps["depth"][b:b + 1], sel)[0, :, 0]
        off = gather(maps["offset"][b:b + 1], sel)[0]
        cells = torch.stack([idx % gw, idx // gw], dim=-1).double()
        g = cells + off.double() - 0.5
        root2d = grid_to_image(g.cpu().numpy(), cfg.stride)
        depth = depth_from_code(dcode.double().cpu().numpy(), fx, cfg)
        rot = rot6d_to_matrix(r6.float())
        rel = torch.einsum("nij,nkj->nki", rot, decoder(z.float())).double().cpu().numpy()
        root = np.stack([(root2d[:, 0] - cx) / fx * depth, (root2d[:, 1] - cy) / fy * depth, depth],
                        axis=-1)
        joints = rel + root[:, None, :]
        zz = np.maximum(joints[..., 2], 1e-3)
        kp = np.stack([fx * joints[..., 0] / zz + cx, fy * joints[..., 1] / zz + cy], axis=-1)
        out.append(DecodedPeople(scores.double().cpu().numpy(), root2d, depth,
                                 z.float().cpu().numpy(), rot.cpu().numpy(), rel, joints, kp,
                                 torch.sigmoid(conf_logit.float()).double().cpu().numpy()))
    return out
