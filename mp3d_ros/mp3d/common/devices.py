"""Devices: 'cpu', 'cuda', 'cuda:N' or 'auto' resolved, with one clear error where CUDA is absent.
"""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """A device was asked for that this machine does not have (CUDA absent, GPU index too high)."""


def resolve_device(name: str) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (CUDA when available, else the CPU) -> a device.
    DeviceUnavailableError (one line) when CUDA is asked for but absent, ValueError for a name
    torch does not know."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:  # torch's own message lists every device type it knows
        raise ValueError(f"unknown device {name!r}: use cpu, cuda, cuda:N or auto") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"device {name!r} requested but CUDA is not available "
                                     f"(torch {torch.__version__}); use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(f"device {name!r} requested but this machine has "
                                     f"{torch.cuda.device_count()} CUDA device(s)")
    return dev
