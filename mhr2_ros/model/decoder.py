"""DETR-style decoder: learned human queries attend to the image tokens (paper, "Decoder").

Each of `decoder_depth` pre-norm blocks holds self-attention between the queries
(so that queries can agree on who detects which person), cross-attention from
the queries to the image tokens, and an MLP. The image tokens carry a fixed 2D
sine-cosine encoding of their patch position, added to the attention keys only:
the values stay pure image content. The encoding uses per-axis normalised
coordinates, as DETR does, so it is defined for any grid shape and a position is
expressed as a fraction of the image width / height, like the predicted pelvis
location (`heads.py`).

With `query_selection`, a dense proposal head scores every image token as a pelvis
location; each image's best local maxima become the queries' reference points
(two-stage DETR), so that queries start on people instead of learning where
people usually are.
"""

from __future__ import annotations

import math
from typing import Dict, NamedTuple, Optional, Tuple

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


def patch_centres(grid_hw: Tuple[int, int], device=None) -> torch.Tensor:
    """(Hp*Wp, 2) float32 patch centres (x, y) as image fractions, row-major."""
    hp, wp = grid_hw
    ys = (torch.arange(hp, dtype=torch.float32, device=device) + 0.5) / hp
    xs = (torch.arange(wp, dtype=torch.float32, device=device) + 0.5) / wp
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)


def sincos_pos_embed_2d(
    grid_hw: Tuple[int, int], dim: int, device=None, temperature: float = 10000.0
) -> torch.Tensor:
    """(Hp*Wp, dim) float32 encoding of the patch centres (`sincos_encode_points`)."""
    return sincos_encode_points(patch_centres(grid_hw, device), dim, temperature)


PROPOSAL_PRIOR = 0.01  # initial probability of a patch holding a pelvis (focal-loss prior)
NON_PEAK_PENALTY = 1e4  # logit penalty ranking patches that are not a 3x3 local maximum last


class Decoded(NamedTuple):
    """What the decoder returns (B images, N queries, P = Hp*Wp image tokens)."""

    queries: torch.Tensor  # (B, N, Dd) decoded queries
    points: Optional[torch.Tensor]  # (B, N, 2) reference points (x, y), image fractions; None: plain DETR
    proposals: Optional[Dict[str, torch.Tensor]]  # query_selection: "logits" (B, P) pelvis-in-patch
    # logit, "points" (B, P, 2) the pelvis (x, y) each patch proposes, image fractions, and "tokens"
    # (B, P, Dd) the normalised image tokens; else None


def proposal_ranks(logits: torch.Tensor, grid_hw: Tuple[int, int]) -> torch.Tensor:
    """(B, P) the values proposals are ranked by: the logit, 3x3 local maxima first (the other
    tokens lose NON_PEAK_PENALTY); logits (B, P) on the grid (Hp, Wp), detached."""
    b = logits.shape[0]
    grid = logits.detach().reshape(b, 1, *grid_hw)
    peak = (grid == F.max_pool2d(grid, 3, stride=1, padding=1)).reshape(b, -1)
    return logits.detach() - NON_PEAK_PENALTY * (~peak).to(logits.dtype)


def proposal_indices(logits: torch.Tensor, grid_hw: Tuple[int, int], k: int) -> torch.Tensor:
    """(B, k) token indices of the k best proposals of each image (`proposal_ranks`)."""
    return proposal_ranks(logits, grid_hw).topk(k, dim=1).indices


def select_proposals(logits: torch.Tensor, points: torch.Tensor, grid_hw: Tuple[int, int], k: int) -> torch.Tensor:
    """The k best proposals of each image (`proposal_indices`): points (B, P, 2) -> (B, k, 2),
    detached (the decoder refines them, it does not move them)."""
    idx = proposal_indices(logits, grid_hw, k)
    return points.detach().gather(1, idx[..., None].expand(-1, -1, 2))


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

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bias=None) -> torch.Tensor:
        """query (B, N, D), key / value (B, L, D), bias None or (B, heads, N, L) added to the
        attention logits -> (B, N, D)."""
        q = self._split(self.q_proj(query))
        k = self._split(self.k_proj(key))
        v = self._split(self.v_proj(value))
        mask = None if bias is None else bias.to(q.dtype)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, N, Dh)
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
        attn_bias=None,
    ) -> torch.Tensor:
        """queries (B, N, Dd), memory (B, P, Dd), memory_pos (1, P, Dd), query_pos (B, N, Dd)
        or None (the encoding of each query's reference point), attn_bias None or
        (B, heads, N, P) cross-attention prior -> (B, N, Dd)."""
        h = self.norm1(queries)
        queries = queries + self.self_attn(h, h, h)
        h = self.norm2(queries)
        q = h if query_pos is None else h + query_pos
        queries = queries + self.cross_attn(q, memory + memory_pos, memory, attn_bias)
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
        self.num_heads = cfg.decoder_heads
        self.point_sigmas = cfg.query_point_sigmas if cfg.query_points else ()
        self.proposal_content = cfg.proposal_content
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, cfg.decoder_heads, cfg.decoder_mlp_ratio)
            for _ in range(cfg.decoder_depth)
        )
        self.norm = nn.LayerNorm(dim)  # pre-norm stacks end with a norm
        if cfg.query_selection:  # per token: pelvis logit and (x, y) offset logits from the patch centre
            self.proposal_norm = nn.LayerNorm(dim)
            self.proposal_head = Mlp(dim, dim, 3)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        if cfg.query_selection:
            with torch.no_grad():
                self.proposal_head.fc2.bias[0] = -math.log((1 - PROPOSAL_PRIOR) / PROPOSAL_PRIOR)

    def forward(self, patches: torch.Tensor, grid_hw: Tuple[int, int]) -> Decoded:
        b, p, _ = patches.shape  # (B, P = Hp*Wp, De)
        if p != grid_hw[0] * grid_hw[1]:
            raise ValueError(f"{p} image tokens do not fill the patch grid {tuple(grid_hw)}")
        memory = self.input_proj(patches)  # (B, P, Dd)
        dim = memory.shape[-1]
        memory_pos = sincos_pos_embed_2d(grid_hw, dim, memory.device)
        memory_pos = memory_pos.to(memory.dtype)[None]  # (1, P, Dd)
        queries = self.query_embed.to(memory.dtype)[None].expand(b, -1, -1)  # (B, N, Dd)
        points = self.reference_points()
        proposals = query_pos = bias = None
        if points is not None:
            points = points[None].expand(b, -1, -1)  # (B, N, 2)
            if hasattr(self, "proposal_head"):
                proposals = self._propose(memory, grid_hw)
                k = min(points.shape[1], p)  # tiny grids: the remaining queries keep their learned points
                idx = proposal_indices(proposals["logits"], grid_hw, k)  # (B, k)
                chosen = proposals["points"].detach().gather(1, idx[..., None].expand(-1, -1, 2))
                points = chosen if k == points.shape[1] else torch.cat([chosen, points[:, k:]], dim=1)
                if self.proposal_content:  # the selected tokens start the queries' content
                    tokens = proposals["tokens"].gather(1, idx[..., None].expand(-1, -1, dim)).to(queries.dtype)
                    queries = torch.cat([queries[:, :k] + tokens, queries[:, k:]], dim=1)
            query_pos = sincos_encode_points(points.reshape(-1, 2), dim).reshape(b, -1, dim).to(memory.dtype)
            bias = self._spatial_prior(points, grid_hw)
        for block in self.blocks:
            queries = block(queries, memory, memory_pos, query_pos, bias)
        return Decoded(self.norm(queries), points, proposals)

    def _propose(self, memory: torch.Tensor, grid_hw: Tuple[int, int]) -> Dict[str, torch.Tensor]:
        """Dense pelvis proposals, in float32: "logits" (B, P), "points" (B, P, 2) image fractions,
        and "tokens" (B, P, Dd) the normalised image tokens the proposal head saw."""
        with torch.autocast(device_type=memory.device.type, enabled=False):
            tokens = self.proposal_norm(memory.float())
            out = self.proposal_head(tokens)  # (B, P, 3)
        centres = torch.logit(patch_centres(grid_hw, memory.device), eps=1e-4)  # (P, 2)
        return {"logits": out[..., 0], "points": torch.sigmoid(centres + out[..., 1:]), "tokens": tokens}

    def _spatial_prior(self, points: torch.Tensor, grid_hw: Tuple[int, int]):
        """points (B, N, 2) -> (B, heads, N, P) log-Gaussian attention prior around each
        query's point for the first len(point_sigmas) heads, zero for the others; None
        without sigmas."""
        if not self.point_sigmas:
            return None
        centres = patch_centres(grid_hw, points.device)  # (P, 2)
        d2 = (points.float()[:, :, None] - centres[None, None]).pow(2).sum(-1)  # (B, N, P) image fractions²
        sigmas = torch.tensor(self.point_sigmas, device=points.device)
        bias = torch.zeros(d2.shape[0], self.num_heads, *d2.shape[1:], device=points.device)
        bias[:, : len(sigmas)] = -d2[:, None] / (2 * sigmas[None, :, None, None] ** 2)
        return bias

    def reference_points(self):
        """(N, 2) each query's learned reference point (x, y) as image fractions, or None."""
        return torch.sigmoid(self.query_points) if hasattr(self, "query_points") else None


__all__ = ["Decoded", "DetrDecoder", "proposal_indices", "select_proposals", "DecoderBlock",
           "MultiHeadAttention", "sincos_encode_points", "sincos_pos_embed_2d"]
