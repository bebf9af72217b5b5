"""Training losses (paper, "Training losses"), DETR-style.

Each `loss_<name>` returns one *unweighted* scalar term; `Criterion` weights them
in one place (`LossWeights`) and guards non-finite values in one place. Per-sample
supervision flags (paper, "Dealing with heterogeneous training data") switch
terms off per image: a term averages over the matched people of the images whose
flag is set, and is exactly zero when there are none.

Conventions of the inputs (all torch, network-input pixels):
- `pred`: per matched person (P = number of matched pairs in the batch):
  logits (B, N) for the score term, and for the matched queries loc (P, 2) px,
  nearness (P,), rot6d (P, J, 6), shape (P, 6), track (P, D), position (P, 3) m,
  joints (P, Jk, 3) and vertices (P, V, 3) pelvis-centred camera axes (from the
  body model), fov (B,) rad.
- `gt`: the same names for the matched targets, plus K (P, 3, 3), keypoints_2d
  (P, Jk, 2) px with keypoints_vis (P, Jk), image_size (P, 2) as (W, H), and the
  per-person supervision masks sup_<flag> (P,) bool; fov (B,) with sup_fov (B,).
- `batch_pred` with query selection also holds proposal_logits (B, P), proposal_target
  (B, P) and proposal_loc = (pred (Q, 2) px, gt (Q, 2) px, scale (Q,) px) of the
  positive patches (`step.proposal_targets`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, fields
from typing import Dict

import torch
import torch.nn.functional as F

from mhr2_ros.geometry import nearness_from_depth, rotation_6d_to_matrix

log = logging.getLogger(__name__)

ANGLE_MIN_DISTANCE = 0.10  # m: eq. 2 ignores points this close to the camera centre (paper)
POSE2D_MIN_DIAGONAL_PX = 8.0  # pose2d: a smaller keypoint box (a person cut to a few joints) counts as this
PROPOSAL_FOCAL_ALPHA = 0.25  # focal loss of the dense proposals: RetinaNet's alpha and gamma
PROPOSAL_FOCAL_GAMMA = 2.0
ROOT_BONE = 0  # rot6d row of the rig's root (the pelvis: the body's facing), as model.mhr2.root_to_camera


@dataclass
class LossWeights:
    """Weight of each term (the paper gives none; these balance terms of ~1 at init)."""

    score: float = 1.0  # binary cross-entropy on every query's score
    loc: float = 5.0  # L1 on the 2D pelvis, in units of the image's largest side
    depth: float = 1.0  # L1 on nearness (log inverse depth, focal-normalised)
    pose: float = 1.0  # L1 on rotation matrices from 6D
    root: float = 0.0  # L1 on the root's rotation matrix alone (not in the paper: off; the pose term gives it 1/163)
    shape: float = 1.0  # L1 on the 6 phenotypes in [0, 1]
    vertices: float = 1.0  # L1 on pelvis-centred vertices, meters
    joints: float = 1.0  # L1 on pelvis-centred 3D joints, meters
    reproj: float = 1.0  # L1 on reprojected 2D joints, units of the image's largest side
    pose2d: float = 0.0  # L1 on pelvis-relative 2D joints, units of the person's box (not in the paper: off)
    angle2d: float = 1.0  # angular 2D loss on rays (eq. 2), divided by the diagonal FOV
    track: float = 1.0  # L1 on the SAM2-distilled track feature
    fov: float = 1.0  # asymmetric L1 on the vertical FOV, radians
    proposal_score: float = 2.0  # query selection: focal loss of the dense pelvis proposals
    proposal_loc: float = 5.0  # query selection: L1 of the proposed pelvis, units of the largest side
    teacher_pose: float = 0.0  # fine-tuning (2.b): L2 to a frozen teacher's rotations
    teacher_joints: float = 0.0  # fine-tuning (2.b): L2 to a frozen teacher's 3D joints


@dataclass
class LossConfig:
    fov_over_factor: float = 2.0  # an over-estimated FOV costs this many times more (paper: asymmetric)
    reproj_camera: str = "gt"  # camera of the reprojection loss: "gt" or "pred" (paper: either)
    ref_focal: float = 768.0  # nearness reference focal, = ModelConfig.nearness_ref_focal


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of per-person values (P, ...) over persons where mask (P,) is set; 0 if none."""
    if values.shape[0] == 0 or not bool(mask.any()):
        return values.sum() * 0.0
    per_person = values.reshape(values.shape[0], -1).mean(dim=1)
    return per_person[mask].mean()


# ----------------------------------------------------------------------------- terms
def loss_score(logits: torch.Tensor, matched: torch.Tensor, sup: torch.Tensor) -> torch.Tensor:
    """BCE over every query (B, N): matched queries are people, the rest are not.
    `sup` (B,) selects the images whose people are exhaustively annotated."""
    if not bool(sup.any()):
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits, matched.float(), reduction="none")
    return bce[sup].mean()


def loss_loc(pred, gt) -> torch.Tensor:
    scale = gt["image_size"].max(dim=1, keepdim=True).values  # (P, 1) px
    return _masked_mean((pred["loc"] - gt["loc"]).abs() / scale, gt["sup_loc"])


def loss_depth(pred, gt, ref_focal: float) -> torch.Tensor:
    target = nearness_from_depth(gt["position"][:, 2].clamp(min=1e-3), gt["K"][:, 1, 1], ref_focal)
    return _masked_mean((pred["nearness"] - target).abs(), gt["sup_depth"])


def _rotation_l1(pred6d: torch.Tensor, gt6d: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between rotation matrices (P, ..., 3, 3) from 6D: 6D vectors are not unique, matrices are."""
    return _masked_mean((rotation_6d_to_matrix(pred6d) - rotation_6d_to_matrix(gt6d)).abs(), mask)


def loss_pose(pred, gt) -> torch.Tensor:
    """L1 between every bone's rotation matrix."""
    return _rotation_l1(pred["rot6d"], gt["rot6d"], gt["sup_pose"])


def loss_root(pred, gt) -> torch.Tensor:
    """L1 between the root bones' rotation matrices (camera frame): which way the body faces.
    The pose term averages over every bone of the rig, so the root, which turns the whole body
    (its 2D box, its facing), weighs 1/163 of it."""
    return _rotation_l1(pred["rot6d"][:, ROOT_BONE], gt["rot6d"][:, ROOT_BONE], gt["sup_pose"])


def loss_shape(pred, gt) -> torch.Tensor:
    return _masked_mean((pred["shape"] - gt["shape"]).abs(), gt["sup_shape"])


def loss_vertices(pred, gt) -> torch.Tensor:
    return _masked_mean((pred["vertices"] - gt["vertices"]).abs(), gt["sup_mesh"])


def loss_joints(pred, gt) -> torch.Tensor:
    return _masked_mean((pred["joints"] - gt["joints"]).abs(), gt["sup_mesh"])


def _project(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(P, J, 3) camera points, (P, 3, 3) K -> (P, J, 2) px (z clamped to 1 cm)."""
    z = points[..., 2:3].clamp(min=1e-2)
    xy = points[..., :2] / z
    return xy * torch.stack([K[:, 0, 0], K[:, 1, 1]], -1)[:, None] + K[:, None, :2, 2]


def _projected_joints(pred, gt, camera: str):
    """The predicted joints (P, Jk, 2) and pelvis (P, 1, 2) in px, placed at the predicted 3D
    location and projected with the true K (`camera` "gt") or the predicted one ("pred")."""
    K = gt["K"] if camera == "gt" else pred["K"]
    position = pred["position"] if camera == "gt" else pred["position_pred_camera"]
    return _project(pred["joints"] + position[:, None], K), _project(position[:, None], K)


def loss_reproj(pred, gt, camera: str = "gt") -> torch.Tensor:
    """L1 between the projection of the predicted joints (placed at the predicted
    3D location) and the annotated 2D keypoints, visible ones only. `camera` "gt" places
    and projects with the true K, "pred" with the predicted one (pred["K"]): both ways a
    pelvis at its predicted pixel projects back onto it."""
    uv, _ = _projected_joints(pred, gt, camera)
    scale = gt["image_size"].max(dim=1).values[:, None, None]
    err = (uv - gt["keypoints_2d"]).abs() / scale * gt["keypoints_vis"][..., None]
    denom = gt["keypoints_vis"].sum(dim=1).clamp(min=1)[:, None, None] / err.shape[1]
    return _masked_mean(err / denom, gt["sup_reproj"] & (gt["keypoints_vis"].sum(dim=1) > 0))


def loss_pose2d(pred, gt, camera: str = "gt") -> torch.Tensor:
    """L1 between the projected joints and the annotated 2D keypoints, each relative to
    its own 2D pelvis and in units of the diagonal of the person's keypoint box: the body's
    2D extent, scale-invariant like the detection match (`evaluation.metrics.match_people`).
    `loss_reproj` measures in units of the image, so a person 50 px tall weighs 1/5 of one
    250 px tall, and its limbs weigh least; this term weighs every person alike and leaves
    the placement to loc / depth. Not in the paper (see LossWeights.pose2d)."""
    uv, uv_pelvis = _projected_joints(pred, gt, camera)
    vis = gt["keypoints_vis"]  # (P, Jk)
    kp = gt["keypoints_2d"]
    big = torch.finfo(kp.dtype).max
    lo = torch.where(vis[..., None] > 0, kp, big).amin(dim=1)
    hi = torch.where(vis[..., None] > 0, kp, -big).amax(dim=1)
    diag = (hi - lo).norm(dim=-1).clamp(min=POSE2D_MIN_DIAGONAL_PX)  # (P,) px
    err = ((uv - uv_pelvis) - (kp - gt["loc"][:, None])).abs().sum(-1) / diag[:, None] * vis  # (P, Jk)
    per_person = err.sum(1) / vis.sum(1).clamp(min=1)
    return _masked_mean(per_person, gt["sup_reproj"] & (vis.sum(dim=1) > 1))


def loss_angle2d(pred, gt) -> torch.Tensor:
    """Eq. 2: angle between each predicted 3D joint and the ray through its annotated
    2D keypoint (inverse projection: continuous, unlike projection), divided by the
    camera's diagonal FOV; points within 0.1 m of the camera centre are ignored."""
    K = gt["K"]
    points = pred["joints"] + pred["position"][:, None]  # (P, J, 3) m
    uv = gt["keypoints_2d"]
    rays = torch.stack(
        [(uv[..., 0] - K[:, None, 0, 2]) / K[:, None, 0, 0], (uv[..., 1] - K[:, None, 1, 2]) / K[:, None, 1, 1],
         torch.ones_like(uv[..., 0])], dim=-1,
    )  # fmt: skip
    cross = torch.linalg.cross(points, rays, dim=-1).norm(dim=-1)
    angle = torch.atan2(cross, (points * rays).sum(-1))  # (P, J) rad, stable everywhere
    w, h = gt["image_size"][:, 0], gt["image_size"][:, 1]
    diag_fov = 2 * torch.atan(torch.sqrt((w / (2 * K[:, 0, 0])) ** 2 + (h / (2 * K[:, 1, 1])) ** 2))
    valid = gt["keypoints_vis"] * (points.norm(dim=-1) > ANGLE_MIN_DISTANCE)
    per_person = (angle * valid).sum(1) / valid.sum(1).clamp(min=1) / diag_fov
    return _masked_mean(per_person, gt["sup_reproj"] & (valid.sum(1) > 0))  # people with a keypoint to fit


def loss_track(pred, gt) -> torch.Tensor:
    return _masked_mean((pred["track"] - gt["track"]).abs(), gt["sup_track"])


def loss_fov(fov_pred: torch.Tensor, fov_gt: torch.Tensor, sup: torch.Tensor, over: float) -> torch.Tensor:
    """Asymmetric L1 (radians): over-estimates are `over` times as costly (a too-wide
    FOV puts people too close)."""
    diff = fov_pred - fov_gt
    return _masked_mean(torch.where(diff > 0, over * diff, -diff), sup)


def loss_proposal_score(logits: torch.Tensor, target: torch.Tensor, sup: torch.Tensor) -> torch.Tensor:
    """Sigmoid focal loss over the dense proposals, logits (B, P) against target (B, P)
    in {0, 1} (1: a person's pelvis lies in the patch), summed over the images selected
    by `sup` (B,) and divided by their number of positives (RetinaNet normalisation)."""
    if not bool(sup.any()):
        return logits.sum() * 0.0
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    alpha_t = PROPOSAL_FOCAL_ALPHA * target + (1 - PROPOSAL_FOCAL_ALPHA) * (1 - target)
    focal = alpha_t * (1 - p_t).pow(PROPOSAL_FOCAL_GAMMA) * ce
    return focal[sup].sum() / target[sup].sum().clamp(min=1.0)


def loss_proposal_loc(pred_loc: torch.Tensor, gt_loc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """L1 between the pelvis proposed by each positive patch and the person's pelvis,
    (Q, 2) px, in units of the image's largest side `scale` (Q,); 0 without positives."""
    if pred_loc.shape[0] == 0:
        return pred_loc.sum() * 0.0
    return ((pred_loc - gt_loc).abs() / scale[:, None]).mean()


def loss_teacher_pose(pred, teacher) -> torch.Tensor:
    """L2 to the teacher's rotations of the matched people (the first rows of `pred`; token
    supervision's extra pairs follow them and have no teacher)."""
    n = len(teacher["rot6d"])
    diff = rotation_6d_to_matrix(pred["rot6d"][:n]) - rotation_6d_to_matrix(teacher["rot6d"])
    return _masked_mean(diff.pow(2), _teacher_valid(teacher, diff))


def loss_teacher_joints(pred, teacher) -> torch.Tensor:
    """L2 to the teacher's 3D joints of the matched people (see loss_teacher_pose)."""
    diff = pred["joints"][: len(teacher["joints"])] - teacher["joints"]
    return _masked_mean(diff.pow(2), _teacher_valid(teacher, diff))


def _teacher_valid(teacher, diff: torch.Tensor) -> torch.Tensor:
    """(P,) the people the teacher also matched (all when it does not say)."""
    valid = teacher.get("valid")
    return torch.ones(len(diff), dtype=torch.bool, device=diff.device) if valid is None else valid.to(diff.device)


# ------------------------------------------------------------------------- criterion
class Criterion(torch.nn.Module):
    """Weighted sum of the terms; a non-finite term is dropped (and counted) here."""

    def __init__(self, weights: LossWeights, cfg: LossConfig) -> None:
        super().__init__()
        self.weights = weights
        self.cfg = cfg
        self.skipped_non_finite = 0

    def terms(self, batch_pred, pred, gt, teacher=None) -> Dict[str, torch.Tensor]:
        c = self.cfg
        t = {
            "score": loss_score(batch_pred["logits"], batch_pred["matched"], batch_pred["sup_score"]),
            "loc": loss_loc(pred, gt),
            "depth": loss_depth(pred, gt, c.ref_focal),
            "pose": loss_pose(pred, gt),
            "root": loss_root(pred, gt),
            "shape": loss_shape(pred, gt),
            "vertices": loss_vertices(pred, gt) if "vertices" in gt else None,
            "joints": loss_joints(pred, gt),
            "reproj": loss_reproj(pred, gt, c.reproj_camera),
            "pose2d": loss_pose2d(pred, gt, c.reproj_camera),
            "angle2d": loss_angle2d(pred, gt),
            "track": loss_track(pred, gt) if "track" in gt else None,
            "fov": loss_fov(batch_pred["fov"], batch_pred["fov_gt"], batch_pred["sup_fov"], c.fov_over_factor),
        }
        if "proposal_logits" in batch_pred:
            t["proposal_score"] = loss_proposal_score(
                batch_pred["proposal_logits"], batch_pred["proposal_target"], batch_pred["sup_score"])
            t["proposal_loc"] = loss_proposal_loc(*batch_pred["proposal_loc"])
        if teacher is not None:
            t["teacher_pose"] = loss_teacher_pose(pred, teacher)
            t["teacher_joints"] = loss_teacher_joints(pred, teacher)
        return {k: v for k, v in t.items() if v is not None}

    def forward(self, batch_pred, pred, gt, teacher=None):
        """(total, {name: unweighted term}) — the one place where weights apply and
        where non-finite terms are guarded."""
        terms = self.terms(batch_pred, pred, gt, teacher)
        total = batch_pred["logits"].sum() * 0.0
        for name, value in terms.items():
            if not torch.isfinite(value):
                self.skipped_non_finite += 1
                log.warning("non-finite %s loss dropped from this step", name)
                terms[name] = value.detach().nan_to_num(0.0, 0.0, 0.0)
                continue
            total = total + getattr(self.weights, name) * value
        return total, {k: v.detach() for k, v in terms.items()}


LOSS_NAMES = tuple(f.name for f in fields(LossWeights))
