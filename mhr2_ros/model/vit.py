"""ViT image encoder of the DINOv2 / DINOv3 family (paper, "Image Encoder").

The module and parameter names follow Meta's DINOv2 code (`patch_embed.proj`,
`cls_token`, `register_tokens`, `pos_embed`, `blocks.{i}.attn.qkv`, `ls1.gamma`,
`mlp.fc1`, `norm`, ...) so that a DINOv2/DINOv3 backbone maps onto it with a
plain renaming (see `dino_layouts.py`).

Token sequence: [CLS, registers..., patches (row-major)]. Position information:
- "learned" (DINOv2): a (1, 1 + G*G, D) table for CLS + a GxG patch grid,
  bicubically resized to the actual (Hp, Wp) grid, added to CLS and patches
  (registers get none, as in DINOv2 with registers);
- "rope" (DINOv3): 2D rotary embedding on the queries/keys of patch tokens
  inside every attention layer (`rope.py`).
Any aspect ratio works as long as both sides are multiples of the patch size.
"""

from __future__ import annotations

import logging
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mhr2_ros.config import ModelConfig
from mhr2_ros.model.rope import apply_rope, rope_sin_cos

logger = logging.getLogger(__name__)

# ImageNet statistics the DINO backbones were trained with: images enter the
# encoder as (rgb / 255 - PIXEL_MEAN) / PIXEL_STD.
PIXEL_MEAN = (0.485, 0.456, 0.406)
PIXEL_STD = (0.229, 0.224, 0.225)

LAYER_NORM_EPS = 1e-6  # DINOv2/v3 LayerNorm epsilon
DINOV2_INTERP_OFFSET = 0.1  # DINOv2's `interpolate_offset` for resizing the position table

RopeTables = Optional[Tuple[torch.Tensor, torch.Tensor]]  # (sin, cos), each (P, Dh)


class Mlp(nn.Module):
    """Linear-GELU-Linear, used by the ViT blocks, the decoder and the heads."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: Optional[int] = None):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim if out_dim is not None else in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel residual gain; a small init keeps deep ViTs stable at the start."""

    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class PatchEmbed(nn.Module):
    """Non-overlapping patch x patch pixels -> one token, by a strided convolution."""

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        feat = self.proj(images)  # (B, D, Hp, Wp)
        hp, wp = feat.shape[-2:]
        return feat.flatten(2).transpose(1, 2), (hp, wp)  # (B, Hp*Wp, D)


CONV_STEM_STRIDE = 2  # each stem convolution halves the resolution
CONV_STEM_GROUPS = 8  # GroupNorm groups in the stem (batch-size independent, unlike BatchNorm)


class ConvStem(nn.Module):
    """Overlapping 3x3 stride-2 convolutions (log2(patch) of them, widths doubling up
    to `dim`), then a 1x1 projection: one token per patch x patch pixels,
    like `PatchEmbed`. "Early convolutions help transformers see better" (Xiao et
    al., 2021): a ViT trained from scratch converges faster and more stably with it.
    Not DINO's layout: a DINO backbone needs the linear `PatchEmbed`."""

    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        n = patch_size.bit_length() - 1  # stride-2 convolutions: 16 px -> 4
        widths = [max(1, dim >> (n - 1 - i)) for i in range(n)]  # dim/8, dim/4, dim/2, dim for n = 4
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 3, CONV_STEM_STRIDE, 1, bias=False),
                       nn.GroupNorm(math.gcd(CONV_STEM_GROUPS, c_out), c_out), nn.GELU()]  # fmt: skip
            c_in = c_out
        self.stem = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c_in, dim, kernel_size=1)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        feat = self.proj(self.stem(images))  # (B, D, Hp, Wp)
        hp, wp = feat.shape[-2:]
        return feat.flatten(2).transpose(1, 2), (hp, wp)  # (B, Hp*Wp, D)


class Attention(nn.Module):
    """Multi-head self-attention with a fused qkv projection (DINO layout)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)  # rows: [q; k; v]
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope: RopeTables = None) -> torch.Tensor:
        b, t, d = x.shape  # (B, T tokens, D)
        qkv = self.qkv(x).reshape(b, t, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, T, Dh)
        if rope is not None:
            sin, cos = rope
            q, k = apply_rope(q, sin, cos), apply_rope(k, sin, cos)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, Dh)
        return self.proj(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    """Pre-norm transformer block: x + ls1(attn(norm1 x)), then x + ls2(mlp(norm2 x))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, ls_init: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.attn = Attention(dim, num_heads)
        self.ls1 = LayerScale(dim, ls_init)
        self.norm2 = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.ls2 = LayerScale(dim, ls_init)

    def forward(self, x: torch.Tensor, rope: RopeTables = None) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x), rope))
        return x + self.ls2(self.mlp(self.norm2(x)))


class ViTEncoder(nn.Module):
    """images (B, 3, H, W) normalised -> (cls (B, D), patches (B, Hp*Wp, D), (Hp, Wp))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        dim = cfg.encoder_dim
        self.patch_size = cfg.patch_size
        self.num_registers = cfg.num_registers
        self.head_dim = dim // cfg.encoder_heads
        stem = ConvStem if cfg.patch_embed == "conv" else PatchEmbed
        self.patch_embed = stem(cfg.patch_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        if cfg.num_registers > 0:
            self.register_tokens = nn.Parameter(torch.zeros(1, cfg.num_registers, dim))
        else:
            self.register_tokens = None
        if cfg.pos_embed == "learned":
            grid = cfg.pos_embed_grid
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, dim))
        else:
            self.pos_embed = None
        self.blocks = nn.ModuleList(
            Block(dim, cfg.encoder_heads, cfg.encoder_mlp_ratio, cfg.layerscale_init)
            for _ in range(cfg.encoder_depth)
        )
        self.norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)
        self._init_weights()

    def _init_weights(self) -> None:
        """DINO-style init (std 0.02 truncated normal); LayerScale keeps its own init."""
        nn.init.normal_(self.cls_token, std=0.02)
        if self.register_tokens is not None:
            nn.init.normal_(self.register_tokens, std=0.02)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def check_image_size(self, images: torch.Tensor) -> None:
        """Refuse what the patch grid cannot represent, naming the shape received."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W), got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(
                f"image height and width must be multiples of the patch size {self.patch_size}, "
                f"got images of shape {tuple(images.shape)} (H={h}, W={w})"
            )

    def learned_pos_embed(self, grid_hw: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """(cls_pos (1, 1, D), patch_pos (1, Hp*Wp, D)): the GxG table resized to the grid."""
        hp, wp = grid_hw
        g = self.cfg.pos_embed_grid
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        if (hp, wp) != (g, g):
            dim = patch_pos.shape[-1]
            table = patch_pos.reshape(1, g, g, dim).permute(0, 3, 1, 2)  # (1, D, G, G)
            # Meta's DINOv2 resamples with scale factors (n + 0.1) / G rather than a target
            # size (same output size, slightly different sample points): do the same so
            # pretrained DINOv2 weights see the positions they were trained with.
            scale = ((hp + DINOV2_INTERP_OFFSET) / g, (wp + DINOV2_INTERP_OFFSET) / g)
            # bicubic in float32: bf16 interpolation is not supported everywhere
            table = F.interpolate(table.float(), scale_factor=scale, mode="bicubic",
                                  align_corners=False)
            table = table[:, :, :hp, :wp]  # floor(G * scale) is hp / wp; guard rounding
            patch_pos = table.to(cls_pos.dtype).permute(0, 2, 3, 1).reshape(1, hp * wp, dim)
        return cls_pos, patch_pos

    def prepare_tokens(self, images: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """images -> tokens (B, 1 + R + Hp*Wp, D) = [cls, registers, patches], grid."""
        patches, grid_hw = self.patch_embed(images)  # (B, Hp*Wp, D)
        b = patches.shape[0]
        cls = self.cls_token.expand(b, -1, -1)  # (B, 1, D)
        if self.pos_embed is not None:
            cls_pos, patch_pos = self.learned_pos_embed(grid_hw)
            cls, patches = cls + cls_pos, patches + patch_pos
        parts = [cls]
        if self.register_tokens is not None:
            parts.append(self.register_tokens.expand(b, -1, -1))  # (B, R, D)
        parts.append(patches)
        return torch.cat(parts, dim=1), grid_hw

    def forward(
        self, images: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        self.check_image_size(images)
        x, grid_hw = self.prepare_tokens(images)  # (B, T, D)
        rope = None
        if self.cfg.pos_embed == "rope":
            # one (sin, cos) table per forward, shared by every block
            rope = rope_sin_cos(grid_hw, self.head_dim, self.cfg.rope_base, x.device)
        for block in self.blocks:
            x = block(x, rope)
        x = self.norm(x)
        cls = x[:, 0]  # (B, D)
        patches = x[:, 1 + self.num_registers :]  # (B, Hp*Wp, D)
        return cls, patches, grid_hw


__all__ = ["ViTEncoder", "Mlp", "PIXEL_MEAN", "PIXEL_STD", "LAYER_NORM_EPS"]
