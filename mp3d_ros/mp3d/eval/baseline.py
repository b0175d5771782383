"""The supervised lifting peer (Martinez et al. 2017): an MLP from one person's 2D joints to its
root-relative 3D joints, trained on the same motion, cameras and teacher corruption as P.

It is given each person's keypoints already grouped (a top-down advantage P does not get). Input:
the 17 COCO keypoints as camera rays relative to the person's hip-centre ray, scaled by the
person's ray extent, with their confidences, plus the hip-centre ray (53 numbers). Output: 17
root-relative joints in the camera frame, metres. Two residual blocks of 1024 units, batch norm,
ReLU, dropout 0.5, as in the paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mp3d.common import skeleton as sk
from mp3d.data.scenes.batch import teacher_found


@dataclass(frozen=True)
class BaselineConfig:
    width: int = 1024
    blocks: int = 2
    dropout: float = 0.5


class _Block(nn.Module):
    def __init__(self, w: int, p: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(w, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Dropout(p),
                                 nn.Linear(w, w), nn.BatchNorm1d(w), nn.ReLU(), nn.Dropout(p))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class LiftingMLP(nn.Module):
    IN = 17 * 3 + 2
    OUT = sk.NUM_JOINTS * 3

    def __init__(self, cfg: BaselineConfig = BaselineConfig()):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(nn.Linear(self.IN, cfg.width), nn.BatchNorm1d(cfg.width),
                                 nn.ReLU(), nn.Dropout(cfg.dropout),
                                 *[_Block(cfg.width, cfg.dropout) for _ in range(cfg.blocks)],
                                 nn.Linear(cfg.width, self.OUT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 53) features -> (N, 17, 3) root-relative joints."""
        return self.net(x).unflatten(-1, (sk.NUM_JOINTS, 3))

    def checkpoint(self, **extra) -> dict:
        return {"kind": "mp3d.baseline", "config": asdict(self.cfg),
                "state_dict": self.state_dict(), **extra}

    @staticmethod
    def from_checkpoint(ckpt: dict) -> LiftingMLP:
        if ckpt.get("kind") != "mp3d.baseline":
            raise ValueError(f"not a baseline checkpoint (kind={ckpt.get('kind')!r})")
        m = LiftingMLP(BaselineConfig(**ckpt["config"]))
        m.load_state_dict(ckpt["state_dict"])
        return m.eval()


def person_features(kp: np.ndarray, conf: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """kp (N, 17, 2) COCO pixels, conf (N, 17), intrinsics (N, 4) -> (N, 53) features."""
    assert kp.shape[1:] == (17, 2) and conf.shape == kp.shape[:2], (kp.shape, conf.shape)
    fx, fy, cx, cy = (intrinsics[:, i, None] for i in range(4))
    ok = (conf > 0) & np.isfinite(kp).all(-1)
    k = np.where(ok[..., None], kp, 0.0)
    rays = np.stack([(k[..., 0] - cx) / fx, (k[..., 1] - cy) / fy], -1)
    hip = np.zeros(17, bool)
    hip[[sk.COCO_INDEX["l_hip"], sk.COCO_INDEX["r_hip"]]] = True
    has_hip = (ok & hip).any(1)
    w = (ok & np.where(has_hip[:, None], hip[None], True)).astype(np.float64)  # hips, else all
    root = (rays * w[..., None]).sum(1) / np.maximum(w.sum(1), 1)[:, None]
    rel = np.where(ok[..., None], rays - root[:, None], 0.0)
    ext = np.sqrt((rel ** 2).sum(-1).max(1))
    rel = rel / np.maximum(ext, 1e-4)[:, None, None]
    feats = np.concatenate([rel.reshape(len(kp), -1), np.where(ok, conf, 0.0), root], axis=1)
    return feats.astype(np.float32)


def scene_people(batch, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Features and root-relative targets of the real people of a SceneBatch selected by mask
    (B, P) -> (N, 53), (N, 17, 3)."""
    P = mask.shape[1]
    b, p = np.nonzero(mask)
    feats = person_features(batch.teacher_kp[:, :P][b, p], batch.teacher_conf[:, :P][b, p],
                            batch.intrinsics[b])
    j = batch.joints_cam[b, p]
    return feats, (j - j[:, sk.ROOT:sk.ROOT + 1]).astype(np.float32)


def train_baseline(poses: np.ndarray, steps: int, rng: np.random.Generator, scene_cfg,
                   scenes_per_step: int = 48, lr: float = 1e-3, progress: bool = True
                   ) -> LiftingMLP:
    """Train the MLP on people of synthetic scenes built from `poses` (canonical, (N, 17, 3))
    with the same augmentation, cameras and teacher corruption as P."""
    from tqdm import tqdm

    from mp3d.data.posebank import augment
    from mp3d.data.scenes.sample import sample_scenes

    model = LiftingMLP()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in tqdm(range(steps), desc="baseline", disable=not progress):
        bank = augment(poses[rng.integers(0, len(poses), 2048)], rng, mirror_p=0.0)
        batch = sample_scenes(bank, scenes_per_step, scene_cfg, rng)
        x, y = scene_people(batch, teacher_found(batch))
        pred = model(torch.from_numpy(x))
        loss = (pred - torch.from_numpy(y)).norm(dim=-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model.eval()
