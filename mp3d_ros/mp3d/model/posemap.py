"""The pose-map network P's stage: its config (network, heatmaps, maps), its inputs from teacher
keypoints, and loading it from a checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from mp3d.common.checkpoints import load_weights
from mp3d.model.heatmaps import (
    HeatmapConfig,
    ray_channels,
    render_keypoint_heatmaps,
    render_offset_fields,
)
from mp3d.model.networks import NetConfig, PoseMapNet
from mp3d.model.personmaps import MapConfig

    # confidence says both "probably right" and "seen", so hidden joints score low


@dataclass(frozen=True)
class PoseMapConfig:
    """Everything the P stage needs at inference (stored in its checkpoint)."""

    net: NetConfig = field(default_factory=NetConfig)
    heatmap: HeatmapConfig = field(default_factory=HeatmapConfig)
    maps: MapConfig = field(default_factory=MapConfig)

    def to_dict(self) -> dict:
        return {"net": asdict(self.net), "heatmap": asdict(self.heatmap), "maps": asdict(self.maps)}

    @staticmethod
    def from_dict(d: dict) -> PoseMapConfig:
        net = dict(d["net"])
        net["widths"] = tuple(net["widths"])
        return PoseMapConfig(NetConfig(**net), HeatmapConfig(**d["heatmap"]),
                             MapConfig(**d["maps"]))


def posemap_inputs(kp: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray, width: int,
                   height: int, cfg: HeatmapConfig) -> torch.Tensor:
    """Teacher keypoints of a batch -> P's input: kp (B, Q, 17, 2) COCO-17 pixels, conf (B, Q, 17),
    intrinsics (B, 4) -> (B, 53, gh, gw): heatmaps, offset fields and ray channels at
    cfg.stride."""
    heat = render_keypoint_heatmaps(kp, conf, width, height, cfg)
    offsets = render_offset_fields(kp, conf, width, height, cfg)
    rays = ray_channels(intrinsics, width, height, cfg.stride)
    return torch.cat([heat, offsets, rays], dim=1)


def load_posemap(ckpt: dict, allow_missing: tuple[str, ...] = ()
                 ) -> tuple[PoseMapNet, PoseMapConfig]:
    """Rebuild P and its stage config from a checkpoint dict (kind 'mp3d.posemap').
    allow_missing: prefixes of weights the checkpoint may lack (they keep their fresh init;
    for starting a new head from an older P)."""
    if ckpt.get("kind") != "mp3d.posemap":
        raise ValueError(f"not a pose-map checkpoint (kind={ckpt.get('kind')!r})")
    cfg = PoseMapConfig.from_dict(ckpt["config"])
    net = PoseMapNet(cfg.net)
    load_weights(net, ckpt["state_dict"], allow_missing)
    return net.eval(), cfg
