"""Training logs: CSV rows of scalars and a PNG of the loss curves."""

from __future__ import annotations

import csv
from pathlib import Path


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
