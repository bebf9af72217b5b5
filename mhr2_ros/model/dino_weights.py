"""Initialise a `ViTEncoder` from a local DINOv2 / DINOv3 backbone file (nothing is downloaded).

Files: `.safetensors` (read with the safetensors library) or `.pth` / `.pt` (read
with `torch.load(weights_only=True)`: a file holding anything but tensors is
refused, never unpickled). A file may wrap its state dict under "model",
"state_dict", "teacher", "student" or "module", and its keys may carry a prefix
such as "backbone." or "model." (found from the key ending in `cls_token`).

The layout and the key mapping of each layout: `dino_layouts.py`.

Loading is strict: every encoder tensor must come from the file with the same
shape, and every file tensor must be used or in the ignored row. Otherwise a
`CheckpointError` lists the file, the layout, each missing / unexpected key and
shape mismatch, and the ModelConfig fields that probably differ. RoPE periods
in the file (DINOv3) must equal the encoder's (`rope_base`, head width).
`encoder_heads` cannot be read from DINOv2 weights (no tensor depends on it): it
must match the backbone (ViT-S 6, ViT-B 12, ViT-L 16 heads).
SwiGLU-FFN backbones (DINOv3 ViT-7B / "plus", DINOv2 giant: mlp.w1/w2/w3,
mlp.w12, mlp.gate_proj, mlp.weights_in) are not supported: the encoder's MLP is
Linear-GELU-Linear.
"""


from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from mhr2_ros.errors import CheckpointError
from mhr2_ros.model.dino_layouts import IGNORED, detect_layout, expected_file_keys, key_regex, map_key
from mhr2_ros.model.rope import rope_periods
from mhr2_ros.model.tensor_files import PICKLE_SUFFIXES, load_safetensors, load_tensors_only

logger = logging.getLogger(__name__)

WHAT = "DINO backbone"  # the file's role, in error messages
_SWIGLU = re.compile(r"(^|\.)mlp\.(w1|w2|w3|w12|gate_proj|weights_in|weights_out)\.")
_WRAPPERS = ("model", "state_dict", "teacher", "student", "module")


# ----------------------------------------------------------------------------- reading
def read_state_dict(path: Path) -> Dict[str, torch.Tensor]:
    """A flat {name: tensor} from .safetensors or a tensors-only .pth / .pt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"DINO backbone file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return load_safetensors(path, WHAT)
    if suffix in PICKLE_SUFFIXES:
        return _as_state_dict(load_tensors_only(path, WHAT), path)
    raise CheckpointError(
        f"unsupported backbone file {path}: expected .safetensors, .pth or .pt, got {suffix!r}"
    )


def _as_state_dict(obj, path: Path, depth: int = 0) -> Dict[str, torch.Tensor]:
    """Accept {name: tensor}, or one wrapped under a usual key ("model", "teacher", ...)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if not bad:
        return {str(k): v for k, v in obj.items()}
    wrapped = [k for k in _WRAPPERS if isinstance(obj.get(k), Mapping)]
    if wrapped and depth == 0:
        return _as_state_dict(obj[wrapped[0]], path, depth + 1)
    shown = ", ".join(f"{k} ({type(obj[k]).__name__})" for k in bad[:5])
    raise CheckpointError(f"{path} is not a tensor state dict: non-tensor entries {shown}")


def _find_prefix(keys: List[str], path: Path) -> str:
    """The prefix before `embeddings.cls_token` / `cls_token` ("" when none)."""
    for anchor in ("embeddings.cls_token", "cls_token"):
        prefixes = [k[: -len(anchor)] for k in keys
                    if k.endswith(anchor) and (k == anchor or k[-len(anchor) - 1] == ".")]
        if prefixes:
            return min(prefixes, key=len)
    raise CheckpointError(
        f"{path} is not a DINOv2/DINOv3 ViT backbone: no cls_token key "
        f"(first keys: {sorted(keys)[:5]})"
    )


# -------------------------------------------------------------------------- converting
@dataclass
class _Converted:
    """A file's tensors renamed to ViTEncoder keys, plus what did not map."""

    tensors: Dict[str, torch.Tensor] = field(default_factory=dict)  # ViTEncoder key -> tensor
    sources: Dict[str, str] = field(default_factory=dict)  # ViTEncoder key -> file key(s)
    unexpected: List[str] = field(default_factory=list)  # file keys no rule maps (full names)
    ignored: Dict[str, torch.Tensor] = field(default_factory=dict)  # file key -> tensor
    problems: List[str] = field(default_factory=list)  # other reasons to refuse


def _convert(state: Dict[str, torch.Tensor], layout: str) -> _Converted:
    conv = _Converted()
    qkv_parts: Dict[str, Dict[str, Tuple[str, torch.Tensor]]] = {}  # qkv key -> part -> (file key, t)
    for key, tensor in state.items():
        if any(key_regex(t).match(key) for t in IGNORED[layout]):
            conv.ignored[key] = tensor
            continue
        hit = map_key(layout, key)
        if hit is None:
            conv.unexpected.append(key)
        elif hit[1] is None:
            conv.tensors[hit[0]], conv.sources[hit[0]] = tensor, key
        else:
            qkv_parts.setdefault(hit[0], {})[hit[1]] = (key, tensor)
    for ours, parts in qkv_parts.items():
        if ours.endswith(".bias") and "k" not in parts and "q" in parts and layout == "hf_dinov3":
            # DINOv3 has no key bias (a constant key bias cancels in the softmax)
            parts["k"] = ("(zeros)", torch.zeros_like(parts["q"][1]))
        if all(p in parts for p in "qkv"):
            conv.tensors[ours] = torch.cat([parts[p][1] for p in "qkv"], dim=0)
            conv.sources[ours] = " + ".join(parts[p][0] for p in "qkv")
        # an incomplete triple stays out: reported as missing, naming the absent file keys
    return conv


def _apply_bias_masks(conv: _Converted) -> None:
    """Meta DINOv3 multiplies the qkv bias by bias_mask (zero on k); bake it in."""
    for key, mask in conv.ignored.items():
        if not key.endswith(".attn.qkv.bias_mask"):
            continue
        bias_key = key[: -len("_mask")]  # Meta DINOv3 key == ViTEncoder key here
        bias = conv.tensors.get(bias_key)
        if bias is None:
            continue  # reported as a missing key
        if mask.shape != bias.shape or not torch.isfinite(mask).all():
            conv.problems.append(f"{key}: expected a finite mask of shape {tuple(bias.shape)}, "
                                 f"got shape {tuple(mask.shape)} (uninitialised mask?)")
            continue
        conv.tensors[bias_key] = bias * mask.to(bias.dtype)


def _check_rope_periods(encoder, conv: _Converted) -> None:
    """A DINOv3 file's RoPE periods must equal ours, or attention sees wrong positions."""
    cfg = encoder.cfg
    if cfg.pos_embed != "rope":
        return  # the missing pos_embed is reported instead
    if "rope_embed.periods" in conv.ignored:
        theirs = conv.ignored["rope_embed.periods"].float()
    elif "rope_embeddings.inv_freq" in conv.ignored:
        theirs = 1.0 / conv.ignored["rope_embeddings.inv_freq"].float()
    else:
        return
    ours = rope_periods(encoder.head_dim, cfg.rope_base)
    if theirs.shape != ours.shape:
        conv.problems.append(
            f"rope periods: the file has {theirs.numel()} per head (head width {4 * theirs.numel()}), "
            f"the model {ours.numel()} (head width {encoder.head_dim}): check encoder_heads "
            f"(config {cfg.encoder_heads}) and encoder_dim"
        )
    elif not torch.allclose(theirs, ours, rtol=1e-2, atol=0.0):  # files store them in bf16
        base = theirs[1].item() ** (encoder.head_dim / 4) if theirs.numel() > 1 else float("nan")
        conv.problems.append(
            f"rope periods differ from the model's: file base ~{base:.4g}, config rope_base "
            f"{cfg.rope_base}: check rope_base"
        )


# ----------------------------------------------------------------------- strict loading
def _field_hint(key: str) -> str:
    """The ModelConfig field(s) a shape mismatch of `key` most likely comes from."""
    for pattern, hint in (("pos_embed", "pos_embed_grid or encoder_dim"),
                          ("register_tokens", "num_registers or encoder_dim"),
                          ("patch_embed.proj.weight", "patch_size or encoder_dim"),
                          (".mlp.fc", "encoder_mlp_ratio or encoder_dim")):
        if pattern in key:
            return hint
    return "encoder_dim"


def _config_differences(cfg, tensors: Dict[str, torch.Tensor]) -> List[str]:
    """ModelConfig fields whose value the file's tensors contradict."""
    diffs = []

    def note(name, file_value, cfg_value):
        if file_value != cfg_value:
            diffs.append(f"{name} (file {file_value}, config {cfg_value})")

    if "cls_token" in tensors:
        note("encoder_dim", tensors["cls_token"].shape[-1], cfg.encoder_dim)
    blocks = [int(m.group(1)) for k in tensors if (m := re.match(r"blocks\.(\d+)\.", k))]
    note("encoder_depth", max(blocks, default=-1) + 1, cfg.encoder_depth)
    registers = tensors.get("register_tokens")
    note("num_registers", 0 if registers is None else registers.shape[1], cfg.num_registers)
    if "patch_embed.proj.weight" in tensors:
        note("patch_size", tensors["patch_embed.proj.weight"].shape[-1], cfg.patch_size)
    note("patch_embed", "linear", cfg.patch_embed)
    pos = tensors.get("pos_embed")
    note("pos_embed", "rope" if pos is None else "learned", cfg.pos_embed)
    if pos is not None and cfg.pos_embed == "learned":
        note("pos_embed_grid", math.isqrt(pos.shape[1] - 1), cfg.pos_embed_grid)
    fc1 = tensors.get("blocks.0.mlp.fc1.weight")
    if fc1 is not None:
        note("encoder_mlp_ratio", fc1.shape[0] / fc1.shape[1], cfg.encoder_mlp_ratio)
    return diffs


def _strict_report(encoder, conv: _Converted, layout: str, prefix: str, file_keys) -> List[str]:
    """Lines describing every missing / unexpected key and shape mismatch (empty if none)."""
    expected = encoder.state_dict()  # ViTEncoder key -> tensor
    missing, unexpected, mismatched = [], [], []
    for key, ref in expected.items():
        if key not in conv.tensors:
            absent = [prefix + k for k in expected_file_keys(layout, key) if k not in file_keys]
            missing.append(f"{key} (file key {', '.join(absent) or 'incomplete'})")
        elif tuple(conv.tensors[key].shape) != tuple(ref.shape):
            mismatched.append(
                f"{key}: file {tuple(conv.tensors[key].shape)} vs model {tuple(ref.shape)} "
                f"(file key {prefix}{conv.sources[key]}; check {_field_hint(key)})"
            )
    for key in conv.tensors:
        if key not in expected:
            unexpected.append(f"{prefix}{conv.sources[key]} (-> {key}, absent from this config)")
    unexpected += [f"{k} (no {layout} mapping)" for k in conv.unexpected]
    lines = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", mismatched), ("other problems", conv.problems)):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {item}" for item in items]
    if lines:
        diffs = _config_differences(encoder.cfg, conv.tensors)
        if diffs:
            lines.append("probable ModelConfig differences: " + "; ".join(diffs))
    return lines


def load_dino_backbone(encoder, path) -> List[str]:
    """Initialise `encoder` (a ViTEncoder) from a local DINOv2 / DINOv3 file, strictly.

    Returns the file keys that were deliberately ignored (mask token, DINOv3 bias
    masks and RoPE periods). Raises CheckpointError naming the file, the layout and
    every problem; the encoder is left untouched then.
    """
    path = Path(path)
    raw = read_state_dict(path)
    prefix = _find_prefix(list(raw), path)
    state = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
    layout = detect_layout(state)
    swiglu = [k for k in state if _SWIGLU.search(k)]
    if swiglu:
        raise CheckpointError(
            f"{path} ({layout}) is a SwiGLU feed-forward backbone (e.g. {prefix}{swiglu[0]}), "
            f"which is not supported: ViTEncoder's MLP is Linear-GELU-Linear (mlp.fc1/fc2). "
            f"Use a ViT-S/B/L DINOv2 or DINOv3 backbone (7B, 'plus' and giant use SwiGLU)."
        )
    conv = _convert(state, layout)
    # report full file names; keys outside the prefix belong to no backbone
    conv.unexpected = [prefix + k for k in conv.unexpected]
    conv.unexpected += [k for k in raw if not k.startswith(prefix)]
    _apply_bias_masks(conv)
    _check_rope_periods(encoder, conv)
    report = _strict_report(encoder, conv, layout, prefix, set(state))
    if report:
        where = f"layout {layout}" + (f", key prefix {prefix!r}" if prefix else "")
        raise CheckpointError(f"cannot load DINO backbone {path} ({where}):\n" + "\n".join(report))
    encoder.load_state_dict(conv.tensors, strict=True)  # copies, casting to the encoder dtype
    logger.info("initialised the encoder from %s (%s, %d tensors, %d ignored)",
                path, layout, len(conv.tensors), len(conv.ignored))
    return [prefix + k for k in conv.ignored]


__all__ = ["load_dino_backbone", "read_state_dict"]
