"""Loss terms by hand, one at a time: each supervision flag switches exactly its own terms,
each data type the terms of the paper's table ("Dealing with heterogeneous training data"),
and the values of the terms whose form matters (asymmetric FOV, the 10 cm cut of the angle
term, L1 means, the proposal focal loss's normalisation, dropping a non-finite term)."""

import math

import pytest
import torch

from mhr2_ros.training import losses as L
from mhr2_ros.training.sample import SUPERVISION
from test_losses import B, P, J, _perfect

# term -> the per-person / per-image flag that switches it (docstring of losses.py)
TERM_FLAG = {"score": "score", "loc": "loc", "depth": "depth", "pose": "pose", "root": "pose",
             "shape": "shape", "vertices": "mesh", "joints": "mesh", "reproj": "reproj", "pose2d": "reproj", "angle2d": "reproj",
             "track": "track", "fov": "fov"}  # fmt: skip


def _all_wrong():
    """_perfect with every prediction off: every term is positive when its flag is set."""
    batch, pred, gt = _perfect()
    g = torch.Generator().manual_seed(1)
    for key in ("loc", "rot6d", "shape", "joints", "vertices", "track"):
        pred[key] = pred[key] + 0.2 * torch.randn(pred[key].shape, generator=g)
    pred["nearness"] = pred["nearness"] + 0.3
    pred["position"] = pred["position"] + torch.tensor([0.3, -0.2, 0.5])
    batch["logits"] = torch.zeros(B, 6)
    batch["fov"] = batch["fov_gt"] + 0.1
    return batch, pred, gt


def _set_flags(batch, gt, flags):
    for flag in ("loc", "depth", "pose", "shape", "mesh", "reproj", "track"):
        gt[f"sup_{flag}"] = torch.full((P,), bool(flags.get(flag, False)))
    batch["sup_score"] = torch.full((B,), bool(flags.get("score", False)))
    batch["sup_fov"] = torch.full((B,), bool(flags.get("fov", False)))


@pytest.mark.parametrize("flag", sorted(set(TERM_FLAG.values())))
def test_each_flag_switches_exactly_its_own_terms(flag):
    """One flag on, every prediction wrong: exactly the terms of that flag are positive
    (a term reading another term's flag, e.g. depth under sup_loc, fails here)."""
    batch, pred, gt = _all_wrong()
    _set_flags(batch, gt, {flag: True})
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    positive = {name for name, value in terms.items() if float(value) > 0}
    assert positive == {t for t, f in TERM_FLAG.items() if f == flag}, terms


@pytest.mark.parametrize("data_type", sorted(SUPERVISION))
def test_each_data_type_supervises_the_terms_of_its_table(data_type):
    """Paper, "Dealing with heterogeneous training data": pseudo-GT supervises pose/shape/mesh
    only, 2D keypoints the detection and the 2D terms only, synthetic everything."""
    batch, pred, gt = _all_wrong()
    sup = {**SUPERVISION[data_type], "track": False}
    _set_flags(batch, gt, sup)
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    positive = {name for name, value in terms.items() if float(value) > 0}
    assert positive == {t for t, f in TERM_FLAG.items() if sup[f]}, terms


def test_fov_over_estimate_costs_the_factor_an_under_estimate_does_not():
    ones = torch.ones(1, dtype=torch.bool)
    gt = torch.tensor([1.0])
    assert float(L.loss_fov(gt + 0.1, gt, ones, over=2.0)) == pytest.approx(0.2, rel=1e-5)  # too wide
    assert float(L.loss_fov(gt - 0.1, gt, ones, over=2.0)) == pytest.approx(0.1, rel=1e-5)  # too narrow
    assert float(L.loss_fov(gt + 0.1, gt, ones, over=3.0)) == pytest.approx(0.3, rel=1e-5)
    # through the Criterion, LossConfig.fov_over_factor and the per-image flag
    batch, pred, gt_p = _perfect()
    batch["fov"] = batch["fov_gt"] + torch.tensor([0.1, -0.1])
    batch["sup_fov"] = torch.tensor([True, False])
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig(fov_over_factor=3.0))(batch, pred, gt_p)
    assert float(terms["fov"]) == pytest.approx(0.3, rel=1e-5)


def test_angle_term_ignores_only_points_within_10_cm_and_averages_the_others():
    """Two joints 15 cm away, 0.2 rad off their rays, count; three 8.5 cm away (45 degrees
    off) are ignored, and not averaged in as zeros."""
    _, pred, gt = _perfect()
    gt["keypoints_2d"] = torch.tensor([160.0, 120.0]).expand(P, J, 2).clone()  # rays along +z
    pred["position"] = torch.zeros(P, 3)
    far = [0.15 * math.sin(0.2), 0.0, 0.15 * math.cos(0.2)]
    near = [0.06, 0.0, 0.06]
    pred["joints"] = torch.tensor([far, far, near, near, near]).expand(P, J, 3).clone()
    diag_fov = 2 * math.atan(2 / 3)
    assert float(L.loss_angle2d(pred, gt)) == pytest.approx(0.2 / diag_fov, rel=1e-5)


def test_a_non_finite_term_is_dropped_and_the_others_still_count():
    batch, pred, gt = _perfect()
    pred["loc"] = pred["loc"].clone().requires_grad_(True)
    shifted = pred["loc"] + torch.tensor([[32.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    pred["loc"], loc_leaf = shifted, pred["loc"]
    pred["shape"] = pred["shape"] * float("nan")
    crit = L.Criterion(L.LossWeights(), L.LossConfig())
    total, terms = crit(batch, pred, gt)
    assert crit.skipped_non_finite == 1 and float(terms["shape"]) == 0.0
    assert float(terms["loc"]) == pytest.approx(0.1 / 6, rel=1e-5)
    assert float(total.detach()) == pytest.approx(5.0 * 0.1 / 6, rel=1e-4)  # loc weight 5, the rest zero
    total.backward()
    assert loc_leaf.grad.abs().sum() > 0


def test_proposal_focal_loss_divides_by_the_positives_of_the_supervised_images():
    target = torch.zeros(B, 4)
    target[0, 1] = target[1, 2] = target[1, 3] = 1.0  # 1 positive in image 0, 2 in image 1
    logits = torch.zeros(B, 4)  # p = 0.5: (1 - p_t)^2 = 1/4, ce = log 2
    per = 0.25 * math.log(2)
    both = L.loss_proposal_score(logits, target, torch.tensor([True, True]))
    assert float(both) == pytest.approx((3 * 0.25 + 5 * 0.75) * per / 3, rel=1e-5)
    first = L.loss_proposal_score(logits, target, torch.tensor([True, False]))
    assert float(first) == pytest.approx((0.25 + 3 * 0.75) * per / 1, rel=1e-5)


def test_depth_shape_vertices_and_track_terms_are_l1_means():
    _, pred, gt = _perfect()
    pred["nearness"] = pred["nearness"] + torch.tensor([0.3, 0.0, 0.0])
    assert float(L.loss_depth(pred, gt, 768.0)) == pytest.approx(0.1, rel=1e-4)
    pred["shape"] = pred["shape"] + 0.3
    assert float(L.loss_shape(pred, gt)) == pytest.approx(0.3, rel=1e-5)
    pred["vertices"] = pred["vertices"] + torch.tensor([0.3, 0.0, 0.0])
    assert float(L.loss_vertices(pred, gt)) == pytest.approx(0.1, rel=1e-5)
    pred["track"] = pred["track"] - 0.3
    assert float(L.loss_track(pred, gt)) == pytest.approx(0.3, rel=1e-5)
