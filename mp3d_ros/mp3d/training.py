"""Training plumbing shared by every trainer: checkpoints, CSV logs, loss-curve PNGs, devices.

Checkpoints are plain dicts of tensors and plain Python values (a `kind`, the model's `config`,
`state_dict`, optimiser state, step), saved atomically and loaded with `weights_only=True`, so
loading never executes pickled code.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import torch


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' -> a device; a clear error if CUDA is asked for but
    absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available "
                           f"(torch {torch.__version__}); use --device cpu or auto")
    return torch.device(name)


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict:
    """Load a checkpoint safely (weights_only). Raises FileNotFoundError / ValueError with the path
    for a missing, corrupt or wrong-kind file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt files
        raise ValueError(f"checkpoint {path} is corrupt or not a torch file: {exc}") from exc
    if not isinstance(ckpt, dict) or "kind" not in ckpt:
        raise ValueError(f"checkpoint {path} is not an mp3d checkpoint (no 'kind')")
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"checkpoint {path} holds {ckpt['kind']!r}, expected {kind!r}")
    return ckpt


def load_weights(net: torch.nn.Module, state: dict, allow_missing: tuple[str, ...] = ()) -> None:
    """Strict load, except that weights under the `allow_missing` prefixes may be absent (they
    keep their fresh init). A checkpoint that does not fit raises ValueError, one line."""
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"checkpoint does not fit the network: {str(exc).splitlines()[-1]}"
                         ) from exc
    bad = [k for k in missing if not k.startswith(allow_missing)]
    if bad or unexpected:
        raise ValueError(f"checkpoint does not fit the network: missing {bad[:4]}, "
                         f"unexpected {list(unexpected)[:4]}")


class CsvLog:
    """Append rows of scalars to a CSV file (header written once; resumes append)."""

    def __init__(self, path: str | Path, fields: list[str], resume: bool = False):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fields = fields
        if not (resume and self.path.exists()):
            with self.path.open("w", newline="") as f:
                csv.writer(f).writerow(fields)

    def write(self, row: dict[str, float]) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([f"{row.get(k, float('nan')):.6g}" for k in self.fields])


def plot_curves(csv_path: str | Path, png_path: str | Path, x: str = "step") -> None:
    """One panel per logged column against `x`, log-scaled where positive, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    with Path(csv_path).open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    cols = [k for k in rows[0] if k != x]
    xs = np.array([float(r[x]) for r in rows])
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 2.8), squeeze=False)
    for ax, c in zip(axes[0], cols):
        ys = np.array([float(r[c]) for r in rows])
        ax.plot(xs, ys, lw=1)
        if np.all(ys[np.isfinite(ys)] > 0):
            ax.set_yscale("log")
        ax.set_title(c, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
