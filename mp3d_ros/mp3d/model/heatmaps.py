"""Heatmap encoding (and, later, decoding): the one place that turns keypoints into network maps.

The real teacher's keypoints and the synthetic scenes' teacher-like keypoints both go through
`render_keypoint_heatmaps`, so the pose-map network sees the same encoding in training and use.

Grid convention: a map of stride s has grid_size(W, H, s) = (ceil(W / s), ceil(H / s)) cells; grid
cell (row i, column j) covers image pixels [j s, (j + 1) s) x [i s, (i + 1) s) and is centred at
image pixel ((j + 0.5) s - 0.5, (i + 0.5) s - 0.5) (pixel-centre convention: integer pixel
coordinates are pixel centres). Continuous grid coordinates (gx, gy) = (column, row) map to pixels
by `grid_to_image` and back by `image_to_grid`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class HeatmapConfig:
    """Keypoint heatmap encoding."""

    stride: int = 4          # one heatmap cell = stride x stride image pixels
    sigma: float = 1.5       # Gaussian sd, in cells
    min_conf: float = 0.1    # keypoints with lower confidence are not drawn
    offset_radius: float = 40.0  # offset fields reach this far (cells) from a keypoint
    truncate: float = 6.0    # each 1D Gaussian is exactly 0 beyond this many sigma (keeps the
    # arithmetic clear of denormal floats, which are slow on CPUs; exp(-18) = 1.5e-8 is invisible)

    def __post_init__(self) -> None:
        if self.stride < 1 or self.sigma <= 0 or self.truncate <= 0:
            raise ValueError(f"bad heatmap config {self}")


def grid_size(width: int, height: int, stride: int) -> tuple[int, int]:
    """(gw, gh) = (ceil(width / stride), ceil(height / stride))."""
    return -(-int(width) // stride), -(-int(height) // stride)


def image_to_grid(uv: ArrayT, stride: int) -> ArrayT:
    """Image pixels to continuous grid coordinates (column, row), (..., 2) -> (..., 2)."""
    assert uv.shape[-1] == 2, uv.shape
    return (uv + 0.5) / stride - 0.5


def grid_to_image(g: ArrayT, stride: int) -> ArrayT:
    """Continuous grid coordinates (column, row) to image pixels, (..., 2) -> (..., 2)."""
    assert g.shape[-1] == 2, g.shape
    return (g + 0.5) * stride - 0.5


def _drawable(kp: np.ndarray | torch.Tensor, conf: np.ndarray | torch.Tensor,
              cfg: HeatmapConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Keypoints (B, Q, K, 2) and confidences (B, Q, K) as float32 tensors, and the mask of the
    ones that are drawn: finite, and conf >= cfg.min_conf and > 0."""
    kp = torch.as_tensor(kp, dtype=torch.float32)
    conf = torch.as_tensor(conf, dtype=torch.float32, device=kp.device)
    assert kp.ndim == 4 and kp.shape[-1] == 2 and conf.shape == kp.shape[:-1], (
        kp.shape, conf.shape)
    ok = torch.isfinite(kp).all(-1) & torch.isfinite(conf) & (conf >= cfg.min_conf) & (conf > 0)
    return kp, conf, ok


def _gauss_1d(d: torch.Tensor, cfg: HeatmapConfig) -> torch.Tensor:
    """exp(-d^2 / (2 sigma^2)) for distances d in cells, exactly 0 beyond cfg.truncate sigma."""
    a = (-0.5 / cfg.sigma**2) * d * d
    lim = -0.5 * cfg.truncate**2
    return torch.exp(a.clamp(min=lim)) * (a > lim)


def render_keypoint_heatmaps(kp: np.ndarray | torch.Tensor, conf: np.ndarray | torch.Tensor,
                             width: int, height: int, cfg: HeatmapConfig) -> torch.Tensor:
    """Per-joint heatmaps of several people's keypoints.

    kp: (B, Q, K, 2) image pixels (x, y) of a width x height image; conf: (B, Q, K) in [0, 1].
    Returns (B, K, gh, gw) float32 on kp's device: at each cell the max over people of
    conf * exp(-d^2 / (2 sigma^2)), d the distance in cells from the cell centre to the keypoint
    (0 where either axis is beyond cfg.truncate sigma).
    Keypoints with a non-finite coordinate or confidence, or conf < cfg.min_conf, draw nothing.
    """
    kp, conf, ok = _drawable(kp, conf, cfg)
    B, Q, K, _ = kp.shape
    gw, gh = grid_size(width, height, cfg.stride)
    c = torch.where(ok, conf, torch.zeros_like(conf))
    g = image_to_grid(torch.where(ok[..., None], kp, torch.zeros_like(kp)), cfg.stride)
    xs = torch.arange(gw, dtype=torch.float32, device=kp.device)
    ys = torch.arange(gh, dtype=torch.float32, device=kp.device)
    gx = _gauss_1d(xs - g[..., 0:1], cfg)                  # (B, Q, K, gw)
    gy = _gauss_1d(ys - g[..., 1:2], cfg) * c[..., None]   # (B, Q, K, gh), conf folded in
    out = torch.zeros(B, K, gh, gw, dtype=torch.float32, device=kp.device)
    tmp = torch.empty_like(out)
    # One person slot at a time (an outer product, then a running max), skipping empty slots.
    for q in torch.nonzero(c.amax(dim=(0, 2)) > 0).flatten().tolist():
        torch.mul(gy[:, q, :, :, None], gx[:, q, :, None, :], out=tmp)
        torch.maximum(out, tmp, out=out)
    return out


def ray_channels(intrinsics: np.ndarray | torch.Tensor, width: int, height: int,
                 stride: int) -> torch.Tensor:
    """Normalised ray coordinates at each cell centre: intrinsics (B, 4) fx, fy, cx, cy in pixels
    of the width x height image -> (B, 2, gh, gw) float32: ((u - cx) / fx, (v - cy) / fy)."""
    intr = torch.as_tensor(intrinsics, dtype=torch.float32)
    assert intr.ndim == 2 and intr.shape[1] == 4, intr.shape
    gw, gh = grid_size(width, height, stride)
    u = grid_to_image(torch.stack([torch.arange(gw, dtype=torch.float32, device=intr.device),
                                   torch.zeros(gw, device=intr.device)], -1), stride)[:, 0]
    v = grid_to_image(torch.stack([torch.zeros(gh, device=intr.device),
                                   torch.arange(gh, dtype=torch.float32, device=intr.device)],
                                  -1), stride)[:, 1]
    fx, fy, cx, cy = (intr[:, i, None, None] for i in range(4))
    ru = ((u[None, None, :] - cx) / fx).expand(-1, gh, -1)
    rv = ((v[None, :, None] - cy) / fy).expand(-1, -1, gw)
    return torch.stack([ru, rv], dim=1).contiguous()


def render_offset_fields(kp: np.ndarray | torch.Tensor, conf: np.ndarray | torch.Tensor,
                         width: int, height: int, cfg: HeatmapConfig) -> torch.Tensor:
    """Per-joint offset fields: at each cell, the vector (in units of cfg.offset_radius cells)
    from the cell centre to the nearest drawn keypoint of that joint type, 0 where none lies
    within the radius.

    Same inputs and drawing rule as render_keypoint_heatmaps; returns (B, 2K, gh, gw) float32,
    channels (dx_0, dy_0, dx_1, dy_1, ...). With the heatmaps, they carry the keypoints' exact
    positions to every cell nearby, so a cell at a person's centre sees the person's 2D pose
    without any grouping step.
    """
    kp, conf, ok = _drawable(kp, conf, cfg)
    B, Q, K, _ = kp.shape
    gw, gh = grid_size(width, height, cfg.stride)
    g = image_to_grid(torch.where(ok[..., None], kp, torch.zeros_like(kp)), cfg.stride)
    xs = torch.arange(gw, dtype=torch.float32, device=kp.device)
    ys = torch.arange(gh, dtype=torch.float32, device=kp.device)
    best = torch.full((B, K, gh, gw), float("inf"), device=kp.device)
    ox = torch.zeros(B, K, gh, gw, device=kp.device)
    oy = torch.zeros(B, K, gh, gw, device=kp.device)
    for q in torch.nonzero(ok.any(dim=(0, 2))).flatten().tolist():
        dx = g[:, q, :, 0, None, None] - xs               # (B, K, 1, gw)
        dy = g[:, q, :, 1, None, None] - ys[:, None]      # (B, K, gh, 1)
        d2 = (dx * dx + dy * dy).masked_fill_(~ok[:, q, :, None, None], float("inf"))
        closer = d2 < best
        torch.minimum(best, d2, out=best)
        ox = torch.where(closer, dx, ox)
        oy = torch.where(closer, dy, oy)
    out = torch.stack([ox, oy], dim=2)
    inside = (best <= cfg.offset_radius ** 2)[:, :, None]
    out = torch.where(inside, out / cfg.offset_radius, torch.zeros_like(out))
    return out.reshape(B, 2 * K, gh, gw)
