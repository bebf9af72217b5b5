"""Reading foreign weight files safely: tensors only, never arbitrary pickled objects.

Both foreign formats this project reads (DINO backbones, SAM2 checkpoints) come as
`.safetensors` or as PyTorch `.pth` / `.pt` pickles. Pickles are read with
`torch.load(weights_only=True)`, which refuses any object other than tensors and plain
containers; the refusal is reported with the one informative line of torch's long message.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict

import torch

from mhr2_ros.errors import CheckpointError

PICKLE_SUFFIXES = (".pth", ".pt")
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # torch colours parts of its weights-only message


def load_tensors_only(path: Path, what: str) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with a clear refusal.

    `what` names the file's role in the error ("DINO backbone", "SAM2 checkpoint").
    Returns whatever the file holds (tensors in dicts, lists, numbers, strings).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for objects, RuntimeError for bad zips, EOFError
        raise CheckpointError(
            f"refusing {path} as a {what}: torch.load(weights_only=True) cannot read it, so it "
            f"holds more than tensors (pickled objects are never loaded here) or is corrupted "
            f"({type(exc).__name__}: {weights_only_reason(exc)})"
        ) from exc


def load_safetensors(path: Path, what: str) -> Dict[str, torch.Tensor]:
    """All tensors of a .safetensors file on the CPU, with the file named in any error."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"cannot read {path} as a {what} (safetensors): {exc}") from exc


def weights_only_reason(exc: Exception) -> str:
    """The informative line of torch's long weights-only error, without terminal colours."""
    lines = [ANSI_COLOUR.sub("", ln).strip() for ln in str(exc).splitlines()]
    lines = [ln for ln in lines if ln]
    for i, line in enumerate(lines):
        if "Unsupported" in line:  # "Unsupported global: GLOBAL pkg.Class ..." / "operand"
            return line.split(" Please use")[0]  # drop torch's advice to allowlist classes
        if line.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return lines[i + 1]
    return lines[0] if lines else "no detail"
