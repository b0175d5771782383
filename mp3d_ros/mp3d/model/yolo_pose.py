"""YOLO11n-pose in plain torch (backbone, PAN neck and Pose head), bit-exact with ultralytics 8.4.

Head layout (ultralytics layer 23, class `Pose`, one class, 17 keypoints x (x, y, conf)); for each
neck level i (P3, P4, P5: 64, 128, 256 channels; strides 8, 16, 32):

- ``head.box[i]`` (ultralytics ``cv2[i]``): Conv3x3 -> 64, Conv3x3 64, Conv2d 1x1 -> 4 * 16 bins;
- ``head.cls[i]`` (``cv3[i]``): [DWConv3x3 c, Conv1x1 -> 64], [DWConv3x3 64, Conv1x1 64],
  Conv2d 1x1 -> 1;
- ``head.kpt[i]`` (``cv4[i]``): Conv3x3 -> 51, Conv3x3 51 (the "hidden" features), Conv2d 1x1 -> 51;
- ``head.dfl`` (``dfl.conv``): fixed 1x1 conv with weights 0..15 (expected value of the bins).

Decoding (same arithmetic and order as ultralytics, so the results are identical bit for bit):
anchors are cell centres in grid units (col + 0.5, row + 0.5), levels 8, 16, 32, row-major;
box = dist2bbox(DFL(box logits), anchors) as (cx, cy, w, h) * stride, then xyxy = c -/+ wh / 2
(ultralytics' xywh2xyxy, as applied before its NMS); keypoint x = (raw_x * 2 + (anchor_x - 0.5)) *
stride (likewise y), keypoint conf = sigmoid; person score = sigmoid.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mp3d.model.backbones import ConvBnAct, Yolo11Backbone

NUM_KPTS = 17
REG_MAX = 16
STRIDES = (8, 16, 32)
OUTPUT_NAMES = ("boxes", "score", "kpts", "anchor_xy", "stride", "boxes_xywh", "kpt_hidden",
                "p3", "p4", "p5")


def _box_branch(cin: int, hidden: int) -> nn.Sequential:
    """cv2[i]: two 3x3 ConvBnAct and a 1x1 conv to 4 * REG_MAX DFL logits."""
    return nn.Sequential(ConvBnAct(cin, hidden, 3), ConvBnAct(hidden, hidden, 3),
                         nn.Conv2d(hidden, 4 * REG_MAX, 1))


def _cls_branch(cin: int, hidden: int, nc: int) -> nn.Sequential:
    """cv3[i] (YOLO11, non-legacy): two (depthwise 3x3, pointwise 1x1) pairs and a 1x1 to nc."""
    return nn.Sequential(
        nn.Sequential(ConvBnAct(cin, cin, 3, groups=cin), ConvBnAct(cin, hidden, 1)),
        nn.Sequential(ConvBnAct(hidden, hidden, 3, groups=hidden), ConvBnAct(hidden, hidden, 1)),
        nn.Conv2d(hidden, nc, 1))


def _kpt_branch(cin: int, hidden: int, nk: int) -> nn.Sequential:
    """cv4[i]: two 3x3 ConvBnAct (index 1 gives the hidden features) and a 1x1 to nk."""
    return nn.Sequential(ConvBnAct(cin, hidden, 3), ConvBnAct(hidden, hidden, 3),
                         nn.Conv2d(hidden, nk, 1))


def make_anchors(feats: Sequence[torch.Tensor], strides: Sequence[int] = STRIDES
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cell centres in grid units (2, A) as (x, y) and their strides (1, A), ultralytics' order
    (level by level, row-major within a level) and arithmetic (arange + 0.5)."""
    points, stride = [], []
    for f, s in zip(feats, strides):
        h, w = f.shape[2:]
        sx = torch.arange(w).type_as(f) + 0.5
        sy = torch.arange(h).type_as(f) + 0.5
        sy, sx = torch.meshgrid(sy, sx, indexing="ij")
        points.append(torch.stack((sx, sy), -1).view(-1, 2))
        stride.append(torch.full_like(sx.reshape(-1, 1), float(s)))
    return torch.cat(points).transpose(0, 1), torch.cat(stride).transpose(0, 1)


class Yolo11PoseHead(nn.Module):
    """YOLO11 Pose head (ultralytics `Pose`, one-to-many branch; the checkpoint has no one2one).

    feats: [P3, P4, P5] (B, C_i, H/s_i, W/s_i) -> dict (A = sum of H/s_i * W/s_i):
    boxes (B, A, 4) xyxy px, boxes_xywh (B, A, 4) cx, cy, w, h px (ultralytics' raw format),
    score (B, A), kpts (B, A, 17, 3) x px, y px, conf, anchor_xy (1, A, 2) px, stride (A,),
    kpt_hidden (B, A, 51) (output of cv4[i][1] per anchor).
    """

    def __init__(self, channels: Sequence[int] = (64, 128, 256), nc: int = 1,
                 num_kpts: int = NUM_KPTS):
        super().__init__()
        self.nc, self.nk, self.num_kpts = nc, num_kpts * 3, num_kpts
        c2 = max(16, channels[0] // 4, 4 * REG_MAX)           # 64
        c3 = max(channels[0], min(nc, 100))                   # 64
        c4 = max(channels[0] // 4, self.nk)                   # 51
        self.box = nn.ModuleList(_box_branch(c, c2) for c in channels)
        self.cls = nn.ModuleList(_cls_branch(c, c3, nc) for c in channels)
        self.kpt = nn.ModuleList(_kpt_branch(c, c4, self.nk) for c in channels)
        self.dfl = nn.Conv2d(REG_MAX, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(REG_MAX, dtype=torch.float).view(1, REG_MAX, 1, 1)

    def raw(self, feats: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """Undecoded logits, channels first: box (B, 64, A), cls (B, nc, A), kpt (B, 51, A), and
        hidden keypoint features (B, 51, A)."""
        bs = feats[0].shape[0]
        box = torch.cat([m(f).view(bs, 4 * REG_MAX, -1) for m, f in zip(self.box, feats)], -1)
        cls = torch.cat([m(f).view(bs, self.nc, -1) for m, f in zip(self.cls, feats)], -1)
        hidden = [m[1](m[0](f)) for m, f in zip(self.kpt, feats)]
        kpt = torch.cat([m[2](h).view(bs, self.nk, -1) for m, h in zip(self.kpt, hidden)], -1)
        hid = torch.cat([h.view(bs, h.shape[1], -1) for h in hidden], -1)
        return {"box": box, "cls": cls, "kpt": kpt, "hidden": hid}

    def dfl_decode(self, box: torch.Tensor) -> torch.Tensor:
        """(B, 4 * 16, A) bin logits -> (B, 4, A) expected distances (l, t, r, b) in cells."""
        b, _, a = box.shape
        return self.dfl(box.view(b, 4, REG_MAX, a).transpose(2, 1).softmax(1)).view(b, 4, a)

    @staticmethod
    def decode_boxes(dist: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 4, A) ltrb cells -> ((B, 4, A) cx, cy, w, h px, (B, 4, A) x1, y1, x2, y2 px)."""
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = anchors - lt, anchors + rb
        xywh = torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], 1) * strides
        xy, half = xywh[:, :2], xywh[:, 2:] / 2
        return xywh, torch.cat([xy - half, xy + half], 1)

    def decode_kpts(self, kpt: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor
                    ) -> torch.Tensor:
        """(B, 51, A) raw -> (B, A, 17, 3): x, y px = (raw * 2 + (anchor - 0.5)) * stride, conf."""
        y = kpt.view(kpt.shape[0], self.num_kpts, 3, -1)
        kx = (y[:, :, 0] * 2.0 + (anchors[0] - 0.5)) * strides
        ky = (y[:, :, 1] * 2.0 + (anchors[1] - 0.5)) * strides
        return torch.stack([kx, ky, y[:, :, 2].sigmoid()], -1).transpose(1, 2)

    def forward(self, feats: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        raw = self.raw(feats)
        anchors, strides = make_anchors(feats)
        xywh, xyxy = self.decode_boxes(self.dfl_decode(raw["box"]), anchors[None], strides)
        return {"boxes": xyxy.transpose(1, 2), "score": raw["cls"][:, 0].sigmoid(),
                "kpts": self.decode_kpts(raw["kpt"], anchors, strides),
                "anchor_xy": (anchors * strides).transpose(0, 1)[None], "stride": strides[0],
                "boxes_xywh": xywh.transpose(1, 2), "kpt_hidden": raw["hidden"].transpose(1, 2)}


class Yolo11Pose(nn.Module):
    """Whole YOLO11n-pose: Yolo11Backbone(neck=True) -> Yolo11PoseHead.

    x: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> the head's dict (see
    Yolo11PoseHead) plus feats: [P3, P4, P5] (B, 64|128|256, H/8|16|32, W/8|16|32).
    A = (H W / 64) (1 + 1/4 + 1/16), e.g. 6300 at 640x480.
    """

    def __init__(self):
        super().__init__()
        self.backbone = Yolo11Backbone(neck=True)
        self.head = Yolo11PoseHead(self.backbone.out_channels)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        feats = self.backbone(x)
        return {**self.head(feats), "feats": feats}


def ultralytics_layout(out: dict) -> torch.Tensor:
    """The tensor ultralytics' Pose head returns in eval mode: (B, 4 + 1 + 51, A) with
    cx, cy, w, h, score, then x, y, conf per keypoint."""
    kpts = out["kpts"].flatten(2)
    return torch.cat([out["boxes_xywh"], out["score"][..., None], kpts], -1).transpose(1, 2)


def flatten_outputs(out: dict) -> tuple[torch.Tensor, ...]:
    """The dict as a flat tuple in OUTPUT_NAMES order (for ONNX export)."""
    return (*(out[k] for k in OUTPUT_NAMES[:7]), *out["feats"])
