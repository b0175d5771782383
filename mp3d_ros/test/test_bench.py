"""`mp3d bench` (mp3d/py): a short run from the CLI gives every JSON key with sane values;
the compositor puts exactly the requested number of people on the canvas; the peer helper finds
the composited people in .venv-teacher; the summary's ratios and slopes."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import REPO
from mp3d.eval.bench.composites import (
    PERSON_HEIGHT_PX,
    Crop,
    _overlaps,
    clip_frames,
    composite,
    composites,
    cut_people,
    encode_jpeg,
    grid,
)
from mp3d.eval.bench.report import check_targets, summarize
from mp3d.eval.bench.run import CUT_INPUT_SIZE, run_helper, write_images

TEACHER_PYTHON = REPO / ".venv-teacher" / "bin" / "python"
BACKEND_KEYS = {"backend", "device", "batch", "input_size", "p50_ms", "p95_ms", "fps",
                "peak_mem_mb", "people_per_frame", "per_count", "found_per_count"}


def blob(h: int, w: int, colour: tuple[int, int, int]) -> Crop:
    """A synthetic 'person': a solid crop with a full mask inside a 2 px transparent border."""
    alpha = np.zeros((h, w), np.float32)
    alpha[2:-2, 2:-2] = 1.0
    return np.full((h, w, 3), colour, np.uint8), alpha


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16])
def test_composite_holds_exactly_n_people(n):
    people = [blob(100 + 5 * i, 40, (255, 20 * (i % 12), 0)) for i in range(n)]
    img, boxes = composite(people)
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    assert len(boxes) == n
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= 640).all() and (boxes[:, 3] <= 480).all()
    for i in range(n):
        for j in range(i + 1, n):
            assert _overlaps(boxes[i], boxes[j] - [0, 0, 1, 1]) is False, (i, j)
    pasted = (np.abs(img.astype(int) - 128).max(axis=2) > 40).astype(np.uint8)
    assert cv2.connectedComponents(pasted)[0] - 1 == n  # minus the background label
    assert np.all(boxes[:, 3] - boxes[:, 1] <= PERSON_HEIGHT_PX)


def test_grid_cells_suit_standing_people():
    assert [grid(n, 640, 480) for n in (1, 2, 4, 8, 16)] == [
        (1, 1), (1, 2), (1, 4), (2, 4), (2, 8)]


def test_summary_ratio_and_slopes():
    per = {"1": 10.0, "2": 11.0, "4": 13.0, "8": 17.0}
    backends = {
        "torch-cpu": {"backend": "torch", "device": "cpu", "batch": 1, "p50_ms": 30.0,
                      "per_count": {k: 3 * v for k, v in per.items()}},
        "onnxruntime-cpu": {"backend": "onnxruntime", "device": "cpu", "batch": 1,
                            "p50_ms": 10.0, "per_count": per, "teacher_p50_ms": 8.0}}
    peer = {"p50_ms": 200.0, "per_count": {"1": 100.0, "2": 120.0, "4": 160.0, "8": 240.0}}
    s = summarize(backends, peer, [1, 2, 4, 8])
    assert s["ours_backend"] == "onnxruntime-cpu" and s["ours_p50_ms"] == 10.0
    assert s["ours_ms_per_person"] == pytest.approx(1.0) and s["peer_ms_per_person"] == \
        pytest.approx(20.0)
    assert s["ratio_at_8"] == pytest.approx(240 / 17, abs=0.01)
    assert s["teacher_p50_ms"] == 8.0 and s["overhead_pct"] == pytest.approx(25.0)
    targets = {t["key"]: t["pass"] for t in check_targets(s)}
    assert targets == {"overhead_pct": True, "ours_ms_per_person": False, "ratio_at_8": True}
    assert summarize(backends, None, [1, 2, 4, 8])["ratio_at_8"] is None


def test_bench_cli_short_run_reports_every_key():
    res = subprocess.run([sys.executable, "-m", "mp3d.cli", "bench", "--frames", "3", "--counts",
                          "1", "2", "--no-peer", "--json"], capture_output=True, text=True,
                         timeout=240, cwd=REPO)
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for key in ("ours_p50_ms", "peer_p50_ms", "ratio_at_8", "ours_ms_per_person",
                "peer_ms_per_person", "backends", "machine", "targets", "ours_backend"):
        assert key in out, key
    assert out["peer_p50_ms"] is None and out["ratio_at_8"] is None
    assert out["peer_absent"] == "--no-peer"
    assert {"torch-cpu", "onnxruntime-cpu"} <= set(out["backends"])
    for name, b in out["backends"].items():
        want = BACKEND_KEYS | ({"teacher_p50_ms"} if name == "onnxruntime-cpu" else set())
        assert set(b) == want, name
        assert b["input_size"] == 640  # the shipped student's default
        assert 0 < b["p50_ms"] <= b["p95_ms"] and b["fps"] > 0 and b["peak_mem_mb"] > 0, b
        assert set(b["per_count"]) == {"1", "2"} and min(b["per_count"].values()) > 0
        assert b["found_per_count"] == {"1": 1.0, "2": 2.0}, b  # the composites' people, found
    assert out["ours_p50_ms"] == min(b["p50_ms"] for b in out["backends"].values()
                                     if b["device"] == "cpu")
    assert isinstance(out["ours_ms_per_person"], float)
    assert out["machine"]["cores"] >= 1 and out["machine"]["cpu"] and out["machine"]["torch"]
    assert [t["pass"] is None for t in out["targets"]] == [False, False, True]
    assert 0 < out["teacher_p50_ms"] < out["cpu_onnxruntime_p50_ms"]
    assert out["overhead_pct"] == pytest.approx(
        100 * (out["cpu_onnxruntime_p50_ms"] / out["teacher_p50_ms"] - 1), abs=0.1)
    lines = res.stdout.splitlines()
    assert any(ln.startswith(("PASS", "MISS")) for ln in lines)
    assert any("peer: not run (--no-peer)" in ln for ln in lines)


@pytest.mark.skipif(not TEACHER_PYTHON.exists(), reason="no .venv-teacher")
def test_peer_helper_finds_the_composited_people(tmp_path):
    from mp3d.common.paths import default_model
    from mp3d.infer.estimator import Estimator

    clip = clip_frames()
    est = Estimator(default_model("student.pt"), input_size=CUT_INPUT_SIZE)
    background = np.median(np.stack(clip[::4]), axis=0).astype(np.uint8)
    crops = cut_people(clip[:12:3], est, background)
    assert len(crops) >= 4
    images = {"real": [encode_jpeg(clip[0])],
              "2": [encode_jpeg(im) for im in composites(crops, 2, 2)]}
    rows = run_helper(TEACHER_PYTHON, "peer", {"threads": 2, "groups": write_images(
        images, tmp_path)}, tmp_path)
    assert len(rows["real"]) == 1 and rows["real"][0][1] >= 2  # boxes on the real frame
    assert [r[1:] for r in rows["2"]] == [[2, 2], [2, 2]]  # 2 boxes, 2 poses per composite
    assert all(r[0] > 0 for r in rows["2"])
