"""Where models run: one ``--device`` policy for every stage (torch imported only when called)."""
from __future__ import annotations

from .errors import InputError


def resolve_device(device: str | None = "auto") -> str:
    """``auto`` → ``cuda`` when available, else ``mps``, else ``cpu``; an explicit choice
    (``cpu``, ``cuda``, ``cuda:N``, ``mps``) is checked. Raises InputError when it is unknown or absent."""
    import torch

    device = (device or "auto").lower()
    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "mps" if has_mps else "cpu"
    if not (device in ("cpu", "mps") or device == "cuda" or device.startswith("cuda:")):
        raise InputError(f"unknown --device {device!r}: use auto, cpu, cuda or mps")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available (use --device auto or cpu)")
    if device == "mps" and not has_mps:
        raise InputError("--device mps: MPS is not available (use --device auto or cpu)")
    return device
