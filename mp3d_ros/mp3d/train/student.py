"""Train the image student's heads by cross-modal alignment: unlabeled frames, synthetic scenes.

The student's trunk is the teacher's own network, frozen (mp3d.model.student), so what trains is
the paper's part: the anchor features' projection and the person head. Their training data:

- **Real frames, no labels** (the image modality): a pool of unlabeled recordings (mp3d.data.pool:
  the letterbox plus random zooms, crops, rotations and mirrors with exact intrinsics). The frozen
  trunk runs once on every sample (no gradients) and gives its people (boxes, 17 keypoints, the
  anchor's features). The frozen pose-map network P reads those people's keypoints rendered as
  heatmaps and gives each its code, orientation, root and depth and per-joint confidences: the
  targets of the alignment, in the prior's latent space (the "shared latent space"). A
  reprojection term ties the decoded skeleton, placed at the head's root and depth, to the
  trunk's confident keypoints; a prior term keeps the code in the embedding's support.
- **Synthetic scenes, exact labels** (the pose modality): people from motion capture placed in
  random cameras with teacher-like corrupted 2D (mp3d.data.scenes), their boxes from their 2D
  extent, no image (the features are zeros and the head's has-image flag is 0; real people lose
  their features the same way 20% of the time, so both paths learn the same geometry). They carry
  what the teacher cannot see: the true 3D, depth, occlusion and truncation.

The trunk's pass over the pool is done once and cached in the run folder (`real_people.npz`),
keyed by the pool, the trunk, P and the prior, so the head trains in minutes on a CPU. A run
writes OUT/student.pt (the heads, the prior's decoder, the decoding config; not the trunk), a
CSV log and a PNG of the curves, and continues with --resume.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mp3d.common import skeleton as sk
from mp3d.common.checkpoints import load_checkpoint, save_checkpoint
from mp3d.common.devices import resolve_device
from mp3d.common.paths import default_model, file_sha256
from mp3d.data.images.skips import FrameSkips
from mp3d.data.pool import PoolConfig, Source, build_pool
from mp3d.data.posebank import augment, load_canonical
from mp3d.data.scenes.batch import person_boxes, teacher_found
from mp3d.data.scenes.config import SceneConfig
from mp3d.data.scenes.sample import sample_scenes
from mp3d.eval.metrics import joint_right
from mp3d.model.anchors import (
    DecodeConfig,
    coco_to_mupots_torch,
    head_inputs,
    person_geometry,
    place_root,
    project,
    select_people,
)
from mp3d.model.personmaps import decode_maps
from mp3d.model.posemap import load_posemap, posemap_inputs
from mp3d.model.prior import PosePrior, matrix_to_rot6d, rot6d_to_matrix
from mp3d.model.student import (
    KIND,
    StudentConfig,
    StudentNet,
    feature_dim,
    letterbox_shape,
    load_student,
    student_checkpoint,
)
from mp3d.model.yolo_weights import load_teacher_state
from mp3d.train.logs import CsvLog, plot_curves

LOG_FIELDS = ["step", "loss", "syn_pose", "syn_z", "syn_rot", "syn_depth", "syn_root",
              "syn_conf", "syn_mpjpe_mm", "real_pose", "real_z", "real_rot", "real_depth",
              "real_root", "real_conf", "real_reproj", "prior", "lr"]
RAW_DIM = 256  # widest neck level (P5): raw anchor features are cached padded to this


@dataclass(frozen=True)
class HeadLossWeights:
    pose: float = 5.0     # L1 of root-relative joints, metres
    z: float = 0.05       # squared distance of codes
    rot: float = 0.5      # Frobenius distance of orientations
    depth: float = 1.0    # L1 of log depth
    root: float = 1.0     # L1 of the root pixel, in box sizes
    conf: float = 0.5     # BCE of per-joint confidence
    reproj: float = 1.0   # Huber of the reprojection, in person sizes
    prior: float = 1e-3   # 0.5 |z|^2
    conf_correct_frac: float = 0.15  # a synthetic joint is right within this fraction of height
    conf_hidden: float = 0.25        # target of a right joint that is truncated or occluded


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, action="append",
                   help="unlabeled images: video, folder or rosbag2, as PATH or "
                   "PATH@START:END (fractions of its time span) or PATH@START:END@TOPIC; "
                   "repeat for a pool of several cameras")
    p.add_argument("--topic", help="image topic (bags)")
    p.add_argument("--start-frac", type=float, default=0.0,
                   help="time range of sources given without @START:END")
    p.add_argument("--end-frac", type=float, default=1.0)
    p.add_argument("--views", type=int, default=4,
                   help="samples per frame: the letterbox plus random zooms, crops, rotations")
    p.add_argument("--frame-step", type=int, default=1, help="use every n-th frame")
    p.add_argument("--motion", nargs="+", default=None,
                   help="motion capture for the synthetic scenes (BVH, DeepMimic, .npy clips or "
                   "folders, or .npz pose datasets; default: LaFAN1 test.bvh)")
    p.add_argument("--init", help="start from this student checkpoint's heads (a new run)")
    p.add_argument("--input-size", type=int, default=StudentConfig.input_size,
                   help="long side of the student's letterboxed input, px (multiple of 32)")
    p.add_argument("--teacher-cache", default="cache/teacher",
                   help="cached teacher outputs of the pool (mp3d teach): where the pool's random "
                   "crops centre")
    p.add_argument("--teacher", default="yolo11n-pose")
    p.add_argument("--prior", default=str(default_model("prior.pt")))
    p.add_argument("--posemap", default=str(default_model("posemap.pt")))
    p.add_argument("--hfov", type=float, default=60.0,
                   help="assumed horizontal field of view (deg) when the data has no intrinsics")
    p.add_argument("--out", default="runs/student")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch", type=int, default=128, help="people per step (real and synthetic)")
    p.add_argument("--synthetic-frac", type=float, default=0.5,
                   help="fraction of each step's people from synthetic scenes")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--save-every", type=int, default=500)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--min-teacher-conf", type=float, default=0.5,
                   help="keypoints used by the reprojection loss")
    p.add_argument("--adapt-trunk", type=int, default=0, metavar="STEPS",
                   help="first adapt the trunk to these cameras for this many steps: at the "
                   "student's input size, toward the cached teacher's people at its (larger) "
                   "imgsz (mp3d.train.adapt); the checkpoint then holds its trunk")
    p.add_argument("--strict", action="store_true",
                   help="stop at the first pool frame that cannot be decoded (default: skip it, "
                   "count it, and print a summary line)")


def pool_sources(args: argparse.Namespace) -> list[Source]:
    """The --data sources; a source without its own @START:END takes --start-frac/--end-frac."""
    out = []
    for spec in args.data:
        src = Source.parse(spec)
        if "@" not in spec:
            src = Source(src.path, args.start_frac, args.end_frac, args.topic)
        out.append(src)
    return out


# ------------------------------------------------------------------------------------------------
# Real people: the frozen trunk and P on the pool, once.


def anchor_levels(feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """For the anchors of one input: the level (A,) and the flat cell index within it (A,)."""
    sizes = [f.shape[2] * f.shape[3] for f in feats]
    level = torch.cat([torch.full((n,), i) for i, n in enumerate(sizes)])
    cell = torch.cat([torch.arange(n) for n in sizes])
    return level, cell


def raw_features(feats: list[torch.Tensor], b: int, idx: torch.Tensor, level: torch.Tensor,
                 cell: torch.Tensor) -> torch.Tensor:
    """The neck features of image b at anchors idx, padded to RAW_DIM: (N, RAW_DIM)."""
    out = torch.zeros(len(idx), RAW_DIM)
    for i, a in enumerate(idx.tolist()):
        f = feats[int(level[a])][b].flatten(1)[:, int(cell[a])]
        out[i, :len(f)] = f
    return out


def project_raw(net: StudentNet, raw: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
    """AnchorFeatures' 1x1 projection of cached raw neck features (N, RAW_DIM) by level (N,):
    the same numbers as the dense projection at those anchors, with gradients to its weights."""
    out = raw.new_zeros(len(raw), net.cfg.feat_dim)
    for lv, conv in enumerate(net.features.proj):
        m = level == lv
        if bool(m.any()):
            w = conv.weight[:, :, 0, 0]
            out[m] = raw[m, :w.shape[1]] @ w.T + conv.bias
    return out


def _p_targets(p_out: dict, intr: np.ndarray, prior: PosePrior, p_net, p_cfg, kpts: list,
               boxes: list) -> list[dict[str, np.ndarray]]:
    """P's people, associated to the trunk's people of each sample (nearest root within a
    quarter of the box size): per sample a dict of targets, valid (N,) marking the associated."""
    decoded = decode_maps(p_out, intr, prior.decoder, p_cfg.maps, p_net.heads.codes)
    out = []
    for dec, kp, box, k in zip(decoded, kpts, boxes, intr):
        n, d = len(kp), prior.cfg.latent_dim
        t = {"valid": np.zeros(n, bool), "z": np.zeros((n, d)), "rot6d": np.zeros((n, 6)),
             "log_zf": np.zeros(n), "root2d": np.zeros((n, 2)), "rel": np.zeros((n, 17, 3)),
             "conf": np.zeros((n, 17))}
        if n and len(dec):
            centre = (box[:, :2] + box[:, 2:]) / 2
            size = np.maximum((box[:, 2:] - box[:, :2]).max(-1), 1.0)
            hips = kp[:, [11, 12]]
            hip_ok = (hips[..., 2] >= 0.3).all(-1)
            anchor = np.where(hip_ok[:, None], hips[..., :2].mean(1), centre)
            dist = np.linalg.norm(anchor[:, None] - dec.root2d[None], axis=-1)
            taken = np.zeros(len(dec), bool)
            for i in np.argsort(dist.min(1)):
                m = int(np.argmin(np.where(taken, np.inf, dist[i])))
                if taken[m] or dist[i, m] > 0.25 * size[i]:
                    continue
                taken[m] = True
                t["valid"][i] = True
                t["z"][i], t["rel"][i], t["conf"][i] = dec.z[m], dec.joints_rel[m], \
                    dec.joint_conf[m]
                t["rot6d"][i] = matrix_to_rot6d(torch.from_numpy(dec.rot[m]).float()).numpy()
                t["log_zf"][i] = math.log(max(dec.depth[m], 1e-3) / k[0])
                t["root2d"][i] = dec.root2d[m]
        out.append(t)
    return out


@torch.no_grad()
def prepare_real(args: argparse.Namespace, net: StudentNet, prior: PosePrior, posemap: str,
                 decode: DecodeConfig) -> dict[str, np.ndarray]:
    """Every pool sample through the frozen trunk, its people's features and 2D, and P's targets
    for them: a dict of arrays over people (see the keys), cached in OUT/real_people.npz."""
    p_net, p_cfg = load_posemap(load_checkpoint(posemap, "mp3d.posemap"))
    W, H = letterbox_shape(640, 480, net.cfg.input_size)
    samples = build_pool(pool_sources(args), args.teacher_cache, args.teacher, args.hfov,
                         PoolConfig(width=W, height=H, views=args.views),
                         np.random.default_rng(args.seed), args.frame_step,
                         skips=FrameSkips(strict=args.strict))
    if not samples:
        raise ValueError("the training pool is empty: no frames in the given time ranges")
    cols: dict[str, list] = {k: [] for k in ("raw", "level", "hidden", "kpts", "boxes", "intr",
                                             "sample", "valid", "z", "rot6d", "log_zf",
                                             "root2d", "rel", "conf")}
    for s in tqdm(range(0, len(samples), 8), desc="trunk + P on the pool"):
        chunk = samples[s:s + 8]
        x = torch.from_numpy(np.stack([c.rgb() for c in chunk])).permute(0, 3, 1, 2).float() / 255
        t = net.trunk(x)
        level, cell = anchor_levels(t["feats"])
        intr = np.stack([c.intrinsics for c in chunk])
        kpts, boxes, picks = [], [], []
        for b in range(len(chunk)):
            idx = select_people(t["score"][b], t["boxes"][b], decode)
            picks.append(idx)
            kpts.append(t["kpts"][b, idx].numpy().astype(np.float64))
            boxes.append(t["boxes"][b, idx].numpy().astype(np.float64))
        q = max([len(k) for k in kpts] + [1])
        kp_all = np.full((len(chunk), q, 17, 2), np.nan)
        cf_all = np.zeros((len(chunk), q, 17))
        for b, k in enumerate(kpts):
            kp_all[b, :len(k)], cf_all[b, :len(k)] = k[..., :2], k[..., 2]
        p_out = p_net(posemap_inputs(kp_all, cf_all, intr, W, H, p_cfg.heatmap))
        targets = _p_targets(p_out, intr, prior, p_net, p_cfg, kpts, boxes)
        for b, idx in enumerate(picks):
            n = len(idx)
            cols["raw"].append(raw_features(t["feats"], b, idx, level, cell).half().numpy())
            cols["level"].append(level[idx].numpy())
            cols["hidden"].append(t["kpt_hidden"][b, idx].half().numpy())
            cols["kpts"].append(kpts[b].astype(np.float32))
            cols["boxes"].append(boxes[b].astype(np.float32))
            cols["intr"].append(np.repeat(intr[b][None], n, 0).astype(np.float32))
            cols["sample"].append(np.full(n, s + b))
            for k, v in targets[b].items():
                cols[k].append(v.astype(np.float32) if v.dtype != bool else v)
    real = {k: np.concatenate(v) for k, v in cols.items()}
    print(f"real people: {len(real['kpts'])} in {len(samples)} samples, "
          f"{int(real['valid'].sum())} with P targets")
    return real


def _trunk_digest(net: StudentNet) -> str:
    """A digest of the trunk's weights (an adapted trunk changes the real people)."""
    h = hashlib.sha256()
    for v in net.trunk.state_dict().values():
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def active_dims(prior: PosePrior, poses: np.ndarray, min_var: float = 0.01) -> tuple[int, ...]:
    """The prior's latent dimensions the motion uses: those whose posterior mean varies over the
    poses (a VAE leaves the others at the prior; refining them changes nothing but costs)."""
    with torch.no_grad():
        mu = prior.encode(torch.from_numpy(poses[:: max(1, len(poses) // 4000)]).float())[0]
    return tuple(int(i) for i in torch.nonzero(mu.var(0) > min_var).flatten())


def _real_key(args: argparse.Namespace, cfg: StudentConfig, decode: DecodeConfig,
              trunk: str) -> str:
    """What the cached real people depend on."""
    parts = [[s.spec() for s in pool_sources(args)], args.views, args.frame_step, args.seed,
             args.hfov, cfg.input_size, cfg.trunk_sha256, trunk, file_sha256(args.posemap),
             file_sha256(args.prior), decode.peak_threshold, decode.iou_threshold]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------
# Synthetic people: exact labels, no image.


def synthetic_people(bank: np.ndarray, n_scenes: int, scfg: SceneConfig, prior: PosePrior,
                     rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """People of `n_scenes` synthetic scenes that the simulated teacher found: their teacher
    keypoints (COCO, with confidences), a box from their visible 2D extent (jittered as a
    detector's is), the intrinsics, and the truth (code, orientation, log depth, root pixel,
    root-relative joints, which joints are visible)."""
    batch = sample_scenes(bank, n_scenes, scfg, rng)
    b, p = np.nonzero(teacher_found(batch))
    conf = batch.teacher_conf[b, p]
    kp = np.nan_to_num(batch.teacher_kp[b, p])
    boxes = person_boxes(batch, b, p, rng)
    root = batch.joints_cam[b, p, sk.ROOT]
    intr = batch.intrinsics[b]
    with torch.no_grad():
        z = prior.encode(torch.from_numpy(batch.pose_canonical[b, p]).float())[0]
    f = torch.from_numpy
    return {"kpts": f(np.concatenate([kp, conf[..., None]], -1)).float(),
            "boxes": f(boxes).float(), "intr": f(intr).float(), "z": z,
            "rot6d": matrix_to_rot6d(f(batch.rot[b, p]).float()),
            "log_zf": f(np.log(root[:, 2] / intr[:, 0])).float(),
            "root2d": f(batch.root2d[b, p]).float(),
            "rel": f(batch.joints_cam[b, p] - root[:, None]).float(),
            "visible": f(batch.in_image[b, p] & ~batch.occluded[b, p])}


# ------------------------------------------------------------------------------------------------
# Losses.


def _pose(head: dict[str, torch.Tensor], decoder: torch.nn.Module) -> torch.Tensor:
    """Root-relative joints (N, 17, 3) of the heads' codes and orientations."""
    return torch.einsum("nij,nkj->nki", rot6d_to_matrix(head["rot6d"]), decoder(head["z"]))


def _common_terms(head: dict[str, torch.Tensor], rel: torch.Tensor, t: dict[str, torch.Tensor],
                  boxes: torch.Tensor, intr: torch.Tensor) -> dict[str, torch.Tensor]:
    """The terms shared by synthetic and real people: pose, code, orientation, depth, root."""
    root2d, log_zf = person_geometry(head, boxes)
    size = (boxes[:, 2:] - boxes[:, :2]).amax(-1).clamp_min(1.0)
    return {"pose": (rel - t["rel"]).abs().sum(-1).mean(),
            "z": ((head["z"] - t["z"]) ** 2).sum(-1).mean(),
            "rot": ((rot6d_to_matrix(head["rot6d"]) - rot6d_to_matrix(t["rot6d"])) ** 2)
            .sum((-1, -2)).mean(),
            "depth": (log_zf - t["log_zf"]).abs().mean(),
            "root": ((root2d - t["root2d"]).abs().sum(-1) / size).mean()}


def synthetic_loss(head: dict[str, torch.Tensor], t: dict[str, torch.Tensor],
                   decoder: torch.nn.Module, w: HeadLossWeights
                   ) -> tuple[torch.Tensor, dict[str, float]]:
    rel = _pose(head, decoder)
    terms = _common_terms(head, rel, t, t["boxes"], t["intr"])
    right = joint_right(rel.detach(), t["rel"], w.conf_correct_frac).float()
    target = right * torch.where(t["visible"], 1.0, w.conf_hidden)
    terms["conf"] = torch.nn.functional.binary_cross_entropy_with_logits(head["conf_logit"],
                                                                         target)
    loss = sum(getattr(w, k) * v for k, v in terms.items())
    logs = {f"syn_{k}": float(v.detach()) for k, v in terms.items()}
    logs["syn_mpjpe_mm"] = 1000 * float((rel - t["rel"]).norm(dim=-1).mean().detach())
    return loss, logs


def real_loss(head: dict[str, torch.Tensor], t: dict[str, torch.Tensor],
              decoder: torch.nn.Module, w: HeadLossWeights, min_conf: float
              ) -> tuple[torch.Tensor, dict[str, float]]:
    rel = _pose(head, decoder)
    terms: dict[str, torch.Tensor] = {}
    v = t["valid"]
    if bool(v.any()):
        sub = {k: x[v] for k, x in t.items()}
        terms = _common_terms({k: x[v] for k, x in head.items()}, rel[v], sub, sub["boxes"],
                              sub["intr"])
        terms["conf"] = torch.nn.functional.binary_cross_entropy_with_logits(
            head["conf_logit"][v], sub["conf"])
    root2d, log_zf = person_geometry(head, t["boxes"])
    joints = rel + place_root(root2d, log_zf, t["intr"])[:, None]
    kp, kconf = coco_to_mupots_torch(t["kpts"])
    size = (t["boxes"][:, 2:] - t["boxes"][:, :2]).amax(-1).clamp_min(1.0)
    err = (project(joints, t["intr"]) - kp.nan_to_num()).norm(dim=-1) / size[:, None]
    huber = torch.where(err < 0.1, 0.5 * err ** 2 / 0.1, err - 0.05)
    wgt = torch.where(kconf >= min_conf, kconf, torch.zeros_like(kconf))
    terms["reproj"] = (huber * wgt).sum() / wgt.sum().clamp_min(1.0)
    terms["prior"] = 0.5 * (head["z"] ** 2).sum(-1).mean()
    loss = sum(getattr(w, k) * v for k, v in terms.items())
    return loss, {("prior" if k == "prior" else f"real_{k}"): float(x.detach())
                  for k, x in terms.items()}


# ------------------------------------------------------------------------------------------------
# The run.


def _real_batch(real: dict[str, np.ndarray], ids: np.ndarray, net: StudentNet,
                rng: np.random.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Head inputs (with the projection applied to the cached raw features; a fifth of the
    people lose their features) and targets of real people `ids`."""
    f = {k: torch.from_numpy(np.asarray(v[ids])) for k, v in real.items()}
    feat = torch.cat([project_raw(net, f["raw"].float(), f["level"]), f["hidden"].float()], -1)
    drop = torch.from_numpy(rng.random(len(ids)) < 0.2)
    x_img = head_inputs(feat, f["kpts"], f["boxes"], f["intr"])
    x_none = head_inputs(torch.zeros_like(feat), f["kpts"], f["boxes"], f["intr"], False)
    x = torch.where(drop[:, None], x_none, x_img)
    t = {k: f[k].float() for k in ("kpts", "boxes", "intr", "z", "rot6d", "log_zf", "root2d",
                                   "rel", "conf")}
    t["valid"] = f["valid"].bool()
    return x, t


def train_student(args: argparse.Namespace) -> Path:
    device = resolve_device(args.device)
    if device.type != "cpu":
        raise ValueError("the student's heads train on the CPU (the trunk pass is cached)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    prior = PosePrior.from_checkpoint(load_checkpoint(args.prior, "mp3d.prior"))
    prior.requires_grad_(False)
    ckpt_path = out / "student.pt"
    ckpt, start = None, 0
    decode = DecodeConfig()
    if args.resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, KIND)
        net, decode, _ = load_student(ckpt, ckpt_path)
        start = int(ckpt["step"])
    elif args.init:
        net, decode, _ = load_student(load_checkpoint(args.init, KIND), args.init)
    else:
        net = StudentNet(StudentConfig(input_size=args.input_size))
        net.trunk.load_state_dict(load_teacher_state())
    trunk_trained = ckpt is not None and "trunk_state_dict" in ckpt
    if args.adapt_trunk and ckpt is None:
        from mp3d.train.adapt import AdaptConfig, adapt_trunk, teacher_frames

        frames = teacher_frames(pool_sources(args), args.teacher_cache, args.teacher,
                                letterbox_shape(640, 480, net.cfg.input_size), args.frame_step)
        if not frames:
            raise ValueError("no frames with cached teacher outputs to adapt the trunk to")
        adapt_log = CsvLog(out / "adapt_log.csv", ["step", "loss", "score", "box", "kpt", "keep"])
        adapt_trunk(net.trunk, frames, AdaptConfig(steps=args.adapt_trunk), rng, adapt_log.write)
        trunk_trained = True
    elif args.init:
        trunk_trained = "trunk_state_dict" in load_checkpoint(args.init, KIND)
    net.eval().requires_grad_(False)
    params = list(net.features.parameters()) + list(net.head.parameters())
    for q in params:
        q.requires_grad_(True)
    real_path = out / "real_people.npz"
    key = _real_key(args, net.cfg, decode, _trunk_digest(net) if trunk_trained else "")
    if real_path.exists() and str(np.load(real_path)["key"]) == key:
        real = dict(np.load(real_path))
        real.pop("key")
    else:
        real = prepare_real(args, net, prior, args.posemap, decode)
        np.savez(real_path, key=np.array(key), **real)
    motion = args.motion or [str(Path("cache/mocap/lafan1/test.bvh"))]
    sources = [load_canonical(m) for m in motion]
    if not decode.refine_dims:
        decode = replace(decode, refine_dims=active_dims(prior, np.concatenate(sources)))
    W, H = letterbox_shape(640, 480, net.cfg.input_size)
    scfg = SceneConfig(width=W, height=H)
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        rng = np.random.default_rng([args.seed, start])
    weights = HeadLossWeights()

    def lr_at(s: int) -> float:
        warm = min(1.0, (s + 1) / max(1, min(100, args.steps // 10)))
        return args.lr * warm * 0.5 * (1 + math.cos(math.pi * min(1.0, s / args.steps)))

    def save(step: int) -> None:
        save_checkpoint(student_checkpoint(
            net, decode, prior.decoder, trunk_trained, step=step, optimizer=opt.state_dict(),
            data=[s.spec() for s in pool_sources(args)], motion=motion, init=args.init,
            posemap=str(args.posemap), prior=str(args.prior)), ckpt_path)

    log = CsvLog(out / "student_log.csv", LOG_FIELDS, resume=args.resume)
    n_syn = round(args.batch * args.synthetic_frac)
    n_real = args.batch - n_syn
    t0 = time.time()
    bar = tqdm(range(start, args.steps), desc="student heads", initial=start, total=args.steps)
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss, logs = torch.zeros(()), {}
        if n_syn:
            share = -(-1024 // len(sources))
            bank = np.concatenate([s[rng.integers(0, len(s), share)] for s in sources])
            syn = synthetic_people(augment(bank, rng, mirror_p=0.0, arm_swing_deg=150.0),
                                   max(1, n_syn // 4), scfg, prior, rng)
            x = head_inputs(torch.zeros(len(syn["kpts"]), feature_dim(net.cfg)), syn["kpts"],
                            syn["boxes"], syn["intr"], False)
            l_syn, logs_syn = synthetic_loss(net.head(x), syn, prior.decoder, weights)
            loss, logs = loss + l_syn, {**logs, **logs_syn}
        if n_real:
            x, t = _real_batch(real, rng.integers(0, len(real["kpts"]), n_real), net, rng)
            l_real, logs_real = real_loss(net.head(x), t, prior.decoder, weights,
                                          args.min_teacher_conf)
            loss, logs = loss + l_real, {**logs, **logs_real}
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        if step % 25 == 0 or step == args.steps - 1:
            log.write({"step": step, "loss": float(loss.detach()), "lr": lr_at(step), **logs})
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}",
                            syn=f"{logs.get('syn_mpjpe_mm', 0):.0f}mm")
        if (step + 1) % args.save_every == 0:
            save(step + 1)
    save(args.steps)
    plot_curves(out / "student_log.csv", out / "student_loss.png")
    print(f"trained {args.steps - start} steps in {time.time() - t0:.0f} s -> {ckpt_path}")
    return ckpt_path
