"""`mp3d export` and the ONNX Runtime backend: torch and ONNX Runtime agree on real frames of the
bundled clip (batch 1 and 4, fixed and dynamic batch, and float16; the clip's model input size,
conftest.CLIP_INPUT_SIZE, and a portrait input), the metadata ties an export to its checkpoint,
and the backend refuses files it cannot trust with one line. Each export is made once per module
(a few seconds each)."""

import json
import re

import numpy as np
import onnx
import pytest
import torch
from conftest import CLIP_INPUT_SIZE, REPO
from mp3d import __version__
from mp3d.cli.main import main as mp3d_main
from mp3d.common.geometry import Intrinsics
from mp3d.common.paths import SHIPPED_SHA256, default_model
from mp3d.data.images import open_dataset
from mp3d.infer.estimator import Estimator
from mp3d.infer.onnx import META_KEYS

STUDENT = default_model("student.pt")
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"
MAP_TOL = 1e-2      # max abs difference of any dense output (boxes and keypoints in pixels,
#                     scores, features), float32 export (ONNX Runtime's kernels round otherwise)
JOINT_TOL_M = 1e-3  # max joint difference (m), float32 export
FP16_MAP_TOL = 0.02  # float16 inside: person scores (pixels up to ~960 round to 0.5 in float16)
FP16_JOINT_TOL_M = 0.05


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, str]:
    """The shipped student exported by `mp3d export`: batch 1, dynamic batch, float16 + dynamic."""
    d = tmp_path_factory.mktemp("onnx")
    flags = {"b1": [], "dynamic": ["--dynamic-batch"], "fp16": ["--fp16", "--dynamic-batch"]}
    out = {}
    for name, extra in flags.items():
        out[name] = str(d / f"{name}.onnx")
        assert mp3d_main(["export", "--model", str(STUDENT), "--out", out[name], *extra]) == 0
    return out


@pytest.fixture(scope="module")
def frames() -> tuple[list[np.ndarray], list[Intrinsics]]:
    """Four frames of the bundled clip, 1.5 s apart, with its intrinsics (the bag's CameraInfo is
    a 60 degree horizontal field of view, mp3d_ros/data/README.md)."""
    ds = open_dataset(CLIP)
    rgbs = [ds.read_rgb(i) for i in (0, 15, 30, 45)]
    return rgbs, [Intrinsics.from_fov(r.shape[1], r.shape[0], 60.0) for r in rgbs]


@pytest.fixture(scope="module")
def torch_est() -> Estimator:
    return Estimator(STUDENT, input_size=CLIP_INPUT_SIZE)


def _map_diff(a: Estimator, b: Estimator, rgbs: list[np.ndarray],
              keys: tuple[str, ...] | None = None) -> float:
    x = torch.from_numpy(np.stack([a.preprocess(r)[0] for r in rgbs])).permute(0, 3, 1, 2)
    x = x.float() / 255
    with torch.no_grad():
        ma, mb = a.dense(x), b.dense(x)
    assert ma.keys() == mb.keys() and all(ma[k].shape == mb[k].shape for k in ma)
    return max(float((ma[k] - mb[k]).abs().max()) for k in keys or ma)


def _joint_diff(pa: list[list], pb: list[list]) -> float:
    """Max joint difference (m) of the same people in the same order; asserts that they are."""
    assert [len(p) for p in pa] == [len(p) for p in pb]
    diffs = [0.0]
    for a, b in zip(pa, pb):
        for p, q in zip(a, b):
            assert abs(p.score - q.score) < 0.01
            diffs.append(float(np.abs(p.joints_3d - q.joints_3d).max()))
    return max(diffs)


@pytest.mark.parametrize("name", ["b1", "dynamic"])
def test_onnx_matches_torch_batch_1_and_4(name, exports, frames, torch_est):
    rgbs, intr = frames
    est = Estimator(STUDENT, onnx=exports[name], input_size=CLIP_INPUT_SIZE)
    assert est.dense.dynamic_batch == (name == "dynamic") and not est.dense.fp16
    for rgb, k in zip(rgbs, intr):  # batch 1
        assert _map_diff(torch_est, est, [rgb]) < MAP_TOL
        assert _joint_diff([torch_est(rgb, k)], [est(rgb, k)]) < JOINT_TOL_M
    # batch 4: one run with a dynamic batch, a run per image with a fixed batch of 1
    assert _map_diff(torch_est, est, rgbs) < MAP_TOL
    ref = torch_est.estimate_batch(rgbs, intr)
    assert sum(map(len, ref)) >= 8, [len(p) for p in ref]  # the clip has people in every frame
    assert _joint_diff(ref, est.estimate_batch(rgbs, intr)) < JOINT_TOL_M


def test_fp16_export_is_valid_and_close(exports, frames, torch_est):
    onnx.checker.check_model(exports["fp16"])
    model = onnx.load(exports["fp16"])
    assert {i.data_type for i in model.graph.initializer} == {onnx.TensorProto.FLOAT16}
    assert [v.type.tensor_type.elem_type for v in (*model.graph.input, *model.graph.output)] == [
        onnx.TensorProto.FLOAT] * 5  # float32 at the interface
    rgbs, intr = frames
    est = Estimator(STUDENT, onnx=exports["fp16"], input_size=CLIP_INPUT_SIZE)
    assert est.dense.fp16 and est.dense.dynamic_batch
    assert _map_diff(torch_est, est, rgbs, ("score",)) < FP16_MAP_TOL
    ref = torch_est.estimate_batch(rgbs, intr)
    assert _joint_diff(ref, est.estimate_batch(rgbs, intr)) < FP16_JOINT_TOL_M


def test_metadata_ties_the_export_to_its_checkpoint(exports):
    ckpt = torch.load(STUDENT, map_location="cpu", weights_only=True)
    for name, fp16, dyn in (("b1", False, False), ("dynamic", False, True), ("fp16", True, True)):
        meta = {p.key: p.value for p in onnx.load(exports[name]).metadata_props}
        assert set(meta) == set(META_KEYS)
        assert meta["mp3d.checkpoint_sha256"] == SHIPPED_SHA256["student.pt"]
        net = {k: list(v) if isinstance(v, tuple) else v for k, v in ckpt["config"]["net"].items()}
        assert json.loads(meta["mp3d.student_config"]) == net
        assert json.loads(meta["mp3d.input_size"]) == 640
        assert meta["mp3d.opset"] == "17" and meta["mp3d.version"] == __version__
        assert json.loads(meta["mp3d.fp16"]) is fp16
        assert json.loads(meta["mp3d.dynamic_batch"]) is dyn


def _refused(exc_type, pattern: str, *args, **kw) -> None:
    with pytest.raises(exc_type) as info:
        Estimator(STUDENT, *args, **kw)
    msg = str(info.value)
    assert "\n" not in msg and re.search(pattern, msg), msg


def test_untrusted_onnx_files_are_refused(exports, tmp_path):
    good = open(exports["b1"], "rb").read()
    _refused(FileNotFoundError, r"ONNX file not found: .*missing\.onnx$",
             onnx=tmp_path / "missing.onnx")
    (tmp_path / "half.onnx").write_bytes(good[:len(good) // 2])
    _refused(ValueError, r"ONNX file .*half\.onnx is corrupt or not an ONNX model: ",
             onnx=tmp_path / "half.onnx")
    (tmp_path / "text.onnx").write_text("not a model\n")
    _refused(ValueError, r"ONNX file .*text\.onnx is corrupt or not an ONNX model: ",
             onnx=tmp_path / "text.onnx")
    model = onnx.load_from_string(good)
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "bare.onnx"))
    _refused(ValueError, r"ONNX file .*bare\.onnx has no mp3d metadata \(lacks "
             r"mp3d\.checkpoint_sha256, .*\): export it with `mp3d export",
             onnx=tmp_path / "bare.onnx")
    # exported from another checkpoint: the shipped student with one more field
    other = tmp_path / "other.pt"
    torch.save({**torch.load(STUDENT, weights_only=True), "note": "fine-tuned"}, other)
    assert mp3d_main(["export", "--model", str(other), "--out", str(tmp_path / "other.onnx")]) == 0
    _refused(ValueError, r"ONNX file .*other\.onnx was exported from another checkpoint \(SHA-256 "
             rf"[0-9a-f]{{12}}\.\.\., this one is {SHIPPED_SHA256['student.pt'][:12]}\.\.\.\): "
             r"export it again",
             onnx=tmp_path / "other.onnx")
    assert len(Estimator(other, onnx=tmp_path / "other.onnx")(np.zeros((8, 8, 3), np.uint8))) == 0


def test_backends_this_machine_lacks_are_refused_with_one_line(exports, monkeypatch):
    import onnxruntime as ort
    from mp3d.common.devices import DeviceUnavailableError

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has CUDA")
    _refused(DeviceUnavailableError, r"backend tensorrt runs on CUDA only, the device is cpu",
             backend="tensorrt")
    _refused(ValueError, r"fp16 is for CUDA devices, the device is cpu", fp16=True)
    _refused(ValueError, r"unknown backend 'openvino': use one of torch, onnxruntime, tensorrt",
             backend="openvino")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # refused before any CUDA use
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _refused(DeviceUnavailableError, r"ONNX Runtime .* here has no CUDAExecutionProvider .*"
             r"install onnxruntime-gpu", device="cuda", onnx=exports["b1"])


def test_onnx_backend_exports_into_the_cache_once_and_matches_torch(tmp_path, monkeypatch):
    from mp3d.infer.estimator import available_backends

    monkeypatch.setenv("MP3D_CACHE", str(tmp_path))
    auto = Estimator(STUDENT, device="auto")
    assert auto.notes == (["device auto: CUDA is not available here, running on the CPU"]
                          if not torch.cuda.is_available() else [])
    ort_est = Estimator(STUDENT, backend="onnxruntime")
    assert ort_est.describe() == "onnxruntime on cpu"
    files = list((tmp_path / "onnx").glob("*.onnx"))
    assert [f.name for f in files] == [f"{SHIPPED_SHA256['student.pt'][:16]}-dynamic-fp32.onnx"]
    stamp = files[0].stat().st_mtime_ns
    Estimator(STUDENT, backend="onnxruntime")
    assert files[0].stat().st_mtime_ns == stamp  # reused, not exported again
    rgb = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    rgb[60:200, 140:180] = 200
    a, b = Estimator(STUDENT)(rgb), ort_est(rgb)
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert np.abs(p.joints_3d - q.joints_3d).max() < 1e-3
    assert ("torch", "cpu") in available_backends() and ("onnxruntime", "cpu") in \
        available_backends()


def test_onnx_runtime_threads_are_the_callers(exports, frames, torch_est):
    rgbs, intr = frames
    one = Estimator(STUDENT, backend="onnxruntime", onnx=exports["dynamic"], threads=1,
                    input_size=CLIP_INPUT_SIZE)
    assert one.dense.session.get_session_options().intra_op_num_threads == 1
    assert one.describe() == "onnxruntime on cpu (1 thread)"
    assert _joint_diff(torch_est.estimate_batch(rgbs, intr), one.estimate_batch(rgbs, intr)) \
        < JOINT_TOL_M
    with pytest.raises(ValueError, match=r"threads must be an int >= 0 \(0: the default\), got -1"):
        Estimator(STUDENT, backend="onnxruntime", onnx=exports["dynamic"], threads=-1)


def test_one_export_takes_every_aspect(exports):
    """The graph's height and width are free: a portrait letterbox (the long side vertical) runs
    through the same file and agrees with torch."""
    rgb = np.random.default_rng(1).integers(0, 255, (640, 360, 3), dtype=np.uint8)
    rgb[100:560, 140:220] = 220
    a, b = Estimator(STUDENT), Estimator(STUDENT, onnx=exports["b1"])
    assert _map_diff(a, b, [rgb]) < MAP_TOL
    assert a.preprocess(rgb)[0].shape == (640, 384, 3)  # 360 rounded up to 32
