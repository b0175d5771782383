"""The image student: a tiny real training run on real frames learns, DDP with two processes,
the Estimator and `mp3d estimate` on the shipped default model, and `mp3d eval images`."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
from conftest import REPO
from mp3d.cli.main import main as mp3d_main
from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_checkpoint
from mp3d.common.geometry import Intrinsics
from mp3d.common.paths import default_model
from mp3d.infer.estimator import Estimator

MODELS = ("prior.pt", "posemap.pt", "student.pt")


def _frame(video: Path, index: int) -> np.ndarray:
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    assert ok
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _student_args(video, cache, out, steps):
    return ["train", "student", "--data", str(video), "--end-frac", "0.04", "--teacher-cache",
            str(cache), "--prior", str(default_model("prior.pt")), "--posemap",
            str(default_model("posemap.pt")), "--out", str(out), "--steps", str(steps),
            "--batch", "4", "--save-every", "1000"]


def test_shipped_models_exist_and_load():
    for name in MODELS:
        ckpt = load_checkpoint(default_model(name))
        assert ckpt["kind"].startswith("mp3d.")


def test_tiny_student_training_learns(vtest_video, vtest_teacher_cache, tmp_path):
    assert mp3d_main(_student_args(vtest_video, vtest_teacher_cache, tmp_path, 40)) == 0
    with (tmp_path / "student_log.csv").open() as f:
        log = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    assert log[-1]["loss"] < 0.7 * log[0]["loss"], log
    assert (tmp_path / "student_loss.png").stat().st_size > 0
    est = Estimator(tmp_path / "student.pt")  # the checkpoint rebuilds its own model
    assert est.input_size == (512, 384)


def test_ddp_with_two_processes_on_gloo(vtest_video, vtest_teacher_cache, tmp_path):
    torchrun = shutil.which("torchrun")
    assert torchrun, "torchrun comes with torch"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "mp3d.cli",
                          *_student_args(vtest_video, vtest_teacher_cache, tmp_path, 3)],
                         env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_checkpoint(tmp_path / "student.pt", "mp3d.student")["step"] == 3
    assert "trained 3 steps" in res.stdout


def test_estimator_on_default_model_finds_people(vtest_video):
    est = Estimator(default_model("student.pt"))
    rgb = _frame(vtest_video, 700)
    k = Intrinsics.from_fov(rgb.shape[1], rgb.shape[0], 60.0)
    people = est(rgb, k)
    assert len(people) >= 2
    for p in people:
        assert np.isfinite(p.joints_3d).all() and p.root[2] > 1.0
        assert (p.keypoints_2d[:, 0] > -50).all() and (p.keypoints_2d[:, 0] < 818).all()
        assert 0.0 <= p.score <= 1.0
        # head above feet in the image (y down)
        assert p.keypoints_2d[sk.INDEX["head"], 1] < p.keypoints_2d[sk.INDEX["r_ankle"], 1]
    batch = est.estimate_batch([rgb, rgb[:, ::-1].copy()], [k, None])
    assert len(batch) == 2 and len(batch[0]) == len(people)


def test_person_cut_at_the_knees_has_low_ankle_confidence(vtest_video):
    """Per-joint confidence: crop a real frame through a person's knees (and zoom in); the
    ankles, now outside the image, score low; the shoulders, in plain view, high."""
    est = Estimator(default_model("student.pt"))
    rgb = _frame(vtest_video, 700)
    person = max(est(rgb), key=lambda p: p.score)
    kp, i = person.keypoints_2d, sk.INDEX
    top, height = kp[:, 1].min(), np.ptp(kp[:, 1])
    knee_y = kp[[i["r_knee"], i["l_knee"]], 1].mean()
    cx = kp[:, 0].mean()
    crop = rgb[int(top - 0.5 * height):int(knee_y), int(cx - 1.5 * height):int(cx + 1.5 * height)]
    crop = cv2.resize(crop, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    found = est(crop)
    assert found, "the cropped person is still found"
    cut = max(found, key=lambda p: p.score)
    ankles = cut.joint_scores[[i["r_ankle"], i["l_ankle"]]]
    shoulders = cut.joint_scores[[i["r_shoulder"], i["l_shoulder"]]]
    assert ankles.max() < 0.4 and shoulders.min() > 0.6, (ankles, shoulders)
    assert (cut.keypoints_2d[[i["r_ankle"], i["l_ankle"]], 1] > crop.shape[0]).all()


def test_estimate_command_json_and_picture(vtest_video, tmp_path):
    img = tmp_path / "frame.jpg"
    cv2.imwrite(str(img), cv2.cvtColor(_frame(vtest_video, 650), cv2.COLOR_RGB2BGR))
    out = subprocess.run([sys.executable, "-m", "mp3d.cli", "estimate", str(img), "--json",
                          "--out", str(tmp_path / "pic.png")], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["joint_names"] == list(sk.JOINT_NAMES) and len(res["people"]) >= 1
    p = res["people"][0]
    assert np.array(p["joints_3d"]).shape == (17, 3) and np.array(p["joints_2d"]).shape == (17, 2)
    assert len(p["joint_scores"]) == 17
    assert (tmp_path / "pic.png").stat().st_size > 10_000
    bad = subprocess.run([sys.executable, "-m", "mp3d.cli", "estimate", str(tmp_path / "no.jpg")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "cannot read image" in bad.stderr


def test_eval_images_reproduces_the_model_card(vtest_video, vtest_teacher_cache):
    card = json.loads((default_model("student.pt").parent / "student_eval.json").read_text())
    out = subprocess.run([sys.executable, "-m", "mp3d.cli", "eval", "images", "--video",
                          str(vtest_video), "--start-frac", "0.75", "--teacher-cache",
                          str(vtest_teacher_cache), "--json"], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for key in ("recall", "precision", "pck2d", "pck2d_02"):
        assert abs(res[key] - card[key]) <= 0.02, (key, res[key], card[key])
