"""Prediction heads: camera (FOV) on the CLS token, and per-query MLP heads.

Output contract of `QueryHeads` + `CameraHead` (all float tensors, B images,
N queries, of the *network input* image of size (H, W) pixels):

    "fov"       (B,)                vertical field of view, radians, in [fov_min, fov_max]
    "logits"    (B, N)              detection logit; score = sigmoid(logit)
    "loc"       (B, N, 2)           pelvis (u, v) in pixels, inside [0, W] x [0, H]
    "nearness"  (B, N)              log inverse depth normalised by focal:
                                    depth = focal / nearness_ref_focal * exp(-nearness)
                                    (geometry.depth_from_nearness)
    "rot6d"     (B, N, bones, 6)    local bone rotations along the kinematic tree, 6D
                                    (first two matrix columns; identity = 1,0,0,0,1,0)
    "shape"     (B, N, num_shape)   Anny phenotypes in [0, 1]
    "track"     (B, N, track_dim)   appearance feature regressed towards SAM2 memory

With `query_selection`, `MultiHMR2.predict_heads` adds the decoder's dense proposals
(P = image tokens): "proposal_logits" (B, P) and "proposal_loc" (B, P, 2) pixels.

Output layers are initialised so that a fresh network predicts a sensible prior
(few detections, people ~4 m away, rest pose, average shape), which keeps the
first training steps from being dominated by absurd bodies.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch
import torch.nn as nn

from mhr2_ros.config import ModelConfig
from mhr2_ros.geometry import IDENTITY_6D
from mhr2_ros.model.vit import Mlp

OUTPUT_KEYS = ("fov", "logits", "loc", "nearness", "rot6d", "shape", "track")
HEAD_KEYS = OUTPUT_KEYS[1:]  # the per-query heads of QueryHeads

SCORE_PRIOR = 0.01  # initial detection probability (focal-loss / RetinaNet prior)
INIT_DEPTH_M = 4.0  # initial depth at the reference focal: nearness = -log(4)
ROT6D_INIT_GAIN = 1e-3  # last rot6d layer starts this small, so the pose starts at rest


def _head(in_dim: int, hidden: int, out_dim: int) -> Mlp:
    mlp = Mlp(in_dim, hidden, out_dim)
    for layer in (mlp.fc1, mlp.fc2):
        nn.init.trunc_normal_(layer.weight, std=0.02)
        nn.init.zeros_(layer.bias)
    return mlp


class CameraHead(nn.Module):
    """CLS token (B, De) -> vertical FOV (B,) radians, squashed into the configured range."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fov_min = math.radians(cfg.fov_min_deg)
        self.fov_max = math.radians(cfg.fov_max_deg)
        self.mlp = _head(cfg.encoder_dim, cfg.head_hidden, 1)

    def forward(self, cls: torch.Tensor) -> torch.Tensor:
        unit = torch.sigmoid(self.mlp(cls).squeeze(-1))  # (B,) in (0, 1)
        return self.fov_min + (self.fov_max - self.fov_min) * unit


class QueryHeads(nn.Module):
    """Decoded queries (B, N, Dd) -> per-query predictions (see module docstring)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        dim, hidden = cfg.decoder_dim, cfg.head_hidden
        self.num_bones = cfg.num_bones
        self.score = _head(dim, hidden, 1)
        self.loc = _head(dim, hidden, 2)
        self.nearness = _head(dim, hidden, 1)
        self.rot6d = _head(dim, hidden, cfg.num_bones * 6)
        self.shape = _head(dim, hidden, cfg.num_shape)
        self.track = _head(dim, hidden, cfg.track_dim)
        with torch.no_grad():
            self.score.fc2.bias.fill_(-math.log((1.0 - SCORE_PRIOR) / SCORE_PRIOR))
            self.nearness.fc2.bias.fill_(-math.log(INIT_DEPTH_M))
            self.rot6d.fc2.weight.mul_(ROT6D_INIT_GAIN / 0.02)  # std 0.02 -> 1e-3
            self.rot6d.fc2.bias.copy_(torch.tensor(IDENTITY_6D).repeat(cfg.num_bones))
            # shape bias stays 0: sigmoid(0) = 0.5, the middle of every phenotype

    def forward(self, queries: torch.Tensor, image_hw: Tuple[int, int], points=None,
                keys: Tuple[str, ...] = HEAD_KEYS) -> Dict[str, torch.Tensor]:
        """`points` (B, N, 2) or (N, 2): reference points (x, y) in image fractions; the pelvis is then
        predicted as an offset from them in logit space (so a fresh query points at its point).
        `keys`: the heads to run (all by default; training's token supervision skips the costly ones)."""
        b, n, _ = queries.shape
        h, w = image_hw
        out: Dict[str, torch.Tensor] = {}
        if "logits" in keys:
            out["logits"] = self.score(queries).squeeze(-1)  # (B, N)
        if "loc" in keys:
            size_wh = queries.new_tensor([float(w), float(h)])  # loc is (u, v) = (x, y)
            loc_logit = self.loc(queries)
            if points is not None:
                loc_logit = loc_logit + torch.logit(points.to(loc_logit.dtype), eps=1e-4)
            out["loc"] = torch.sigmoid(loc_logit) * size_wh  # (B, N, 2) pixels
        if "nearness" in keys:
            out["nearness"] = self.nearness(queries).squeeze(-1)  # (B, N)
        if "rot6d" in keys:
            out["rot6d"] = self.rot6d(queries).reshape(b, n, self.num_bones, 6)
        if "shape" in keys:
            out["shape"] = torch.sigmoid(self.shape(queries))  # (B, N, num_shape) in [0, 1]
        if "track" in keys:
            out["track"] = self.track(queries)  # (B, N, track_dim)
        return out


__all__ = ["CameraHead", "QueryHeads", "OUTPUT_KEYS", "HEAD_KEYS"]
