"""Resumable training state without pickle: tensors in safetensors, the rest in JSON.

    OUT/last.safetensors  model.*, optimizer.<param>.<name>, rng.torch, rng.cuda, ema.* (a weight average)
    OUT/last.json         step, optimizer param groups, scheduler, numpy and data RNG states

Both are written atomically; the JSON is written last and names the tensors file,
so a crash between the two leaves the previous pair valid.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict

import torch
from safetensors.torch import load_file, save_file

from mhr2_ros.checkpoint import load_state_strict
from mhr2_ros.errors import CheckpointError
from mhr2_ros.io.atomic import atomic_path, atomic_write

log = logging.getLogger(__name__)

STATE_FORMAT = "mhr2_ros-train/1"


def _flatten_optimizer(opt: torch.optim.Optimizer) -> Dict[str, torch.Tensor]:
    tensors = {}
    for index, entry in opt.state_dict()["state"].items():
        for name, value in entry.items():
            tensors[f"optimizer.{index}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    return tensors


def _unflatten_optimizer(tensors: Dict[str, torch.Tensor]) -> Dict[int, Dict[str, torch.Tensor]]:
    state: Dict[int, Dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    return state


def save_state(out: Path, model, optimizer, scheduler, step: int, extra: Dict, ema=None) -> Path:
    """Write the resumable state; `extra` is JSON (numpy / data-stream RNG states); `ema`, a
    training.ema.WeightAverage, adds its tensors and update count."""
    out = Path(out)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update(_flatten_optimizer(optimizer))
    if ema is not None:
        tensors.update(ema.state_tensors())
        extra = {**extra, "ema_updates": ema.updates}
    tensors["rng.torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    tensors_path = out / f"state_{step:08d}.safetensors"
    with atomic_path(tensors_path) as tmp:
        save_file(tensors, str(tmp))
    info = {
        "format": STATE_FORMAT, "step": step, "tensors": tensors_path.name,
        "param_groups": optimizer.state_dict()["param_groups"], "scheduler": scheduler.state_dict(),
        **extra,
    }  # fmt: skip
    with atomic_write(out / "last.json", "w") as f:
        json.dump(info, f)
    for old in out.glob("state_*.safetensors"):  # keep only the state last.json names
        if old.name != tensors_path.name:
            old.unlink()
    return out / "last.json"


def load_state(path: Path, model, optimizer, scheduler, ema=None) -> Dict:
    """Restore model, optimizer, scheduler, torch RNG and `ema` (a WeightAverage, when the run
    keeps one) from OUT/last.json; returns the JSON (step, extra states) for the caller to
    restore the rest. A state saved without an average starts `ema` again at the restored weights."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.json"
    try:
        info = json.loads(path.read_text())
        tensors = load_file(str(path.parent / info["tensors"]))
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"cannot resume from {path}: {exc}") from exc
    if info.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a training state (format {info.get('format')!r})")
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state_strict(model, model_state, source=str(path))
    optimizer.load_state_dict({"state": _unflatten_optimizer(tensors), "param_groups": info["param_groups"]})
    scheduler.load_state_dict(info["scheduler"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    if ema is not None and "ema_updates" in info:
        try:
            ema.load_state_tensors(tensors, info["ema_updates"], str(path))
        except ValueError as exc:
            raise CheckpointError(str(exc)) from exc
    elif ema is not None:
        log.warning("%s holds no weight average (saved without ema_decay): it starts again at step %d",
                    path, info["step"])
        ema.restart(model)
    return info
