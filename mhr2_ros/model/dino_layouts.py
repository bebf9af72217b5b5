"""DINOv2 / DINOv3 weight-file layouts: how their keys name `ViTEncoder` tensors.

The layout is detected from the keys (after the prefix is removed):
- hf_dinov2    `embeddings.cls_token` and `encoder.layer.*` (Dinov2, Dinov2WithRegisters)
- hf_dinov3    `embeddings.cls_token` and `layer.*` (DINOv3ViT)
- meta_dinov3  `cls_token` and any of `storage_tokens`, `rope_embed.periods`, `*.bias_mask`
- meta_dinov2  `cls_token` otherwise

Key mapping, Meta layouts ({i} = block index, {p} = weight | bias). Our names are
Meta's DINOv2 names:

| ViTEncoder                | Meta DINOv2                | Meta DINOv3                         |
|---------------------------|----------------------------|-------------------------------------|
| cls_token                 | cls_token                  | cls_token                           |
| register_tokens           | register_tokens            | storage_tokens                      |
| pos_embed                 | pos_embed                  | (none: RoPE)                        |
| patch_embed.proj.{p}      | patch_embed.proj.{p}       | patch_embed.proj.{p}                |
| blocks.{i}.norm1.{p}      | blocks.{i}.norm1.{p}       | blocks.{i}.norm1.{p}                |
| blocks.{i}.attn.qkv.{p}   | blocks.{i}.attn.qkv.{p}    | blocks.{i}.attn.qkv.{p} (bias * bias_mask) |
| blocks.{i}.attn.proj.{p}  | blocks.{i}.attn.proj.{p}   | blocks.{i}.attn.proj.{p}            |
| blocks.{i}.ls1.gamma      | blocks.{i}.ls1.gamma       | blocks.{i}.ls1.gamma                |
| blocks.{i}.norm2.{p}      | blocks.{i}.norm2.{p}       | blocks.{i}.norm2.{p}                |
| blocks.{i}.mlp.fc1.{p}    | blocks.{i}.mlp.fc1.{p}     | blocks.{i}.mlp.fc1.{p}              |
| blocks.{i}.mlp.fc2.{p}    | blocks.{i}.mlp.fc2.{p}     | blocks.{i}.mlp.fc2.{p}              |
| blocks.{i}.ls2.gamma      | blocks.{i}.ls2.gamma       | blocks.{i}.ls2.gamma                |
| norm.{p}                  | norm.{p}                   | norm.{p}                            |
| (ignored)                 | mask_token                 | mask_token, rope_embed.periods, blocks.{i}.attn.qkv.bias_mask |

Key mapping, Hugging Face layouts (q, k, v are concatenated in that order into
qkv; a DINOv3 k_proj without bias gets a zero bias):

| ViTEncoder                | HF Dinov2 / Dinov2WithRegisters                  | HF DINOv3ViT                          |
|---------------------------|--------------------------------------------------|---------------------------------------|
| cls_token                 | embeddings.cls_token                             | embeddings.cls_token                  |
| register_tokens           | embeddings.register_tokens                       | embeddings.register_tokens            |
| pos_embed                 | embeddings.position_embeddings                   | (none: RoPE)                          |
| patch_embed.proj.{p}      | embeddings.patch_embeddings.projection.{p}       | embeddings.patch_embeddings.{p}       |
| blocks.{i}.norm1.{p}      | encoder.layer.{i}.norm1.{p}                      | layer.{i}.norm1.{p}                   |
| blocks.{i}.attn.qkv.{p}   | encoder.layer.{i}.attention.attention.query.{p}  | layer.{i}.attention.q_proj.{p}        |
|   (q; k; v)               | encoder.layer.{i}.attention.attention.key.{p}    | layer.{i}.attention.k_proj.{p}        |
|                           | encoder.layer.{i}.attention.attention.value.{p}  | layer.{i}.attention.v_proj.{p}        |
| blocks.{i}.attn.proj.{p}  | encoder.layer.{i}.attention.output.dense.{p}     | layer.{i}.attention.o_proj.{p}        |
| blocks.{i}.ls1.gamma      | encoder.layer.{i}.layer_scale1.lambda1           | layer.{i}.layer_scale1.lambda1        |
| blocks.{i}.norm2.{p}      | encoder.layer.{i}.norm2.{p}                      | layer.{i}.norm2.{p}                   |
| blocks.{i}.mlp.fc1.{p}    | encoder.layer.{i}.mlp.fc1.{p}                    | layer.{i}.mlp.up_proj.{p}             |
| blocks.{i}.mlp.fc2.{p}    | encoder.layer.{i}.mlp.fc2.{p}                    | layer.{i}.mlp.down_proj.{p}           |
| blocks.{i}.ls2.gamma      | encoder.layer.{i}.layer_scale2.lambda1           | layer.{i}.layer_scale2.lambda1        |
| norm.{p}                  | layernorm.{p}                                    | norm.{p}                              |
| (ignored)                 | embeddings.mask_token                            | embeddings.mask_token, rope_embeddings.inv_freq |
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

LAYOUTS = ("meta_dinov2", "meta_dinov3", "hf_dinov2", "hf_dinov3")

# Per-block keys that Meta DINOv2, Meta DINOv3 and ViTEncoder spell the same way.
_META_BLOCK = ("norm1.{p}", "attn.qkv.{p}", "attn.proj.{p}", "ls1.gamma",
               "norm2.{p}", "mlp.fc1.{p}", "mlp.fc2.{p}", "ls2.gamma")
_META_COMMON = (
    [("cls_token", "cls_token", None), ("patch_embed.proj.{p}", "patch_embed.proj.{p}", None)]
    + [(f"blocks.{{i}}.{k}", f"blocks.{{i}}.{k}", None) for k in _META_BLOCK]
    + [("norm.{p}", "norm.{p}", None)]
)


def _hf_rules(layer: str, patch: str, names: Dict[str, str], extra: list) -> list:
    """Hugging Face rules; `names` maps our block sub-module to theirs."""
    rules = [("embeddings.cls_token", "cls_token", None),
             ("embeddings.register_tokens", "register_tokens", None),
             (f"embeddings.{patch}.{{p}}", "patch_embed.proj.{p}", None)] + extra
    for part in "qkv":  # concatenated into qkv, in this order
        rules.append((f"{layer}.{{i}}.{names[part]}.{{p}}", "blocks.{i}.attn.qkv.{p}", part))
    for ours in ("norm1.{p}", "attn.proj.{p}", "ls1.gamma", "norm2.{p}",
                 "mlp.fc1.{p}", "mlp.fc2.{p}", "ls2.gamma"):
        theirs = names.get(ours, ours)
        rules.append((f"{layer}.{{i}}.{theirs}", f"blocks.{{i}}.{ours}", None))
    return rules


# Per layout: (file key template, ViTEncoder key template, qkv part or None).
# {i} is a block index, {p} is weight or bias. Mirrored in the module docstring.
RULES = {
    "meta_dinov2": _META_COMMON + [("register_tokens", "register_tokens", None),
                                   ("pos_embed", "pos_embed", None)],
    "meta_dinov3": _META_COMMON + [("storage_tokens", "register_tokens", None)],
    "hf_dinov2": _hf_rules(
        "encoder.layer", "patch_embeddings.projection",
        {"q": "attention.attention.query", "k": "attention.attention.key",
         "v": "attention.attention.value", "attn.proj.{p}": "attention.output.dense.{p}",
         "ls1.gamma": "layer_scale1.lambda1", "ls2.gamma": "layer_scale2.lambda1"},
        [("embeddings.position_embeddings", "pos_embed", None), ("layernorm.{p}", "norm.{p}", None)],
    ),
    "hf_dinov3": _hf_rules(
        "layer", "patch_embeddings",
        {"q": "attention.q_proj", "k": "attention.k_proj", "v": "attention.v_proj",
         "attn.proj.{p}": "attention.o_proj.{p}", "ls1.gamma": "layer_scale1.lambda1",
         "ls2.gamma": "layer_scale2.lambda1", "mlp.fc1.{p}": "mlp.up_proj.{p}",
         "mlp.fc2.{p}": "mlp.down_proj.{p}"},
        [("norm.{p}", "norm.{p}", None)],
    ),
}

# File keys that carry no encoder weight; returned to the caller, some checked.
IGNORED = {
    "meta_dinov2": ("mask_token",),
    "meta_dinov3": ("mask_token", "rope_embed.periods", "blocks.{i}.attn.qkv.bias_mask"),
    "hf_dinov2": ("embeddings.mask_token",),
    "hf_dinov3": ("embeddings.mask_token", "rope_embeddings.inv_freq"),
}



@lru_cache(maxsize=None)
def key_regex(template: str) -> re.Pattern:
    """'blocks.{i}.norm1.{p}' -> regex with named groups i (digits) and p (weight|bias)."""
    groups = {"{i}": r"(?P<i>\d+)", "{p}": r"(?P<p>weight|bias)"}
    pieces = re.split(r"(\{i\}|\{p\})", template)
    return re.compile("".join(groups.get(s, re.escape(s)) for s in pieces) + r"\Z")


def map_key(layout: str, key: str) -> Optional[Tuple[str, Optional[str]]]:
    """File key -> (ViTEncoder key, qkv part or None), or None when no rule matches."""
    for theirs, ours, part in RULES[layout]:
        match = key_regex(theirs).match(key)
        if match:
            return ours.format(**match.groupdict()), part
    return None


def expected_file_keys(layout: str, our_key: str) -> List[str]:
    """ViTEncoder key -> the file key(s) it is read from in `layout` (q, k, v for qkv)."""
    found = []
    for theirs, ours, _ in RULES[layout]:
        match = key_regex(ours).match(our_key)
        if match:
            found.append(theirs.format(**match.groupdict()))
    return found


def detect_layout(keys) -> str:
    """Which of LAYOUTS a (prefix-free) key set follows; see the module docstring."""
    keys = set(keys)
    if "embeddings.cls_token" in keys:
        hf2 = "embeddings.position_embeddings" in keys or any(k.startswith("encoder.layer.") for k in keys)
        return "hf_dinov2" if hf2 else "hf_dinov3"
    v3 = {"storage_tokens", "rope_embed.periods"} & keys or any(k.endswith(".bias_mask") for k in keys)
    return "meta_dinov3" if v3 else "meta_dinov2"
