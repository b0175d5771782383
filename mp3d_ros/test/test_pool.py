"""The student's training pool: similarity transforms keep exact cameras; real video samples."""

import numpy as np
import pytest
from mp3d import skeleton as sk
from mp3d.geometry import Intrinsics, project
from mp3d.pool import (
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
    from mp3d.geometry import letterbox

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
