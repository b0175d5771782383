"""Synthetic scenes and heatmaps: camera geometry, placement, labels, teacher noise, encoding."""

from dataclasses import fields, replace

import numpy as np
import pytest
import torch
from mp3d.common import skeleton as sk
from mp3d.common.geometry import Intrinsics, project
from mp3d.data.scenes.bodies import (
    COCO_FROM_MUPOTS,
    NUM_FACE,
    canonical_from_y_up,
    coco_joints_3d,
    toy_pose_bank,
)
from mp3d.data.scenes.config import SceneConfig, TeacherNoise
from mp3d.data.scenes.corruption import occlusion_mask, teacher_error_stats
from mp3d.data.scenes.placement import camera_rotation
from mp3d.data.scenes.sample import sample_scenes
from mp3d.model.heatmaps import (
    HeatmapConfig,
    grid_size,
    grid_to_image,
    image_to_grid,
    ray_channels,
    render_keypoint_heatmaps,
)

CFG = SceneConfig()
ANKLES = [sk.INDEX["r_ankle"], sk.INDEX["l_ankle"]]


@pytest.fixture(scope="module")
def bank() -> np.ndarray:
    return toy_pose_bank(300, np.random.default_rng(0))


@pytest.fixture(scope="module")
def scenes(bank):
    return sample_scenes(bank, 256, CFG, np.random.default_rng(1))


# ------------------------------------------------------------------------------------------------
# Geometry and placement.


def test_projection_matches_geometry(scenes):
    for b in range(scenes.batch_size):
        fx, fy, cx, cy = scenes.intrinsics[b]
        intr = Intrinsics(fx, fy, cx, cy, CFG.width, CFG.height)
        v = scenes.valid[b]
        np.testing.assert_allclose(project(scenes.joints_cam[b, v], intr), scenes.kp2d[b, v],
                                   atol=1e-9)
        coco = coco_joints_3d(scenes.joints_cam[b, v], scenes.rot[b, v], scenes.scale[b, v])
        np.testing.assert_allclose(project(coco, intr), scenes.coco2d[b, v], atol=1e-9)
        np.testing.assert_allclose(scenes.root2d[b, v], scenes.kp2d[b, v, sk.ROOT])
    assert np.array_equal(scenes.coco2d[..., NUM_FACE:, :], scenes.kp2d[:, :, COCO_FROM_MUPOTS])


def test_intrinsics_square_pixels_fov_and_centre(scenes):
    fx, fy, cx, cy = scenes.intrinsics.T
    assert np.array_equal(fx, fy)
    hfov = np.degrees(2 * np.arctan(0.5 * CFG.width / fx))
    assert hfov.min() >= CFG.hfov_deg[0] - 1e-9 and hfov.max() <= CFG.hfov_deg[1] + 1e-9
    assert np.abs(cx - (CFG.width - 1) / 2).max() <= CFG.principal_jitter * CFG.width + 1e-9
    assert np.abs(cy - (CFG.height - 1) / 2).max() <= CFG.principal_jitter * CFG.height + 1e-9


def test_lowest_ankles_lie_on_one_ground_plane_at_the_expected_angle(scenes):
    n, h = scenes.ground_normal, scenes.cam_height
    # The stored plane: the lowest ankle of everyone touches it, nobody's ankle is below it.
    height = np.einsum("bpjc,bc->bpj", scenes.joints_cam, n) + h[:, None, None]
    low = height[:, :, ANKLES].min(-1)[scenes.valid]
    np.testing.assert_allclose(low, 0.0, atol=1e-9)
    # Its normal makes 90 deg + pitch with the optical axis (roll turns about that axis).
    np.testing.assert_allclose(np.arccos(n[:, 2]), np.pi / 2 + scenes.cam_pitch, atol=1e-9)
    # Fit a plane through the lowest ankles of scenes with >= 3 people (not collinear): the same
    # plane, at the angle the pitch says.
    fitted = 0
    for b in np.nonzero(scenes.valid.sum(1) >= 3)[0]:
        j = scenes.joints_cam[b, scenes.valid[b]][:, ANKLES]        # (p, 2, 3)
        lowest = j[np.arange(len(j)), np.argmin(j @ n[b], axis=1)]
        c = lowest - lowest.mean(0)
        sv, vt = np.linalg.svd(c)[1:]
        if sv[1] < 0.3:   # nearly collinear feet: the plane is not determined
            continue
        normal = vt[2] * np.sign(vt[2] @ n[b])
        np.testing.assert_allclose(normal, n[b], atol=1e-6)
        np.testing.assert_allclose(np.degrees(np.arccos(normal[2])),
                                   90 + np.degrees(scenes.cam_pitch[b]), atol=1e-4)
        # The camera (origin) sits cam_height above that plane.
        np.testing.assert_allclose(-lowest.mean(0) @ normal, h[b], atol=1e-6)
        fitted += 1
    assert fitted > 50


def test_camera_kinds_heights_and_pitches(scenes):
    e = scenes.elevated
    assert 0.3 < e.mean() < 0.7
    pitch = np.degrees(scenes.cam_pitch)
    for mask, hr, pr in ((e, CFG.elevated_height_m, CFG.elevated_pitch_deg),
                         (~e, CFG.robot_height_m, CFG.robot_pitch_deg)):
        assert scenes.cam_height[mask].min() >= hr[0] and scenes.cam_height[mask].max() <= hr[1]
        assert pitch[mask].min() >= pr[0] and pitch[mask].max() <= pr[1]
    assert np.abs(np.degrees(scenes.cam_roll)).max() <= CFG.roll_deg
    # Pitch down positive: a camera pitched down sees the ground below its image centre's ray.
    r = camera_rotation(np.radians(30.0), 0.0)
    assert (r @ np.array([0.0, 1.0, 0.0]))[2] > 0   # world down has a forward component


def test_people_in_front_and_mostly_in_view(scenes):
    v = scenes.valid
    assert (scenes.joints_cam[v][:, sk.ROOT, 2] > 0.5).all()
    assert (scenes.joints_cam[v][..., 2] > CFG.min_joint_depth_m).all()
    r = scenes.root2d[v]
    inside = ((r >= -0.5) & (r < [CFG.width - 0.5, CFG.height - 0.5])).all(-1)
    assert inside.mean() > 0.9
    assert (scenes.in_image[v].sum(-1) >= CFG.min_joints_in_image).all()
    assert 0.5 < scenes.in_image[v].all(-1).mean() < 0.95   # some people truncated, most not


def test_people_are_spaced_and_within_distance(scenes):
    n, h = scenes.ground_normal, scenes.cam_height
    for b in range(scenes.batch_size):
        root = scenes.joints_cam[b, scenes.valid[b], sk.ROOT]
        foot = root - (root @ n[b] + h[b])[:, None] * n[b]   # root dropped onto the ground
        below = -h[b] * n[b]                                   # ground point below the camera
        dist = np.linalg.norm(foot - below, axis=-1)
        assert (dist >= CFG.distance_m[0] - 1e-9).all() and (dist <= CFG.distance_m[1] + 1e-9).all()
        d = np.linalg.norm(foot[:, None] - foot[None], axis=-1) + np.eye(len(foot)) * 1e9
        assert d.min() >= CFG.min_spacing_m - 1e-9


def test_rot_is_proper_and_relates_canonical_and_camera_poses(scenes):
    R = scenes.rot
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    np.testing.assert_allclose(R @ R.transpose(0, 1, 3, 2), np.broadcast_to(np.eye(3), R.shape),
                               atol=1e-12)
    rel = scenes.joints_cam - scenes.joints_cam[:, :, sk.ROOT:sk.ROOT + 1]
    np.testing.assert_allclose(rel, scenes.pose_canonical @ R.transpose(0, 1, 3, 2), atol=1e-12)
    # Canonical up (-y) stays the ground's up: people stand upright on the ground.
    up = np.einsum("bpij,j->bpi", R, [0.0, -1.0, 0.0])
    normal = np.broadcast_to(scenes.ground_normal[:, None], up.shape)
    np.testing.assert_allclose(up[scenes.valid], normal[scenes.valid], atol=1e-12)


def test_mirror_and_scale_applied(scenes, bank):
    v = scenes.valid
    src = bank[scenes.pose_index[v]]
    src = np.where(scenes.mirrored[v][:, None, None], sk.mirror(src), src)
    np.testing.assert_allclose(scenes.pose_canonical[v], src * scenes.scale[v][:, None, None],
                               atol=1e-12)
    ratio = sk.bone_lengths(scenes.pose_canonical[v]) / sk.bone_lengths(bank[scenes.pose_index[v]])
    np.testing.assert_allclose(ratio, np.broadcast_to(scenes.scale[v][:, None], ratio.shape),
                               rtol=1e-9)   # the toy bank is left/right symmetric in lengths
    assert 0.35 < scenes.mirrored[v].mean() < 0.65
    s = scenes.scale[v]
    assert s.min() >= CFG.scale[0] and s.max() <= CFG.scale[1] and s.std() > 0.04


def test_people_counts_span_the_range(scenes):
    counts = scenes.valid.sum(1)
    assert set(counts.tolist()) == set(range(CFG.people[0], CFG.people[1] + 1))
    assert scenes.num_slots == counts.max()
    # Padding: invalid slots are zeros / identity.
    pad = ~scenes.valid
    assert (scenes.joints_cam[pad] == 0).all() and (scenes.pose_index[pad] == -1).all()
    assert (scenes.rot[pad] == np.eye(3)).all()


def test_same_seed_same_batch(bank):
    a = sample_scenes(bank, 16, CFG, np.random.default_rng(7))
    b = sample_scenes(bank, 16, CFG, np.random.default_rng(7))
    c = sample_scenes(bank, 16, CFG, np.random.default_rng(8))
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert np.array_equal(x, y, equal_nan=isinstance(x, np.ndarray) and x.dtype.kind == "f"), \
            f.name
    assert not np.array_equal(a.intrinsics, c.intrinsics)


# ------------------------------------------------------------------------------------------------
# COCO joints, frames, occlusion.


def test_coco_face_points_of_a_person_facing_the_camera():
    pose = sk.REST_POSE + [0.0, 0.0, 3.0]
    coco = coco_joints_3d(pose, np.eye(3))
    names = sk.COCO_NAMES
    nose, l_eye, r_eye = coco[names.index("nose")], coco[names.index("l_eye")], coco[
        names.index("r_eye")]
    head = pose[sk.INDEX["head"]]
    assert nose[2] < head[2] - 0.08                     # nose toward the camera
    assert l_eye[0] > head[0] > r_eye[0]                # person's left is image right (+x)
    assert l_eye[1] < head[1] and l_eye[2] < head[2]    # eyes above and in front of the head centre
    np.testing.assert_allclose(np.linalg.norm(coco[3] - coco[4]), 0.15, atol=1e-9)  # ears
    # Means of COCO ears are the head, of shoulders the thorax (skeleton.coco_to_mupots agrees).
    back, _ = sk.coco_to_mupots(coco, np.ones(17))
    np.testing.assert_allclose(back[sk.INDEX["head"]], head, atol=1e-12)
    # Rotation equivariance, and the face scales with the person.
    R = camera_rotation(0.4, 0.1) @ np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])
    np.testing.assert_allclose(coco_joints_3d(pose @ R.T, R), coco @ R.T, atol=1e-12)
    big = coco_joints_3d(pose, np.eye(3), 1.1)
    np.testing.assert_allclose(np.linalg.norm(big[3] - big[4]), 0.165, atol=1e-9)


def test_canonical_from_y_up():
    y_up = sk.REST_POSE * [1.0, -1.0, -1.0]   # head up (+y), facing +z, left at +x
    assert y_up[sk.INDEX["head_top"], 1] > 0
    np.testing.assert_allclose(canonical_from_y_up(y_up), sk.REST_POSE)


def test_occlusion_by_a_closer_person():
    kp = (sk.REST_POSE[:, :2] * 100 + [100.0, 100.0])[None, None].repeat(2, 1)   # (1, 2, 17, 2)
    size = np.full((1, 2), 165.0)
    depth = np.array([[5.0, 3.0]])   # person 1 is in front of person 0
    occ = occlusion_mask(kp, kp, depth, size, np.ones((1, 2), bool), CFG)
    assert occ[0, 0].all() and not occ[0, 1].any()
    # Moved well aside: nobody is occluded; invalid occluders hide nothing.
    far = kp.copy()
    far[0, 1] += 300
    assert not occlusion_mask(far, far, depth, size, np.ones((1, 2), bool), CFG).any()
    assert not occlusion_mask(kp, kp, depth, size, np.array([[True, False]]), CFG).any()


def test_occlusion_in_scenes(scenes):
    v = scenes.valid
    one = v.sum(1) == 1
    assert not scenes.occluded[one].any()
    assert 0.02 < scenes.occluded[v].mean() < 0.3
    # Occluded people are behind someone: the nearest person in each scene is never occluded.
    depth = np.where(v, scenes.joints_cam[:, :, sk.ROOT, 2], np.inf)
    nearest = np.argmin(depth, 1)
    assert not scenes.occluded[np.arange(len(v)), nearest].any()


# ------------------------------------------------------------------------------------------------
# The teacher.


def test_teacher_outputs_are_consistent(scenes):
    B, P = scenes.valid.shape
    kp, conf = scenes.teacher_kp, scenes.teacher_conf
    assert kp.shape == (B, P + CFG.noise.max_false_people, 17, 2)
    assert (conf >= 0).all() and (conf <= 1).all()
    shown = conf > 0
    assert np.isfinite(kp[shown]).all() and np.isnan(kp[~shown]).all()
    k = kp[shown]
    assert ((k >= -0.5) & (k < [CFG.width - 0.5, CFG.height - 0.5])).all()   # inside the image
    real = conf[:, :P]
    assert (real[~scenes.valid] == 0).all() and (real[scenes.teacher_missed] == 0).all()
    assert not scenes.teacher_false[:, :P].any() and scenes.teacher_false[:, P:].any()
    assert 0.03 < scenes.teacher_missed[scenes.valid].mean() < 0.3
    # Found, visible, unoccluded joints have confident (>= 0.5) scores whatever their error.
    vis = (real > 0) & scenes.coco_in_image & ~scenes.coco_occluded
    assert real[vis].min() >= CFG.noise.conf_visible[0]
    # Joints outside the image: mostly missed, sometimes guessed at low confidence.
    out = scenes.valid[..., None] & ~scenes.teacher_missed[..., None] & ~scenes.coco_in_image
    guessed = real[out] > 0
    assert 0.05 < guessed.mean() < 0.5 and real[out][guessed].max() <= CFG.noise.conf_truncated[1]


def test_noise_free_teacher_reports_the_true_keypoints(bank):
    quiet = TeacherNoise(jitter_sigma=0.0, jitter_floor_px=0.0, outlier_prob=0.0, swap_prob=0.0,
                         miss_joint_visible=0.0, miss_person_base=0.0, false_person_prob=0.0)
    cfg = replace(CFG, noise=quiet)
    s = sample_scenes(bank, 32, cfg, np.random.default_rng(3))
    P = s.num_slots
    found = s.teacher_conf[:, :P] > 0
    inside = found & s.coco_in_image   # guesses for joints outside the image sit on its border
    np.testing.assert_allclose(s.teacher_kp[:, :P][inside], s.coco2d[inside], atol=1e-9)
    border = s.teacher_kp[:, :P][found & ~s.coco_in_image]
    edge = np.isclose(border, -0.5) | np.isclose(border, [CFG.width - 0.5, CFG.height - 0.5])
    assert len(border) and edge.any(-1).all()
    vis = s.coco_in_image & ~s.coco_occluded & ~s.teacher_missed[..., None]
    assert found[vis].all()
    assert not s.teacher_false.any()


def test_teacher_error_matches_the_real_teacher(bank):
    """DATA.md: median 4.5 %, mean 9 %, p90 20 %, 29 % over 10 % of 2D height."""
    s = sample_scenes(bank, 800, CFG, np.random.default_rng(11))
    st = teacher_error_stats(s, cfg=CFG)
    assert st["n"] > 5000
    assert 0.035 <= st["median"] <= 0.055, st
    assert 0.07 <= st["mean"] <= 0.11, st
    assert 0.15 <= st["p90"] <= 0.25, st
    assert 0.20 <= st["frac_over_10"] <= 0.38, st


# ------------------------------------------------------------------------------------------------
# Heatmaps.

HCFG = HeatmapConfig()


def test_grid_convention_and_round_trip():
    assert grid_size(384, 288, 4) == (96, 72) and grid_size(385, 289, 4) == (97, 73)
    np.testing.assert_allclose(grid_to_image(np.array([[0.0, 0.0], [3.0, 2.0]]), 4),
                               [[1.5, 1.5], [13.5, 9.5]])
    uv = np.random.default_rng(0).uniform(-10, 400, (50, 2))
    np.testing.assert_allclose(grid_to_image(image_to_grid(uv, 4), 4), uv, atol=1e-12)
    t = torch.from_numpy(uv)
    torch.testing.assert_close(image_to_grid(t, 4), torch.from_numpy(image_to_grid(uv, 4)))
    # The image's outer edges are the grid's outer cell edges.
    np.testing.assert_allclose(image_to_grid(np.array([-0.5, 383.5]), 4), [-0.5, 95.5])


def test_single_keypoint_peak_and_subpixel_centre():
    uv = np.array([101.3, 57.8])
    kp = np.full((1, 1, 17, 2), np.nan)
    conf = np.zeros((1, 1, 17))
    kp[0, 0, 3], conf[0, 0, 3] = uv, 0.8
    h = render_keypoint_heatmaps(kp, conf, 384, 288, HCFG)
    assert h.shape == (1, 17, 72, 96) and h.dtype == torch.float32
    others = torch.ones(17, dtype=torch.bool)
    others[3] = False
    assert (h[0, others] == 0).all()
    m = h[0, 3]
    gx, gy = image_to_grid(uv, HCFG.stride)
    i, j = divmod(int(torch.argmax(m)), m.shape[1])
    assert (i, j) == (round(gy), round(gx))
    assert 0.7 < float(m.max()) <= 0.8
    ys, xs = torch.meshgrid(torch.arange(72.0), torch.arange(96.0), indexing="ij")
    com = (float((m * xs).sum() / m.sum()), float((m * ys).sum() / m.sum()))
    assert abs(com[0] - gx) < 0.15 and abs(com[1] - gy) < 0.15


def test_nan_zero_and_low_conf_keypoints_draw_nothing():
    kp = torch.rand(2, 3, 17, 2) * 200
    conf = torch.zeros(2, 3, 17)
    assert (render_keypoint_heatmaps(kp, conf, 384, 288, HCFG) == 0).all()
    conf[:] = HCFG.min_conf * 0.9
    assert (render_keypoint_heatmaps(kp, conf, 384, 288, HCFG) == 0).all()
    conf[:] = 0.9
    kp[:] = float("nan")
    assert (render_keypoint_heatmaps(kp, conf, 384, 288, HCFG) == 0).all()
    kp[0, 0, 0] = torch.tensor([50.0, float("nan")])
    conf[0, 1, 1] = float("nan")
    assert (render_keypoint_heatmaps(kp, conf, 384, 288, HCFG) == 0).all()


def test_overlapping_people_take_the_max():
    kp = torch.tensor([[[[100.0, 100.0]], [[106.0, 100.0]]]])   # (1, 2, 1, 2)
    conf = torch.tensor([[[0.9], [0.6]]])
    both = render_keypoint_heatmaps(kp, conf, 384, 288, HCFG)
    a = render_keypoint_heatmaps(kp[:, :1], conf[:, :1], 384, 288, HCFG)
    b = render_keypoint_heatmaps(kp[:, 1:], conf[:, 1:], 384, 288, HCFG)
    torch.testing.assert_close(both, torch.maximum(a, b))
    g = image_to_grid(np.array([100.0, 100.0]), HCFG.stride)   # (24.625, 24.625): cell 25, 25
    d2 = float(((g - 25) ** 2).sum())
    assert abs(float(both.max()) - 0.9 * np.exp(-d2 / (2 * HCFG.sigma**2))) < 1e-6


def test_ray_channels():
    intr = np.array([[300.0, 310.0, 190.0, 140.0], [200.0, 200.0, 191.5, 143.5]])
    r = ray_channels(intr, 384, 288, 4)
    assert r.shape == (2, 2, 72, 96) and r.dtype == torch.float32
    u, v = grid_to_image(np.array([7.0, 5.0]), 4)           # cell (row 5, column 7)
    np.testing.assert_allclose(r[0, :, 5, 7].numpy(), [(u - 190) / 300, (v - 140) / 310],
                               rtol=1e-6)
    # The principal point of the second camera is the image centre: rays are symmetric.
    torch.testing.assert_close(r[1, 0, :, :48], -r[1, 0, :, 48:].flip(-1))


def test_scene_teacher_renders(scenes):
    h = render_keypoint_heatmaps(scenes.teacher_kp[:8], scenes.teacher_conf[:8], CFG.width,
                                 CFG.height, HCFG)
    gw, gh = grid_size(CFG.width, CFG.height, HCFG.stride)
    assert h.shape == (8, 17, gh, gw)
    assert float(h.min()) >= 0 and float(h.max()) <= 1 and float(h.max()) > 0.5
