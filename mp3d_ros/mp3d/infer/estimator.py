"""The Estimator: the API that nodes and tools call. RGB image + intrinsics -> people in 3D.

Built from a student checkpoint (kind 'mp3d.student', self-contained: the student's config and
weights, the map decoding config and the prior's frozen decoder) and a device ('cpu', 'cuda',
'auto'). Images of any size are letterboxed to the student's input size; the 3D joints come out in
the camera optical frame of the source image, the 2D keypoints in its pixels. Without intrinsics
(no CameraInfo), the fallback camera of mp3d.common.geometry is assumed (FallbackCamera: a 60-degree
horizontal field of view; callers with a CameraInfo use geometry.resolve_intrinsics): depths and
absolute positions are then only as right as that guess, root-relative poses are unaffected.
Checkpoints load with torch.load(weights_only=True): no pickled code runs; a bad model file is one
line of error naming it (docs/model_files.md). The network, its code head and the pose decoder run
on one device; only the decoded people come back to the CPU, as numpy.
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
from mp3d.model.personmaps import decode_maps, seen_confidence
from mp3d.model.student import KIND, load_student

BACKENDS = ("torch", "onnxruntime", "tensorrt")


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
    (INTER_AREA, black padding) and its Letterbox. A side that scales to under a pixel (a 4000x2
    image) keeps one pixel, so every image fits."""
    h, w = rgb.shape[:2]
    lb = letterbox(w, h, width, height)
    nw, nh = max(1, round(w * lb.scale)), max(1, round(h * lb.scale))
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = min(int(lb.pad_x), width - nw), min(int(lb.pad_y), height - nh)
    out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    return out, lb


class Estimator:
    """Multi-person 3D pose from RGB images with a student checkpoint.

    Attributes: path and sha256 (SHA-256 of the checkpoint file, for diagnostics), device (where
    the network, its code head and the pose decoder run), input_size (w, h), dense (the network
    or, with onnx=, its mp3d.infer.onnx.OnnxDense)."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu",
                 peak_threshold: float | None = None, max_people: int | None = None,
                 onnx: str | Path | None = None, backend: str | None = None,
                 fp16: bool = False, threads: int = 0):
        """checkpoint: student .pt; device: 'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when
        present, else the CPU, said once in :attr:`notes`); backend (:data:`BACKENDS`): 'torch',
        'onnxruntime' (ONNX Runtime, CPU or CUDA provider) or 'tensorrt' (ONNX Runtime's TensorRT
        provider, CUDA only; engines cached in mp3d.common.paths.cache_dir()); default 'torch', or
        'onnxruntime' when onnx is given; onnx: the checkpoint's export (mp3d export); None with
        an ONNX backend: exported once into the cache; fp16: float16 on CUDA (torch autocast,
        a float16 export for ONNX Runtime, float16 engines for TensorRT); threads: ONNX
        Runtime's intra-op threads on the CPU (0: its default, one per physical core; torch's
        count is the process's, torch.set_num_threads). Bad files raise
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
        net, self.maps, decoder = load_student(ckpt, self.path)
        self.input_size = (net.cfg.input_width, net.cfg.input_height)
        # The network (with its per-cell code head) and the pose decoder live on one device.
        self.net, self.decoder = net.to(self.device), decoder.to(self.device)
        self.dense = self.net
        if backend != "torch":
            from mp3d.infer.onnx import OnnxDense, cached_export

            if onnx is None:
                onnx = cached_export(self.path, self.sha256, dynamic_batch=True,
                                     fp16=self.fp16 and backend == "onnxruntime")
            self.dense = OnnxDense(onnx, self.sha256, self.input_size, threads=threads,
                                   provider=provider, trt_fp16=self.fp16)
        if peak_threshold is not None:
            self.maps = replace(self.maps, peak_threshold=float(peak_threshold))
        if max_people is not None:
            self.maps = replace(self.maps, max_people=int(max_people))

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
        return letterbox_image(np.ascontiguousarray(rgb), *self.input_size)

    @torch.no_grad()
    def estimate_batch(self, images: list[np.ndarray],
                       intrinsics: list[Intrinsics | None]) -> list[list[Person]]:
        """People in each image; intrinsics per image (None: the field-of-view fallback). The
        images go through the network as one batch; an ONNX export with a fixed batch of 1 is
        run once per image instead (same results)."""
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
        x = torch.from_numpy(np.stack(inputs)).to(self.device).permute(0, 3, 1, 2).float() / 255
        # Decoding runs where the code head and the decoder live: the maps move there once
        # (a no-op for torch; ONNX Runtime's maps are on the CPU, as is everything then).
        with torch.autocast("cuda", dtype=torch.float16,
                            enabled=self.fp16 and self.backend == "torch"):
            dense = self.dense(x)
        maps = {k: v.to(self.device, torch.float32) for k, v in dense.items()}
        decoded = decode_maps(maps, np.array(intr_in), self.decoder, self.maps,
                              self.net.heads.codes)
        out = []
        for dec, lb, rgb in zip(decoded, lbs, images):
            people = []
            h, w = rgb.shape[:2]
            for i in range(len(dec)):
                kp = lb.to_src(dec.keypoints_2d[i])
                conf = seen_confidence(dec.joint_conf[i], kp, w, h, self.maps)
                people.append(Person(dec.joints_cam[i], kp, conf, float(dec.score[i])))
            out.append(people)
        return out

    def __call__(self, rgb: np.ndarray, intrinsics: Intrinsics | None = None) -> list[Person]:
        """People in one image."""
        return self.estimate_batch([rgb], [intrinsics])[0]
