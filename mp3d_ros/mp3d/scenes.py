"""Synthetic multi-person scenes for training the pose-map network P, with exact 3D/2D labels.

A scene is one pinhole camera (robot height or elevated, pitched, slightly rolled) looking at 1..8
people standing on one ground plane, each a pose from a pose bank, scaled, maybe mirrored, turned
about the vertical by a random yaw. `sample_scenes` returns the exact labels (3D joints in the
camera optical frame, 2D projections, visibility, occlusion by closer people) and what a real 2D
teacher (YOLO11-pose, COCO-17) would have said about the image: corrupted keypoints with
confidences, missed joints and people, rare left/right swaps and false people. P's input is those
teacher keypoints rendered by `mp3d.heatmaps.render_keypoint_heatmaps`, exactly as the real
teacher's keypoints will be.

Frames. World: gravity-aligned, x right, y DOWN, z forward (horizontal), ground plane y = 0, the
camera above the origin at y = -height. Camera: optical frame (x right, y down, z forward), pitched
down by `pitch` about its x axis, then rolled about its optical axis. Canonical pose: root-relative,
y down, the person facing -z (toward a camera looking along +z), their right side at -x, exactly as
`skeleton.REST_POSE`. Motion-capture poses in the pose-prior frame (+y up, facing +z, +x the
person's left; mp3d.mocap.retarget) are turned into this frame by `canonical_from_y_up`.

Teacher corruption model and how it was fitted: see `TeacherNoise`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mp3d import skeleton as sk

K = sk.NUM_JOINTS
_HEAD, _HEAD_TOP = sk.INDEX["head"], sk.INDEX["head_top"]
_ANKLES = (sk.INDEX["r_ankle"], sk.INDEX["l_ankle"])
_L_SHOULDER, _R_SHOULDER = sk.INDEX["l_shoulder"], sk.INDEX["r_shoulder"]
NUM_FACE = 5  # COCO nose, l_eye, r_eye, l_ear, r_ear come first in COCO-17
# COCO keypoints 5..16 (shoulders .. ankles) are MuPoTS joints of the same names.
COCO_FROM_MUPOTS: tuple[int, ...] = tuple(sk.INDEX[n] for n in sk.COCO_NAMES[NUM_FACE:])
COCO_LIMBS: tuple[int, ...] = tuple(range(NUM_FACE, len(sk.COCO_NAMES)))  # the 12 limb joints


def canonical_from_y_up(poses: np.ndarray) -> np.ndarray:
    """Pose-prior frame (+y up, facing +z, +x = the person's left) -> this module's canonical frame
    (y down, facing -z, +x = the person's left): a 180 deg turn about x, (x, y, z) -> (x, -y, -z).
    (..., 17, 3) -> (..., 17, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    assert poses.shape[-2:] == (K, 3), poses.shape
    return poses * np.array([1.0, -1.0, -1.0])


# ------------------------------------------------------------------------------------------------
# Configuration.


@dataclass(frozen=True)
class FaceGeometry:
    """Where COCO's face points sit relative to MuPoTS 'head' (the head centre, between the ears),
    in metres for a person of scale 1, along the head's forward / lateral (to the person's left) /
    up directions."""

    nose_forward: float = 0.09
    eye_forward: float = 0.07
    eye_lateral: float = 0.032
    eye_up: float = 0.035
    ear_lateral: float = 0.075


@dataclass(frozen=True)
class TeacherNoise:
    """How a real 2D teacher errs. Sizes are fractions of the person's 2D size `s` (the larger side
    of the bounding box of its 17 projected joints; for upright people the 2D height used in
    DATA.md's measurement).

    Keypoint error = inlier jitter + (sometimes) an outlier jump:
      inlier:  2D Gaussian, per-axis sd = max(jitter_sigma * s, jitter_floor_px) * m_p, where
               m_p = exp(person_sigma * N(0, 1)) is a per-person difficulty (hard poses, blur);
               occluded joints' sd is multiplied by occluded_jitter_mult.
      outlier: with probability outlier_prob per joint, a jump of length r * s in a uniform random
               direction, r from a Pareto law r = outlier_min * U^(-1 / outlier_alpha) capped at
               outlier_max (many jumps just over outlier_min, a long tail of gross errors).
    Targets (DATA.md, YOLO11n-pose on real single-person photos, 12 limb joints, error / 2D height):
    median 4.5 %, mean 9 %, 90th percentile 20 %, 29 % of joints over 10 %. A Gaussian alone cannot
    give both a 4.5 % median and 29 % over 10 % (a Rayleigh with that median has 3 % over 10 %),
    hence the outlier mixture with a heavy-tailed jump length.

    Fit (by simulation, `python -m mp3d.bench_scenes --fit`): 2000 scenes of the default
    SceneConfig on `toy_pose_bank`, errors measured like DATA.md (COCO limb joints of people the
    teacher found, true position inside the image, not occluded by another person, people of 2D
    size at least `stats_min_size_px`; `teacher_error_stats`), Nelder-Mead over (jitter_sigma,
    outlier_prob, outlier_min, outlier_alpha) with person_sigma fixed, minimising the squared
    relative deviations of the four statistics from the targets, with the same random numbers for
    each evaluation (140 evaluations, loss 7e-4). The defaults below are its result (person_sigma
    0.35 fixed); simulated on 2000 other scenes: median 4.4 %, mean 8.7 %, p90 19.9 %, 28.1 % over
    10 % (targets 4.5, 9, 20, 29). test_scenes.py checks the statistics against tolerance bands.
    Caveat: DATA.md's 8 photos lean to hard poses (sitting, lying, crawling; upright people had a
    ~3 % median), and this model errs the same on every pose, so it is likely pessimistic for
    upright people; refit (or make outlier_prob pose-dependent) when more real errors are measured.

    Confidences do not flag errors (DATA.md: all > 0.5 even where wrong): a found joint gets
    U(conf_visible), or U(conf_occluded) when another person occludes it, whatever its error.
    """

    jitter_sigma: float = 0.0279          # inlier per-axis sd, fraction of 2D size (fitted)
    jitter_floor_px: float = 1.0          # ... but at least this many pixels
    person_sigma: float = 0.35            # log-sd of the per-person difficulty multiplier (fixed)
    occluded_jitter_mult: float = 1.5     # occluded joints: inlier sd times this
    outlier_prob: float = 0.298           # per-joint probability of an outlier jump (fitted)
    outlier_min: float = 0.111            # Pareto scale of the jump length, fraction of s (fitted)
    outlier_alpha: float = 1.89           # Pareto tail index; smaller = heavier tail (fitted)
    outlier_max: float = 0.8              # jump length cap, fraction of s
    swap_prob: float = 0.01               # per person and COCO left/right pair: the two swapped
    miss_joint_visible: float = 0.02      # a visible joint is missed (conf 0)
    miss_joint_occluded: float = 0.35     # an occluded joint is missed
    guess_truncated_prob: float = 0.25    # a joint outside the image is still guessed (at the
    # image border, conf_truncated)
    miss_person_base: float = 0.03        # any person is missed
    miss_person_small_px: float = 40.0    # people smaller than this (2D size, px) ...
    miss_person_small_prob: float = 0.6   # ... are missed with up to this much more (linear)
    miss_person_occluded_prob: float = 0.6  # extra miss probability times the occluded fraction
    min_joints_found: int = 4             # fewer in-image COCO joints than this: person missed
    conf_visible: tuple[float, float] = (0.5, 1.0)     # found, unoccluded joints
    conf_occluded: tuple[float, float] = (0.3, 0.85)   # found, occluded joints
    conf_truncated: tuple[float, float] = (0.05, 0.4)  # guessed joints outside the image
    max_false_people: int = 2             # false-people slots per scene (Q = P + this)
    false_person_prob: float = 0.15       # each slot holds a false person with this probability
    false_size_px: tuple[float, float] = (24.0, 160.0)  # its 2D size, log-uniform
    false_conf: tuple[float, float] = (0.2, 0.65)        # its joints' confidences
    # Fragments a false person shows (COCO indices), one chosen uniformly.
    false_fragments: tuple[tuple[int, ...], ...] = (
        tuple(range(17)),                  # a whole (ghost) person
        (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),  # head, shoulders, arms
        (0, 1, 2, 3, 4, 5, 6),             # head and shoulders
        (11, 12, 13, 14, 15, 16),          # legs
        (5, 7, 9, 11),                     # one side: arm and hip
        (6, 8, 10, 12),                    # other side
    )
    stats_min_size_px: float = 80.0       # teacher_error_stats: people at least this big


@dataclass(frozen=True)
class SceneConfig:
    """Every parameter of synthetic scenes. Angles in degrees, lengths in metres, sizes in pixels
    of the (width x height) image; (lo, hi) ranges are sampled uniformly unless said otherwise."""

    width: int = 384                      # image width, px
    height: int = 288                     # image height, px
    hfov_deg: tuple[float, float] = (45.0, 95.0)  # horizontal field of view; square pixels
    principal_jitter: float = 0.02        # principal point offset from centre, fraction of size
    # Camera kinds: a mixture of robot-height and elevated cameras. Pitch: down positive.
    elevated_prob: float = 0.5
    robot_height_m: tuple[float, float] = (0.4, 1.6)
    robot_pitch_deg: tuple[float, float] = (-10.0, 15.0)
    elevated_height_m: tuple[float, float] = (2.5, 10.0)
    elevated_pitch_deg: tuple[float, float] = (15.0, 45.0)
    roll_deg: float = 3.0                 # roll uniform in +-this
    # People.
    people: tuple[int, int] = (1, 8)      # number wanted per scene, uniform inclusive
    distance_m: tuple[float, float] = (1.5, 14.0)  # horizontal camera-person distance
    log_uniform_distance: bool = True     # distance log-uniform (more near people) or uniform
    azimuth_margin: float = 1.15          # azimuth within +-margin * hfov / 2 of the optical axis
    min_spacing_m: float = 0.45           # minimum ground distance between two people's roots
    yaw_deg: tuple[float, float] = (0.0, 360.0)  # person heading about the vertical
    scale: tuple[float, float] = (0.88, 1.12)    # per-person global scale of the bank pose
    mirror_prob: float = 0.5              # mirror the bank pose left<->right
    truncation_prob: float = 0.3          # person may extend past the image border ...
    truncation_root_margin: float = 0.15  # ... with its root up to this fraction of W/H outside
    min_joints_in_image: int = 5          # ... and at least this many of 17 joints inside
    # (people not allowed truncation have all 17 joints inside the image)
    min_joint_depth_m: float = 0.3        # every joint at least this far in front of the camera
    candidates_per_scene: int = 48        # candidate placements tried per scene
    view_margin_deg: float = 6.0          # distances are drawn where the root is seen by rays up
    # to this much beyond the image's top and bottom edges (then placement checks exactly)
    max_resample_rounds: int = 20         # scenes with nobody placed get a new camera, this often
    # Occlusion: a joint is occluded when it lies within a closer person's projected body, i.e.
    # within width_frac * (that person's 2D size) of one of its bones (limbs) or of its torso/head
    # segments (bones of the spine and head plus shoulder-hip sides and diagonals).
    occlusion_torso_width: float = 0.06   # half-width of torso and head segments, fraction of s
    occlusion_limb_width: float = 0.035   # half-width of arm and leg bones, fraction of s
    occlusion_depth_margin_m: float = 0.1  # occluder's root at least this much closer (depth z)
    face: FaceGeometry = field(default_factory=FaceGeometry)
    noise: TeacherNoise = field(default_factory=TeacherNoise)

    def __post_init__(self) -> None:
        if not 1 <= self.people[0] <= self.people[1]:
            raise ValueError(f"people range must be 1 <= lo <= hi, got {self.people}")
        if self.candidates_per_scene < self.people[1]:
            raise ValueError("candidates_per_scene must be at least the maximum number of people")
        if not 0 < self.distance_m[0] < self.distance_m[1]:
            raise ValueError(f"bad distance range {self.distance_m}")


# ------------------------------------------------------------------------------------------------
# The batch.


@dataclass
class SceneBatch:
    """B scenes, P = the most people in any of them (padded), Q = P + noise.max_false_people
    teacher slots. Pixels of the cfg image size, integer coordinates at pixel centres.

    Camera: intrinsics (B, 4) fx, fy, cx, cy; cam_height (B,) metres above the ground;
    cam_pitch, cam_roll (B,) radians (pitch down positive); elevated (B,) bool camera kind;
    ground_normal (B, 3) the unit up-normal of the ground in camera coordinates: ground points X
    satisfy ground_normal . X + cam_height = 0.
    People (padding: valid False, zeros, rot = identity, pose_index -1):
      valid (B, P) bool; pose_index (B, P) int into the bank; scale (B, P); mirrored (B, P) bool;
      joints_cam (B, P, 17, 3) metres, camera optical frame; pose_canonical (B, P, 17, 3) the
      root-relative canonical pose used (scaled, mirrored); rot (B, P, 3, 3) with
      joints_cam - joints_cam[:, :, root] == pose_canonical @ rot.T;
      kp2d (B, P, 17, 2) exact projections; root2d (B, P, 2); in_image (B, P, 17) bool;
      occluded (B, P, 17) bool (by a closer person, see SceneConfig.occlusion_*);
      size2d (B, P) px, the larger side of the projected joints' bounding box;
      coco2d (B, P, 17, 2) exact COCO-17 projections (face points from `coco_joints_3d`);
      coco_in_image, coco_occluded (B, P, 17) bool.
    Teacher (what P sees): teacher_kp (B, Q, 17, 2) COCO-17 pixels, NaN where teacher_conf is 0;
      teacher_conf (B, Q, 17) in [0, 1]; slots < P are the real people (all conf 0 if missed),
      slots >= P false people or empty; teacher_missed (B, P) bool (a valid person the teacher
      did not find); teacher_false (B, Q) bool (slot holds a false person).
    """

    intrinsics: np.ndarray
    cam_height: np.ndarray
    cam_pitch: np.ndarray
    cam_roll: np.ndarray
    elevated: np.ndarray
    ground_normal: np.ndarray
    valid: np.ndarray
    pose_index: np.ndarray
    scale: np.ndarray
    mirrored: np.ndarray
    joints_cam: np.ndarray
    pose_canonical: np.ndarray
    rot: np.ndarray
    kp2d: np.ndarray
    root2d: np.ndarray
    in_image: np.ndarray
    occluded: np.ndarray
    size2d: np.ndarray
    coco2d: np.ndarray
    coco_in_image: np.ndarray
    coco_occluded: np.ndarray
    teacher_kp: np.ndarray
    teacher_conf: np.ndarray
    teacher_missed: np.ndarray
    teacher_false: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        B, P = self.valid.shape
        Q = self.teacher_conf.shape[1]
        assert Q >= P, (Q, P)
        assert self.intrinsics.shape == (B, 4), self.intrinsics.shape
        assert self.joints_cam.shape == (B, P, K, 3) == self.pose_canonical.shape
        assert self.rot.shape == (B, P, 3, 3), self.rot.shape
        assert self.kp2d.shape == (B, P, K, 2) == self.coco2d.shape
        assert self.in_image.shape == self.occluded.shape == (B, P, K)
        assert self.teacher_kp.shape == (B, Q, K, 2), self.teacher_kp.shape
        assert self.teacher_conf.shape == (B, Q, K), self.teacher_conf.shape

    @property
    def batch_size(self) -> int:
        return self.valid.shape[0]

    @property
    def num_slots(self) -> int:
        """P, the padded number of real people."""
        return self.valid.shape[1]


# ------------------------------------------------------------------------------------------------
# Small vectorised helpers.


def _normalise(v: np.ndarray, fallback: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Unit vectors along the last axis; where v is (near) zero, the (unit) fallback."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > eps, v / np.maximum(n, eps), fallback)


def _rot_y(a: np.ndarray) -> np.ndarray:
    """Rotations about +y by angles a (...,) -> (..., 3, 3)."""
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def camera_rotation(pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """World -> camera rotation R (X_cam = R @ X_world) of a camera pitched down by `pitch` about
    its x axis, then rolled by `roll` about its optical axis, radians; (...,) -> (..., 3, 3).
    The world's optical-like frame (x right, y down, z forward horizontal) is the camera at zero
    pitch and roll."""
    pitch, roll = np.asarray(pitch, dtype=np.float64), np.asarray(roll, dtype=np.float64)
    cp, sp, cr, sr = np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    z, o = np.zeros_like(cp), np.ones_like(cp)
    # Rows: the camera's x, y, z axes in world coordinates (optical axis (0, sin, cos): down).
    r_pitch = np.stack([np.stack([o, z, z], -1), np.stack([z, cp, -sp], -1),
                        np.stack([z, sp, cp], -1)], -2)
    r_roll = np.stack([np.stack([cr, -sr, z], -1), np.stack([sr, cr, z], -1),
                       np.stack([z, z, o], -1)], -2)
    return r_roll @ r_pitch


def _project(points: np.ndarray, intr: np.ndarray) -> np.ndarray:
    """Project camera-frame points with per-scene intrinsics: (B, ..., 3), (B, 4) -> (B, ..., 2).
    Points at z <= 0 give NaN."""
    B = points.shape[0]
    assert intr.shape == (B, 4) and points.shape[-1] == 3, (intr.shape, points.shape)
    f = intr.reshape((B,) + (1,) * (points.ndim - 2) + (4,))
    z = points[..., 2]
    z = np.where(z > 0, z, np.nan)
    return np.stack([f[..., 0] * points[..., 0] / z + f[..., 2],
                     f[..., 1] * points[..., 1] / z + f[..., 3]], axis=-1)


def _inside(uv: np.ndarray, width: int, height: int) -> np.ndarray:
    """(..., 2) pixels -> (...) bool, inside the image [-0.5, W - 0.5) x [-0.5, H - 0.5)."""
    u, v = uv[..., 0], uv[..., 1]
    return (u >= -0.5) & (u < width - 0.5) & (v >= -0.5) & (v < height - 0.5)


# ------------------------------------------------------------------------------------------------
# COCO joints and a toy pose bank.


def coco_joints_3d(joints: np.ndarray, rot: np.ndarray, scale: np.ndarray | float = 1.0,
                   face: FaceGeometry | None = None) -> np.ndarray:
    """3D COCO-17 joints of MuPoTS-17 skeletons: (..., 17, 3), (..., 3, 3), scale (...) or float
    -> (..., 17, 3), same frame as `joints`.

    Limb joints are the MuPoTS joints of the same names. Face points come from 'head' (the head
    centre) along the head's own axes: up = head -> head_top, lateral (the person's left) = the
    shoulder line made orthogonal to up, forward = lateral x up. `rot` (canonical -> this frame)
    supplies those axes only where the skeleton's are degenerate. Offsets (FaceGeometry) scale with
    `scale`.
    """
    joints = np.asarray(joints, dtype=np.float64)
    rot = np.asarray(rot, dtype=np.float64)
    assert joints.shape[-2:] == (K, 3) and rot.shape == joints.shape[:-2] + (3, 3), (
        joints.shape, rot.shape)
    face = face or FaceGeometry()
    s = np.broadcast_to(np.asarray(scale, dtype=np.float64), joints.shape[:-2])[..., None]
    head = joints[..., _HEAD, :]
    up = _normalise(joints[..., _HEAD_TOP, :] - head, -rot[..., :, 1])
    lat = joints[..., _L_SHOULDER, :] - joints[..., _R_SHOULDER, :]
    lat_fb = rot[..., :, 0] - np.sum(rot[..., :, 0] * up, -1, keepdims=True) * up
    lat = _normalise(lat - np.sum(lat * up, -1, keepdims=True) * up, _normalise(lat_fb, lat_fb))
    fwd = np.cross(lat, up)
    f = face
    nose = head + s * f.nose_forward * fwd
    eye_c = head + s * (f.eye_forward * fwd + f.eye_up * up)
    l_eye, r_eye = eye_c + s * f.eye_lateral * lat, eye_c - s * f.eye_lateral * lat
    l_ear, r_ear = head + s * f.ear_lateral * lat, head - s * f.ear_lateral * lat
    face_pts = np.stack([nose, l_eye, r_eye, l_ear, r_ear], axis=-2)
    return np.concatenate([face_pts, joints[..., list(COCO_FROM_MUPOTS), :]], axis=-2)


def toy_pose_bank(n: int, rng: np.random.Generator) -> np.ndarray:
    """n varied poses made from skeleton.REST_POSE by random limb and torso rotations (bone lengths
    kept), canonical frame, root-relative: (n, 17, 3). For tests and benchmarks; train on motion
    capture (mp3d.mocap) instead."""

    def rot(axis_angles: np.ndarray) -> np.ndarray:  # (n, 3) rotation vectors -> (n, 3, 3)
        th = np.linalg.norm(axis_angles, axis=-1, keepdims=True)
        k = axis_angles / np.maximum(th, 1e-12)
        kx = np.zeros((len(k), 3, 3))
        kx[:, 0, 1], kx[:, 0, 2], kx[:, 1, 2] = -k[:, 2], k[:, 1], -k[:, 0]
        kx = kx - kx.transpose(0, 2, 1)
        t = th[..., None]
        return np.eye(3) + np.sin(t) * kx + (1 - np.cos(t)) * kx @ kx

    def turn(p: np.ndarray, pivot: int, joints: list[int], r: np.ndarray) -> None:
        piv = p[:, pivot:pivot + 1]
        p[:, joints] = np.einsum("nij,nkj->nki", r, p[:, joints] - piv) + piv

    p = np.repeat(sk.REST_POSE[None].astype(np.float64), n, axis=0)
    ix = sk.INDEX
    for side in ("r", "l"):
        sh, el, wr = ix[f"{side}_shoulder"], ix[f"{side}_elbow"], ix[f"{side}_wrist"]
        hp, kn, an = ix[f"{side}_hip"], ix[f"{side}_knee"], ix[f"{side}_ankle"]
        turn(p, el, [wr], rot(rng.normal(0, 0.8, (n, 3)) * [1, 0.3, 1]))
        turn(p, sh, [el, wr], rot(rng.normal(0, 0.9, (n, 3))))
        turn(p, kn, [an], rot(np.abs(rng.normal(0, 0.6, (n, 1))) * [1, 0, 0]))
        turn(p, hp, [kn, an], rot(rng.normal(0, 0.35, (n, 3)) * [1, 0.3, 0.5]))
    upper = [i for i in range(K) if i not in (ix["pelvis"], ix["r_hip"], ix["l_hip"], ix["r_knee"],
                                              ix["l_knee"], ix["r_ankle"], ix["l_ankle"])]
    turn(p, sk.ROOT, upper, rot(rng.normal(0, 0.15, (n, 3))))
    return p - p[:, sk.ROOT:sk.ROOT + 1]


# ------------------------------------------------------------------------------------------------
# Cameras and placement.


def _sample_cameras(n: int, cfg: SceneConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """n cameras: intrinsics (n, 4), height, pitch, roll (n,), elevated (n,), R (n, 3, 3)."""
    W, H = cfg.width, cfg.height
    hfov = np.radians(rng.uniform(*cfg.hfov_deg, n))
    f = 0.5 * W / np.tan(hfov / 2)
    cx = (W - 1) / 2 + rng.uniform(-1, 1, n) * cfg.principal_jitter * W
    cy = (H - 1) / 2 + rng.uniform(-1, 1, n) * cfg.principal_jitter * H
    elevated = rng.random(n) < cfg.elevated_prob
    height = np.where(elevated, rng.uniform(*cfg.elevated_height_m, n),
                      rng.uniform(*cfg.robot_height_m, n))
    pitch = np.radians(np.where(elevated, rng.uniform(*cfg.elevated_pitch_deg, n),
                                rng.uniform(*cfg.robot_pitch_deg, n)))
    roll = np.radians(rng.uniform(-cfg.roll_deg, cfg.roll_deg, n))
    return {"intrinsics": np.stack([f, f, cx, cy], -1), "height": height, "pitch": pitch,
            "roll": roll, "elevated": elevated, "R": camera_rotation(pitch, roll)}


def _visible_distances(delta: np.ndarray, a_top: np.ndarray, a_bot: np.ndarray,
                       lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal distances at which a point `delta` metres below the camera is seen by the
    central image column, whose rays point a_top .. a_bot (radians) below the horizon, clipped to
    [lo, hi]; where none is seen, [lo, hi] (placement then rejects)."""
    eps = 1e-6
    below = delta > 0  # the point is below the camera: rays pointing down reach it
    a_near = np.where(below, a_bot, -a_top)  # the steepest ray towards the point
    a_far = np.where(below, a_top, -a_bot)
    ad = np.abs(delta) + eps
    near = ad / np.tan(np.clip(a_near, eps, None))
    far = np.where(a_far > eps, ad / np.tan(np.clip(a_far, eps, None)), np.inf)
    seen = a_near > eps
    d0, d1 = np.maximum(near, lo), np.minimum(far, hi)
    ok = seen & (d0 < d1)
    return np.where(ok, d0, lo), np.where(ok, d1, hi)


def _place_people(poses: np.ndarray, cams: dict[str, np.ndarray], n_want: np.ndarray,
                  cfg: SceneConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Candidate people for n scenes (n, C, ...) and which were accepted (n, C) bool: in front of
    the camera, in view (whole, or partly when truncation is allowed), spaced, at most n_want."""
    n, C = len(n_want), cfg.candidates_per_scene
    W, H = cfg.width, cfg.height
    pidx = rng.integers(0, len(poses), (n, C))
    scale = rng.uniform(*cfg.scale, (n, C))
    mirrored = rng.random((n, C)) < cfg.mirror_prob
    yaw = np.radians(rng.uniform(*cfg.yaw_deg, (n, C)))
    trunc_ok = rng.random((n, C)) < cfg.truncation_prob
    u_dist = rng.random((n, C))
    intr = cams["intrinsics"]
    hfov = 2 * np.arctan(0.5 * W / intr[:, 0])
    azimuth = rng.uniform(-1, 1, (n, C)) * (cfg.azimuth_margin * hfov / 2)[:, None]

    canon = poses[pidx]
    canon = np.where(mirrored[..., None, None], sk.mirror(canon), canon) * scale[..., None, None]
    root_h = canon[..., list(_ANKLES), 1].max(-1)  # root height above ground (lowest ankle)
    # Distances at which the root is seen (central column), widened for truncation.
    a_top = cams["pitch"] - np.arctan((intr[:, 3] + 0.5) / intr[:, 1])
    a_bot = cams["pitch"] + np.arctan((H - 0.5 - intr[:, 3]) / intr[:, 1])
    margin = np.radians(cfg.view_margin_deg)
    lo, hi = _visible_distances(cams["height"][:, None] - root_h, a_top[:, None] - margin,
                                a_bot[:, None] + margin, *cfg.distance_m)
    if cfg.log_uniform_distance:
        dist = lo * (hi / lo) ** u_dist
    else:
        dist = lo + (hi - lo) * u_dist
    # Root relative to the camera centre, world axes; the camera is `height` above the ground.
    root_rel = np.stack([dist * np.sin(azimuth), cams["height"][:, None] - root_h,
                         dist * np.cos(azimuth)], -1)
    R = cams["R"][:, None]
    rot = R @ _rot_y(yaw)
    root_cam = np.einsum("ncij,ncj->nci", R, root_rel)
    joints_cam = np.einsum("ncij,nckj->ncki", rot, canon) + root_cam[:, :, None]

    uv = _project(joints_cam, intr)
    inside = _inside(uv, W, H)
    in_front = (joints_cam[..., 2] > cfg.min_joint_depth_m).all(-1)
    root_uv = uv[:, :, sk.ROOT]
    mu, mv = cfg.truncation_root_margin * W, cfg.truncation_root_margin * H
    root_near = ((root_uv[..., 0] > -mu) & (root_uv[..., 0] < W + mu) & (root_uv[..., 1] > -mv)
                 & (root_uv[..., 1] < H + mv))
    partly = root_near & (inside.sum(-1) >= cfg.min_joints_in_image)
    ok = in_front & np.where(trunc_ok, partly, inside.all(-1))

    # Greedy acceptance in candidate order, keeping people apart on the ground.
    gx, gz = root_rel[..., 0], root_rel[..., 2]
    close = np.hypot(gx[:, :, None] - gx[:, None, :], gz[:, :, None] - gz[:, None, :]) \
        < cfg.min_spacing_m
    acc = np.zeros((n, C), dtype=bool)
    count = np.zeros(n, dtype=np.int64)
    for c in range(C):
        take = ok[:, c] & (count < n_want) & ~(acc & close[:, c]).any(-1)
        acc[:, c] = take
        count += take
    return {"pose_index": pidx, "scale": scale, "mirrored": mirrored, "canon": canon,
            "rot": rot, "joints_cam": joints_cam, "accepted": acc}


# ------------------------------------------------------------------------------------------------
# Occlusion.

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


# ------------------------------------------------------------------------------------------------
# The teacher.


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


# ------------------------------------------------------------------------------------------------
# Scenes.


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
