"""Drawings: 2D skeletons on images and 3D skeleton views, as numpy RGB or matplotlib axes."""

from __future__ import annotations

import cv2
import numpy as np

from mp3d.common import skeleton as sk


def _rgb255(c: tuple[float, float, float]) -> tuple[int, int, int]:
    return tuple(int(round(255 * v)) for v in c)


def draw_skeleton_2d(img: np.ndarray, kp: np.ndarray, conf: np.ndarray | None = None,
                     min_conf: float = 0.0, thickness: int = 2,
                     colour: tuple[float, float, float] | None = None) -> np.ndarray:
    """Draw one 17-joint skeleton (kp (17, 2) px) on an RGB image in place; returns the image."""
    assert kp.shape == (sk.NUM_JOINTS, 2), kp.shape
    ok = np.isfinite(kp).all(-1) & (conf >= min_conf if conf is not None else True)
    for p, c in sk.BONES:
        if ok[p] and ok[c]:
            col = _rgb255(colour or sk.JOINT_COLOURS[c])
            cv2.line(img, tuple(int(v) for v in kp[p]), tuple(int(v) for v in kp[c]), col,
                     thickness, cv2.LINE_AA)
    for j in np.nonzero(ok)[0]:
        cv2.circle(img, tuple(int(v) for v in kp[j]), thickness + 1,
                   _rgb255(colour or sk.JOINT_COLOURS[j]), -1, cv2.LINE_AA)
    return img


def plot_skeleton_3d(ax, joints: np.ndarray, colour=None, lw: float = 1.5) -> None:
    """Plot one skeleton (17, 3) in camera optical coordinates on a matplotlib 3D axis, drawn
    upright (optical y down is plotted as up = -y, depth z as the plot's depth axis)."""
    for p, c in sk.BONES:
        a, b = joints[p], joints[c]
        ax.plot([a[0], b[0]], [a[2], b[2]], [-a[1], -b[1]], color=colour or sk.JOINT_COLOURS[c],
                lw=lw)


def plot_skeleton_front(ax, joints: np.ndarray, colour=None, lw: float = 1.5) -> None:
    """Front view (x right, up = -y) of one root-relative skeleton (17, 3) on a 2D axis."""
    for p, c in sk.BONES:
        a, b = joints[p], joints[c]
        ax.plot([a[0], b[0]], [-a[1], -b[1]], color=colour or sk.JOINT_COLOURS[c], lw=lw)
    ax.set_aspect("equal")
    ax.axis("off")


def pose_grid_png(rows: dict[str, np.ndarray], path: str, side: bool = True) -> None:
    """A PNG grid: one row per named set of root-relative poses (K, 17, 3), front view (and a side
    view below each when `side`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(v) for v in rows.values())
    nr = len(rows) * (2 if side else 1)
    fig, axes = plt.subplots(nr, cols, figsize=(1.3 * cols, 1.9 * nr), squeeze=False)
    for r, (name, poses) in enumerate(rows.items()):
        for c in range(cols):
            for k in range(2 if side else 1):
                ax = axes[r * (2 if side else 1) + k, c]
                if c >= len(poses):
                    ax.axis("off")
                    continue
                p = poses[c] if k == 0 else poses[c][:, [2, 1, 0]] * [-1, 1, 1]
                plot_skeleton_front(ax, p)
                ax.set_xlim(-1, 1)
                ax.set_ylim(-1.0, 1.0)
        axes[r * (2 if side else 1), 0].set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
