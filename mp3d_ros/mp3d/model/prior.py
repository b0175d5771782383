"""The generative pose embedding: a VAE over canonical 3D poses whose decoder only emits skeletons.

Canonical frame: root (pelvis) at the origin, camera-optical-like axes with y down, the person
facing -z, the person's right side at -x (see mp3d.common.skeleton.REST_POSE). The decoder does not
emit joint positions directly: it emits a unit direction per bone and one length per bone *type*
(left and right share lengths), and forward kinematics builds the joints. So every decoded pose is a
connected skeleton with exactly symmetric limbs, whatever the latent. A person in a scene is
`rotation @ decoder(z)`: orientation is handled explicitly, outside the latent (METHOD.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from mp3d.common import skeleton as sk


@dataclass(frozen=True)
class PriorConfig:
    latent_dim: int = 32
    hidden: int = 512
    blocks: int = 2
    # Gaussian likelihood scale of the reconstruction (m): the VAE's balance of fit against KL.
    recon_sigma: float = 0.02
    # Bone lengths may deviate from the training mean by at most exp(+-max_log_len).
    max_log_len: float = 0.35


def _topological_bones() -> list[tuple[int, int]]:
    """BONES ordered so that a parent joint is placed before its children."""
    order, placed = [], {sk.ROOT}
    todo = list(sk.BONES)
    while todo:
        for b in list(todo):
            if b[0] in placed:
                order.append(b)
                placed.add(b[1])
                todo.remove(b)
    return order


TOPO_BONES = _topological_bones()


def _ancestry() -> torch.Tensor:
    """(17, len(TOPO_BONES)) 0/1: which bones a joint's position sums, from the root."""
    a = torch.zeros(sk.NUM_JOINTS, len(TOPO_BONES))
    for i, (p, c) in enumerate(TOPO_BONES):
        a[c] = a[p]
        a[c, i] = 1.0
    return a
# Bone "types": a left bone shares its length with its right twin.
_TWIN = {l: r for r, l in sk.LR_PAIRS}
_TYPE_OF_CHILD: dict[int, int] = {}
for _, _c in sorted(sk.BONES, key=lambda b: b[1]):
    if _c not in _TWIN:
        _TYPE_OF_CHILD[_c] = len(set(_TYPE_OF_CHILD.values()))
for _l, _r in _TWIN.items():
    _TYPE_OF_CHILD[_l] = _TYPE_OF_CHILD[_r]
NUM_BONE_TYPES = len(set(_TYPE_OF_CHILD.values()))


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU(),
                                 nn.Linear(width, width), nn.LayerNorm(width), nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _mlp(n_in: int, n_out: int, hidden: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.SiLU(),
                         *[ResBlock(hidden) for _ in range(blocks)], nn.Linear(hidden, n_out))


class PoseDecoder(nn.Module):
    """z (..., D) -> canonical root-relative joints (..., 17, 3), metres."""

    def __init__(self, cfg: PriorConfig):
        super().__init__()
        self.cfg = cfg
        self.net = _mlp(cfg.latent_dim, 3 * len(TOPO_BONES) + NUM_BONE_TYPES, cfg.hidden,
                        cfg.blocks)
        self.register_buffer("mean_log_len", torch.zeros(NUM_BONE_TYPES))
        self.register_buffer("mean_dir", torch.zeros(len(TOPO_BONES), 3))
        self.register_buffer("child", torch.tensor([c for _, c in TOPO_BONES]))
        self.register_buffer("btype", torch.tensor([_TYPE_OF_CHILD[c] for _, c in TOPO_BONES]))
        # ancestry[j, i] = 1 where bone i lies on the path from the root to joint j: forward
        # kinematics of bone vectors is one matrix product (derived, not stored in checkpoints).
        self.register_buffer("ancestry", _ancestry(), persistent=False)
        # Start at the mean pose: the last layer begins at zero.
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out = self.net(z)
        nb = len(TOPO_BONES)
        dirs = out[..., :3 * nb].unflatten(-1, (nb, 3)) + self.mean_dir
        dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-6)
        log_len = self.mean_log_len + self.cfg.max_log_len * torch.tanh(out[..., 3 * nb:])
        lengths = log_len.exp()[..., self.btype]  # (..., nb)
        return torch.einsum("jb,...bd->...jd", self.ancestry, lengths[..., None] * dirs)


class PosePrior(nn.Module):
    """VAE: encoder (canonical pose -> posterior over z), decoder (z -> pose). The decoder is
    frozen after this stage and shared by the pose-map network and the image student."""

    def __init__(self, cfg: PriorConfig = PriorConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = _mlp(3 * sk.NUM_JOINTS, 2 * cfg.latent_dim, cfg.hidden, cfg.blocks)
        self.decoder = PoseDecoder(cfg)

    def set_statistics(self, poses: torch.Tensor) -> None:
        """Set the decoder's mean bone directions and lengths from canonical poses (N, 17, 3)."""
        p = poses[:, [c for _, c in TOPO_BONES]] - poses[:, [q for q, _ in TOPO_BONES]]
        length = p.norm(dim=-1).clamp_min(1e-4)
        mean_dir = (p / length[..., None]).mean(0)
        self.decoder.mean_dir.copy_(mean_dir / mean_dir.norm(dim=-1, keepdim=True))
        log_len = torch.zeros(NUM_BONE_TYPES)
        for t in range(NUM_BONE_TYPES):
            log_len[t] = length[:, self.decoder.btype == t].log().mean()
        self.decoder.mean_log_len.copy_(log_len)

    def encode(self, poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., 17, 3) canonical poses -> posterior mean and log-variance, (..., D) each."""
        assert poses.shape[-2:] == (sk.NUM_JOINTS, 3), poses.shape
        mu, logvar = self.encoder(poses.flatten(-2)).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 6.0)

    def forward(self, poses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(poses)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return self.decoder(z), mu, logvar

    def loss(self, poses: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Negative ELBO per pose (Gaussian likelihood with sigma = recon_sigma), and logs."""
        recon, mu, logvar = self(poses)
        sq = ((recon - poses) ** 2).sum((-1, -2))
        nll = sq / (2 * self.cfg.recon_sigma ** 2)
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(-1)
        mpjpe = (recon - poses).norm(dim=-1).mean()
        logs = {"nll": float(nll.detach().mean()), "kl": float(kl.detach().mean()),
                "mpjpe_mm": 1000.0 * float(mpjpe.detach())}
        return (nll + kl).mean(), logs

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n poses from the prior, (n, 17, 3)."""
        z = torch.randn(n, self.cfg.latent_dim, generator=generator)
        return self.decoder(z)

    def checkpoint(self, **extra) -> dict:
        """Self-describing checkpoint: config (plain types) beside the weights."""
        return {"kind": "mp3d.prior", "config": asdict(self.cfg), "state_dict": self.state_dict(),
                **extra}

    @staticmethod
    def from_checkpoint(ckpt: dict) -> PosePrior:
        if ckpt.get("kind") != "mp3d.prior":
            raise ValueError(f"not a pose-prior checkpoint (kind={ckpt.get('kind')!r})")
        model = PosePrior(PriorConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["state_dict"])
        return model.eval()


# --------------------------------------------------------------------------------------------
# Rotations: the orientation part of a person's code uses the continuous 6D representation.

def rot6d_to_matrix(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) rotation matrices by Gram-Schmidt on two columns (Zhou et al.)."""
    a, b = x[..., :3], x[..., 3:]
    c1 = a / a.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    b = b - (c1 * b).sum(-1, keepdim=True) * c1
    c2 = b / b.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    c3 = torch.cross(c1, c2, dim=-1)
    return torch.stack([c1, c2, c3], dim=-1)


def matrix_to_rot6d(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    return torch.cat([r[..., :, 0], r[..., :, 1]], dim=-1)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()
