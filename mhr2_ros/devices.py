"""Torch device names from users (CLI flags, configs, ROS parameters), checked with a clear error."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mhr2_ros.errors import ConfigError

if TYPE_CHECKING:
    import torch

AUTO = "auto"  # the GPU when there is one, else the CPU


def device_name(name: str, cuda_available: bool) -> str:
    """`name` with "auto" replaced: "cuda" when `cuda_available`, else "cpu"."""
    if name == AUTO:
        return "cuda" if cuda_available else "cpu"
    return name


def resolve_device(name: str) -> torch.device:
    """torch.device for `name` (auto, cpu, cuda, cuda:N; a GPU always with its index, as a tensor
    on it reports its device); ConfigError if invalid or if CUDA (or GPU N) is requested on a
    machine without it."""
    import torch  # here: device_name serves the ROS parameter checks, which the launch file runs without torch

    name = device_name(name, torch.cuda.is_available())
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: expected auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        check_gpu(device, torch.cuda.device_count() if torch.cuda.is_available() else 0)
        if device.index is None:  # named as its tensors report it (cuda:0), so the two compare equal
            device = torch.device("cuda", torch.cuda.current_device())
    return device


def check_gpu(device: torch.device, count: int) -> None:
    """ConfigError unless the CUDA `device` is one of the machine's `count` GPUs (without this,
    cuda:1 on a one-GPU machine fails at the first tensor with "invalid device ordinal")."""
    if count == 0:
        raise ConfigError(f"device {str(device)!r} requested but CUDA is not available; "
                          "use the device 'cpu' (or 'auto')")  # fmt: skip
    if device.index is not None and device.index >= count:
        raise ConfigError(f"device {str(device)!r} requested but this machine has {count} GPU(s): "
                          f"use cuda:0 .. cuda:{count - 1} (or 'cuda')")  # fmt: skip
