"""One training step's forward: network -> matching -> body model (matched only) -> losses.

Batch format (built by `training.data.BatchStream` with `to_target`):
    images   (B, 3, H, W) normalised float
    targets  list of B dicts, per image:
        loc (M, 2) px, position (M, 3) m, rot6d (M, J, 6), shape (M, 6),
        keypoints_2d (M, Jk, 2) px, keypoints_vis (M, Jk), track (M, D) (optional)
        (the per-person keys: training.data.PER_PERSON_KEYS), and per image
        K (3, 3) px, fov () rad, image_size (2,) = (W, H) px,
        sup: {flag: bool} per image (score, loc, depth, pose, shape, mesh, reproj, track, fov)
All pixel quantities refer to the network input (after crop and resize).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch.profiler import record_function

from mhr2_ros.body import BodyModel
from mhr2_ros.geometry import depth_from_nearness, intrinsics_from_fov_batch
from mhr2_ros.training.data import PER_PERSON_KEYS
from mhr2_ros.training.losses import Criterion
from mhr2_ros.training.matcher import HungarianMatcher

# Named ranges of a training step, for torch.profiler (benchmarks/train_step.py); without a
# profiler running, a range costs a few microseconds.
PHASES = {name: f"mhr2.{name}" for name in ("forward", "matching", "body", "losses", "backward", "optimizer")}
PERSON_FLAGS = ("loc", "depth", "pose", "shape", "mesh", "reproj", "track")
QUERY_KEYS = ("loc", "nearness", "rot6d", "shape", "track")


def gather_matched(
    outputs: Dict[str, torch.Tensor], targets: Sequence[dict], matches: List[Tuple[torch.Tensor, torch.Tensor]],
    prefix: str = "",
) -> Tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    """Per matched pair: predicted query values and target values, concatenated (P, ...) in image
    order, then each image's pair order. `prefix` "token_": the pairs are (image token, person) of
    the token heads instead. One indexing per key for the whole batch, not one per image: on a
    GPU each is a kernel launch, and the per-image version's launches left the GPU idle."""
    device = outputs["loc"].device
    image_index, query, person = _flat_pairs(matches)
    people = torch.tensor([0] + [len(t["loc"]) for t in targets[:-1]], dtype=torch.long).cumsum(0)  # (B,) offsets
    person = person + people[image_index]  # index into the batch's people, all images concatenated
    b, query, person = (x.to(device) for x in (image_index, query, person))
    pred = {k: outputs[prefix + k][b, query] for k in QUERY_KEYS if prefix + k in outputs}
    gt = {k: torch.cat([t[k] for t in targets]).to(device)[person] for k in PER_PERSON_KEYS
          if k not in ("track", "track_valid") and k in targets[0]}  # fmt: skip
    # Images without track targets get zero rows (their sup_track is off), so the rows of
    # a batch mixing both stay aligned with the predictions.
    track_dim = next((t["track"].shape[-1] for t in targets if "track" in t), None)
    if track_dim is not None:
        for k, shape in (("track", (track_dim,)), ("track_valid", ())):
            rows = [t[k].to(device) if "track" in t else torch.zeros(len(t["loc"]), *shape, device=device)
                    for t in targets]  # fmt: skip
            gt[k] = torch.cat(rows)[person]
    gt["K"] = torch.stack([t["K"] for t in targets]).to(device)[b]
    gt["image_size"] = torch.stack([t["image_size"] for t in targets]).to(device)[b]
    gt["image_index"] = image_index.to(device)
    flags = torch.tensor([[bool(t["sup"].get(flag, False)) for flag in PERSON_FLAGS] for t in targets]).to(device)
    for column, flag in enumerate(PERSON_FLAGS):
        gt[f"sup_{flag}"] = flags[b, column]
    if "track_valid" in gt:  # a person without a SAM2 mask has no track target
        gt["sup_track"] = gt["sup_track"] & (gt["track_valid"] > 0.5)
    if "track" not in pred or "track" not in gt or gt["track"].shape[-1] != pred["track"].shape[-1]:
        gt.pop("track", None)
    return pred, gt


def _flat_pairs(matches: Sequence[Tuple[torch.Tensor, torch.Tensor]]) -> Tuple[torch.Tensor, ...]:
    """The per-image (query indices, target indices) pairs as three (P,) int64 CPU tensors: each
    pair's image, query and target (within its image), images in order."""
    counts = torch.tensor([len(qi) for qi, _ in matches], dtype=torch.long)
    image = torch.repeat_interleave(torch.arange(len(matches)), counts)
    if not matches:
        return image, image.clone(), image.clone()
    query, target = (torch.cat([torch.as_tensor(p[k], dtype=torch.long).cpu() for p in matches]) for k in (0, 1))
    return image, query, target


def token_matches(outputs: Dict[str, torch.Tensor], targets: Sequence[dict], image_hw) -> List[Tuple]:
    """Token supervision's pairs, one (token indices, target indices) per image: the image
    token whose patch holds each person's pelvis (the positive proposal cell)."""
    cells = _pelvis_cells(outputs["proposal_logits"].shape[1], targets, image_hw)
    on_cpu = torch.cat(cells).cpu().split([len(c) for c in cells])  # one copy (a GPU sync) for the batch
    return [(c, torch.arange(len(c))) for c in on_cpu]


def append_pairs(pred, gt, extra_pred, extra_gt):
    """Matched pairs followed by extra pairs (token supervision), key by key. Keys only the
    matched pairs have (the track feature) are padded for the extra ones, which their
    supervision flag (sup_track off) keeps out of that loss."""
    out_pred, out_gt = {}, {}
    for src, extra, out in ((pred, extra_pred, out_pred), (gt, extra_gt, out_gt)):
        n_extra = len(extra["loc"])
        for k, v in src.items():
            pad = extra[k] if k in extra else v.new_zeros((n_extra, *v.shape[1:]))
            out[k] = torch.cat([v, pad.to(v.dtype)])
    out_gt["sup_track"] = torch.cat([gt["sup_track"], torch.zeros_like(extra_gt["sup_track"])])
    return out_pred, out_gt


def place_in_camera(pred: Dict[str, torch.Tensor], K: torch.Tensor, ref_focal: float) -> torch.Tensor:
    """(P, 3) pelvis positions from predicted loc (px) and nearness with per-person K."""
    fy = K[:, 1, 1]
    depth = depth_from_nearness(pred["nearness"], fy, ref_focal)
    y = (pred["loc"][:, 1] - K[:, 1, 2]) / fy
    x = (pred["loc"][:, 0] - K[:, 0, 2]) / K[:, 0, 0]
    return torch.stack([x * depth, y * depth, depth], dim=-1)


def compute_losses(
    model: torch.nn.Module,
    body: BodyModel,
    matcher: HungarianMatcher,
    criterion: Criterion,
    batch: dict,
    teacher: Optional[torch.nn.Module] = None,
    token_supervision: bool = False,
):
    """(total loss, {term: value}, number of matched people) for one batch. With
    `token_supervision` the per-person losses also cover each person's pelvis token."""
    images, targets = batch["images"], batch["targets"]
    K = torch.stack([t["K"] for t in targets]).to(images)  # (B, 3, 3): root frames allocentric / ray use true rays
    with record_function(PHASES["forward"]):
        outputs = model(images, token_heads=token_supervision, K=K)
    with record_function(PHASES["matching"]):
        if matcher.cfg.mode == "joints3d":
            targets = _with_target_joints(body, targets)
        matches = matcher(outputs, targets)
        pred, gt = gather_matched(outputs, targets, matches)
        n_matched = len(pred["loc"])
        if token_supervision:
            pred, gt = append_pairs(pred, gt, *gather_matched(outputs, targets, token_matches(
                outputs, targets, images.shape[-2:]), prefix="token_"))  # fmt: skip
    n = len(pred["loc"])
    with record_function(PHASES["body"]):  # one body-model call for the matched people's predictions and targets
        bodies = body(torch.cat([pred["rot6d"].float(), gt["rot6d"].float()]),
                      torch.cat([pred["shape"].float(), gt["shape"].float()]))  # float32 even under bf16 autocast
    pred["joints"], gt["joints"] = bodies.joints[:n], bodies.joints[n:].detach()
    pred["vertices"], gt["vertices"] = bodies.vertices[:n], bodies.vertices[n:].detach()
    pred["position"] = place_in_camera(pred, gt["K"], criterion.cfg.ref_focal)
    size = gt["image_size"]  # (P, 2) = (W, H): each person's image, with its predicted camera
    pred["K"] = intrinsics_from_fov_batch(outputs["fov"][gt["image_index"]], size[:, 0], size[:, 1])
    if criterion.cfg.reproj_camera == "pred":  # placed and projected with the predicted camera
        pred["position_pred_camera"] = place_in_camera(pred, pred["K"], criterion.cfg.ref_focal)

    matched = torch.zeros_like(outputs["logits"], dtype=torch.bool)
    image, query, _ = _flat_pairs(matches)
    matched[image.to(matched.device), query.to(matched.device)] = True
    batch_pred = {
        "logits": outputs["logits"],
        "matched": matched,
        "sup_score": _image_flag(targets, "score", images.device),
        "fov": outputs["fov"],
        "fov_gt": torch.stack([t["fov"].to(images.device, torch.float32) for t in targets]),
        "sup_fov": _image_flag(targets, "fov", images.device),
    }
    if "proposal_logits" in outputs:
        batch_pred.update(proposal_targets(outputs, targets, images.shape[-2:]))
    teacher_pred = None
    if teacher is not None:
        teacher_pred = _teacher_outputs(teacher, body, matcher, images, targets, matches)
    with record_function(PHASES["losses"]):
        total, terms = criterion(batch_pred, pred, gt, teacher_pred)
    return total, terms, n_matched


def proposal_targets(outputs: Dict[str, torch.Tensor], targets: Sequence[dict], image_hw) -> dict:
    """Targets of the dense proposals: the patch holding each person's pelvis is positive.

    Returns proposal_logits (B, P), proposal_target (B, P) float and proposal_loc =
    (predicted (Q, 2) px, target (Q, 2) px, largest image side (Q,) px) over the positive
    patches of the images with location supervision."""
    logits = outputs["proposal_logits"]  # (B, P)
    h, w = int(image_hw[0]), int(image_hw[1])
    device = logits.device
    sizes = torch.tensor([len(t["loc"]) for t in targets])  # people per image
    image = torch.repeat_interleave(torch.arange(len(targets)), sizes).to(device)  # (T,) each person's image
    cell = torch.cat(_pelvis_cells(logits.shape[1], targets, image_hw)).to(device)  # (T,) their patches
    target = torch.zeros_like(logits)
    target[image, cell] = 1.0
    with_loc = _image_flag(targets, "loc", device)[image]  # (T,) the person's image has location supervision
    pred_t = outputs["proposal_loc"][image[with_loc], cell[with_loc]]  # (Q, 2) px
    gt_t = torch.cat([t["loc"].to(device, torch.float32) for t in targets])[with_loc]  # (Q, 2) px
    scale = torch.full((len(gt_t),), float(max(h, w)), device=device)
    return {"proposal_logits": logits, "proposal_target": target, "proposal_loc": (pred_t, gt_t, scale)}


def _pelvis_cells(num_tokens: int, targets: Sequence[dict], image_hw) -> List[torch.Tensor]:
    """Per image, (M,) int64 row-major index of the patch holding each person's pelvis, on the
    token grid of `num_tokens` patches (which has the image's aspect ratio)."""
    h, w = int(image_hw[0]), int(image_hw[1])
    hp = round(math.sqrt(num_tokens * h / w))
    wp = num_tokens // hp
    loc = torch.cat([t["loc"].float() for t in targets])  # (T, 2) px, the whole batch's people
    col = (loc[:, 0] / w * wp).long().clamp(0, wp - 1)
    row = (loc[:, 1] / h * hp).long().clamp(0, hp - 1)
    return list((row * wp + col).split([len(t["loc"]) for t in targets]))


@torch.no_grad()
def _with_target_joints(body: BodyModel, targets: Sequence[dict]) -> List[dict]:
    """Targets plus "joints" (M, J, 3): the GT bodies' joints in the camera frame (meters),
    what the joints3d matcher compares with every query's placed joints."""
    sizes = [len(t["loc"]) for t in targets]
    joints = body(torch.cat([t["rot6d"] for t in targets]), torch.cat([t["shape"] for t in targets])).joints
    return [{**t, "joints": j + t["position"][:, None].to(j)} for t, j in zip(targets, joints.split(sizes))]


def _image_flag(targets, flag: str, device) -> torch.Tensor:
    return torch.tensor([bool(t["sup"].get(flag, False)) for t in targets], device=device)


@torch.no_grad()
def _teacher_outputs(teacher, body, matcher, images, targets, matches) -> Dict[str, torch.Tensor]:
    """The frozen teacher's rotations and 3D joints for the same people as the
    student's matched queries (fine-tuning "2.b": L2 consistency on pose and 3D
    joints). The teacher is matched to the targets on its own: query slots of two
    networks need not correspond, people do."""
    out = teacher(images, K=torch.stack([t["K"] for t in targets]).to(images))
    teacher_matches = matcher(out, targets)
    rot6d, shape, valid = [], [], []
    for b, ((_, ti), (tq, tt)) in enumerate(zip(matches, teacher_matches)):
        # With more people than queries the teacher may leave some the student matched.
        query_of_target = torch.full((len(targets[b]["loc"]),), -1, dtype=torch.long)
        query_of_target[tt] = tq
        q = query_of_target[ti].to(images.device)
        valid.append(q >= 0)
        rot6d.append(out["rot6d"][b, q.clamp(min=0)])
        shape.append(out["shape"][b, q.clamp(min=0)])
    rot6d, shape = torch.cat(rot6d), torch.cat(shape)
    return {"rot6d": rot6d, "joints": body(rot6d, shape).joints, "valid": torch.cat(valid)}
