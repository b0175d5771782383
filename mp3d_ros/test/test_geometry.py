"""Camera geometry: CameraInfo intrinsics, projection round trips, resize/crop/letterbox."""

import numpy as np
import pytest
from mp3d.common.geometry import (
    CameraCalibration,
    FallbackCamera,
    Intrinsics,
    back_project,
    crop_intrinsics,
    letterbox,
    letterbox_intrinsics,
    project,
    resize_intrinsics,
    resolve_intrinsics,
)

INTR = Intrinsics(520.0, 515.0, 322.0, 241.0, 640, 480)


K = (520.0, 0, 322.0, 0, 515.0, 241.0, 0, 0, 1)
P = (500.0, 0, 320.0, 0.0, 0, 501.0, 240.0, 0, 0, 0, 1, 0)


def test_policy_k_for_raw_and_p_for_rectified_images():
    calib = CameraCalibration(K, P, 640, 480)
    r = resolve_intrinsics(calib, 640, 480)
    assert (r.intrinsics, r.source, r.problem) == (INTR, "camera_info", None)
    r = resolve_intrinsics(calib, 640, 480, rectified=True)
    assert (r.intrinsics.fx, r.intrinsics.fy, r.intrinsics.cx, r.intrinsics.cy) == (
        500.0, 501.0, 320.0, 240.0)
    r = resolve_intrinsics(CameraCalibration(K, (0.0,) * 12, 640, 480), 640, 480, rectified=True)
    assert r.intrinsics == INTR and "P is not a calibration" in r.problem


def test_policy_rescales_a_camera_info_of_another_size():
    r = resolve_intrinsics(CameraCalibration(K, P, 640, 480), 320, 240)
    assert r.source == "camera_info_rescaled" and "640x480, the image 320x240" in r.problem
    assert r.intrinsics == resize_intrinsics(INTR, 320, 240)
    assert resolve_intrinsics(CameraCalibration(K, P, 0, 0), 640, 480).intrinsics == INTR


@pytest.mark.parametrize("k", [(0.0,) * 9, (1.0,) * 8, (np.nan,) + K[1:],
                               (-520.0,) + K[1:], K[:4] + (-5.0,) + K[5:], ()])
def test_unusable_camera_info_falls_back_and_says_why(k):
    r = resolve_intrinsics(CameraCalibration(k, (), 640, 480), 640, 480,
                           FallbackCamera(fx=400.0))
    assert r.source == "fallback" and "using the fallback" in r.problem
    assert (r.intrinsics.fx, r.intrinsics.fy, r.intrinsics.cx) == (400.0, 400.0, 319.5)


def test_no_camera_info_uses_the_field_of_view_fallback():
    r = resolve_intrinsics(None, 640, 480)
    assert r.source == "fallback" and r.intrinsics == Intrinsics.from_fov(640, 480, 60.0)
    wide = resolve_intrinsics(None, 640, 480, FallbackCamera(hfov_deg=90.0))
    assert wide.source == "fallback" and wide.intrinsics == Intrinsics.from_fov(640, 480, 90.0)
    assert resolve_intrinsics(CameraCalibration(K, (), 640, 480), 640, 480,
                              FallbackCamera(hfov_deg=90.0)).intrinsics == INTR


def test_calibration_from_message_fields():
    from types import SimpleNamespace

    calib = CameraCalibration.from_msg(SimpleNamespace(k=np.array(K), p=list(P), width=640,
                                                       height=480))
    assert calib == CameraCalibration(K, P, 640, 480)
    assert CameraCalibration.from_msg(SimpleNamespace(K=K, P=P, width=0, height=0)).k == K
    assert CameraCalibration.from_msg(SimpleNamespace(k=None, p="xx", width=1, height=1)).k == ()


def test_project_back_project_round_trip():
    rng = np.random.default_rng(1)
    pts = rng.uniform([-2, -1, 1], [2, 1, 10], size=(5, 17, 3))
    uv = project(pts, INTR)
    assert uv.shape == (5, 17, 2)
    np.testing.assert_allclose(back_project(uv, pts[..., 2], INTR), pts, atol=1e-9)
    np.testing.assert_allclose(project(np.array([0.0, 0.0, 3.0]), INTR), [INTR.cx, INTR.cy])


def test_shapes_are_asserted():
    with pytest.raises(AssertionError):
        project(np.zeros((4, 2)), INTR)
    with pytest.raises(AssertionError):
        back_project(np.zeros((4, 2)), np.zeros(3), INTR)


def test_resize_keeps_rays():
    pts = np.array([[0.3, -0.2, 4.0], [-1.0, 0.5, 2.0]])
    small = resize_intrinsics(INTR, 320, 240)
    uv, uv_small = project(pts, INTR), project(pts, small)
    # pixel centres: u_small = (u + 0.5) * 0.5 - 0.5
    np.testing.assert_allclose(uv_small, (uv + 0.5) * 0.5 - 0.5)


def test_crop_shifts_principal_point():
    pts = np.array([[0.3, -0.2, 4.0]])
    c = crop_intrinsics(INTR, 100, 50, 200, 200)
    np.testing.assert_allclose(project(pts, c), project(pts, INTR) - [100, 50])
    assert (c.width, c.height) == (200, 200)


def test_letterbox_round_trip_and_intrinsics():
    lb = letterbox(640, 480, 320, 320)
    assert lb.scale == 0.5 and lb.pad_x == 0 and lb.pad_y == 40
    uv = np.array([[0.0, 0.0], [639.0, 479.0], [100.5, 200.25]])
    np.testing.assert_allclose(lb.to_src(lb.to_out(uv)), uv)
    pts = np.array([[0.3, -0.2, 4.0], [-1.0, 0.5, 2.0]])
    li = letterbox_intrinsics(INTR, lb)
    np.testing.assert_allclose(project(pts, li), lb.to_out(project(pts, INTR)))


def test_fov_fallback():
    f = Intrinsics.from_fov(640, 480, 90.0)
    assert f.fx == pytest.approx(320.0) and f.cx == 319.5
    with pytest.raises(ValueError):
        Intrinsics(0.0, 1.0, 0.0, 0.0, 10, 10)
