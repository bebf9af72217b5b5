"""The "machine:" line every benchmark prints: the CPU model (or GPU name) it ran on."""

from __future__ import annotations

import os
import platform


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what platform knows, with the core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{name}, {os.cpu_count()} cores"


def describe(device: str = "cpu") -> str:
    """The GPU's name for a CUDA device, else the CPU's; plus torch and its thread count."""
    import torch

    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"
    return f"{cpu_name()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads"
