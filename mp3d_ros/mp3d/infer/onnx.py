"""`mp3d export`: the student's dense network to ONNX, tied to its checkpoint, and an ONNX Runtime
backend for it that refuses a file it cannot trust.

The exported graph is the student's dense part, the trunk (the teacher's network) and its anchor
features: it takes (1, 3, H, W) float32 RGB in [0, 1] (N, 3, H, W with --dynamic-batch), any H and
W that are multiples of 32 (the letterbox follows the image's aspect), and returns per anchor the
box, person score, 17 keypoints and head features in float32 (mp3d.model.student.DENSE_OUTPUTS);
the person NMS, the per-person head, the pose decoder and the refinement stay in torch, at the kept
anchors only. With --fp16 the weights and activations inside are float16 (casts at the input and
the outputs keep the interface float32); ONNX Runtime's CPU provider runs such a file, and the
Estimator uses it like any other.

The file's metadata_props (META_KEYS) name the checkpoint it came from (SHA-256), the student's
network config (JSON), its input size (long side), opset, fp16, dynamic_batch and the mp3d
version. `OnnxDense` refuses, with one line, a file that is missing, corrupt, without that
metadata, or from another checkpoint (docs/model_files.md).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mp3d.model.student import DENSE_OUTPUTS as OUTPUTS
from mp3d.model.student import letterbox_shape

META_KEYS = ("mp3d.checkpoint_sha256", "mp3d.student_config", "mp3d.input_size", "mp3d.opset",
             "mp3d.fp16", "mp3d.dynamic_batch", "mp3d.version")


class _Dense(torch.nn.Module):
    """The student's maps as a tuple (OUTPUTS order); fp16: the network runs in float16 between
    float32 input and outputs."""

    def __init__(self, net: torch.nn.Module, fp16: bool):
        super().__init__()
        self.net, self.fp16 = (net.half() if fp16 else net), fp16

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.net(x.half() if self.fp16 else x)
        return tuple(m[k].float() for k in OUTPUTS)


def export_metadata(sha256: str, net_config: dict, opset: int, fp16: bool,
                    dynamic_batch: bool) -> dict[str, str]:
    """The metadata_props an export carries (META_KEYS -> strings; JSON for the structured
    values). net_config: the student's StudentConfig as a dict."""
    from mp3d import __version__

    vals = (sha256, json.dumps(net_config, sort_keys=True), json.dumps(net_config["input_size"]),
            str(opset),
            json.dumps(fp16), json.dumps(dynamic_batch), __version__)
    return dict(zip(META_KEYS, vals))


def export_onnx(model_path: str | Path, out: str | Path, opset: int = 17,
                dynamic_batch: bool = False, fp16: bool = False) -> Path:
    """Write the student's dense network as ONNX with its metadata (atomically); returns the
    path. dynamic_batch: a free batch axis on the input and the outputs (else batch 1); fp16:
    float16 inside, float32 at the interface."""
    import onnx

    from mp3d.common.checkpoints import load_checkpoint
    from mp3d.common.paths import file_sha256
    from mp3d.model.student import KIND, load_student

    net, _, _ = load_student(load_checkpoint(model_path, KIND), model_path)
    meta = export_metadata(file_sha256(model_path), asdict(net.cfg), opset, fp16, dynamic_batch)
    w, h = letterbox_shape(640, 480, net.cfg.input_size)
    x = torch.zeros(1, 3, h, w)
    axes = {"image": {2: "height", 3: "width"}, **{n: {1: "anchors"} for n in OUTPUTS}}
    if dynamic_batch:
        axes = {n: {0: "batch", **a} for n, a in axes.items()}
    buf = io.BytesIO()
    torch.onnx.export(_Dense(net.eval(), fp16), (x,), buf, input_names=["image"],
                      output_names=list(OUTPUTS), opset_version=opset, dynamic_axes=axes,
                      dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(model, meta)
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(model, str(tmp))
    os.replace(tmp, out)
    return out


def _first_line(exc: Exception) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)


# ONNX Runtime execution providers per mp3d provider name, most preferred first.
_PROVIDERS = {"cpu": ["CPUExecutionProvider"],
              "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
              "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                           "CPUExecutionProvider"]}


def ort_providers(provider: str, fp16: bool = False) -> list:
    """The providers list for an InferenceSession: 'cpu', 'cuda' or 'tensorrt' (with an engine
    cache beside the other derived files; fp16: TensorRT builds float16 engines). Raises
    DeviceUnavailableError, one line, when ONNX Runtime here lacks the provider."""
    import onnxruntime as ort

    from mp3d.common.devices import DeviceUnavailableError
    from mp3d.common.paths import cache_dir

    if provider not in _PROVIDERS:
        raise ValueError(f"unknown ONNX Runtime provider {provider!r}: use one of "
                         f"{', '.join(_PROVIDERS)}")
    wanted = _PROVIDERS[provider][0]
    have = ort.get_available_providers()
    if wanted not in have:
        raise DeviceUnavailableError(
            f"ONNX Runtime {ort.__version__} here has no {wanted} (it has {', '.join(have)}); "
            f"install onnxruntime-gpu{' with TensorRT' if provider == 'tensorrt' else ''} or "
            "use backend torch or device cpu")
    if provider != "tensorrt":
        return _PROVIDERS[provider]
    engines = cache_dir() / "tensorrt"
    engines.mkdir(parents=True, exist_ok=True)
    # The input's height and width follow each image's aspect: one engine profile covers them.
    trt = {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(engines),
           "trt_fp16_enable": bool(fp16), "trt_profile_min_shapes": "image:1x3x64x64",
           "trt_profile_opt_shapes": "image:1x3x384x512",
           "trt_profile_max_shapes": "image:8x3x1280x1280"}
    return [("TensorrtExecutionProvider", trt), *_PROVIDERS[provider][1:]]


def cached_export(model_path: str | Path, checkpoint_sha256: str, dynamic_batch: bool = True,
                  fp16: bool = False) -> Path:
    """The checkpoint's ONNX export in the cache (mp3d.common.paths.cache_dir()/onnx), named by the
    checkpoint's SHA-256 and options; exported on first use (a few seconds)."""
    from mp3d.common.paths import cache_dir

    name = (f"{checkpoint_sha256[:16]}-{'dynamic' if dynamic_batch else 'b1'}"
            f"-{'fp16' if fp16 else 'fp32'}.onnx")
    out = cache_dir() / "onnx" / name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        export_onnx(model_path, out, dynamic_batch=dynamic_batch, fp16=fp16)
    return out


def cached_teacher_export() -> Path:
    """The teacher's network alone (YOLO11n-pose, official weights: its raw (1, 56, A) output,
    no heads) as ONNX with free height and width, in the cache; a yardstick for what the
    student's heads, decoding and refinement add (mp3d bench)."""
    from mp3d.common.paths import cache_dir
    from mp3d.model.yolo_pose import Yolo11Pose, ultralytics_layout
    from mp3d.model.yolo_weights import PINNED_SHA256, load_teacher_state

    out = cache_dir() / "onnx" / f"yolo11n-pose-{PINNED_SHA256[:16]}.onnx"
    if out.is_file():
        return out

    class Raw(torch.nn.Module):
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return ultralytics_layout(self.net(x))

    net = Yolo11Pose()
    net.load_state_dict(load_teacher_state())
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    torch.onnx.export(Raw(net).eval(), (torch.zeros(1, 3, 384, 512),), str(tmp),
                      input_names=["image"], output_names=["raw"], opset_version=17,
                      dynamic_axes={"image": {2: "height", 3: "width"}, "raw": {2: "anchors"}},
                      dynamo=False)
    os.replace(tmp, out)
    return out


class OnnxDense:
    """Runs an exported dense network with ONNX Runtime; call like the torch network.

    path: the .onnx file; checkpoint_sha256: of the checkpoint it must have been exported from;
    provider: 'cpu', 'cuda' or 'tensorrt' (:func:`ort_providers`; trt_fp16: float16 TensorRT
    engines). FileNotFoundError / ValueError, one line naming the file, when it is missing,
    corrupt, has no mp3d metadata or came from another checkpoint.
    Attributes: metadata (META_KEYS -> str), dynamic_batch, fp16."""

    def __init__(self, path: str | Path, checkpoint_sha256: str, threads: int = 0,
                 provider: str = "cpu", trt_fp16: bool = False):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX file not found: {path}")
        providers = ort_providers(provider, trt_fp16)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        # No busy-waiting between runs: the decoding that follows each run needs the cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:  # ONNX Runtime's own types: Fail, InvalidProtobuf, InvalidGraph..
            raise ValueError(f"ONNX file {path} is corrupt or not an ONNX model: "
                             f"{_first_line(exc)[:160]}") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        absent = [k for k in META_KEYS if k not in meta]
        if absent:
            raise ValueError(f"ONNX file {path} has no mp3d metadata (lacks {', '.join(absent)}): "
                             "export it with `mp3d export --model CHECKPOINT`")
        if meta["mp3d.checkpoint_sha256"] != checkpoint_sha256:
            raise ValueError(f"ONNX file {path} was exported from another checkpoint (SHA-256 "
                             f"{meta['mp3d.checkpoint_sha256'][:12]}..., this one is "
                             f"{checkpoint_sha256[:12]}...): export it again from this one")
        inp = self.session.get_inputs()[0]
        if inp.shape[1:] != [3, "height", "width"]:
            raise ValueError(f"ONNX file {path} takes {inp.name} of shape {inp.shape}, not "
                             "(N, 3, height, width)")
        names = [o.name for o in self.session.get_outputs()]
        if inp.name != "image" or names != list(OUTPUTS) or inp.shape[0] not in (1, "batch"):
            raise ValueError(f"ONNX file {path} has inputs [{inp.name} {inp.shape}] and outputs "
                             f"{names}, not an mp3d export's")
        self.metadata = dict(meta)
        self.dynamic_batch = inp.shape[0] == "batch"
        self.fp16 = json.loads(meta["mp3d.fp16"])

    def _run(self, x: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {"image": x})

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 3, H, W) float in [0, 1] on the CPU -> the dense outputs; an export with a fixed
        batch of 1 runs once per image."""
        # C-contiguous: a permuted (channels-last) tensor would make ONNX Runtime run slowly.
        x = np.ascontiguousarray(x.detach().cpu().numpy(), np.float32)
        if self.dynamic_batch or len(x) == 1:
            outs = self._run(x)
        else:
            outs = [np.concatenate(o) for o in zip(*(self._run(x[i:i + 1]) for i in range(len(x))))]
        return {k: torch.from_numpy(v) for k, v in zip(OUTPUTS, outs)}
