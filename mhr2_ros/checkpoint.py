"""Checkpoints: safetensors tensors plus a JSON model config beside them.

    weights/NAME.safetensors   tensors only (no pickle: safe to open from anyone)
    weights/NAME.json          {"format": "mhr2_ros/1", "model": {ModelConfig fields}, ...}

Loading is strict: every missing key, unexpected key and shape mismatch is
named in one error. Random initialisation is never a silent fallback.

The two files are written one after the other (each atomically), so a crash between them
can leave new tensors beside the previous JSON. Both carry the same random `save_id` (the
safetensors metadata and the JSON): loading refuses a pair whose ids differ, also when only
one file has an id (a re-save over a checkpoint from before the id that died between its
files). A pair from before the id (the shipped weights among them) has none and is not checked.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from mhr2_ros.config import DEFAULT_WEIGHTS  # noqa: F401  (defined in config, which needs no torch: --help shows it)
from mhr2_ros.config import ModelConfig, from_dict
from mhr2_ros.errors import CheckpointError, ConfigError
from mhr2_ros.io.atomic import atomic_path, atomic_write

log = logging.getLogger(__name__)

FORMAT = "mhr2_ros/1"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl")


def config_path_for(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def save_checkpoint(
    model: torch.nn.Module, cfg: ModelConfig, path: Path, metadata: Optional[dict] = None
) -> Path:
    """Write NAME.safetensors, then NAME.json, each atomically and with the same save_id;
    returns the weights path."""
    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"checkpoint path must end in .safetensors, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_id = uuid.uuid4().hex  # pairs the two files (module docstring)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "save_id": save_id})
    # metadata may be copied from another checkpoint's JSON: its save_id must not win
    info = {"format": FORMAT, "model": cfg.to_dict(), **(metadata or {}), "save_id": save_id}
    with atomic_write(config_path_for(path), "w") as f:
        json.dump(info, f, indent=2)
    return path


def read_checkpoint_config(weights: Path) -> Tuple[ModelConfig, dict]:
    """ModelConfig and metadata from the JSON beside `weights`."""
    cfg_path = config_path_for(weights)
    if not cfg_path.is_file():
        raise CheckpointError(
            f"{weights}: its model config {cfg_path.name} is missing beside it; "
            "pass --config PRESET_OR_FILE to say which model these weights belong to"
        )
    try:
        info = json.loads(cfg_path.read_text())
        model_dict = info["model"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(
            f"{cfg_path}: not a mhr2_ros checkpoint config (expected JSON with a 'model' mapping): {exc}"
        ) from exc
    try:
        cfg = from_dict(ModelConfig, model_dict, source=str(cfg_path))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    return cfg, info


def read_tensors(weights: Path) -> Dict[str, torch.Tensor]:
    """Tensors of a .safetensors file; refuses pickle formats and names the problem."""
    weights = Path(weights)
    if weights.suffix in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{weights}: pickle-based checkpoints are never loaded (they can run code); "
            "expected a .safetensors file with a .json model config beside it"
        )
    if not weights.is_file():
        raise CheckpointError(
            f"weights file not found: {weights}; pass --weights PATH to a .safetensors checkpoint "
            "(or --random-init to run an untrained network on purpose)"
        )
    try:
        return load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{weights}: corrupted or not a safetensors file ({exc}); re-download or re-export it"
        ) from exc


def check_pair(weights: Path, info: dict) -> None:
    """Refuse a JSON written by another save than the tensors beside it (module docstring)."""
    ours = info.get("save_id")
    with safe_open(str(weights), framework="pt") as f:
        theirs = (f.metadata() or {}).get("save_id")
    if theirs != ours:  # neither has one: a pair from before the id
        raise CheckpointError(
            f"{weights} and {config_path_for(weights).name} come from different saves (save_id "
            f"{theirs or 'none'} vs {ours or 'none'}): a save was interrupted between its two files, "
            "or one was replaced; save the checkpoint again, or restore a pair written together"
        )


def config_differences(a: ModelConfig, b: ModelConfig) -> List[str]:
    """'field: a vs b' for every ModelConfig field that differs."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]} vs {db[k]}" for k in da if da[k] != db[k]]


def load_state_strict(
    model: torch.nn.Module, state: Dict[str, torch.Tensor], source: str, hint: str = "",
    fresh: Iterable[str] = (),
) -> None:
    """Load `state` into `model`, raising one CheckpointError that names every
    missing key, unexpected key and shape mismatch (`hint` ends the message).
    Keys in `fresh` (parts a configuration change added) may be missing: they keep
    their initialisation."""
    expected = model.state_dict()
    fresh = set(fresh) - set(state)
    missing = sorted(set(expected) - set(state) - fresh)
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if state[k].shape != expected[k].shape
    ]
    if missing or unexpected or mismatched:
        parts = [f"{source} does not match the model configuration:"]
        for title, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches", mismatched),
        ):
            if items:
                shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
                parts.append(f"  {title}: {shown}")
        parts.append(hint or "  (check that --config names the preset these weights were trained with)")
        raise CheckpointError("\n".join(parts))
    if fresh:
        log.info("%s: %d tensors start from their initialisation: %s", source, len(fresh),
                    ", ".join(sorted(fresh)[:4]) + (", ..." if len(fresh) > 4 else ""))
    model.load_state_dict(state, strict=not fresh)


def load_checkpoint(
    weights: Path, model_config: Optional[ModelConfig] = None
) -> Tuple[Dict[str, torch.Tensor], ModelConfig, dict]:
    """(tensors, model config, metadata). `model_config` overrides the JSON beside
    the weights (and must then match the tensors); the JSON's metadata (its inference
    settings, provenance) is kept when it is there, and every field the given config
    changes is logged: a different input size or depth reference changes the outputs."""
    weights = Path(weights)
    tensors = read_tensors(weights)
    if model_config is None:
        cfg, info = read_checkpoint_config(weights)
        check_pair(weights, info)
        return tensors, cfg, info
    try:
        own, info = read_checkpoint_config(weights)
    except CheckpointError:  # no (valid) JSON: the given config is all there is
        return tensors, model_config, {}
    check_pair(weights, info)
    diffs = config_differences(own, model_config)
    if diffs:
        log.warning("%s: the given model config differs from %s in %s (weights vs given)",
                    weights, config_path_for(weights).name, "; ".join(diffs))  # fmt: skip
    return tensors, model_config, info


def load_model(weights: Path, model_config: Optional[ModelConfig] = None) -> Tuple[torch.nn.Module, ModelConfig, dict]:
    """(network with the checkpoint's tensors, its config, the JSON's metadata), loaded strictly;
    `model_config` as in `load_checkpoint` (a mismatch names the differing config fields)."""
    from mhr2_ros.model import build_model  # the network modules import nothing from here

    tensors, cfg, metadata = load_checkpoint(Path(weights), model_config)
    model = build_model(cfg)
    hint = mismatch_hint(Path(weights), model_config) if model_config is not None else ""
    load_state_strict(model, tensors, source=str(weights), hint=hint)
    return model, cfg, metadata


def mismatch_hint(weights: Path, model_config: ModelConfig) -> str:
    """Which config fields differ from the JSON beside the weights, if there is one."""
    try:
        own, _ = read_checkpoint_config(Path(weights))
    except CheckpointError:
        return ""
    diffs = config_differences(own, model_config)
    if not diffs:
        return ""
    return f"  the given config differs from {config_path_for(weights).name} in: " + "; ".join(
        d.replace(" vs ", " (weights) vs ") + " (given)" for d in diffs
    )
