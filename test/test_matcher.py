import numpy as np
import pytest
import torch

from mhr2_ros.training.matcher import HungarianMatcher, MatcherConfig, focal_cost, query_positions


def _outputs(loc, logits=None, nearness=None):
    loc = torch.as_tensor(loc, dtype=torch.float32)
    B, N = loc.shape[:2]
    return {
        "loc": loc,
        "logits": torch.zeros(B, N) if logits is None else torch.as_tensor(logits, dtype=torch.float32),
        "nearness": torch.zeros(B, N) if nearness is None else torch.as_tensor(nearness, dtype=torch.float32),
    }


def test_known_costs_give_the_known_assignment():
    out = _outputs([[[10.0, 10], [100, 100], [50, 50], [300, 300]]])
    targets = [{"loc": torch.tensor([[98.0, 103], [12, 9]])}]
    (rows, cols), = HungarianMatcher()(out, targets)
    assert dict(zip(rows.tolist(), cols.tolist())) == {1: 0, 0: 1}


def test_focal_term_breaks_ties_towards_confident_queries():
    out = _outputs([[[10.0, 10], [10, 10]]], logits=[[-3.0, 3.0]])
    (rows, cols), = HungarianMatcher()(out, [{"loc": torch.tensor([[10.0, 10]])}])
    assert rows.tolist() == [1] and cols.tolist() == [0]
    c = torch.tensor([0.1, 0.5, 0.9])
    np.testing.assert_allclose(
        focal_cost(torch.logit(c), 0.25, 2.0), -0.25 * (1 - c) ** 2 * torch.log(c), rtol=1e-5
    )


def test_batched_equals_per_image_and_empty_targets():
    g = torch.Generator().manual_seed(0)
    loc = torch.rand(3, 20, 2, generator=g) * 400
    logits = torch.randn(3, 20, generator=g)
    targets = [
        {"loc": torch.rand(4, 2, generator=g) * 400},
        {"loc": torch.zeros(0, 2)},
        {"loc": torch.rand(7, 2, generator=g) * 400},
    ]
    matcher = HungarianMatcher()
    batched = matcher(_outputs(loc, logits), targets)
    for b in range(3):
        (rows, cols), = matcher(_outputs(loc[b : b + 1], logits[b : b + 1]), [targets[b]])
        assert torch.equal(rows, batched[b][0]) and torch.equal(cols, batched[b][1])
    assert batched[1][0].numel() == 0 and len(batched[2][0]) == 7
    assert len(set(batched[2][0].tolist())) == 7  # one query per target


def test_loc3d_mode_matches_in_meters():
    K = torch.tensor([[200.0, 0, 100], [0, 200.0, 100], [0, 0, 1]])
    # same pixel, different depths: 2D matching cannot tell them apart, 3D can
    out = _outputs([[[100.0, 100], [100, 100]]], nearness=[[0.0, -np.log(3.0)]])
    pos = query_positions(out, K[None], ref_focal=200.0)
    np.testing.assert_allclose(pos[0, :, 2], [1.0, 3.0], rtol=1e-5)
    targets = [{"loc": torch.tensor([[100.0, 100]]), "K": K, "position": torch.tensor([[0.0, 0, 3.0]])}]
    (rows, _), = HungarianMatcher(MatcherConfig(mode="loc3d"), ref_focal=200.0)(out, targets)
    assert rows.tolist() == [1]


def test_joints3d_mode_needs_the_body_model():
    with pytest.raises(ValueError, match="joints_fn"):
        HungarianMatcher(MatcherConfig(mode="joints3d"))
    # Same pelvis-centred skeleton for both queries; they differ only in where they are:
    # K (f 100, centre 50,50), nearness 0 at ref focal 100 -> depth 1 m; query 1 at u = 150
    # is at (1, 0, 1) m, where the target's joints are. Joints are compared in the camera frame.
    joints = torch.zeros(1, 2, 4, 3)
    m = HungarianMatcher(MatcherConfig(mode="joints3d"), ref_focal=100.0, joints_fn=lambda out: joints)
    K = torch.tensor([[100.0, 0, 50], [0, 100, 50], [0, 0, 1]])
    target = {"loc": torch.zeros(1, 2), "K": K, "joints": torch.tensor([1.0, 0, 1]).expand(1, 4, 3)}
    (rows, _), = m(_outputs([[[50.0, 50], [150, 50]]]), [target])
    assert rows.tolist() == [1]
    # the cost is the mean L1 over joints (query 0 is 1 m off in x on each of the 4 joints)
    # plus the focal term of logit 0: alpha * 0.5^gamma * log 2 with alpha 0.25, gamma 2
    focal = 0.25 * 0.25 * np.log(2.0)
    cost = m.cost_matrix(_outputs([[[50.0, 50], [150, 50]]]), [target])[0, :, 0]
    np.testing.assert_allclose(cost.numpy(), [1.0 + focal, focal], rtol=1e-5)


def test_query_positions_use_each_axis_own_focal_and_centre():
    # fx 200, fy 250, centre (120, 80); nearness -log 2 at ref focal 250: depth fy / 250 * 2 = 2 m.
    # Pixel (320, 330) is one focal length right and down of the centre on each axis: (2, 2, 2) m.
    K = torch.tensor([[200.0, 0, 120], [0, 250.0, 80], [0, 0, 1]])
    out = _outputs([[[320.0, 330.0]]], nearness=[[-np.log(2.0)]])
    np.testing.assert_allclose(query_positions(out, K[None], ref_focal=250.0)[0, 0], [2.0, 2.0, 2.0], rtol=1e-6)


def test_cost_matrix_by_hand_l1_pixels_plus_focal_term():
    # query (10, 10) against targets (13, 14) and (10, 10): L1 7 and 0 px (L2 would give 5);
    # logit 0 (c = 0.5): FC = 0.25 * 0.5^2 * log 2 on every pair; weights 2 and 3.
    cfg = MatcherConfig(location_weight=2.0, score_weight=3.0)
    cost = HungarianMatcher(cfg).cost_matrix(_outputs([[[10.0, 10.0]]]), [{"loc": torch.tensor([[13.0, 14], [10, 10]])}])
    fc = 3.0 * 0.25 * 0.25 * np.log(2.0)
    np.testing.assert_allclose(cost[0, 0], [2.0 * 7 + fc, fc], rtol=1e-6)
