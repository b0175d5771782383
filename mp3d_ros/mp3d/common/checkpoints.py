"""Training plumbing shared by every trainer: checkpoints, CSV logs, loss-curve PNGs, devices.

Checkpoints are plain dicts of tensors and plain Python values (a `kind`, the model's `config`,
`state_dict`, optimiser state, step), saved atomically and loaded with `weights_only=True`, so
loading never executes pickled code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from mp3d.common.paths import check_shipped


def save_checkpoint(ckpt: dict, path: str | Path) -> None:
    """Write atomically (temp file + rename), so a crash never leaves half a checkpoint."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch.load failed on `path`, in one line, from the file's first bytes and the error."""
    with path.open("rb") as f:
        head = f.read(4)
    size = path.stat().st_size
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        return (f"checkpoint {path} is corrupt or not a torch checkpoint ({size} bytes, not a "
                "zip archive)")
    refused = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
    if refused:  # a pickled object weights_only will not build: its code never runs
        return (f"checkpoint {path} holds a pickled {refused.group(1)}, not only tensors and "
                "plain values: refused by the safe loader (weights_only)")
    return (f"checkpoint {path} is corrupt: truncated or damaged ({size} bytes, "
            f"{type(exc).__name__})")


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict:
    """Load a checkpoint safely (weights_only). A shipped model at its default location must
    have the model card's SHA-256 (mp3d.common.paths.check_shipped). Raises FileNotFoundError /
    ValueError, one line naming the path, for a missing, damaged, replaced, foreign or wrong-kind
    file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise ValueError(f"checkpoint {path} is not a file")
    check_shipped(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (RuntimeError, UnpicklingError, EOFError..)
        raise ValueError(_unreadable(path, exc)) from exc
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("kind"), str):
        what = "a dict without a 'kind'" if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}"
        raise ValueError(f"checkpoint {path} is not an mp3d checkpoint (it holds {what})")
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"checkpoint {path} holds {ckpt['kind']!r}, expected {kind!r}")
    return ckpt


def load_weights(net: torch.nn.Module, state: dict, allow_missing: tuple[str, ...] = (),
                 source: str | Path = "checkpoint") -> None:
    """Strict load, except that weights under the `allow_missing` prefixes may be absent (they
    keep their fresh init). Weights that do not fit raise ValueError, one line starting with
    `source` (the checkpoint's path, or what the weights are)."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source} does not fit the network: its weights are not a dict of "
                         "tensors")
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise ValueError(f"{source} does not fit the network: {str(exc).splitlines()[-1].strip()}"
                         ) from exc
    bad = [k for k in missing if not k.startswith(allow_missing)]
    if bad or unexpected:
        raise ValueError(f"{source} does not fit the network: missing {bad[:4]}, "
                         f"unexpected {list(unexpected)[:4]}")
