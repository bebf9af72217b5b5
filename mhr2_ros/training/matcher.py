"""Hungarian matching of queries to ground-truth people (paper, "Matching", eq. 1).

    cost(i, j) = || l_i - l_j ||_1 + FC(c_i),   FC(c) = -alpha (1 - c)^gamma log(c)

with l the pelvis location in pixels of the network input and c the query's
score. It runs before any body-model call, so only matched queries go through
Anny afterwards. The paper's ablations are available by `mode`:

- "loc2d"    (default, the paper's): 2D pelvis location in pixels.
- "loc3d":   3D pelvis location in meters (inverse projection with the GT K).
- "joints3d": mean L1 of the 3D joints in the camera frame: every query goes
              through the body model first (the costly strategy of AiOS/SAT-HMR).

Returns, as DETR's matcher does, one (query indices, target indices) pair of
int64 tensors per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from scipy.optimize import linear_sum_assignment

from mhr2_ros.geometry import depth_from_nearness

MATCH_MODES = ("loc2d", "loc3d", "joints3d")


@dataclass
class MatcherConfig:
    mode: str = "loc2d"  # loc2d (paper), loc3d or joints3d (paper's ablations)
    focal_alpha: float = 0.25  # alpha of the focal score term FC (paper: 0.25)
    focal_gamma: float = 2.0  # gamma of the focal score term FC (paper: 2)
    location_weight: float = 1.0  # weight of the L1 location term (paper: 1, pixels)
    score_weight: float = 1.0  # weight of FC (paper: 1)

    def __post_init__(self) -> None:
        if self.mode not in MATCH_MODES:
            raise ValueError(f"matcher mode must be one of {MATCH_MODES}, got {self.mode!r}")


def focal_cost(logits: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    """FC(c) = -alpha (1 - c)^gamma log(c), c = sigmoid(logits); any shape."""
    prob = logits.sigmoid()
    return -alpha * (1.0 - prob).pow(gamma) * torch.nn.functional.logsigmoid(logits)


def query_positions(outputs: Dict[str, torch.Tensor], K: torch.Tensor, ref_focal: float) -> torch.Tensor:
    """(B, N, 3) pelvis positions in meters from loc (px), nearness and per-image K (B, 3, 3)."""
    fy = K[:, 1, 1][:, None]  # (B, 1)
    depth = depth_from_nearness(outputs["nearness"], fy, ref_focal)  # (B, N)
    loc = outputs["loc"]
    y = (loc[..., 1] - K[:, 1, 2][:, None]) / fy
    x = (loc[..., 0] - K[:, 0, 2][:, None]) / K[:, 0, 0][:, None]
    return torch.stack([x * depth, y * depth, depth], dim=-1)


class HungarianMatcher(torch.nn.Module):
    """Optimal one-to-one assignment per image; every target gets a query (N >= M)."""

    def __init__(
        self,
        cfg: Optional[MatcherConfig] = None,
        ref_focal: float = 768.0,
        joints_fn: Optional[Callable[[Dict[str, torch.Tensor]], torch.Tensor]] = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg or MatcherConfig()
        self.ref_focal = ref_focal
        # joints3d mode: maps the outputs to (B, N, J, 3) camera-frame joints of ALL queries
        self.joints_fn = joints_fn
        if self.cfg.mode == "joints3d" and joints_fn is None:
            raise ValueError("matcher mode 'joints3d' needs joints_fn (the body model on every query)")

    @torch.no_grad()
    def forward(
        self, outputs: Dict[str, torch.Tensor], targets: Sequence[Dict[str, torch.Tensor]]
    ) -> List[Tuple[torch.Tensor, torch.Tensor]]:
        """outputs: the network's dict (B, N, ...); targets: one dict per image with
        "loc" (M, 2) px, and for the ablations "K" (3, 3), "position" (M, 3) m,
        "joints" (M, J, 3) camera-frame m."""
        cost = self.cost_matrix(outputs, targets)  # (B, N, sum M) on the CPU
        sizes = [len(t["loc"]) for t in targets]
        matches = []
        for b, block in enumerate(cost.split(sizes, dim=-1)):
            if block.shape[-1] == 0:
                empty = torch.empty(0, dtype=torch.int64)
                matches.append((empty, empty))
                continue
            rows, cols = linear_sum_assignment(block[b].numpy())
            matches.append((torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)))
        return matches

    def cost_matrix(self, outputs, targets) -> torch.Tensor:
        """(B, N, sum_b M_b) costs of every query against every target of the batch."""
        c = self.cfg
        score = c.score_weight * focal_cost(outputs["logits"].float(), c.focal_alpha, c.focal_gamma)
        per_point = 1.0  # joints3d: the L1 summed over joints is divided by their count
        if c.mode == "loc2d":
            pred = outputs["loc"].float()  # (B, N, 2) px
            tgt = _cat(targets, "loc", pred)  # (T, 2) px
        elif c.mode == "loc3d":
            K = torch.stack([t["K"] for t in targets]).to(outputs["loc"].device, torch.float32)
            pred = query_positions({k: v.float() for k, v in outputs.items()}, K, self.ref_focal)
            tgt = _cat(targets, "position", pred)  # (T, 3) m
        else:  # pelvis-centred skeletons placed at each query's 3D location: camera-frame joints
            K = torch.stack([t["K"] for t in targets]).to(outputs["loc"].device, torch.float32)
            where = query_positions({k: v.float() for k, v in outputs.items()}, K, self.ref_focal)  # (B, N, 3)
            joints = self.joints_fn(outputs).float() + where[:, :, None]  # (B, N, J, 3) m
            per_point = joints.shape[2]
            pred = joints.flatten(2)
            tgt = _cat(targets, "joints", joints[:, 0]).flatten(1)  # (T, J*3)
        dist = torch.cdist(pred, tgt[None].expand(len(pred), -1, -1).contiguous(), p=1) / per_point
        return (c.location_weight * dist + score[..., None]).cpu()


def _cat(targets, key: str, like: torch.Tensor) -> torch.Tensor:
    """Targets of the whole batch stacked: (sum M, ...) like `like`'s trailing shape."""
    parts = [t[key].to(like.device, torch.float32) for t in targets]
    if not parts:
        return like.new_zeros((0,) + tuple(like.shape[2:]))
    return torch.cat(parts, dim=0)
