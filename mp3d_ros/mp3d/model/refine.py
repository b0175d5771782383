"""3D that agrees with the 2D: each person's code, orientation and root refined against its 2D.

For N people at once, a fixed small number of Gauss-Newton steps (Levenberg-Marquardt damped)
minimise, per person,

    sum_j w_j |project(R decoder(z) + t)_j - k_j|^2 / s^2
      + code_weight |z - z0|^2 + prior_weight |z|^2,

over the code z (the prior's latent: the decoder only emits plausible skeletons), the orientation
R (an axis-angle increment on the current rotation) and the root t (its pixel and log depth),
where k_j are the trunk's own keypoints (COCO mapped to the skeleton), w_j their confidences (0
below DecodeConfig.min_kp_conf), s the person's 2D size and z0 the head's code. The code term
keeps what the head knows that the 2D does not say (which way a limb bends in depth); the prior
term keeps the pose plausible. Depth stays as ambiguous as monocular 2D makes it: a bigger person
farther away projects the same, so the root's distance comes from the decoded bone lengths.

Cost: the decoder's Jacobian once, by forward differences along the refined latent dimensions
(DecodeConfig.refine_dims: the prior's active ones) in one batched pass of N x (1 + K) codes,
then one decoder pass of N codes per further step; the rest in closed form (rotation, root and
projection derivatives) and one (K + 6) x (K + 6) solve per person.
"""

from __future__ import annotations

import torch

from mp3d.model.anchors import DecodeConfig

DAMPING = 1e-2   # Levenberg-Marquardt damping, relative to the diagonal of J^T J
FD_STEP = 1e-3   # forward-difference step of the decoder's Jacobian, in latent units


def skew(v: torch.Tensor) -> torch.Tensor:
    """[v]_x: (..., 3) -> (..., 3, 3) with [v]_x u = v x u."""
    x, y, z = v.unbind(-1)
    o = torch.zeros_like(x)
    return torch.stack([o, -z, y, z, o, -x, -y, x, o], -1).unflatten(-1, (3, 3))


def axis_angle_matrix(w: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle (..., 3) -> rotation matrices (..., 3, 3), smooth at 0."""
    theta2 = (w * w).sum(-1, keepdim=True)[..., None]
    k = skew(w)
    theta = torch.sqrt(theta2 + 1e-12)
    a = torch.where(theta2 > 1e-8, torch.sin(theta) / theta, 1 - theta2 / 6)
    b = torch.where(theta2 > 1e-8, (1 - torch.cos(theta)) / theta2.clamp_min(1e-12),
                    0.5 - theta2 / 24)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def _decode(z: torch.Tensor, dims: torch.Tensor, decoder: torch.nn.Module, jacobian: bool
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """decoder(z) (N, J, 3) and, with `jacobian`, its derivative along the latent dimensions
    `dims` (N, K, J, 3) by forward differences: one batched pass of N x (1 + K) codes."""
    if not jacobian:
        return decoder(z), None
    n, k = z.shape[0], len(dims)
    step = torch.zeros(k, z.shape[1], dtype=z.dtype, device=z.device)
    step[torch.arange(k), dims] = FD_STEP
    ys = decoder(torch.cat([z[:, None], z[:, None] + step], 1).reshape(n * (k + 1), -1))
    ys = ys.reshape(n, k + 1, -1, 3)
    return ys[:, 0], (ys[:, 1:] - ys[:, :1]) / FD_STEP


def _root(uvs: torch.Tensor, intr: torch.Tensor) -> torch.Tensor:
    """The root (N, 3) in the camera frame of its pixel and log depth uvs (N, 3)."""
    depth = torch.exp(uvs[:, 2])
    return torch.stack([(uvs[:, 0] - intr[:, 2]) / intr[:, 0] * depth,
                        (uvs[:, 1] - intr[:, 3]) / intr[:, 1] * depth, depth], -1)


def _jacobian(y: torch.Tensor, dy: torch.Tensor, rot: torch.Tensor, uvs: torch.Tensor,
              intr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projected joints (N, J, 2) of the canonical joints y (N, J, 3) turned by rot and placed
    at uvs (the root's pixel and log depth), and their Jacobian (N, J, 2, K + 6) with respect to
    (the K refined latent dimensions, whose decoder derivative is dy (N, K, J, 3), the
    axis-angle increment on rot, the root's u, v and log depth)."""
    fx, fy, cx, cy = (v[:, None] for v in intr.unbind(-1))
    root = _root(uvs, intr)
    x = torch.einsum("nij,nkj->nki", rot, y) + root[:, None]        # (N, J, 3)
    zc = x[..., 2].clamp_min(0.01)
    proj = torch.stack([fx * x[..., 0] / zc + cx, fy * x[..., 1] / zc + cy], -1)
    zero = torch.zeros_like(zc)
    dp_dx = torch.stack([torch.stack([fx / zc, zero, -fx * x[..., 0] / zc ** 2], -1),
                         torch.stack([zero, fy / zc, -fy * x[..., 1] / zc ** 2], -1)], -2)
    dx_dz = torch.einsum("nij,ndkj->nkid", rot, dy)                 # (N, J, 3, K)
    dx_dw = -rot[:, None] @ skew(y)                                  # (N, J, 3, 3)
    depth, z0 = root[:, 2], zero[:, 0]
    dt = torch.stack([torch.stack([depth / intr[:, 0], z0, z0], -1),
                      torch.stack([z0, depth / intr[:, 1], z0], -1), root], -1)  # d root/d uvs
    dx = torch.cat([dx_dz, dx_dw, dt[:, None].expand(-1, y.shape[1], -1, -1)], -1)
    return proj, dp_dx @ dx


def refine_people(z: torch.Tensor, rot: torch.Tensor, root: torch.Tensor, kp: torch.Tensor,
                  kp_conf: torch.Tensor, intr: torch.Tensor, decoder: torch.nn.Module,
                  cfg: DecodeConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refined (z (N, D), rot (N, 3, 3), root (N, 3)) of N people.

    z, rot, root: the head's estimate; kp (N, 17, 2) keypoints in the skeleton's joint order (NaN
    where none), kp_conf (N, 17); intr (N, 4). People with fewer than 4 trusted keypoints keep
    the head's estimate."""
    n, d = z.shape
    w = torch.where((kp_conf >= cfg.min_kp_conf) & torch.isfinite(kp).all(-1), kp_conf,
                    torch.zeros_like(kp_conf))
    kp = kp.nan_to_num()
    ok = (w > 0).sum(-1) >= 4
    if not bool(ok.any()):
        return z, rot, root
    seen = (w > 0)[..., None]
    hi = torch.where(seen, kp, torch.full_like(kp, -1e9)).amax(1)
    lo = torch.where(seen, kp, torch.full_like(kp, 1e9)).amin(1)
    size = torch.where(ok, (hi - lo).amax(-1), torch.ones_like(hi[:, 0])).clamp_min(1.0)
    sw = (w.sqrt() / size[:, None])[..., None]                       # (N, J, 1)
    uvs = torch.stack([root[:, 0] / root[:, 2] * intr[:, 0] + intr[:, 2],
                       root[:, 1] / root[:, 2] * intr[:, 1] + intr[:, 3],
                       torch.log(root[:, 2].clamp_min(0.01))], -1)
    z0 = z
    dims = torch.as_tensor(cfg.refine_dims or range(d), dtype=torch.long, device=z.device)
    k = len(dims)
    eye = torch.eye(k, dtype=z.dtype, device=z.device)
    dy = None
    for it in range(cfg.refine_steps):
        # The decoder's derivative is taken once, at the head's code (Gauss-Newton with a fixed
        # Jacobian of the decoder): the later steps cost one decoder pass of N codes each.
        y, d_new = _decode(z, dims, decoder, jacobian=it == 0)
        dy = d_new if d_new is not None else dy
        proj, jac = _jacobian(y, dy, rot, uvs, intr)
        r = ((proj - kp) * sw).reshape(n, -1)                        # (N, 2J)
        j2 = (jac * sw[..., None]).reshape(n, -1, k + 6)             # (N, 2J, P)
        jtj = j2.transpose(1, 2) @ j2
        jtr = (j2.transpose(1, 2) @ r[..., None])[..., 0]
        # the code terms: code_weight |z - z0|^2 + prior_weight |z|^2, on the refined dimensions
        zk, z0k = z[:, dims], z0[:, dims]
        jtj[:, :k, :k] += (cfg.refine_code_weight + cfg.refine_prior_weight) * eye
        jtr[:, :k] += cfg.refine_code_weight * (zk - z0k) + cfg.refine_prior_weight * zk
        damp = DAMPING * torch.diagonal(jtj, dim1=1, dim2=2).clamp_min(1e-6)
        step = -torch.linalg.solve(jtj + torch.diag_embed(damp), jtr[..., None])[..., 0]
        step = torch.where(ok[:, None], step, torch.zeros_like(step))
        z = z.index_add(1, dims, step[:, :k])
        rot = rot @ axis_angle_matrix(step[:, k:k + 3])
        uvs = uvs + step[:, k + 3:]
    return z, rot, _root(uvs, intr)
