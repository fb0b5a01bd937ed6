"""Choosing where the network runs, and at what precision."""

from __future__ import annotations

import contextlib

import torch

from .errors import DeviceError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
CLI_REMEDY = "Use --device cpu or auto."
"""What to do about an unavailable device, in the command line's words (see :class:`DeviceError`)."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; other names must be available."""
    name = (name or "auto").strip().lower()
    mps = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps is not None and mps.is_available())
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_ok else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DeviceError(f"Unknown device {name!r}.",
                          f"Use one of: {', '.join(DEVICE_CHOICES)} (or cuda:N).") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for, but this PyTorch sees no NVIDIA GPU.", CLI_REMEDY)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"There is no GPU {device}; this machine has {torch.cuda.device_count()}.",
                              "Use --device cuda, cpu or auto.")
    elif device.type == "mps" and not mps_ok:
        raise DeviceError("Apple MPS was asked for but is not available here.", CLI_REMEDY)
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Device {name!r} is not supported.", f"Use one of: {', '.join(DEVICE_CHOICES)}.")
    return device


def autocast(device: torch.device):
    """Mixed precision on CUDA (bfloat16 where supported, else float16); full fp32 elsewhere."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    """A short human description: the GPU's name or "CPU"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
