"""Timing and memory of one backend, run in a helper process: p50/p95 per call, peak memory,
GFLOPs, machine facts.
"""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from mp3d.eval.bench.composites import CLIP, SIZE, decode_jpeg

WARMUP_CALLS = 3
GPU_BATCHES = (1, 8)




def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024
    return float("nan")


class MemoryPeak:
    """Peak memory (MB) of what runs in this process between start() and peak_mb(): on the CPU,
    the resident-set high-water mark (VmHWM) minus the RSS at start, so start() must come before
    anything big is allocated (the helper process measures one backend from its start); on
    CUDA, device memory: the larger of torch's peak allocation and the drop in free device memory
    (ONNX Runtime and TensorRT allocate outside torch)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def start(self) -> None:
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            self.free = torch.cuda.mem_get_info()[0]
        else:
            self.base = _status_mb("VmRSS")

    def peak_mb(self) -> float:
        if self.cuda:
            import torch

            torch_peak = torch.cuda.max_memory_allocated() - self.base
            return max(torch_peak, self.free - torch.cuda.mem_get_info()[0]) / 2**20
        return _status_mb("VmHWM") - self.base


def time_calls(estimate_batch: Callable, images: Sequence[bytes], intrinsics, batch: int = 1,
               warmup: int = WARMUP_CALLS) -> tuple[np.ndarray, list[int]]:
    """Seconds per call and people found per image. A call decodes `batch` JPEGs and estimates
    them as one batch; len(images) calls, cycling through the images (a batch of 8 sees 8 times
    as many images), after `warmup` untimed calls."""
    def call(i: int) -> list[list]:
        rgbs = [decode_jpeg(images[(i * batch + j) % len(images)]) for j in range(batch)]
        return estimate_batch(rgbs, [intrinsics] * batch)

    for i in range(warmup):
        call(i)
    lat, found = [], []
    for i in range(len(images)):
        t = time.perf_counter()
        people = call(i)
        lat.append(time.perf_counter() - t)
        found += [len(p) for p in people]
    return np.array(lat), found


def _ms(lat_s: np.ndarray, q: float) -> float:
    return round(1000 * float(np.percentile(lat_s, q)), 2)


def clip_intrinsics():
    """The clip's CameraInfo, resolved for the timed size
    (mp3d.common.geometry.resolve_intrinsics)."""
    from mp3d.common.geometry import resolve_intrinsics
    from mp3d.data.images import open_dataset

    return resolve_intrinsics(open_dataset(CLIP).camera(0), *SIZE).intrinsics


def backend_main(job: dict) -> dict:
    """The backend helper (``python -m mp3d.eval.bench.run backend JOB.json``, one process per
    backend so its memory is its own): job {"model", "backend", "device", "batch", "threads",
    "groups": {name: [jpeg paths]}}. Latency p50/p95 per call (ms), fps, peak memory
    (MemoryPeak), people found; per count the p50 and the mean people found; on ONNX Runtime's
    CPU at batch 1 also the teacher's network alone (time_teacher)."""
    import torch

    from mp3d.infer.estimator import Estimator

    torch.set_num_threads(int(job["threads"]))
    intrinsics = clip_intrinsics()
    groups = {k: [Path(p).read_bytes() for p in v] for k, v in job["groups"].items()}
    batch = int(job["batch"])
    mem = MemoryPeak(job["device"])
    mem.start()
    est = Estimator(job["model"], device=job["device"], backend=job["backend"])
    lat, found = time_calls(est.estimate_batch, groups["real"], intrinsics, batch)
    per_count, found_per_count = {}, {}
    for key, group in groups.items():
        if key != "real":
            t, f = time_calls(est.estimate_batch, group, intrinsics, batch)
            per_count[key] = _ms(t, 50)
            found_per_count[key] = round(float(np.mean(f)), 2)
    out = {"backend": est.backend, "device": str(est.device), "batch": batch,
           "input_size": est.input_size,
           "p50_ms": _ms(lat, 50), "p95_ms": _ms(lat, 95),
           "fps": round(batch * len(lat) / float(lat.sum()), 1),
           "peak_mem_mb": round(mem.peak_mb(), 1),
           "people_per_frame": round(float(np.mean(found)), 2),
           "per_count": per_count, "found_per_count": found_per_count}
    if est.backend == "onnxruntime" and est.device.type == "cpu" and batch == 1:
        out["teacher_p50_ms"] = _ms(time_teacher(est, groups["real"]), 50)
    return out


def time_teacher(est, images: Sequence[bytes], warmup: int = WARMUP_CALLS) -> np.ndarray:
    """Seconds per call of the teacher's network alone (mp3d.infer.onnx.cached_teacher_export)
    with ONNX Runtime on the CPU, on the same JPEGs, decoded and letterboxed as the Estimator
    does: what the student costs beyond it is its heads, decoding and refinement."""
    import onnxruntime as ort

    from mp3d.infer.onnx import cached_teacher_export

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(cached_teacher_export()), opts,
                                   providers=["CPUExecutionProvider"])

    def call(data: bytes) -> None:
        x, _ = est.preprocess(decode_jpeg(data))
        session.run(None, {"image": np.ascontiguousarray(
            x.transpose(2, 0, 1)[None], np.float32) / 255})

    for i in range(warmup):
        call(images[i % len(images)])
    lat = []
    for data in images:
        t = time.perf_counter()
        call(data)
        lat.append(time.perf_counter() - t)
    return np.array(lat)


def prepare_backend(model: str, backend: str, device: str) -> None:
    """Build a backend once so its ONNX export or TensorRT engines are cached before the helper
    measures it (a first export would count in its memory and time)."""
    from mp3d.infer.estimator import Estimator

    if backend != "torch":
        Estimator(model, device=device, backend=backend)


def backend_pairs() -> list[tuple[str, str]]:
    """(backend, device) pairs to measure: mp3d.infer.estimator.available_backends()."""
    from mp3d.infer.estimator import available_backends

    return available_backends()


def slope(counts: Sequence[int], ms: Sequence[float]) -> float | None:
    """Least-squares ms per person of latencies `ms` against `counts` (None: < 2 counts)."""
    if len(set(counts)) < 2:
        return None
    return round(float(np.polyfit(np.asarray(counts, float), np.asarray(ms, float), 1)[0]), 3)


def flops(net, h: int, w: int) -> float:
    """Multiply-accumulates of the conv layers for one (1, 3, h, w) input."""
    import torch

    total = 0

    def hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        net(torch.zeros(1, 3, h, w))
    for h_ in hs:
        h_.remove()
    return float(total)


def machine_info(threads: int) -> dict:
    """CPU model (/proc/cpuinfo), cores, load average, library versions, GPU name if any."""
    import onnxruntime as ort
    import torch

    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), platform.processor())
    info = {"cpu": model, "cores": os.cpu_count(), "threads": threads,
            "load_1min": round(os.getloadavg()[0], 2), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": ort.__version__,
            "opencv": cv2.__version__, "gpu": None}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
