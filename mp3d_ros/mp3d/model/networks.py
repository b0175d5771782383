"""The pose-map network P and its heads: fully convolutional, emitting the person maps.

Plain 3x3 convolutions, batch norm, ReLU, nearest upsampling and addition only, so the networks
export cleanly to ONNX and TensorRT. Output maps have stride `MapConfig.stride` (8) with respect to
the image; P reads keypoint heatmaps at stride 4 (mp3d.model.heatmaps) plus two ray channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mp3d.common.skeleton import NUM_JOINTS


@dataclass(frozen=True)
class NetConfig:
    # COCO-17 keypoint heatmaps, their 2 x 17 offset fields, (u-cx)/fx and (v-cy)/fy rays
    in_channels: int = 17 + 34 + 2
    widths: tuple[int, ...] = (48, 64, 96, 128, 160)  # stride 8, 16, 32, 64, 128 (image pixels)
    head_width: int = 64
    latent_dim: int = 32               # must equal the prior's latent size
    input_stride: int = 4              # stride of the input maps with respect to the image


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class Block(nn.Module):
    """Residual block of two 3x3 convolutions."""

    def __init__(self, width: int):
        super().__init__()
        self.a = conv_bn(width, width)
        self.b = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.b(self.a(x)))


class CodeHead(nn.Module):
    """Pointwise MLP: a cell's code features (..., C) -> latent z (..., D), orientation 6D
    (..., 6) and per-joint confidence logits (..., 17). Lifting 2D evidence to a 3D pose needs
    more than a conv layer's width, so the latent map is this MLP applied at every cell; it is
    evaluated only at the cells that matter (people), which gives the same values at a fraction
    of the cost. The confidence branch reads the same hidden features: the evidence that a joint
    was seen (or lies outside the image, or behind someone) is what the pose is lifted from."""

    def __init__(self, in_dim: int, latent_dim: int, width: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.inp = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU())
        self.block = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.out = nn.Linear(width, latent_dim + 6)
        self.conf = nn.Sequential(nn.Linear(width, width // 4), nn.ReLU(),
                                  nn.Linear(width // 4, NUM_JOINTS))
        nn.init.constant_(self.conf[-1].bias, 2.0)  # start confident: most joints are right

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.inp(f)
        h = torch.relu(h + self.block(h))
        o = self.out(h)
        return o[..., :self.latent_dim], o[..., self.latent_dim:], self.conf(h)


class MapHeads(nn.Module):
    """Dense per-cell maps, shared by P and the image student: centre logit (1), depth code (1),
    sub-cell root offset (2) and code features (feat_dim, plus `extra` channels passed in), which
    the CodeHead turns into z, orientation and joint confidences (see `codes`)."""

    def __init__(self, width: int, latent_dim: int, feat_dim: int = 128, extra_dim: int = 0,
                 mlp_width: int = 512):
        super().__init__()
        self.latent_dim = latent_dim
        self.centre = nn.Sequential(conv_bn(width, width), nn.Conv2d(width, 1, 1))
        self.geo = nn.Sequential(conv_bn(width, width), nn.Conv2d(width, 3, 1))
        self.feat = nn.Sequential(nn.Conv2d(width, feat_dim, 1, bias=False),
                                  nn.BatchNorm2d(feat_dim), nn.ReLU(inplace=True))
        self.code = CodeHead(feat_dim + extra_dim, latent_dim, mlp_width)
        nn.init.constant_(self.centre[-1].bias, -4.0)  # start with few people (focal-loss prior)

    def forward(self, f: torch.Tensor, extra: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        geo = self.geo(f)
        feat = self.feat(f) if extra is None else torch.cat([self.feat(f), extra], dim=1)
        return {"centre": self.centre(f), "depth": geo[:, :1], "offset": geo[:, 1:3],
                "feat": feat}

    def codes(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Code features gathered at cells (..., C) -> (z (..., D), rot6d (..., 6), per-joint
        confidence logits (..., 17))."""
        return self.code(feat)


class PoseMapNet(nn.Module):
    """P: keypoint heatmaps + ray channels at stride 4 -> person maps at stride 8.

    An encoder down to stride 128 (a receptive field that covers a person filling the frame),
    then a top-down path with lateral additions back to stride 8.
    """

    def __init__(self, cfg: NetConfig = NetConfig()):
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = nn.Sequential(conv_bn(cfg.in_channels, w[0], stride=2), Block(w[0]))
        self.down = nn.ModuleList(
            nn.Sequential(conv_bn(w[i], w[i + 1], stride=2), Block(w[i + 1]))
            for i in range(len(w) - 1))
        self.lateral = nn.ModuleList(nn.Conv2d(wi, cfg.head_width, 1) for wi in w)
        self.smooth = conv_bn(cfg.head_width, cfg.head_width)
        # The code features see P's own input too (pooled to stride 8): the offset fields carry
        # the exact 2D pose around each cell straight to the lifting MLP.
        self.heads = MapHeads(cfg.head_width, cfg.latent_dim, extra_dim=cfg.in_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """x: (B, in_channels, H/4, W/4) -> maps at (H/8, W/8)."""
        feats = [self.stem(x)]
        for layer in self.down:
            feats.append(layer(feats[-1]))
        y = self.lateral[-1](feats[-1])
        for f, lat in zip(reversed(feats[:-1]), reversed(self.lateral[:-1])):
            y = nn.functional.interpolate(y, size=f.shape[-2:], mode="nearest") + lat(f)
        y = self.smooth(y)
        extra = nn.functional.avg_pool2d(x, 2, ceil_mode=True)[..., :y.shape[-2], :y.shape[-1]]
        return self.heads(y, extra)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
