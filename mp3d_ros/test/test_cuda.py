"""The GPU paths, run on a machine with CUDA (marker `cuda`; scripts/gpu_check.sh runs them
there, CI here has no GPU and deselects them): torch on CUDA in float32 and float16, ONNX
Runtime's CUDA provider and its TensorRT provider, each against torch on the CPU on real frames
of the bundled clip, batch 1 and 4: the same people, joints within 1 mm (float32) or 20 mm
(float16)."""

import numpy as np
import pytest
import torch
from conftest import REPO
from mp3d.common.geometry import Intrinsics
from mp3d.common.paths import default_model
from mp3d.data.images import open_dataset
from mp3d.infer.estimator import Estimator, available_backends

pytestmark = pytest.mark.cuda

STUDENT = default_model("student.pt")
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
TOL_M = {False: 1e-3, True: 0.02}  # fp16 -> joint tolerance (m)
CASES = [(b, f) for b in ("torch", "onnxruntime", "tensorrt") for f in (False, True)]


@pytest.fixture(scope="module")
def frames() -> tuple[list[np.ndarray], list[Intrinsics]]:
    ds = open_dataset(CLIP)
    rgbs = [ds[i].rgb for i in (0, 15, 30, 45)]
    h, w = rgbs[0].shape[:2]
    return rgbs, [Intrinsics.from_fov(w, h, 60.0)] * len(rgbs)


@pytest.fixture(scope="module")
def cpu_people(frames):
    return Estimator(STUDENT).estimate_batch(*frames)


@pytest.mark.parametrize(("backend", "fp16"), CASES)
@pytest.mark.parametrize("batch", [1, 4])
def test_gpu_backend_matches_torch_on_the_cpu(backend, fp16, batch, frames, cpu_people,
                                              tmp_path, monkeypatch):
    if (backend, "cuda") not in available_backends():
        pytest.fail(f"{backend} on CUDA is not available here: {available_backends()}")
    monkeypatch.setenv("MP3D_CACHE", str(tmp_path))
    est = Estimator(STUDENT, device="cuda", backend=backend, fp16=fp16)
    rgbs, intr = frames
    got = [p for i in range(0, len(rgbs), batch)
           for p in est.estimate_batch(rgbs[i:i + batch], intr[i:i + batch])]
    assert [len(p) for p in got] == [len(p) for p in cpu_people]
    worst = max(float(np.abs(p.joints_3d - q.joints_3d).max())
                for a, b in zip(got, cpu_people) for p, q in zip(a, b))
    assert worst <= TOL_M[fp16], (backend, fp16, worst)
    print(f"\n{est.describe()} batch {batch}: max joint difference {1e3 * worst:.3f} mm")


def test_cuda_is_present():
    assert torch.cuda.is_available(), "the cuda tests need a GPU machine"
