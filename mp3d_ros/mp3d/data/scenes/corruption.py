"""What a real 2D teacher would say of a scene: occlusion by closer people, and teacher-like
corruption of the 2D (jitter, heavy-tailed errors, missed joints and people, left/right swaps,
false people).
"""

from __future__ import annotations

import numpy as np

from mp3d.common import skeleton as sk
from mp3d.data.scenes.batch import SceneBatch
from mp3d.data.scenes.bodies import COCO_LIMBS, K, coco_joints_3d
from mp3d.data.scenes.config import SceneConfig
from mp3d.data.scenes.placement import _inside, _rot_y

_OCC_TORSO_SEGS = ((sk.INDEX["r_shoulder"], sk.INDEX["r_hip"]),
                   (sk.INDEX["l_shoulder"], sk.INDEX["l_hip"]),
                   (sk.INDEX["r_shoulder"], sk.INDEX["l_hip"]),
                   (sk.INDEX["l_shoulder"], sk.INDEX["r_hip"]))
_OCC_SEGS = np.array(list(sk.BONES) + list(_OCC_TORSO_SEGS))
_CENTRE = {sk.INDEX[n] for n in ("head_top", "thorax", "pelvis", "spine", "head")}
_OCC_IS_TORSO = np.array([a in _CENTRE and b in _CENTRE for a, b in sk.BONES]
                         + [True] * len(_OCC_TORSO_SEGS))


def occlusion_mask(points: np.ndarray, kp2d: np.ndarray, depth: np.ndarray, size2d: np.ndarray,
                   valid: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """Which 2D points are hidden by a closer person: points (B, P, M, 2) of person p, skeletons
    kp2d (B, P, 17, 2), root depths (B, P), 2D sizes (B, P), valid (B, P) -> (B, P, M) bool.

    Point i of person p is occluded when some valid person q whose root is at least
    cfg.occlusion_depth_margin_m closer has a body segment within w_q of it: q's bones (limbs:
    occlusion_limb_width * size2d[q]; spine, neck and head: occlusion_torso_width * size2d[q]) and
    its torso sides and diagonals (shoulder-hip, torso width). Self-occlusion is not modelled.
    """
    B, P, M, _ = points.shape
    assert kp2d.shape == (B, P, K, 2) and depth.shape == size2d.shape == valid.shape == (B, P)
    out = np.zeros((B, P, M), dtype=bool)
    if P < 2:
        return out
    wfrac = np.where(_OCC_IS_TORSO, cfg.occlusion_torso_width, cfg.occlusion_limb_width)
    wmax = size2d * max(cfg.occlusion_torso_width, cfg.occlusion_limb_width)
    # Bounding boxes: points of p; skeleton of q grown by its widest segment.
    pmin, pmax = np.nanmin(points, axis=2), np.nanmax(points, axis=2)
    qmin = kp2d.min(axis=2) - wmax[..., None]
    qmax = kp2d.max(axis=2) + wmax[..., None]
    overlap = ((pmin[:, :, None] <= qmax[:, None]) & (qmin[:, None] <= pmax[:, :, None])).all(-1)
    closer = depth[:, None, :] < depth[:, :, None] - cfg.occlusion_depth_margin_m
    pairs = valid[:, :, None] & valid[:, None, :] & closer & overlap  # [b, p, q]: q hides p?
    b, p, q = np.nonzero(pairs)
    if len(b) == 0:
        return out
    a = kp2d[b, q][:, _OCC_SEGS[:, 0]]                      # (n, S, 2)
    ab = kp2d[b, q][:, _OCC_SEGS[:, 1]] - a
    l2 = np.maximum((ab * ab).sum(-1), 1e-9)
    ap = points[b, p][:, :, None, :] - a[:, None]           # (n, M, S, 2)
    t = np.clip((ap * ab[:, None]).sum(-1) / l2[:, None], 0.0, 1.0)
    d = ap - t[..., None] * ab[:, None]
    w = size2d[b, q][:, None] * wfrac[None]                 # (n, S)
    hit = ((d * d).sum(-1) < (w * w)[:, None]).any(-1)      # (n, M)
    np.logical_or.at(out, (b, p), hit)
    return out




def simulate_teacher(batch: SceneBatch, poses: np.ndarray, cfg: SceneConfig,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                        np.ndarray]:
    """What a real 2D teacher reports for a batch's geometry (see TeacherNoise): returns
    teacher_kp (B, Q, 17, 2) COCO pixels, NaN where conf is 0; teacher_conf (B, Q, 17);
    teacher_missed (B, P) bool; teacher_false (B, Q) bool; Q = P + noise.max_false_people.
    Re-running it on the same geometry gives fresh corruption (used to fit TeacherNoise)."""
    nz = cfg.noise
    W, H = cfg.width, cfg.height
    B, P = batch.valid.shape
    valid, s = batch.valid, batch.size2d
    inimg, occ = batch.coco_in_image, batch.coco_occluded

    # Which people the teacher finds.
    n_in = (inimg & valid[..., None]).sum(-1)
    frac_occ = (occ & inimg).sum(-1) / np.maximum(n_in, 1)
    p_miss = (nz.miss_person_base
              + nz.miss_person_small_prob * np.clip(1 - s / nz.miss_person_small_px, 0, 1)
              + nz.miss_person_occluded_prob * frac_occ)
    missed = valid & ((rng.random((B, P)) < p_miss) | (n_in < nz.min_joints_found))

    # Keypoint errors: inlier jitter with a per-person difficulty, plus outlier jumps.
    difficulty = np.exp(nz.person_sigma * rng.standard_normal((B, P)))
    sd = np.maximum(nz.jitter_sigma * s, nz.jitter_floor_px) * difficulty
    sd = sd[..., None] * np.where(occ, nz.occluded_jitter_mult, 1.0)
    err = rng.standard_normal((B, P, K, 2)) * sd[..., None]
    jump = rng.random((B, P, K)) < nz.outlier_prob
    r = np.minimum(nz.outlier_min * rng.random((B, P, K)) ** (-1.0 / nz.outlier_alpha),
                   nz.outlier_max) * s[..., None]
    ang = rng.uniform(0, 2 * np.pi, (B, P, K))
    err += (jump * r)[..., None] * np.stack([np.cos(ang), np.sin(ang)], -1)
    kp = batch.coco2d + err
    # Rare left/right swaps.
    ri, li = (np.array(x) for x in zip(*sk.COCO_LR_PAIRS))
    sw = (rng.random((B, P, len(ri))) < nz.swap_prob)[..., None]
    kr, kl = kp[:, :, ri], kp[:, :, li]
    kp[:, :, ri], kp[:, :, li] = np.where(sw, kl, kr), np.where(sw, kr, kl)

    # Missed joints and confidences (which do not flag errors).
    u = rng.random((B, P, K))
    found = np.where(inimg, u >= np.where(occ, nz.miss_joint_occluded, nz.miss_joint_visible),
                     u < nz.guess_truncated_prob)
    conf = np.where(occ, rng.uniform(*nz.conf_occluded, (B, P, K)),
                    rng.uniform(*nz.conf_visible, (B, P, K)))
    conf = np.where(inimg, conf, rng.uniform(*nz.conf_truncated, (B, P, K)))
    # Guesses for joints outside the image land on its border.
    lim = np.array([W - 0.5 - 1e-6, H - 0.5 - 1e-6])
    kp = np.where(inimg[..., None], kp, np.clip(kp, -0.5, lim))
    conf = np.where(found & valid[..., None] & ~missed[..., None], conf, 0.0)

    # False people: a fragment of a bank pose, orthographically drawn at a random place and size.
    F = nz.max_false_people
    has = rng.random((B, F)) < nz.false_person_prob
    fp = poses[rng.integers(0, len(poses), (B, F))]
    frot = _rot_y(rng.uniform(0, 2 * np.pi, (B, F)))
    f3 = coco_joints_3d(np.einsum("bfij,bfkj->bfki", frot, fp), frot)
    xy = f3[..., :2]
    span = np.maximum(np.ptp(xy, axis=-2).max(-1), 1e-6)
    fsize = np.exp(rng.uniform(*np.log(nz.false_size_px), (B, F)))
    centre = rng.uniform(0, 1, (B, F, 2)) * np.array([W - 1, H - 1])
    fkp = (xy - xy.mean(-2, keepdims=True)) * (fsize / span)[..., None, None] + centre[:, :, None]
    frag = np.zeros((len(nz.false_fragments), K), dtype=bool)
    for i, g in enumerate(nz.false_fragments):
        frag[i, list(g)] = True
    shown = frag[rng.integers(0, len(frag), (B, F))] & has[..., None]
    fconf = np.where(shown, rng.uniform(*nz.false_conf, (B, F, K)), 0.0)

    kp_all = np.concatenate([kp, fkp], axis=1)
    conf_all = np.concatenate([conf, fconf], axis=1)
    conf_all = np.where(_inside(kp_all, W, H), conf_all, 0.0)
    kp_all = np.where((conf_all > 0)[..., None], kp_all, np.nan)
    false = np.concatenate([np.zeros((B, P), dtype=bool), has & (fconf > 0).any(-1)], axis=1)
    return kp_all, conf_all, missed, false


def teacher_error_stats(batch: SceneBatch, min_size_px: float | None = None,
                        cfg: SceneConfig | None = None) -> dict[str, float]:
    """Teacher keypoint error measured as DATA.md measured the real one: over the 12 COCO limb
    joints the teacher reported (conf > 0) of people it found, whose true position is inside the
    image and not occluded by another person, people at least min_size_px tall (default
    cfg.noise.stats_min_size_px), error = |teacher - true| / 2D size. Returns median, mean, p90,
    frac_over_10 (fraction over 10 %) and n (joints counted)."""
    if min_size_px is None:
        min_size_px = (cfg or SceneConfig()).noise.stats_min_size_px
    P = batch.num_slots
    limbs = list(COCO_LIMBS)
    kp = batch.teacher_kp[:, :P, limbs]
    err = np.linalg.norm(kp - batch.coco2d[:, :, limbs], axis=-1) / np.maximum(
        batch.size2d[..., None], 1e-9)
    m = ((batch.teacher_conf[:, :P, limbs] > 0) & batch.coco_in_image[:, :, limbs]
         & ~batch.coco_occluded[:, :, limbs] & batch.valid[..., None]
         & (batch.size2d >= min_size_px)[..., None])
    e = err[m]
    if e.size == 0:
        raise ValueError("no joints to measure: batch too small or min_size_px too large")
    return {"median": float(np.median(e)), "mean": float(e.mean()),
            "p90": float(np.percentile(e, 90)), "frac_over_10": float((e > 0.10).mean()),
            "n": float(e.size)}
