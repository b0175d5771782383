"""Bad model files are one-line errors naming the file (docs/model_files.md): checkpoints that are
missing, truncated, of the wrong kind, lacking fields or not checkpoints at all, all built from the
shipped student; the shipped models' SHA-256 against the model card; the Estimator's device and
image-size robustness; and `mp3d` printing one `error:` line with exit status 2."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO
from mp3d.cli.main import main as mp3d_main
from mp3d.common.checkpoints import load_checkpoint
from mp3d.common.devices import DeviceUnavailableError, resolve_device
from mp3d.common.paths import SHIPPED_SHA256, default_model, file_sha256
from mp3d.data.images import open_dataset
from mp3d.infer import estimator as estimator_mod
from mp3d.infer.estimator import Estimator

STUDENT = default_model("student.pt")
CLIP = REPO / "mp3d_ros" / "data" / "demo_clip"


@pytest.fixture(scope="module")
def student() -> dict:
    """The shipped student checkpoint as a dict (never modified: tests copy what they change)."""
    return torch.load(STUDENT, map_location="cpu", weights_only=True)


def _saved(ckpt: object, path) -> str:
    torch.save(ckpt, path)
    return str(path)


def _with_net(student: dict, **change) -> dict:
    """A copy of the student whose config['net'] has `change` (value None: the field deleted)."""
    net = {k: v for k, v in {**student["config"]["net"], **change}.items() if v is not None}
    return {**student, "config": {**student["config"], "net": net}}


def _one_line_error(exc_type, fn, *args, **kw) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kw)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


def _bad_files(student: dict, tmp_path) -> dict[str, tuple[str, type, str]]:
    """name -> (path, exception type, message pattern)."""
    half = tmp_path / "half.pt"
    half.write_bytes(STUDENT.read_bytes()[:STUDENT.stat().st_size // 2])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "text.pt").write_text("this is not a checkpoint\n")
    big = {k: v for k, v in student["state_dict"].items()}
    first = next(iter(big))
    big[first] = torch.zeros(3, *big[first].shape)
    p = tmp_path
    return {
        "missing": (str(p / "missing.pt"), FileNotFoundError, r"checkpoint not found: .*missing"),
        "truncated": (str(half), ValueError, r"half\.pt is corrupt: truncated or damaged"),
        "wrong kind": (str(default_model("posemap.pt")), ValueError,
                       r"posemap\.pt holds 'mp3d\.posemap', expected 'mp3d\.student'"),
        "random bytes": (str(p / "random.pt"), ValueError,
                         r"random\.pt is corrupt or not a torch checkpoint"),
        "text": (str(p / "text.pt"), ValueError, r"text\.pt is corrupt or not a torch checkpoint"),
        "list": (_saved([1, 2, 3], p / "list.pt"), ValueError,
                 r"list\.pt is not an mp3d checkpoint \(it holds a list\)"),
        "no kind": (_saved({"state_dict": {}}, p / "nokind.pt"), ValueError,
                    r"nokind\.pt is not an mp3d checkpoint \(it holds a dict without a 'kind'\)"),
        "pickled object": (_saved({"kind": "mp3d.student", "x": p}, p / "obj.pt"), ValueError,
                           r"obj\.pt holds a pickled pathlib[\w.]*Path, .*refused"),
        "no config": (_saved({k: v for k, v in student.items() if k != "config"}, p / "nc.pt"),
                      ValueError, r"nc\.pt lacks config$"),
        "no state_dict": (_saved({k: v for k, v in student.items() if k != "state_dict"},
                                 p / "nsd.pt"), ValueError, r"nsd\.pt lacks state_dict$"),
        "no config['decode']": (_saved({**student, "config": {"net": student["config"]["net"]}},
                                       p / "nm.pt"), ValueError,
                                r"nm\.pt lacks config\['decode'\]"),
        "older student": (_saved({**student, "version": 2}, p / "v2.pt"), ValueError,
                          r"v2\.pt is a version 2 student; this mp3d reads version 3"),
        "net field missing": (_saved(_with_net(student, input_size=None), p / "nf.pt"),
                              ValueError,
                              r"nf\.pt: config\['net'\] lacks fields \['input_size'\]$"),
        "net field unknown": (_saved(_with_net(student, colour="red"), p / "uf.pt"), ValueError,
                              r"uf\.pt: config\['net'\] has unknown fields \['colour'\]$"),
        "net field of the wrong type": (_saved(_with_net(student, input_size="448"), p / "wt.pt"),
                                        ValueError, r"wt\.pt: config\['net'\]\['input_size'\] is "
                                        r"'448', expected int like 512"),
        "unknown trunk": (_saved(_with_net(student, trunk="resnet"), p / "bb.pt"),
                          ValueError, r"bb\.pt: config\['net'\]: unknown trunk 'resnet'"),
        "another teacher's trunk": (_saved(_with_net(student, trunk_sha256="0" * 64), p / "ts.pt"),
                                    ValueError, r"ts\.pt wants the trunk weights of a teacher "
                                    r"checkpoint with SHA-256 0000"),
        "weights of the wrong shape": (_saved({**student, "state_dict": big}, p / "ws.pt"),
                                       ValueError, r"ws\.pt does not fit the network"),
        "weights not tensors": (_saved({**student, "decoder_state_dict": [1]}, p / "wn.pt"),
                                ValueError, r"wn\.pt \(pose decoder\) does not fit the network: "
                                "its weights are not a dict of tensors"),
    }


def test_every_bad_student_file_is_one_line_naming_it(student, tmp_path):
    for name, (path, exc_type, pattern) in _bad_files(student, tmp_path).items():
        msg = _one_line_error(exc_type, Estimator, path)
        assert re.search(pattern, msg), (name, msg)
        assert os.path.basename(path) in msg, (name, msg)


def test_load_checkpoint_errors_name_the_file(student, tmp_path):
    bad = _bad_files(student, tmp_path)
    for name in ("missing", "truncated", "random bytes", "text", "list", "pickled object"):
        path, exc_type, pattern = bad[name]
        assert re.search(pattern, _one_line_error(exc_type, load_checkpoint, path)), name
    # the checkpoint itself is fine for load_checkpoint; the student's fields are checked later
    assert load_checkpoint(bad["net field missing"][0], "mp3d.student")["kind"] == "mp3d.student"


def test_model_card_table_is_the_checked_digests():
    card = (STUDENT.parent / "MODEL_CARD.md").read_text()
    rows = re.findall(r"^\| `([\w.]+\.pt)` \|.*\| `([0-9a-f]{64})` \|$", card, re.M)
    assert dict(rows) == SHIPPED_SHA256
    for name, digest in SHIPPED_SHA256.items():
        assert file_sha256(default_model(name)) == digest, name


def test_changed_shipped_model_is_refused_user_model_is_not(student, tmp_path, monkeypatch):
    shipped = tmp_path / "models"
    shipped.mkdir()
    data = bytearray(STUDENT.read_bytes())
    data[-1] ^= 1
    (shipped / "student.pt").write_bytes(bytes(data))
    (shipped / "prior.pt").write_bytes(default_model("prior.pt").read_bytes())
    monkeypatch.setenv("MP3D_MODELS", str(shipped))
    assert default_model("student.pt") == shipped / "student.pt"
    msg = _one_line_error(ValueError, Estimator, shipped / "student.pt")
    assert re.fullmatch(rf"shipped model student\.pt \(.*\) has SHA-256 [0-9a-f]{{64}}, the model "
                        rf"card says {SHIPPED_SHA256['student.pt']}; restore it with git "
                        r"checkout -- .*student\.pt", msg), msg
    assert load_checkpoint(shipped / "prior.pt", "mp3d.prior")["kind"] == "mp3d.prior"
    # A user's model (another path, another content) is not held to the table; its digest is kept.
    mine = _saved({**student, "note": "fine-tuned"}, tmp_path / "mine.pt")
    est = Estimator(mine)
    assert est.sha256 == file_sha256(mine) != SHIPPED_SHA256["student.pt"]
    # ... but the same content at the shipped default path is.
    (shipped / "student.pt").write_bytes((tmp_path / "mine.pt").read_bytes())
    with pytest.raises(ValueError, match="shipped model student.pt"):
        load_checkpoint(shipped / "student.pt")


def test_estimator_records_the_shipped_digest():
    assert Estimator(STUDENT).sha256 == SHIPPED_SHA256["student.pt"]


def test_resolve_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    for name in ("cuda", "cuda:1"):
        msg = _one_line_error(DeviceUnavailableError, resolve_device, name)
        assert "CUDA is not available" in msg
    assert "unknown device 'gpu'" in _one_line_error(ValueError, resolve_device, "gpu")
    assert "CUDA is not available" in _one_line_error(DeviceUnavailableError, Estimator, STUDENT,
                                                      device="cuda")


@pytest.fixture(scope="module")
def estimator() -> Estimator:
    return Estimator(STUDENT)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return open_dataset(CLIP).read_rgb(0)


def test_decoding_runs_where_the_heads_and_decoder_live(estimator, frame, monkeypatch):
    """The dense outputs go to the heads' device once, and the person head and the pose decoder
    get their inputs there (with CUDA, the bug was maps on the CPU and the head on the GPU)."""
    head_dev = next(estimator.net.head.parameters()).device
    seen: list[tuple[str, torch.device]] = []
    decode = estimator_mod.decode_people

    def spy_decode(dense, *args):
        seen.extend((f"dense {k}", v.device) for k, v in dense.items())
        return decode(dense, *args)

    monkeypatch.setattr(estimator_mod, "decode_people", spy_decode)
    hooks = [estimator.net.head.register_forward_pre_hook(
        lambda _m, args: seen.append(("person head", args[0].device))),
        estimator.decoder.register_forward_pre_hook(
        lambda _m, args: seen.append(("decoder", args[0].device)))]
    try:
        people = estimator(frame)
    finally:
        for h in hooks:
            h.remove()
    assert people and {n for n, _ in seen} >= {"person head", "decoder", "dense feat",
                                               "dense score"}
    assert all(d == head_dev for _, d in seen), seen
    assert next(estimator.decoder.parameters()).device == head_dev == estimator.device


def test_images_of_any_size_give_a_list(estimator):
    for h, w in ((1, 1), (2, 4000), (4000, 2), (3, 5), (10000, 10000)):
        people = estimator(np.full((h, w, 3), 128, np.uint8))
        assert isinstance(people, list), (h, w)
    flipped = np.zeros((336, 448, 3), np.uint8)[:, ::-1]  # a view with negative strides
    assert isinstance(estimator(flipped), list)


def test_images_it_cannot_take_are_one_line_errors(estimator):
    bad = (np.zeros((10, 10, 3), np.float32), np.zeros((10, 10), np.uint8),
           np.zeros((10, 10, 4), np.uint8), np.zeros((0, 10, 3), np.uint8), [[0, 0, 0]])
    for img in bad:
        msg = _one_line_error(ValueError, estimator, img)
        assert msg.startswith("expected an HxWx3 uint8 RGB image, got"), msg
    with pytest.raises(ValueError, match="2 images but 1 intrinsics"):
        estimator.estimate_batch([bad[0], bad[0]], [None])


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mp3d.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def _assert_one_error_line(res: subprocess.CompletedProcess, pattern: str) -> None:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr and re.search(pattern, lines[0]), res.stderr


def test_cli_bad_input_is_one_error_line_and_exit_2(tmp_path):
    _assert_one_error_line(_cli("estimate", "/nonexistent.jpg"),
                           r"^error: cannot read image /nonexistent\.jpg: no such file$")
    half = tmp_path / "half.pt"
    half.write_bytes(STUDENT.read_bytes()[:STUDENT.stat().st_size // 2])
    img = tmp_path / "img.png"
    import cv2

    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    _assert_one_error_line(_cli("estimate", str(img), "--model", str(half)),
                           r"half\.pt is corrupt: truncated or damaged")
    _assert_one_error_line(_cli("export", "--model", str(tmp_path / "no.pt"), "--out",
                                str(tmp_path / "x.onnx")), r"checkpoint not found: .*no\.pt$")
    assert not (tmp_path / "x.onnx").exists()


def test_cli_traceback_on_request(monkeypatch, capsys):
    assert mp3d_main(["estimate", "/nonexistent.jpg"]) == 2
    assert capsys.readouterr().err == "error: cannot read image /nonexistent.jpg: no such file\n"
    monkeypatch.setenv("MP3D_TRACEBACK", "1")
    with pytest.raises(FileNotFoundError, match="nonexistent"):
        mp3d_main(["estimate", "/nonexistent.jpg"])
