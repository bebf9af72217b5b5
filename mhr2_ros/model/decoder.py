"""DETR-style decoder: learned human queries attend to the image tokens (paper, "Decoder").

Each of `decoder_depth` pre-norm blocks holds self-attention between the queries
(so that queries can agree on who detects which person), cross-attention from
the queries to the image tokens, and an MLP. The image tokens carry a fixed 2D
sine-cosine encoding of their patch position, added to the attention keys only:
the values stay pure image content. The encoding uses per-axis normalised
coordinates, as DETR does, so it is defined for any grid shape and a position is
expressed as a fraction of the image width / height, like the predicted pelvis
location (`heads.py`).
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mhr2_ros.config import ModelConfig
from mhr2_ros.errors import ConfigError
from mhr2_ros.model.vit import Mlp


def sincos_encode_points(xy: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """(L, 2) points (x, y) as fractions of the image width / height -> (L, dim) DETR
    sine encoding: first half y, second half x. Coordinates are scaled to (0, 2*pi);
    each axis uses dim/4 frequencies `temperature ** (-k / (dim/4))`, as [sin..., cos...]."""
    if dim % 4:
        raise ValueError(f"2D sine-cosine encoding needs a width divisible by 4, got {dim}")
    n_freq = dim // 4
    inv_freq = temperature ** (-torch.arange(n_freq, dtype=torch.float32, device=xy.device) / n_freq)
    angles = xy.float()[:, :, None] * (2 * math.pi) * inv_freq  # (L, 2, dim/4)
    enc = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (L, 2, dim/2): x then y
    return torch.cat([enc[:, 1], enc[:, 0]], dim=-1)


def sincos_pos_embed_2d(
    grid_hw: Tuple[int, int], dim: int, device=None, temperature: float = 10000.0
) -> torch.Tensor:
    """(Hp*Wp, dim) float32 encoding of the patch centres (`sincos_encode_points`)."""
    hp, wp = grid_hw
    ys = (torch.arange(hp, dtype=torch.float32, device=device) + 0.5) / hp
    xs = (torch.arange(wp, dtype=torch.float32, device=device) + 0.5) / wp
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (Hp, Wp, 2) as (x, y)
    return sincos_encode_points(grid.reshape(-1, 2), dim, temperature)


class MultiHeadAttention(nn.Module):
    """Attention with separate q/k/v projections, for both self- and cross-attention."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, L, D) -> (B, heads, L, Dh)
        b, n, d = x.shape
        return x.reshape(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """query (B, N, D), key / value (B, L, D) -> (B, N, D)."""
        q = self._split(self.q_proj(query))
        k = self._split(self.k_proj(key))
        v = self._split(self.v_proj(value))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, heads, N, Dh)
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, -1))


class DecoderBlock(nn.Module):
    """Pre-norm: queries += self-attn; += cross-attn to the image; += MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = MultiHeadAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = MultiHeadAttention(dim, num_heads)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(
        self, queries: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor, query_pos=None,
    ) -> torch.Tensor:
        """queries (B, N, Dd), memory (B, P, Dd), memory_pos (1, P, Dd), query_pos (1, N, Dd)
        or None (the encoding of each query's reference point) -> (B, N, Dd)."""
        h = self.norm1(queries)
        queries = queries + self.self_attn(h, h, h)
        h = self.norm2(queries)
        q = h if query_pos is None else h + query_pos
        queries = queries + self.cross_attn(q, memory + memory_pos, memory)
        return queries + self.mlp(self.norm3(queries))


class DetrDecoder(nn.Module):
    """Encoder patch tokens (B, Hp*Wp, De) + grid -> decoded queries (B, N, Dd)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.decoder_dim % 4:
            raise ConfigError(f"decoder_dim must be divisible by 4 (2D positional encoding), "
                              f"got {cfg.decoder_dim}")
        dim = cfg.decoder_dim
        # paper: "a linear layer maps the obtained image features to the dimension of the decoder"
        self.input_proj = nn.Linear(cfg.encoder_dim, dim)
        # N(0, 1) like DETR's nn.Embedding; each query is a learned detection slot
        self.query_embed = nn.Parameter(torch.randn(cfg.num_queries, dim))
        if cfg.query_points:  # logits of (x, y) image fractions, spread uniformly at start
            self.query_points = nn.Parameter(torch.logit(torch.rand(cfg.num_queries, 2) * 0.9 + 0.05))
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, cfg.decoder_heads, cfg.decoder_mlp_ratio)
            for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(dim)  # pre-norm stacks end with a norm
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, patches: torch.Tensor, grid_hw: Tuple[int, int]) -> torch.Tensor:
        b, p, _ = patches.shape  # (B, P = Hp*Wp, De)
        if p != grid_hw[0] * grid_hw[1]:
            raise ValueError(f"{p} image tokens do not fill the patch grid {tuple(grid_hw)}")
        memory = self.input_proj(patches)  # (B, P, Dd)
        memory_pos = sincos_pos_embed_2d(grid_hw, memory.shape[-1], memory.device)
        memory_pos = memory_pos.to(memory.dtype)[None]  # (1, P, Dd)
        queries = self.query_embed.to(memory.dtype)[None].expand(b, -1, -1)  # (B, N, Dd)
        points = self.reference_points()
        query_pos = None if points is None else sincos_encode_points(points, memory.shape[-1]).to(memory.dtype)[None]
        for block in self.blocks:
            queries = block(queries, memory, memory_pos, query_pos)
        return self.norm(queries)

    def reference_points(self):
        """(N, 2) each query's reference point (x, y) as image fractions, or None."""
        return torch.sigmoid(self.query_points) if hasattr(self, "query_points") else None


__all__ = ["DetrDecoder", "DecoderBlock", "MultiHeadAttention", "sincos_encode_points", "sincos_pos_embed_2d"]
