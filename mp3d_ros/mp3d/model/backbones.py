"""The teacher's backbone and PAN neck in plain torch: YOLO11n's layers 0..22 (no ultralytics).

`Yolo11Backbone` re-implements layers 0..10 (backbone) and optionally 11..22 (PAN/FPN neck) of
Ultralytics' ``yolo11-pose.yaml`` at scale ``n`` (depth 0.5, width 0.25, max channels 1024), with
the same arithmetic, so the weights of the YOLO11n-pose checkpoint load into it
(mp3d.model.yolo_weights; the whole network with its Pose head: mp3d.model.yolo_pose). Licence
of those weights: AGPL-3.0 (Ultralytics YOLO11n-pose).

Input: (B, 3, H, W) RGB in [0, 1] (YOLO's convention: pixels / 255, no mean/std).
Output: a list of feature maps at strides 8, 16, 32 (or 8, 16 when truncated at stride 16),
with channels `out_channels`. Every op (convolution, batch norm, SiLU, max pooling, nearest
resizing, concatenation, matmul and softmax) exports to ONNX opset 17.

Layer map (ultralytics index -> attribute): 0, 1, 2 -> ``stem``; 3, 4 -> ``stage3``;
5, 6 -> ``stage4``; 7, 8, 9, 10 -> ``stage5``; neck 13 -> ``neck.top4``, 16 -> ``neck.top3``,
17 -> ``neck.down3``, 19 -> ``neck.out4``, 20 -> ``neck.down4``, 22 -> ``neck.out5``
(11, 12, 14, 15, 18, 21 are the parameter-free upsampling and concatenation).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

BN_EPS = 1e-3       # ultralytics sets eps 1e-3 on every BatchNorm2d (not stored in state dicts)
BN_MOMENTUM = 0.03


class ConvBnAct(nn.Module):
    """Conv2d (no bias, 'same' padding) -> BatchNorm2d -> SiLU (or identity): YOLO's `Conv`."""

    def __init__(self, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two 3x3 ConvBnAct (cin -> hidden -> cout), plus the input when shapes allow."""

    def __init__(self, cin: int, cout: int, hidden: int, shortcut: bool = True):
        super().__init__()
        self.conv1 = ConvBnAct(cin, hidden, 3)
        self.conv2 = ConvBnAct(hidden, cout, 3)
        self.residual = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.residual else y


class C3k(nn.Module):
    """CSP block with two branches: `blocks` (n full-width bottlenecks) on one half, a 1x1 skip on
    the other, concatenated and merged by a 1x1 conv: (B, cin, H, W) -> (B, cout, H, W)."""

    def __init__(self, cin: int, cout: int, n: int = 2):
        super().__init__()
        hidden = cout // 2
        self.branch = ConvBnAct(cin, hidden)
        self.skip = ConvBnAct(cin, hidden)
        self.merge = ConvBnAct(2 * hidden, cout)
        self.blocks = nn.Sequential(*(Bottleneck(hidden, hidden, hidden) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(torch.cat([self.blocks(self.branch(x)), self.skip(x)], 1))


class C3k2(nn.Module):
    """YOLO11's C3k2 (a C2f): 1x1 conv to 2c channels, split in halves, a chain of n blocks on the
    second half keeping every intermediate, all (2 + n) c channels merged by a 1x1 conv.

    A block is a C3k when `c3k`, else a half-width bottleneck. (B, cin, H, W) -> (B, cout, H, W),
    c = int(cout * expand).
    """

    def __init__(self, cin: int, cout: int, n: int = 1, c3k: bool = False, expand: float = 0.5):
        super().__init__()
        self.c = int(cout * expand)
        self.split = ConvBnAct(cin, 2 * self.c)
        self.merge = ConvBnAct((2 + n) * self.c, cout)
        self.blocks = nn.ModuleList(
            C3k(self.c, self.c) if c3k else Bottleneck(self.c, self.c, self.c // 2)
            for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = list(self.split(x).split((self.c, self.c), 1))
        for block in self.blocks:
            ys.append(block(ys[-1]))
        return self.merge(torch.cat(ys, 1))


class SPPF(nn.Module):
    """Fast spatial pyramid pooling: 1x1 reduce to cin/2, three chained 5x5 max pools (receptive
    fields 5, 9, 13), the four maps concatenated and merged: (B, cin, H, W) -> (B, cout, H, W).

    The reduce conv has SiLU: the shipped YOLO11n checkpoint was pickled with it (ultralytics
    8.4's source builds SPPF without it, but unpickling keeps the stored module)."""

    def __init__(self, cin: int, cout: int, k: int = 5, n: int = 3):
        super().__init__()
        hidden = cin // 2
        self.reduce = ConvBnAct(cin, hidden)
        self.merge = ConvBnAct(hidden * (n + 1), cout)
        self.pool = nn.MaxPool2d(k, 1, k // 2)
        self.n = n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ys = [self.reduce(x)]
        for _ in range(self.n):
            ys.append(self.pool(ys[-1]))
        return self.merge(torch.cat(ys, 1))


class Attention(nn.Module):
    """Multi-head self-attention over the H*W cells of a map, with a depthwise 3x3 positional
    term on the values: (B, C, H, W) -> (B, C, H, W).

    Per head the 1x1 qkv conv gives [q (key_dim), k (key_dim), v (head_dim)] channels, with
    head_dim = C / heads and key_dim = head_dim * attn_ratio.
    """

    def __init__(self, dim: int, heads: int, attn_ratio: float = 0.5):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim ** -0.5
        self.qkv = ConvBnAct(dim, dim + 2 * self.key_dim * heads, act=False)
        self.proj = ConvBnAct(dim, dim, act=False)
        self.pe = ConvBnAct(dim, dim, 3, groups=dim, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        qkv = self.qkv(x).reshape(B, self.heads, 2 * self.key_dim + self.head_dim, H * W)
        q, k, v = qkv.split((self.key_dim, self.key_dim, self.head_dim), dim=2)
        attn = torch.softmax((q * self.scale).transpose(-2, -1) @ k, dim=-1)   # (B, h, N, N)
        y = (v @ attn.transpose(-2, -1)).reshape(B, C, H, W)                    # (B, h, hd, N)
        return self.proj(y + self.pe(v.reshape(B, C, H, W)))


class PSABlock(nn.Module):
    """Attention then a 1x1 feed-forward (2x expansion), each with a residual: (B, C, H, W)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attn = Attention(dim, heads)
        self.ffn = nn.Sequential(ConvBnAct(dim, 2 * dim), ConvBnAct(2 * dim, dim, act=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    """CSP block with attention: 1x1 conv, split in halves, PSA blocks on the second half, merge:
    (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, dim: int, n: int = 1):
        super().__init__()
        self.c = dim // 2
        self.split = ConvBnAct(dim, 2 * self.c)
        self.merge = ConvBnAct(2 * self.c, dim)
        self.blocks = nn.Sequential(*(PSABlock(self.c, max(self.c // 64, 1)) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.split(x).split((self.c, self.c), 1)
        return self.merge(torch.cat([a, self.blocks(b)], 1))


def _up_cat(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """Nearest-upsample x to skip's size (YOLO's 2x upsample when sizes divide by 32) and
    concatenate [x, skip] on channels."""
    return torch.cat([nn.functional.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip], 1)


class Yolo11Neck(nn.Module):
    """YOLO11's PAN/FPN neck (layers 11..22): top-down to stride 8, then bottom-up to stride 32.

    [x3, x4, x5] (channels `in_channels`, strides 8, 16, 32) -> [P3, P4, P5] (`out_channels`).
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int], n: int = 1):
        super().__init__()
        c3, c4, c5 = in_channels
        p3, p4, p5 = out_channels
        self.top4 = C3k2(c5 + c4, p4, n)                   # 13
        self.top3 = C3k2(p4 + c3, p3, n)                   # 16: P3
        self.down3 = ConvBnAct(p3, p3, 3, 2)               # 17
        self.out4 = C3k2(p3 + p4, p4, n)                   # 19: P4
        self.down4 = ConvBnAct(p4, p4, 3, 2)               # 20
        self.out5 = C3k2(p4 + c5, p5, n, c3k=True)         # 22: P5
        self.out_channels = (p3, p4, p5)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x3, x4, x5 = feats
        t4 = self.top4(_up_cat(x5, x4))
        p3 = self.top3(_up_cat(t4, x3))
        p4 = self.out4(torch.cat([self.down3(p3), t4], 1))
        p5 = self.out5(torch.cat([self.down4(p4), x5], 1))
        return [p3, p4, p5]


def _scaled(channels: int, width: float = 0.25, max_channels: int = 1024) -> int:
    """YOLO's width scaling: min(c, max) * width, rounded up to a multiple of 8."""
    c = min(channels, max_channels) * width
    return int(-(-c // 8) * 8)


class Yolo11Backbone(nn.Module):
    """YOLO11n backbone (layers 0..10), optionally with its PAN neck (11..22).

    x: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 for YOLO's exact layout (other
    multiples of 8 work: upsampling goes to the skip's size) -> list of (B, C_i, H/s_i, W/s_i)
    for strides `strides` and channels `out_channels`:

    - neck=True: the neck's P3, P4, P5 (64, 128, 256 channels; strides 8, 16, 32);
    - neck=False, last_stride=32: backbone layers 4, 6, 10 (128, 128, 256);
    - neck=False, last_stride=16: layers 4, 6 only (128, 128); the stride-32 stage is not built.
    """

    def __init__(self, neck: bool = False, last_stride: int = 32):
        super().__init__()
        if last_stride not in (16, 32):
            raise ValueError(f"last_stride must be 16 or 32, got {last_stride}")
        if neck and last_stride != 32:
            raise ValueError("the neck needs the stride-32 stage (last_stride=32)")
        c = {n: _scaled(n) for n in (64, 128, 256, 512, 1024)}   # 16, 32, 64, 128, 256
        self.stem = nn.Sequential(ConvBnAct(3, c[64], 3, 2), ConvBnAct(c[64], c[128], 3, 2),
                                  C3k2(c[128], c[256], 1, expand=0.25))
        self.stage3 = nn.Sequential(ConvBnAct(c[256], c[256], 3, 2),
                                    C3k2(c[256], c[512], 1, expand=0.25))
        self.stage4 = nn.Sequential(ConvBnAct(c[512], c[512], 3, 2),
                                    C3k2(c[512], c[512], 1, c3k=True))
        chans = [c[512], c[512]]
        self.stage5: nn.Module | None = None
        self.neck: Yolo11Neck | None = None
        if last_stride == 32:
            self.stage5 = nn.Sequential(ConvBnAct(c[512], c[1024], 3, 2),
                                        C3k2(c[1024], c[1024], 1, c3k=True),
                                        SPPF(c[1024], c[1024]), C2PSA(c[1024]))
            chans.append(c[1024])
        if neck:
            self.neck = Yolo11Neck(chans, (c[256], c[512], c[1024]))
            chans = list(self.neck.out_channels)
        self.out_channels: tuple[int, ...] = tuple(chans)
        self.strides: tuple[int, ...] = (8, 16, 32)[:len(chans)]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x3 = self.stage3(self.stem(x))
        feats = [x3, self.stage4(x3)]
        if self.stage5 is not None:
            feats.append(self.stage5(feats[-1]))
        if self.neck is not None:
            feats = self.neck(feats)
        return feats
