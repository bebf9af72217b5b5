"""Torch device names from users (CLI flags, configs), checked with a clear error."""

from __future__ import annotations

import torch

from mhr2_ros.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """torch.device for `name` (cpu, cuda, cuda:N); ConfigError if invalid or if CUDA
    is requested on a machine without it."""
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: expected cpu, cuda or cuda:N") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return device
