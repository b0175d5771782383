"""`sample_scenes`: batches of synthetic multi-person scenes with exact labels and the simulated
teacher's output.
"""

from __future__ import annotations

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.scenes.batch import SceneBatch
from mp3d.data.scenes.bodies import COCO_FROM_MUPOTS, NUM_FACE, K, coco_joints_3d
from mp3d.data.scenes.config import SceneConfig
from mp3d.data.scenes.corruption import occlusion_mask, simulate_teacher
from mp3d.data.scenes.placement import _inside, _place_people, _project, _sample_cameras


def sample_scenes(poses: np.ndarray, batch: int, cfg: SceneConfig,
                  rng: np.random.Generator) -> SceneBatch:
    """Sample `batch` scenes from a pose bank (N, 17, 3) of canonical poses (metres, y down, facing
    -z; made root-relative here). See SceneBatch for what comes back."""
    poses = np.asarray(poses, dtype=np.float64)
    assert poses.ndim == 3 and poses.shape[1:] == (K, 3) and len(poses) > 0, poses.shape
    poses = poses - poses[:, sk.ROOT:sk.ROOT + 1]
    B, W, H = batch, cfg.width, cfg.height

    cams = _sample_cameras(B, cfg, rng)
    n_want = rng.integers(cfg.people[0], cfg.people[1] + 1, B)
    cand = _place_people(poses, cams, n_want, cfg, rng)
    for _ in range(cfg.max_resample_rounds):
        redo = np.nonzero(~cand["accepted"].any(1))[0]
        if len(redo) == 0:
            break
        c2 = _sample_cameras(len(redo), cfg, rng)
        p2 = _place_people(poses, c2, n_want[redo], cfg, rng)
        for key in cams:
            cams[key][redo] = c2[key]
        for key in cand:
            cand[key][redo] = p2[key]
    acc = cand["accepted"]
    if not acc.any(1).all():
        raise RuntimeError("could not place anybody in some scenes: check SceneConfig ranges")

    # Gather the accepted candidates into P padded slots (candidate order is random already).
    C = acc.shape[1]
    order = np.argsort(np.where(acc, 0, C) + np.arange(C), axis=1)[:, :acc.sum(1).max()]
    valid = np.take_along_axis(acc, order, 1)
    P = valid.shape[1]

    def take(x: np.ndarray) -> np.ndarray:
        return np.take_along_axis(x, order.reshape(order.shape + (1,) * (x.ndim - 2)), 1)

    v3 = valid[..., None, None]
    joints_cam = np.where(v3, take(cand["joints_cam"]), 0.0)
    pose_canonical = np.where(v3, take(cand["canon"]), 0.0)
    rot = np.where(v3, take(cand["rot"]), np.eye(3))
    intr = cams["intrinsics"]
    kp2d = np.where(v3, _project(np.where(v3, joints_cam, 1.0), intr), 0.0)
    in_image = _inside(kp2d, W, H) & valid[..., None]
    size2d = np.where(valid, np.ptp(kp2d, axis=2).max(-1), 0.0)
    scale = np.where(valid, take(cand["scale"]), 0.0)
    coco3d = coco_joints_3d(np.where(v3, joints_cam, sk.REST_POSE + [0, 0, 3.0]), rot,
                            np.where(valid, scale, 1.0), cfg.face)
    coco2d = np.where(v3, _project(coco3d, intr), 0.0)
    # Occlusion of the 17 joints and the 5 face points in one go.
    pts = np.concatenate([kp2d, coco2d[:, :, :NUM_FACE]], axis=2)
    occ = occlusion_mask(pts, kp2d, joints_cam[:, :, sk.ROOT, 2], size2d, valid, cfg)
    occluded = occ[:, :, :K]
    coco_occluded = np.concatenate([occ[:, :, K:], occluded[:, :, list(COCO_FROM_MUPOTS)]], 2)

    out = SceneBatch(
        intrinsics=intr, cam_height=cams["height"], cam_pitch=cams["pitch"],
        cam_roll=cams["roll"], elevated=cams["elevated"], ground_normal=-cams["R"][:, :, 1],
        valid=valid, pose_index=np.where(valid, take(cand["pose_index"]), -1), scale=scale,
        mirrored=valid & take(cand["mirrored"]), joints_cam=joints_cam,
        pose_canonical=pose_canonical, rot=rot, kp2d=kp2d, root2d=kp2d[:, :, sk.ROOT],
        in_image=in_image, occluded=occluded, size2d=size2d, coco2d=coco2d,
        coco_in_image=_inside(coco2d, W, H) & valid[..., None], coco_occluded=coco_occluded,
        teacher_kp=np.full((B, P, K, 2), np.nan), teacher_conf=np.zeros((B, P, K)),
        teacher_missed=np.zeros((B, P), dtype=bool), teacher_false=np.zeros((B, P), dtype=bool),
        width=W, height=H)
    out.teacher_kp, out.teacher_conf, out.teacher_missed, out.teacher_false = simulate_teacher(
        out, poses, cfg, rng)
    return out
