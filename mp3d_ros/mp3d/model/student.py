"""The image student S: the teacher's whole trained network with the paper's heads on its anchors.

S is YOLO11n-pose (mp3d.model.yolo_pose: backbone, neck, and its person and keypoint head),
re-implemented in plain torch and bit-exact with ultralytics, frozen by default: its training on
tens of thousands of labelled images is what finds people on any camera. On the same anchors S
adds the paper's heads: per anchor, the neck's features projected (AnchorFeatures) beside the
keypoint branch's hidden features form a feature vector; at the anchors kept as people
(mp3d.model.anchors) a pointwise MLP (PersonHead) reads it with the anchor's own box and keypoints
and gives the person's code z in the prior's latent space, its orientation (6D), log root depth
and root pixel, and per-joint confidences. A person is thus (its anchor: box and 2D; z; root
depth; orientation), one pass for everyone, no keypoint grouping.

The checkpoint (kind "mp3d.student", version 3) is self-contained except for the trunk's weights
when they are the teacher's own (frozen): those are Ultralytics' AGPL-3.0 weights, never shipped,
read from the fetched teacher checkpoint (mp3d.model.yolo_weights) whose SHA-256 the config
names. A checkpoint whose trunk was adapted to a camera stores its trunk (``trunk_state_dict``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_weights
from mp3d.model.anchors import NUM_COCO, DecodeConfig
from mp3d.model.prior import PoseDecoder, PriorConfig
from mp3d.model.yolo_pose import NUM_KPTS, Yolo11Pose
from mp3d.model.yolo_weights import PINNED_SHA256, load_teacher_state

KIND = "mp3d.student"
VERSION = 3
TRUNKS = ("yolo11n-pose",)
DENSE_OUTPUTS = ("boxes", "score", "kpts", "feat")  # StudentNet.forward, in this order
C = TypeVar("C")  # a config dataclass


@dataclass(frozen=True)
class StudentConfig:
    """The student's network. input_size: the long side of the letterboxed input (px, a multiple
    of 32; the short side follows the image's aspect, rounded up to a multiple of 32)."""

    trunk: str = "yolo11n-pose"
    trunk_sha256: str = PINNED_SHA256  # the teacher checkpoint a frozen trunk's weights come from
    input_size: int = 512
    latent_dim: int = 32               # must equal the prior's latent size
    feat_dim: int = 32                 # neck features per anchor, projected to this
    hidden: int = 256                  # width of the person head's MLP

    def __post_init__(self) -> None:
        if self.trunk not in TRUNKS:
            raise ValueError(f"unknown trunk {self.trunk!r}: {' | '.join(TRUNKS)}")
        if self.input_size < 64 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, >= 64, got {self.input_size}")


class AnchorFeatures(nn.Module):
    """Per-anchor features for the heads: each neck level (P3, P4, P5) projected to feat_dim by a
    1x1 convolution and flattened in anchor order, beside the keypoint branch's hidden features:
    ([P3, P4, P5], (B, A, 51)) -> (B, A, feat_dim + 51)."""

    def __init__(self, channels: tuple[int, ...], feat_dim: int):
        super().__init__()
        self.proj = nn.ModuleList(nn.Conv2d(c, feat_dim, 1) for c in channels)

    def forward(self, feats: list[torch.Tensor], kpt_hidden: torch.Tensor) -> torch.Tensor:
        flat = torch.cat([p(f).flatten(2) for p, f in zip(self.proj, feats)], -1)
        return torch.cat([flat.transpose(1, 2), kpt_hidden], -1)


def feature_dim(cfg: StudentConfig) -> int:
    """Width of AnchorFeatures' output: projected neck features and the keypoint branch's."""
    return cfg.feat_dim + 3 * NUM_KPTS


def head_input_dim(cfg: StudentConfig) -> int:
    """Width of mp3d.model.anchors.head_inputs for this student: the anchor features, the
    keypoints (relative position and confidence), the box's geometry and the has-image flag."""
    return feature_dim(cfg) + NUM_COCO * 3 + 4


class PersonHead(nn.Module):
    """The paper's heads at the kept anchors: a residual MLP, head inputs (N, C) -> z (N, D),
    rot6d (N, 6), log_zf (N,) (log(Z / fx) + log(box size in px), i.e. the log of the box's size
    in metres at the person's depth: the depth given the box, mp3d.model.anchors.person_geometry),
    offset (N, 2) (root pixel from the box centre, in box sizes) and conf_logit (N, 17) (the
    probability that each 3D joint is right)."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.latent_dim = cfg.latent_dim
        w = cfg.hidden
        self.inp = nn.Sequential(nn.Linear(head_input_dim(cfg), w), nn.SiLU())
        self.block = nn.Sequential(nn.Linear(w, w), nn.LayerNorm(w), nn.SiLU(), nn.Linear(w, w))
        self.out = nn.Linear(w, cfg.latent_dim + 6 + 1 + 2)
        self.conf = nn.Sequential(nn.Linear(w, w // 4), nn.SiLU(), nn.Linear(w // 4,
                                                                             sk.NUM_JOINTS))
        nn.init.zeros_(self.out.weight)  # start at the mean pose, facing the camera, 1.7 m tall
        with torch.no_grad():
            self.out.bias.zero_()
            self.out.bias[cfg.latent_dim:cfg.latent_dim + 6] = torch.tensor(
                [1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
            self.out.bias[cfg.latent_dim + 6] = float(torch.log(torch.tensor(1.7)))
        nn.init.constant_(self.conf[-1].bias, 2.0)  # start confident: most joints are right

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.inp(x)
        h = h + self.block(h)
        o, d = self.out(h), self.latent_dim
        return {"z": o[:, :d], "rot6d": o[:, d:d + 6], "log_zf": o[:, d + 6],
                "offset": o[:, d + 7:d + 9], "conf_logit": self.conf(h)}


class StudentNet(nn.Module):
    """S = the trunk (the teacher's network) + AnchorFeatures (dense, in the exported graph) +
    PersonHead (at the kept anchors only).

    forward: (B, 3, H, W) RGB in [0, 1], H and W multiples of 32 -> boxes (B, A, 4) xyxy px,
    score (B, A), kpts (B, A, 17, 3) x, y px and confidence, feat (B, A, F): everything the
    decoding needs (DENSE_OUTPUTS)."""

    def __init__(self, cfg: StudentConfig = StudentConfig()):
        super().__init__()
        self.cfg = cfg
        self.trunk = Yolo11Pose()
        self.features = AnchorFeatures(self.trunk.backbone.out_channels, cfg.feat_dim)
        self.head = PersonHead(cfg)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        t = self.trunk(x)
        return {"boxes": t["boxes"], "score": t["score"], "kpts": t["kpts"],
                "feat": self.features(t["feats"], t["kpt_hidden"])}

    def heads_state_dict(self) -> dict[str, torch.Tensor]:
        """The weights the project trains (features and head), without the trunk's."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("trunk.")}


def letterbox_shape(width: int, height: int, input_size: int) -> tuple[int, int]:
    """(W, H) of the network input for a width x height image: the long side input_size, the
    short side scaled alike and rounded up to a multiple of 32 (YOLO's rectangular letterbox)."""
    scale = input_size / max(width, height)
    short = max(32, -(-round(min(width, height) * scale) // 32) * 32)
    return (input_size, short) if width >= height else (short, input_size)


def student_checkpoint(net: StudentNet, decode: DecodeConfig, decoder: PoseDecoder,
                       trunk_trained: bool = False, **extra) -> dict:
    """A student checkpoint (plain types and tensors only): the heads' weights, the prior's
    decoder, the configs; the trunk's weights only when they were trained (`trunk_trained`)."""
    ckpt = {"kind": KIND, "version": VERSION,
            "config": {"net": asdict(net.cfg), "decode": asdict(decode)},
            "state_dict": net.heads_state_dict(), "decoder_config": asdict(decoder.cfg),
            "decoder_state_dict": decoder.state_dict(), **extra}
    if trunk_trained:
        ckpt["trunk_state_dict"] = net.trunk.state_dict()
    return ckpt


def _config(cls: type[C], d: object, what: str, source: str | Path) -> C:
    """The frozen config dataclass `cls` from a checkpoint's dict `d`: exactly the dataclass's
    fields, each of its default's type (lists become tuples). ValueError, one line, otherwise."""
    if not isinstance(d, dict):
        raise ValueError(f"student checkpoint {source}: {what} is a {type(d).__name__}, not a dict")
    names = [f.name for f in fields(cls)]
    missing, unknown = [n for n in names if n not in d], sorted(set(d) - set(names), key=str)
    if missing or unknown:
        wrong = ([f"lacks fields {missing}"] if missing else []) + (
            [f"has unknown fields {unknown}"] if unknown else [])
        raise ValueError(f"student checkpoint {source}: {what} {' and '.join(wrong)}")
    vals = {}
    for f in fields(cls):
        v, default = d[f.name], f.default
        if isinstance(default, tuple):  # tuple[T, ...]: every element a T
            elem = {"int": int, "float": float, "str": str}[
                str(f.type).split("[", 1)[1].split(",")[0].strip(" ]")]
            ok = isinstance(v, (list, tuple)) and all(type(e) is elem for e in v)
            v = tuple(v) if ok else v
        elif isinstance(default, float):
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        else:
            ok = type(v) is type(default)
        if not ok:
            raise ValueError(f"student checkpoint {source}: {what}[{f.name!r}] is {v!r}, "
                             f"expected {type(default).__name__} like {default!r}")
        vals[f.name] = v
    try:
        return cls(**vals)
    except ValueError as exc:  # the dataclass's own checks
        raise ValueError(f"student checkpoint {source}: {what}: {exc}") from exc


def load_student(ckpt: dict, source: str | Path = "<dict>"
                 ) -> tuple[StudentNet, DecodeConfig, PoseDecoder]:
    """A student checkpoint (a dict from load_checkpoint) -> (network, decoding config, pose
    decoder), in eval mode on the CPU. The trunk's weights come from the checkpoint when it holds
    them, else from the fetched teacher checkpoint (FileNotFoundError, one line with the fetch
    command, when it is missing). Every field must be there and fit: else ValueError, one line
    starting with the source."""
    if ckpt.get("kind") != KIND:
        raise ValueError(f"student checkpoint {source}: kind is {ckpt.get('kind')!r}, not {KIND!r}")
    if ckpt.get("version") != VERSION:
        raise ValueError(f"student checkpoint {source} is a version {ckpt.get('version', 2)!r} "
                         f"student; this mp3d reads version {VERSION} (the teacher's network with "
                         "the paper's heads): use the shipped student.pt or retrain")
    missing = [k for k in ("config", "state_dict", "decoder_config", "decoder_state_dict")
               if k not in ckpt]
    config = ckpt.get("config")
    missing += [f"config[{k!r}]" for k in ("net", "decode")
                if isinstance(config, dict) and k not in config]
    if missing:
        raise ValueError(f"student checkpoint {source} lacks {', '.join(missing)}")
    if not isinstance(config, dict):
        raise ValueError(f"student checkpoint {source}: config is a {type(config).__name__}, "
                         "not a dict")
    cfg = _config(StudentConfig, config["net"], "config['net']", source)
    net = StudentNet(cfg)
    load_weights(net, ckpt["state_dict"], allow_missing=("trunk.",),
                 source=f"student checkpoint {source}")
    if "trunk_state_dict" in ckpt:
        load_weights(net.trunk, ckpt["trunk_state_dict"],
                     source=f"student checkpoint {source} (trunk)")
    else:
        if cfg.trunk_sha256 != PINNED_SHA256:
            raise ValueError(f"student checkpoint {source} wants the trunk weights of a teacher "
                             f"checkpoint with SHA-256 {cfg.trunk_sha256}, not the official one")
        load_weights(net.trunk, load_teacher_state(), source="the teacher's checkpoint")
    decoder = PoseDecoder(_config(PriorConfig, ckpt["decoder_config"], "decoder_config", source))
    load_weights(decoder, ckpt["decoder_state_dict"],
                 source=f"student checkpoint {source} (pose decoder)")
    decode = _config(DecodeConfig, config["decode"], "config['decode']", source)
    return net.eval(), decode, decoder.eval()
