"""The plain-torch YOLO11n backbone (mp3d.model.backbones): shapes, ONNX export, pretrained loading,
and, in the teacher environment, parity with ultralytics on a real frame with the real weights.

The `teacher` test runs scripts/extract_yolo_backbone.py (it needs ultralytics and the YOLO11n-pose
checkpoint, both in .venv-teacher); everything else runs in the main environment.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mp3d.common.checkpoints import save_checkpoint
from mp3d.model.backbones import PRETRAINED_KIND, Yolo11Backbone, load_pretrained

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "extract_yolo_backbone.py"
VARIANTS = {  # kwargs -> (out_channels, parameters: the sums of YOLO11n's layers 0..10 / 0..22)
    "backbone": ({}, (128, 128, 256), 1_365_472),
    "neck": ({"neck": True}, (64, 128, 256), 2_159_168),
    "stride16": ({"last_stride": 16}, (128, 128), 309_600),
}


def _randomise_bn(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial batch-norm statistics and affine terms, so an eval-mode check means something."""
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)
    return net.eval()


@pytest.fixture(autouse=True)
def one_torch_thread():
    """These tests run torch on one thread; the count is put back after each (a test later in
    the same process, e.g. replay against the live node, must run as the node does)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(VARIANTS))
@pytest.mark.parametrize("wh", [(512, 384), (640, 480)])
def test_shapes_channels_and_parameter_count(name, wh):
    kwargs, channels, n_params = VARIANTS[name]
    net = Yolo11Backbone(**kwargs).eval()
    assert net.out_channels == channels
    assert sum(p.numel() for p in net.parameters()) == n_params
    w, h = wh
    with torch.no_grad():
        feats = net(torch.rand(2, 3, h, w))
    assert [tuple(f.shape) for f in feats] == [
        (2, c, h // s, w // s) for c, s in zip(channels, net.strides)]
    assert all(torch.isfinite(f).all() for f in feats)


def test_bad_options_raise():
    with pytest.raises(ValueError, match="last_stride"):
        Yolo11Backbone(last_stride=8)
    with pytest.raises(ValueError, match="neck"):
        Yolo11Backbone(neck=True, last_stride=16)


def test_onnx_export_matches_torch(tmp_path):
    """The full network (attention included) exports at opset 17 and ONNX Runtime agrees."""
    import onnxruntime as ort

    torch.manual_seed(0)
    net = _randomise_bn(Yolo11Backbone(neck=True))
    x = torch.rand(1, 3, 384, 512)
    path = tmp_path / "yolo11n.onnx"
    names = ["p3", "p4", "p5"]
    torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=names,
                      opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = net(x)
    for name, r, o in zip(names, ref, outs):
        assert o.shape == tuple(r.shape), name
        diff = float(np.abs(r.numpy() - o).max())
        assert diff < 1e-4, (name, diff)


def _pretrained_file(path: Path, net: torch.nn.Module, **extra) -> Path:
    save_checkpoint({"kind": PRETRAINED_KIND, "arch": "yolo11n", "state_dict": net.state_dict(),
                     **extra}, path)
    return path


def test_load_pretrained_fills_truncated_and_full_networks(tmp_path):
    torch.manual_seed(0)
    full = _randomise_bn(Yolo11Backbone(neck=True), seed=1)
    path = _pretrained_file(tmp_path / "w.pt", full)
    for kwargs in ({"neck": True}, {}, {"last_stride": 16}):
        net = Yolo11Backbone(**kwargs)
        load_pretrained(net, path)
        ref = full.state_dict()
        for k, v in net.state_dict().items():
            assert torch.equal(v, ref[k]), (kwargs, k)


def test_load_pretrained_errors_are_one_line(tmp_path):
    net = Yolo11Backbone()
    with pytest.raises(FileNotFoundError, match="extract_yolo_backbone.py") as e:
        load_pretrained(net, tmp_path / "absent.pt")
    assert "\n" not in str(e.value)
    save_checkpoint({"kind": "mp3d.student", "state_dict": {}}, tmp_path / "student.pt")
    with pytest.raises(ValueError, match="expected 'mp3d.pretrained'"):
        load_pretrained(net, tmp_path / "student.pt")
    other = _pretrained_file(tmp_path / "other.pt", net)
    with pytest.raises(ValueError, match="arch 'yolo11n', expected 'yolo26n'"):
        load_pretrained(net, other, arch="yolo26n")
    small = _pretrained_file(tmp_path / "small.pt", Yolo11Backbone(last_stride=16))
    with pytest.raises(ValueError, match="does not fit Yolo11Backbone: missing") as e:
        load_pretrained(net, small)            # the file lacks the stride-32 stage
    assert "\n" not in str(e.value)


@pytest.mark.teacher
def test_extracted_weights_match_ultralytics_on_a_real_frame(vtest_video, tmp_path):
    """The extraction script's own check passes, and, independently, the written file loaded
    without ultralytics reproduces ultralytics' backbone and neck maps on vtest frame 50."""
    from mp3d.data.images.video import VideoDataset
    from mp3d.data.teachers.base import _offline_ultralytics_env
    from mp3d.data.teachers.yolo import yolo_pose_weights

    out = tmp_path / "yolo11n_backbone.pt"
    res = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--video",
                          str(vtest_video)], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "parity on vtest.avi frame 50" in res.stdout
    diffs = [float(d) for d in re.findall(r"^\s+layer\s+\d+ .* (\S+)$", res.stdout, re.M)]
    assert len(diffs) == 12 and max(diffs) < 1e-4, res.stdout

    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["kind"] == PRETRAINED_KIND and ckpt["arch"] == "yolo11n"
    assert ckpt["licence"].startswith("AGPL-3.0")
    assert ckpt["source_sha256"] == hashlib.sha256(Path(ckpt["source"]).read_bytes()).hexdigest()

    _offline_ultralytics_env()
    from ultralytics import YOLO

    yolo = YOLO(str(yolo_pose_weights())).model.float().eval()
    net = Yolo11Backbone(neck=True).eval()
    load_pretrained(net, out)
    rgb = cv2.resize(VideoDataset(vtest_video).read_rgb(50), (512, 384),
                     interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float() / 255
    with torch.no_grad():
        ref, y = [], x
        for layer in yolo.model[:23]:
            if layer.f != -1:
                y = ref[layer.f] if isinstance(layer.f, int) else [
                    y if j == -1 else ref[j] for j in layer.f]
            y = layer(y)
            ref.append(y)
        mine = net(x)
    for layer, m in zip((16, 19, 22), mine):
        assert m.shape == ref[layer].shape
        assert float((m - ref[layer]).abs().max()) < 1e-4, layer
        assert float(m.std()) > 0.1            # real features, not a constant map
