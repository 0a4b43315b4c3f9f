"""Device and precision choices, the same code path for CPU and CUDA."""

from __future__ import annotations

import torch

from p2pcore.errors import P2PError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """`auto` is CUDA when present, else CPU; anything else must exist here. `key` names where the
    choice was made, for errors (a recipe key or a command-line option)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise P2PError(f"unknown device {name!r}", key=key,
                       hint='use "auto", "cpu", "cuda" or "cuda:N"') from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise P2PError("CUDA was asked for but is not available on this machine", key=key,
                       hint='use "auto" to fall back to the CPU')
    return device


def autocast(device: torch.device, precision: str) -> torch.autocast:
    dtype = DTYPES[precision]
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=precision != "fp32")
