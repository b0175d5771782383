"""`mp3d export`: the student's dense network to ONNX, and an ONNX Runtime backend for it.

The exported graph takes (1, 3, H, W) float RGB in [0, 1] at the student's input size and returns
the dense maps (centre logits, depth, offset, code features); the per-person code head and the
pose decoder stay in torch on the CPU (a few hundred microseconds per person).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

OUTPUTS = ("centre", "depth", "offset", "feat")


class _Dense(torch.nn.Module):
    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.net(x)
        return tuple(m[k] for k in OUTPUTS)


def export_onnx(model_path: str | Path, out: str | Path, opset: int = 17) -> Path:
    """Write the student's dense network as ONNX; returns the path."""
    from mp3d.estimator import load_student
    from mp3d.training import load_checkpoint

    net, _, _ = load_student(load_checkpoint(model_path, "mp3d.student"))
    x = torch.zeros(1, 3, net.cfg.input_height, net.cfg.input_width)
    out = Path(out)
    torch.onnx.export(_Dense(net.eval()), (x,), str(out), input_names=["image"],
                      output_names=list(OUTPUTS), opset_version=opset, dynamo=False)
    return out


class OnnxDense:
    """Runs the exported dense network with ONNX Runtime; call like the torch network."""

    def __init__(self, path: str | Path, threads: int = 0):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        # No busy-waiting between runs: the decoding that follows each run needs the cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        # C-contiguous: a permuted (channels-last) tensor would make ONNX Runtime run slowly.
        outs = self.session.run(None, {"image": np.ascontiguousarray(x.numpy(), np.float32)})
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, outs)}


def register(sub: argparse._SubParsersAction) -> None:
    from mp3d.paths import default_model

    p = sub.add_parser("export", help="export the student's network to ONNX")
    p.add_argument("--model", default=str(default_model("student.pt")))
    p.add_argument("--out", required=True, help="output .onnx file")
    p.set_defaults(func=lambda a: print(f"wrote {export_onnx(a.model, a.out)}") or 0)
