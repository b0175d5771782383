"""The student's training pool: similarity transforms keep exact cameras; real video samples."""

import numpy as np
import pytest
from mp3d.common import skeleton as sk
from mp3d.common.geometry import Intrinsics, project
from mp3d.data import bags
from mp3d.data.pool import (
    PoolConfig,
    Source,
    apply_affine,
    build_pool,
    draw_transform,
    make_sample,
    moved_intrinsics,
    similarity,
)


@pytest.mark.parametrize("mirror", [False, True])
def test_similarity_is_a_rolled_camera(mirror):
    """Projecting 3D points with the moved intrinsics after rolling (and mirroring) the world
    gives exactly the transformed pixels: P's targets stay exact under the augmentation."""
    rng = np.random.default_rng(0)
    k = Intrinsics(700.0, 700.0, 400.0, 300.0, 800, 600)
    pts = rng.uniform([-2, -1, 3], [2, 1, 9], (50, 3))
    uv = project(pts, k)
    angle = 0.3
    m = similarity(1.7, angle, np.array([350.0, 280.0]), np.array([255.5, 191.5]), mirror, 512)
    fx, fy, cx, cy = moved_intrinsics(k, m)
    c, s = np.cos(angle), np.sin(angle)
    world = pts.copy()
    world[:, :2] = pts[:, :2] @ np.array([[c, -s], [s, c]]).T  # roll about the optical axis
    if mirror:
        world[:, 0] = -world[:, 0]
    moved = project(world, Intrinsics(fx, fy, cx, cy, 512, 384))
    np.testing.assert_allclose(apply_affine(m, uv), moved, atol=1e-9)


def test_plain_view_is_the_letterbox():
    from mp3d.common.geometry import letterbox

    m, mirror, blur = draw_transform((576, 768), np.zeros((0, 17, 2)), np.zeros((0, 17)),
                                     PoolConfig(), np.random.default_rng(0), plain=True)
    lb = letterbox(768, 576, 512, 384)
    uv = np.array([[0.0, 0.0], [767.0, 575.0], [100.0, 50.0]])
    np.testing.assert_allclose(apply_affine(m, uv), lb.to_out(uv), atol=0.5)
    assert not mirror and blur == 0


def test_sample_drops_keypoints_that_leave_and_swaps_sides_when_mirrored():
    cfg = PoolConfig(blur_prob=0.0)
    rgb = np.full((400, 300, 3), 120, np.uint8)
    kp = np.stack([np.linspace(20, 280, 17), np.linspace(10, 390, 17)], -1)[None]
    conf = np.full((1, 17), 0.9)
    k = Intrinsics.from_fov(300, 400, 60.0)
    # Zoom on the top of the person: the lower keypoints leave the sample.
    m = similarity(2.0, 0.0, np.array([100.0, 100.0]), np.array([255.5, 191.5]), False, 512)
    smp = make_sample(rgb, k, kp, conf, m, False, 0.0, cfg, "x")
    assert smp.rgb().shape == (384, 512, 3)
    inside = ((apply_affine(m, kp[0]) >= 0) & (apply_affine(m, kp[0]) <= [511, 383])).all(-1)
    assert 0 < inside.sum() < 17
    np.testing.assert_array_equal(smp.conf[0] > 0, inside)
    mm = similarity(1.0, 0.0, np.array([150.0, 200.0]), np.array([255.5, 191.5]), True, 512)
    mir = make_sample(rgb, k, kp, conf, mm, True, 0.0, cfg, "x")
    r, left = sk.COCO_LR_PAIRS[0]
    # The keypoint labelled right in the mirrored sample is the original left one, moved.
    np.testing.assert_allclose(mir.keypoints[0, r], apply_affine(mm, kp[0, left]), atol=1e-4)


@pytest.mark.parametrize("spec, want", [
    ("a.avi", Source("a.avi")),
    ("a.avi@0:0.75", Source("a.avi", 0.0, 0.75)),
    ("b@0.5:1@/cam/image", Source("b", 0.5, 1.0, "/cam/image")),
])
def test_source_spec(spec, want):
    assert Source.parse(spec) == want
    assert Source.parse(want.spec()) == want


@pytest.mark.parametrize("spec", ["", "a@1:0.5", "a@x:y", "a@0:2"])
def test_bad_source_spec(spec):
    with pytest.raises(ValueError):
        Source.parse(spec)


def test_pool_from_real_video(vtest_video, vtest_teacher_cache):
    """Real frames of vtest.avi with the cached teacher: people of many sizes, exact shapes."""
    cache = vtest_teacher_cache
    cfg = PoolConfig(views=6)
    samples = build_pool([Source(str(vtest_video), 0.0, 0.02)], str(cache), "yolo11n-pose",
                         60.0, cfg, np.random.default_rng(0), progress=False)
    assert len(samples) % 6 == 0 and len(samples) >= 6
    sizes = []
    for smp in samples:
        assert smp.rgb().shape == (384, 512, 3)
        assert smp.keypoints.shape[1:] == (17, 2) and smp.conf.shape == smp.keypoints.shape[:2]
        assert np.all(smp.intrinsics[:2] > 0)
        for kp, c in zip(smp.keypoints, smp.conf):
            ok = c > 0
            assert np.all((kp[ok] >= 0) & (kp[ok] <= [511, 383]))
            sizes.append(np.ptp(kp[ok], axis=0).max())
    # Zooms make people far larger than the letterboxed ~55 px walkers.
    assert max(sizes) > 2.5 * np.median(sizes)


# ------------------------------------------------------------------ frames that cannot be decoded

RAW, COMP, INFO = "/cam/image_raw", "/cam/image_raw/compressed", "/cam/camera_info"
BAD_RAW, BAD_COMP = {2}, {1, 3}  # 32FC1; a truncated JPEG and empty data


def _mixed_bag(path):
    """A bag whose Image topic holds 4 rgb8 frames but frame 2 in 32FC1, whose CompressedImage
    topic holds 5 JPEGs but frame 1 cut after 300 bytes and frame 3 empty, and a CameraInfo
    calibrated at 128x96, twice the 64x48 images."""
    import cv2

    store = bags.default_typestore()
    t = store.types

    def header(i):
        return t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](
            sec=100 + i, nanosec=0), frame_id="cam")

    def cdr(msg):
        return bytes(store.serialize_cdr(msg, msg.__msgtype__))

    rng = np.random.default_rng(3)
    with bags.BagWriter(path) as writer:
        info = t["sensor_msgs/msg/CameraInfo"](
            header=header(0), height=96, width=128, distortion_model="plumb_bob", d=np.zeros(5),
            k=np.array([200.0, 0, 63.5, 0, 200.0, 47.5, 0, 0, 1]), r=np.eye(3).ravel(),
            p=np.zeros(12), binning_x=0, binning_y=0, roi=t["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
        writer.write(INFO, info.__msgtype__, cdr(info), 100 * 10**9)
        for i in range(5):
            rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            ns = (100 + i) * 10**9
            if i < 4:
                enc, data = ("32FC1", np.zeros(48 * 64 * 4, np.uint8)) if i in BAD_RAW else (
                    "rgb8", rgb.reshape(-1))
                img = t["sensor_msgs/msg/Image"](header=header(i), height=48, width=64,
                                                 encoding=enc, is_bigendian=0,
                                                 step=len(data) // 48, data=data)
                writer.write(RAW, img.__msgtype__, cdr(img), ns)
            jpeg = cv2.imencode(".jpg", rgb)[1].reshape(-1)
            jpeg = {1: jpeg[:300], 3: jpeg[:0]}.get(i, jpeg)
            comp = t["sensor_msgs/msg/CompressedImage"](header=header(i), format="jpeg",
                                                        data=jpeg)
            writer.write(COMP, comp.__msgtype__, cdr(comp), ns + 1)
    return path


def _image_folder(path):
    """Three PNGs and a file named like one that holds no image."""
    import cv2

    path.mkdir()
    for i in range(3):
        cv2.imwrite(str(path / f"{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    (path / "3.png").write_bytes(b"not a png")
    return path


class StubTeacher:
    """One person per image, keypoints on a diagonal: the cache and pool logic without YOLO."""

    name = "stub-teacher:v1"

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb):
        from mp3d.data.teachers.base import TeacherPeople

        self.calls += 1
        h, w = rgb.shape[:2]
        kp = np.stack([np.linspace(5, w - 6, 17), np.linspace(5, h - 6, 17)], -1)[None]
        return TeacherPeople(kp, np.full((1, 17), 0.9), [[0, 0, w - 1, h - 1]], [0.9], (h, w))


def test_teach_and_pool_skip_bad_frames_count_them_and_strict_refuses(tmp_path, capsys):
    from mp3d.data.images.skips import BadFrameError, FrameSkips
    from mp3d.data.teachers.cache import teach

    bag, folder = _mixed_bag(tmp_path / "mixed"), _image_folder(tmp_path / "folder")
    cache, teacher = tmp_path / "cache", StubTeacher()
    out = [teach(bag, teacher, cache, topic=RAW, progress=False),
           teach(bag, teacher, cache, topic=COMP, progress=False),
           teach(folder, teacher, cache, progress=False)]
    assert [[p is None for p in o] for o in out] == [
        [i in BAD_RAW for i in range(4)], [i in BAD_COMP for i in range(5)], [0, 0, 0, 1]]
    assert teacher.calls == 9  # every good frame, and only those
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("skipped 1 of 4 frames: bad_image 1 (first: frame mixed:"
                               "/cam/image_raw:000002@102000000000: bad_image: ")
    assert "32FC1" in lines[0] and lines[1].startswith("stub-teacher:v1: 3 frames, 3 people")
    assert lines[2].startswith("skipped 2 of 5 frames: bad_image 2 (first: frame mixed:"
                               "/cam/image_raw/compressed:000001@")
    assert lines[4].startswith("skipped 1 of 4 frames: unreadable 1 (first: frame 3.png: ")

    sources = [Source(str(bag), 0.0, 1.0, RAW), Source(str(bag), 0.0, 1.0, COMP),
               Source(str(folder))]
    cfg = PoolConfig(width=64, height=48, views=1)
    skips = FrameSkips()
    samples = build_pool(sources, str(cache), teacher.name, 60.0, cfg, np.random.default_rng(0),
                         progress=False, skips=skips)
    assert len(samples) == 9 and dict(skips.counts) == {"bad_image": 3, "unreadable": 1}
    assert capsys.readouterr().out.startswith(
        "skipped 4 of 13 frames: bad_image 3, unreadable 1 (first: frame mixed:/cam/image_raw:")
    # the plain view at the image's own size keeps the camera: CameraInfo K rescaled to 64x48
    np.testing.assert_allclose(samples[0].intrinsics, [100.0, 100.0, 31.5, 23.5])
    fov = 32.0 / np.tan(np.radians(30.0))  # the image folder has no CameraInfo: 60 deg fallback
    np.testing.assert_allclose(samples[-1].intrinsics, [fov, fov, 31.5, 23.5])
    assert all(len(s.keypoints) == 1 for s in samples)

    with pytest.raises(BadFrameError, match=r"000002@\d+: bad_image: .*32FC1.*--strict"):
        build_pool(sources, str(cache), teacher.name, 60.0, cfg, np.random.default_rng(0),
                   progress=False, skips=FrameSkips(strict=True))
    fresh = StubTeacher()
    with pytest.raises(BadFrameError, match="compressed:000001@.*bad_image"):
        teach(bag, fresh, tmp_path / "cache2", topic=COMP, strict=True, progress=False)
    assert fresh.calls == 1  # the first frame, then the cut JPEG stopped the run


def test_train_student_strict_exits_2_with_one_error_line(tmp_path):
    """Through the `mp3d` command: the pool is built before any training step."""
    import subprocess
    import sys

    from mp3d.data.teachers.cache import teach

    bag = _mixed_bag(tmp_path / "mixed")
    teach(bag, StubTeacher(), tmp_path / "cache", topic=RAW, progress=False)
    res = subprocess.run([sys.executable, "-m", "mp3d.cli", "train", "student", "--data",
                          f"{bag}@0:1@{RAW}", "--teacher-cache", str(tmp_path / "cache"),
                          "--teacher", "stub-teacher", "--input-size", "64", "--strict",
                          "--out", str(tmp_path / "run"), "--steps", "1"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    err = res.stderr.strip().splitlines()
    assert err[-1].startswith("error: frame mixed:/cam/image_raw:000002@"), res.stderr
    assert "32FC1" in err[-1] and "--strict" in err[-1]
    assert not (tmp_path / "run" / "student.pt").exists()
