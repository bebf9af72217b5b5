"""2D rotary position embedding (RoPE) of DINOv3, applied to patch tokens only.

Why RoPE: it encodes relative patch positions inside attention and needs no
interpolation when the patch grid changes, so one network serves every aspect
ratio. This follows DINOv3's axial, parameter-free variant:

- each patch gets its centre coordinates (y, x), normalised per axis to [-1, 1]
  (`(i + 0.5) / Hp * 2 - 1`), so the range does not depend on the grid size;
- a head of width Dh is split into two halves that are rotated together
  ("rotate half" pairing: channel c is paired with channel c + Dh/2); the Dh/2
  rotation angles are Dh/4 frequencies for y followed by Dh/4 for x;
- frequency k has period `base ** (4k / Dh)` (k = 0 .. Dh/4-1), the same numbers
  DINOv3 stores as `rope_embed.periods`, and angle = 2*pi*coord / period.

CLS and register tokens, which come first in the sequence, are left untouched.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch


def rope_periods(head_dim: int, base: float) -> torch.Tensor:
    """(head_dim // 4,) float32 periods `base ** (4k / head_dim)`, as DINOv3's buffer."""
    if head_dim % 4:
        raise ValueError(f"rope needs a head width divisible by 4, got {head_dim}")
    # float64 then float32: the same rounding whatever the default dtype is
    exponents = torch.arange(head_dim // 4, dtype=torch.float64) * (4.0 / head_dim)
    return (float(base) ** exponents).to(torch.float32)


def patch_centre_coords(grid_hw: Tuple[int, int], device=None) -> torch.Tensor:
    """(Hp*Wp, 2) float32 (y, x) patch centres in [-1, 1], row-major like the tokens."""
    hp, wp = grid_hw
    ys = (torch.arange(hp, dtype=torch.float32, device=device) + 0.5) / hp
    xs = (torch.arange(wp, dtype=torch.float32, device=device) + 0.5) / wp
    grid = torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)  # (Hp, Wp, 2)
    return grid.reshape(hp * wp, 2) * 2.0 - 1.0


def rope_sin_cos(
    grid_hw: Tuple[int, int], head_dim: int, base: float, device=None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """sin and cos tables, each (Hp*Wp, head_dim) float32, for `apply_rope`."""
    coords = patch_centre_coords(grid_hw, device)  # (P, 2) in [-1, 1]
    periods = rope_periods(head_dim, base).to(device)  # (Dh/4,)
    angles = 2.0 * math.pi * coords[:, :, None] / periods[None, None, :]  # (P, 2, Dh/4)
    angles = angles.reshape(coords.shape[0], head_dim // 2)  # (P, Dh/2): y freqs, then x
    angles = torch.cat([angles, angles], dim=-1)  # (P, Dh): both halves of a pair share it
    return torch.sin(angles), torch.cos(angles)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(..., Dh) -> (..., Dh): [x1, x2] -> [-x2, x1], the 90-degree turn of each pair."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, sin: torch.Tensor, cos: torch.Tensor) -> torch.Tensor:
    """Rotate the last P tokens of x (B, heads, T, Dh); the T - P prefix tokens stay.

    sin, cos: (P, Dh) from `rope_sin_cos`. Computed in float32 so that bf16/fp16
    inference keeps accurate angles, then cast back to x's dtype.
    """
    num_patches = sin.shape[0]
    num_prefix = x.shape[-2] - num_patches
    if num_prefix < 0:
        raise ValueError(f"rope table has {num_patches} positions but only {x.shape[-2]} tokens")
    prefix, patches = x.split((num_prefix, num_patches), dim=-2)
    patches32 = patches.float()
    rotated = patches32 * cos + rotate_half(patches32) * sin
    return torch.cat([prefix, rotated.to(x.dtype)], dim=-2)


__all__ = ["rope_periods", "patch_centre_coords", "rope_sin_cos", "rotate_half", "apply_rope"]
