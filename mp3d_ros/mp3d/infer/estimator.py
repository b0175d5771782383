"""The Estimator: the API that nodes and tools call. RGB image + intrinsics -> people in 3D.

Built from a student checkpoint (kind 'mp3d.student': the heads, the decoding config and the
prior's frozen decoder; the trunk's weights from the fetched teacher checkpoint unless the student
was adapted) and a device ('cpu', 'cuda', 'auto'). Each image is letterboxed with its own aspect
(long side `input_size`, short side rounded up to a multiple of 32, YOLO's grey padding); the 3D
joints come out in the camera optical frame of the source image, the 2D keypoints in its pixels.
Without intrinsics (no CameraInfo), the fallback camera of mp3d.common.geometry is assumed
(FallbackCamera: a 60-degree horizontal field of view; callers with a CameraInfo use
geometry.resolve_intrinsics): depths and absolute positions are then only as right as that guess,
root-relative poses are unaffected. Checkpoints load with torch.load(weights_only=True): no
pickled code runs; a bad model file is one line of error naming it (docs/model_files.md). The
network, its heads and the pose decoder run on one device; only the decoded people come back to
the CPU, as numpy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

from mp3d.common.checkpoints import load_checkpoint
from mp3d.common.devices import DeviceUnavailableError, resolve_device
from mp3d.common.geometry import (
    FallbackCamera,
    Intrinsics,
    Letterbox,
    letterbox,
    letterbox_intrinsics,
)
from mp3d.common.paths import file_sha256
from mp3d.infer.people import Person
from mp3d.model.anchors import decode_people
from mp3d.model.personmaps import seen_confidence
from mp3d.model.refine import refine_people
from mp3d.model.student import KIND, letterbox_shape, load_student

BACKENDS = ("torch", "onnxruntime", "tensorrt")
PAD_VALUE = 114  # YOLO's letterbox grey, what the trunk was trained with


def available_backends() -> list[tuple[str, str]]:
    """(backend, device) pairs this machine can run: torch and ONNX Runtime on the CPU, and on
    CUDA (torch; ONNX Runtime's CUDA and TensorRT providers) where present."""
    import onnxruntime as ort

    have = set(ort.get_available_providers())
    pairs = [("torch", "cpu"), ("onnxruntime", "cpu")]
    if torch.cuda.is_available():
        pairs.append(("torch", "cuda"))
        pairs += [("onnxruntime", "cuda")] if "CUDAExecutionProvider" in have else []
        pairs += [("tensorrt", "cuda")] if "TensorrtExecutionProvider" in have else []
    return pairs


def letterbox_image(rgb: np.ndarray, width: int, height: int) -> tuple[np.ndarray, Letterbox]:
    """HxWx3 uint8 image (both sides >= 1 px) -> (height, width, 3) uint8 letterboxed copy
    (bilinear, YOLO's grey padding) and its Letterbox. A side that scales to under a pixel (a
    4000x2 image) keeps one pixel, so every image fits."""
    h, w = rgb.shape[:2]
    lb = letterbox(w, h, width, height)
    nw, nh = max(1, round(w * lb.scale)), max(1, round(h * lb.scale))
    out = np.full((height, width, 3), PAD_VALUE, np.uint8)
    x0, y0 = min(int(lb.pad_x), width - nw), min(int(lb.pad_y), height - nh)
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return out, lb


def add_model_options(p) -> None:
    """The options every command that runs the Estimator shares (argparse parser `p`):
    --input-size and --refine-steps (None: the checkpoint's)."""
    p.add_argument("--input-size", type=int, help="long side of the letterboxed input, px, a "
                   "multiple of 32 (default: the model's)")
    p.add_argument("--refine-steps", type=int, help="Gauss-Newton steps of each person's 3D "
                   "against its 2D (0: off; default: the model's)")


class Estimator:
    """Multi-person 3D pose from RGB images with a student checkpoint.

    Attributes: path and sha256 (SHA-256 of the checkpoint file, for diagnostics), device (where
    the network, its heads and the pose decoder run), input_size (the letterbox's long side, px),
    decode (mp3d.model.anchors.DecodeConfig), dense (the network or, with onnx=, its
    mp3d.infer.onnx.OnnxDense)."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu",
                 peak_threshold: float | None = None, max_people: int | None = None,
                 onnx: str | Path | None = None, backend: str | None = None,
                 fp16: bool = False, threads: int = 0, input_size: int | None = None,
                 refine_steps: int | None = None):
        """checkpoint: student .pt; device: 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when
        present, else the CPU, said once in :attr:`notes`); backend (:data:`BACKENDS`): 'torch',
        'onnxruntime' (ONNX Runtime, CPU or CUDA provider) or 'tensorrt' (ONNX Runtime's TensorRT
        provider, CUDA only; engines cached in mp3d.common.paths.cache_dir()); default 'torch', or
        'onnxruntime' when onnx is given; onnx: the checkpoint's export (mp3d export); None with
        an ONNX backend: exported once into the cache; fp16: float16 on CUDA (torch autocast,
        a float16 export for ONNX Runtime, float16 engines for TensorRT); threads: ONNX
        Runtime's intra-op threads on the CPU (0: its default, one per physical core; torch's
        count is the process's, torch.set_num_threads); input_size: the letterbox's long side
        (a multiple of 32; None: the checkpoint's); refine_steps: Gauss-Newton steps of each
        person's 3D against its 2D (mp3d.model.refine; 0: off; None: the checkpoint's). Bad
        files raise
        FileNotFoundError / ValueError, one line naming the file (docs/model_files.md); a backend
        or device this machine lacks raises DeviceUnavailableError, one line."""
        backend = backend or ("onnxruntime" if onnx is not None else "torch")
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.notes: list[str] = []
        self.device = resolve_device(device)
        if device == "auto" and self.device.type == "cpu":
            self.notes.append("device auto: CUDA is not available here, running on the CPU")
        if backend == "tensorrt" and self.device.type != "cuda":
            raise DeviceUnavailableError(f"backend tensorrt runs on CUDA only, the device is "
                                         f"{self.device} (asked: {device!r})")
        if fp16 and self.device.type != "cuda":
            raise ValueError(f"fp16 is for CUDA devices, the device is {self.device}")
        if not (isinstance(threads, int) and threads >= 0):
            raise ValueError(f"threads must be an int >= 0 (0: the default), got {threads!r}")
        self.backend, self.fp16, self.threads = backend, bool(fp16), threads
        provider = "tensorrt" if backend == "tensorrt" else self.device.type
        if backend != "torch":
            from mp3d.infer.onnx import ort_providers

            ort_providers(provider)  # this machine's ONNX Runtime has it, before any CUDA use
        self.path = Path(checkpoint)
        ckpt = load_checkpoint(self.path, KIND)
        self.sha256 = file_sha256(self.path)
        net, self.decode, decoder = load_student(ckpt, self.path)
        self.input_size = net.cfg.input_size if input_size is None else int(input_size)
        if self.input_size < 64 or self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, >= 64, got {input_size}")
        # The network (with its person head) and the pose decoder live on one device.
        self.net, self.decoder = net.to(self.device), decoder.to(self.device)
        self.dense = self.net
        if backend != "torch":
            from mp3d.infer.onnx import OnnxDense, cached_export

            if onnx is None:
                onnx = cached_export(self.path, self.sha256, dynamic_batch=True,
                                     fp16=self.fp16 and backend == "onnxruntime")
            self.dense = OnnxDense(onnx, self.sha256, threads=threads, provider=provider,
                                   trt_fp16=self.fp16)
        if peak_threshold is not None:
            self.decode = replace(self.decode, peak_threshold=float(peak_threshold))
        if max_people is not None:
            self.decode = replace(self.decode, max_people=int(max_people))
        if refine_steps is not None:
            self.decode = replace(self.decode, refine_steps=int(refine_steps))

    def describe(self) -> str:
        """What runs, for logs and diagnostics: e.g. 'onnxruntime on cpu', 'onnxruntime on cpu
        (2 threads)' or 'torch on cuda:0 (fp16)'."""
        out = f"{self.backend} on {self.device}{' (fp16)' if self.fp16 else ''}"
        if self.threads and self.backend != "torch" and self.device.type == "cpu":
            out += f" ({self.threads} thread{'s' if self.threads > 1 else ''})"
        return out

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        """HxWx3 uint8 RGB, both sides >= 1 px -> letterboxed input (h, w, 3) uint8 and the
        Letterbox. ValueError, one line, for anything else."""
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3
                and rgb.dtype == np.uint8 and min(rgb.shape[:2]) >= 1):
            what = (f"{rgb.shape} {rgb.dtype}" if isinstance(rgb, np.ndarray)
                    else type(rgb).__name__)
            raise ValueError(f"expected an HxWx3 uint8 RGB image, got {what}")
        h, w = rgb.shape[:2]
        return letterbox_image(np.ascontiguousarray(rgb),
                               *letterbox_shape(w, h, self.input_size))

    @torch.no_grad()
    def estimate_batch(self, images: list[np.ndarray],
                       intrinsics: list[Intrinsics | None]) -> list[list[Person]]:
        """People in each image; intrinsics per image (None: the field-of-view fallback). Images
        of one letterbox shape go through the network as one batch (an ONNX export with a fixed
        batch of 1 runs once per image instead; same results)."""
        if len(images) != len(intrinsics):
            raise ValueError(f"{len(images)} images but {len(intrinsics)} intrinsics")
        if not images:
            return []
        inputs, lbs, intr_in = [], [], []
        for rgb, k in zip(images, intrinsics):
            x, lb = self.preprocess(rgb)
            h, w = rgb.shape[:2]
            k = k if k is not None else FallbackCamera().intrinsics(w, h)
            ki = letterbox_intrinsics(k, lb)
            inputs.append(x)
            lbs.append(lb)
            intr_in.append([ki.fx, ki.fy, ki.cx, ki.cy])
        decoded: list = [None] * len(images)
        for shape in sorted({x.shape for x in inputs}):
            ids = [i for i, x in enumerate(inputs) if x.shape == shape]
            for i, dec in zip(ids, self._decode(np.stack([inputs[i] for i in ids]),
                                                np.array([intr_in[i] for i in ids]))):
                decoded[i] = dec
        out = []
        for dec, lb, rgb in zip(decoded, lbs, images):
            people = []
            h, w = rgb.shape[:2]
            for i in range(len(dec)):
                kp = lb.to_src(dec.keypoints_2d[i])
                conf = seen_confidence(dec.joint_conf[i], kp, w, h,
                                       self.decode.outside_conf_scale)
                people.append(Person(dec.joints_cam[i], kp, conf, float(dec.score[i])))
            out.append(people)
        return out

    def _decode(self, x: np.ndarray, intr: np.ndarray) -> list:
        """(B, H, W, 3) uint8 letterboxed images of one shape, (B, 4) their intrinsics -> the
        decoded people of each (mp3d.model.anchors.decode_people)."""
        x = torch.from_numpy(x).to(self.device).permute(0, 3, 1, 2).float() / 255
        # Decoding runs where the heads and the decoder live: the dense outputs move there once
        # (a no-op for torch; ONNX Runtime's are on the CPU, as is everything then).
        with torch.autocast("cuda", dtype=torch.float16,
                            enabled=self.fp16 and self.backend == "torch"):
            dense = self.dense(x)
        dense = {k: v.to(self.device, torch.float32) for k, v in dense.items()}
        return decode_people(dense, intr, self.net.head, self.decoder, self.decode,
                             refine_people)

    def __call__(self, rgb: np.ndarray, intrinsics: Intrinsics | None = None) -> list[Person]:
        """People in one image."""
        return self.estimate_batch([rgb], [intrinsics])[0]
