"""`mp3d export`: the student's dense network to ONNX, tied to its checkpoint."""

from __future__ import annotations

import argparse


def _run_export(a: argparse.Namespace) -> int:
    from mp3d.infer.onnx import export_onnx

    out = export_onnx(a.model, a.out, opset=a.opset, dynamic_batch=a.dynamic_batch, fp16=a.fp16)
    print(f"wrote {out} (batch {'dynamic' if a.dynamic_batch else 1}, "
          f"{'float16' if a.fp16 else 'float32'} inside, opset {a.opset})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from mp3d.common.paths import default_model

    p = sub.add_parser("export", help="export the student's network to ONNX")
    p.add_argument("--model", default=str(default_model("student.pt")))
    p.add_argument("--out", required=True, help="output .onnx file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--dynamic-batch", action="store_true",
                   help="a free batch axis on the input and outputs (default: batch 1)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 weights and activations inside; input and outputs stay float32")
    p.set_defaults(func=_run_export)
