"""Each loss is zero at a perfect prediction, has a gradient otherwise, and obeys its flag."""

import math

import pytest
import torch

from mhr2_ros.geometry import matrix_to_rotation_6d, project
from mhr2_ros.training import losses as L

P, J, V, B, N = 3, 5, 40, 2, 6


def _perfect():
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]]).expand(P, 3, 3).clone()
    position = torch.tensor([[0.2, 0.1, 3.0], [-1.0, 0.3, 5.0], [1.5, -0.2, 8.0]])
    joints = torch.randn(P, J, 3, generator=g) * 0.3
    R = torch.linalg.qr(torch.randn(P, 4, 3, 3, generator=g)).Q
    R = R * torch.linalg.det(R)[..., None, None]
    depth_focal = K[:, 1, 1]
    gt = {
        "K": K,
        "position": position,
        "loc": project(position, K[0]),
        "rot6d": matrix_to_rotation_6d(R),
        "shape": torch.rand(P, 6, generator=g),
        "joints": joints,
        "vertices": torch.randn(P, V, 3, generator=g) * 0.5,
        "keypoints_2d": torch.stack([project(joints[p] + position[p], K[p]) for p in range(P)]),
        "keypoints_vis": torch.ones(P, J),
        "image_size": torch.tensor([[320.0, 240.0]]).expand(P, 2),
        "track": torch.randn(P, 16, generator=g),
    }
    for flag in ("loc", "depth", "pose", "shape", "mesh", "reproj", "track"):
        gt[f"sup_{flag}"] = torch.ones(P, dtype=torch.bool)
    pred = {k: gt[k].clone() for k in ("loc", "rot6d", "shape", "joints", "vertices", "track", "position")}
    pred["nearness"] = -torch.log(position[:, 2] * 768.0 / depth_focal)
    matched = torch.zeros(B, N, dtype=torch.bool)
    matched[0, :2] = True
    matched[1, 0] = True
    batch = {
        "logits": torch.where(matched, 30.0, -30.0),
        "matched": matched,
        "sup_score": torch.ones(B, dtype=torch.bool),
        "fov": torch.tensor([1.0, 0.8]),
        "fov_gt": torch.tensor([1.0, 0.8]),
        "sup_fov": torch.ones(B, dtype=torch.bool),
    }
    return batch, pred, gt


def test_every_term_is_zero_at_a_perfect_prediction():
    batch, pred, gt = _perfect()
    crit = L.Criterion(L.LossWeights(), L.LossConfig())
    total, terms = crit(batch, pred, gt)
    assert set(terms) == {"score", "loc", "depth", "pose", "root", "shape", "vertices", "joints", "reproj",
                          "pose2d", "angle2d", "track", "fov"}
    for name, value in terms.items():
        assert float(value) == pytest.approx(0.0, abs=1e-5), name
    assert float(total) == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("key", ["loc", "nearness", "rot6d", "shape", "joints", "vertices", "track", "position"])
def test_perturbed_prediction_gives_positive_loss_with_gradient(key):
    batch, pred, gt = _perfect()
    pred[key] = (pred[key] + 0.05 * torch.randn_like(pred[key])).requires_grad_(True)
    total, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    assert float(total.detach()) > 0
    total.backward()
    assert pred[key].grad is not None and pred[key].grad.abs().sum() > 0


def test_score_and_fov_terms():
    batch, pred, gt = _perfect()
    batch["logits"] = torch.zeros(B, N, requires_grad=True)
    batch["fov"] = torch.tensor([1.1, 0.7], requires_grad=True)
    total, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    assert float(terms["score"]) == pytest.approx(math.log(2), rel=1e-5)
    # over-estimate 0.1 rad costs 2x, under-estimate 0.1 rad costs 1x: mean 0.15
    assert float(terms["fov"]) == pytest.approx(0.15, rel=1e-4)
    total.backward()
    assert batch["fov"].grad.abs().sum() > 0 and batch["logits"].grad.abs().sum() > 0


def test_supervision_flags_switch_terms_off():
    batch, pred, gt = _perfect()
    for key in ("loc", "rot6d", "joints", "shape", "track"):
        pred[key] = pred[key] + 1.0
    batch["logits"] = torch.zeros(B, N)
    for flag in ("loc", "depth", "pose", "shape", "mesh", "reproj", "track"):
        gt[f"sup_{flag}"][:] = False
    batch["sup_score"][:] = False
    batch["sup_fov"][:] = False
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    assert all(float(v) == 0.0 for v in terms.values()), terms
    # one person supervised again: only that person counts
    gt["sup_shape"][1] = True
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    assert float(terms["shape"]) == pytest.approx(1.0)


def test_angle_loss_ignores_points_at_the_camera_centre():
    batch, pred, gt = _perfect()
    pred["position"] = torch.zeros(P, 3)
    pred["joints"] = torch.zeros(P, J, 3)  # every point at the centre: undefined angles
    value = L.loss_angle2d(pred, gt)
    assert torch.isfinite(value) and float(value) == 0.0


def test_non_finite_terms_are_dropped_in_one_place():
    batch, pred, gt = _perfect()
    pred["shape"] = pred["shape"] * float("nan")
    crit = L.Criterion(L.LossWeights(), L.LossConfig())
    total, terms = crit(batch, pred, gt)
    assert torch.isfinite(total) and crit.skipped_non_finite == 1


def test_proposal_terms():
    """Dense proposals (query selection): focal loss per positive, L1 of the proposed pelvis."""
    target = torch.zeros(B, 4)
    target[0, 1] = 1.0
    sure = torch.where(target > 0, 30.0, -30.0)
    sup = torch.ones(B, dtype=torch.bool)
    assert float(L.loss_proposal_score(sure, target, sup)) == pytest.approx(0.0, abs=1e-6)
    logits = torch.zeros(B, 4, requires_grad=True)  # p = 0.5 everywhere: 1 positive, 7 negatives
    value = L.loss_proposal_score(logits, target, sup)
    # alpha_t (1 - p_t)^2 log 2 per patch: alpha 0.25 on the positive, 0.75 on the 7 negatives
    assert value.item() == pytest.approx((0.25 + 7 * 0.75) * 0.5**2 * math.log(2), rel=1e-5)
    value.backward()
    assert logits.grad.abs().sum() > 0
    assert L.loss_proposal_score(logits, target, torch.zeros(B, dtype=torch.bool)).item() == 0.0
    loc = torch.tensor([[10.0, 20.0]])
    assert float(L.loss_proposal_loc(loc, loc + torch.tensor([[4.0, 0.0]]), torch.tensor([100.0]))) \
        == pytest.approx(0.02)
    assert float(L.loss_proposal_loc(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0))) == 0.0
    batch, pred, gt = _perfect()
    batch.update(proposal_logits=sure, proposal_target=target, proposal_loc=(loc, loc, torch.tensor([100.0])))
    _, terms = L.Criterion(L.LossWeights(), L.LossConfig())(batch, pred, gt)
    assert float(terms["proposal_score"]) == pytest.approx(0.0, abs=1e-6) and float(terms["proposal_loc"]) == 0.0


def test_proposal_targets_mark_the_patch_of_each_pelvis():
    from mhr2_ros.training.step import proposal_targets

    # a 64 x 96 input, 16 px patches: a 4 x 6 grid (P = 24)
    outputs = {"proposal_logits": torch.zeros(4, 24), "proposal_loc": torch.rand(4, 24, 2) * 64}
    targets = [
        {"loc": torch.tensor([[40.0, 20.0], [95.9, 63.9]]), "sup": {"loc": True}},  # cells (1, 2), (3, 5)
        {"loc": torch.zeros(0, 2), "sup": {"loc": True}},
        {"loc": torch.tensor([[0.0, 0.0]]), "sup": {"loc": False}},  # cell (0, 0): a positive, no location row
        {"loc": torch.tensor([[17.0, 33.0]]), "sup": {"loc": True}},  # cell (2, 1)
    ]
    out = proposal_targets(outputs, targets, (64, 96))
    assert [row.nonzero().flatten().tolist() for row in out["proposal_target"]] == [[8, 23], [], [0], [13]]
    pred, gt, scale = out["proposal_loc"]
    torch.testing.assert_close(pred, torch.cat([outputs["proposal_loc"][0, [8, 23]], outputs["proposal_loc"][3, [13]]]))
    torch.testing.assert_close(gt, torch.cat([targets[0]["loc"], targets[3]["loc"]]))
    assert scale.tolist() == [96.0, 96.0, 96.0]


def test_reprojection_with_the_predicted_camera_places_and_projects_with_it():
    """A person at the right pixel with the right nearness but a wrong field of view still
    reprojects onto its keypoints when placed and projected with the same predicted K."""
    from mhr2_ros.training.step import place_in_camera

    _, pred, gt = _perfect()
    gt["keypoints_2d"] = gt["loc"][:, None].expand(P, J, 2).clone()  # every joint at the pelvis
    pred["joints"] = torch.zeros(P, J, 3)
    pred["K"] = gt["K"].clone()
    pred["K"][:, 0, 0] = pred["K"][:, 1, 1] = 210.0  # a wider predicted field of view
    pred["position_pred_camera"] = place_in_camera(pred, pred["K"], 768.0)
    assert float(L.loss_reproj(pred, gt, "pred")) == pytest.approx(0.0, abs=1e-6)
    assert float(L.loss_reproj(pred, gt, "gt")) == pytest.approx(0.0, abs=1e-6)
    pred["position_pred_camera"] = pred["position"]  # placed with the true K, projected with the predicted one
    assert float(L.loss_reproj(pred, gt, "pred")) > 0.01


def test_people_without_visible_keypoints_do_not_dilute_the_2d_terms():
    _, pred, gt = _perfect()
    pred["position"] = pred["position"] + torch.tensor([0.3, 0.0, 0.0])  # every person off by 30 cm
    full = [float(L.loss_reproj(pred, gt)), float(L.loss_angle2d(pred, gt))]
    gt["keypoints_vis"] = gt["keypoints_vis"].clone()
    gt["keypoints_vis"][0] = 0  # nothing to fit for the first person
    rest = {k: (v[1:] if torch.is_tensor(v) and len(v) == P else v) for k, v in gt.items()}
    rest_pred = {k: v[1:] for k, v in pred.items()}
    expected = [float(L.loss_reproj(rest_pred, rest)), float(L.loss_angle2d(rest_pred, rest))]
    got = [float(L.loss_reproj(pred, gt)), float(L.loss_angle2d(pred, gt))]
    assert got == pytest.approx(expected, rel=1e-5) and all(g > 0 for g in got) and got != pytest.approx(full)


# ------------------------------------------------------------- values by hand
# The tests above check zeros and signs; these pin each term's value and normalisation,
# so a dropped scale, a wrong mask or a missing weight changes a number that is asserted.


def test_loc_term_is_in_units_of_the_largest_side_and_weighted_in_the_total():
    batch, pred, gt = _perfect()
    pred["loc"] = pred["loc"].clone()
    pred["loc"][0, 0] += 32.0  # person 0, u: 32 px of a 320 px wide image; mean over 2 coords and 3 people
    assert float(L.loss_loc(pred, gt)) == pytest.approx(0.1 / 2 / 3, rel=1e-5)
    total, terms = L.Criterion(L.LossWeights(loc=5.0), L.LossConfig())(batch, pred, gt)
    assert float(total) == pytest.approx(5.0 * 0.1 / 2 / 3, rel=1e-4)  # every other term is zero


def test_reprojection_averages_over_the_visible_joints_only():
    _, pred, gt = _perfect()
    gt["keypoints_2d"] = gt["keypoints_2d"] + torch.tensor([32.0, 0.0])  # every keypoint 32 px right
    gt["keypoints_vis"] = torch.tensor([[1.0, 1, 0, 0, 0]]).expand(P, J).clone()  # 2 of 5 labelled
    # per visible joint |du| / 320 = 0.1, |dv| = 0: mean 0.05 whatever the number of labelled joints
    assert float(L.loss_reproj(pred, gt)) == pytest.approx(0.05, rel=1e-4)


def test_joint_and_pose_terms_are_l1_and_follow_their_own_flags():
    _, pred, gt = _perfect()
    pred["joints"] = pred["joints"] + torch.tensor([0.1, 0.0, 0.0])
    assert float(L.loss_joints(pred, gt)) == pytest.approx(0.1 / 3, rel=1e-5)  # L1, mean over x, y, z
    # both 6D columns negated: R' = [-c1, -c2, c3], |R' - R| sums to 2 |6D|_1 over the 9 entries
    pred["rot6d"] = -gt["rot6d"]
    gt["sup_shape"][:] = False  # pose has its own flag
    expected = float((2 * gt["rot6d"].abs().sum(-1) / 9).mean())
    assert float(L.loss_pose(pred, gt)) == pytest.approx(expected, rel=1e-5)


def test_root_term_reads_the_root_bone_alone():
    """A root turned by 90 degrees about its z axis, every other bone right: the root term
    is |R_z(90) - I| averaged over 9 entries = (1 + 1 + 1 + 1) / 9 (two cosines 0 against 1, two
    sines +-1 against 0); the pose term sees it in 1 bone of J. Bones other than the root: 0."""
    _, pred, gt = _perfect()
    identity6d = torch.tensor([1.0, 0, 0, 0, 1, 0])  # the columns (1, 0, 0) and (0, 1, 0)
    turned6d = torch.tensor([0.0, 1, 0, -1, 0, 0])  # columns of R_z(90): (0, 1, 0) and (-1, 0, 0)
    gt["rot6d"] = identity6d.expand(P, J, 6).clone()
    pred["rot6d"] = gt["rot6d"].clone()
    pred["rot6d"][:, L.ROOT_BONE] = turned6d
    assert float(L.loss_root(pred, gt)) == pytest.approx(4 / 9, rel=1e-5)
    assert float(L.loss_pose(pred, gt)) == pytest.approx(4 / 9 / J, rel=1e-5)
    pred["rot6d"] = gt["rot6d"].clone()
    pred["rot6d"][:, J - 1] = turned6d  # a limb bone turned instead: the root term does not see it
    assert float(L.loss_root(pred, gt)) == pytest.approx(0.0, abs=1e-7)
    gt["sup_pose"][:] = False  # it follows the pose flag
    pred["rot6d"][:, L.ROOT_BONE] = turned6d
    assert float(L.loss_root(pred, gt)) == 0.0


def test_depth_target_uses_the_vertical_focal():
    # nearness is normalised by fy (ModelConfig.nearness_ref_focal): a different fx changes nothing
    _, pred, gt = _perfect()
    gt["K"] = gt["K"].clone()
    gt["K"][:, 0, 0] = 250.0
    assert float(L.loss_depth(pred, gt, 768.0)) == pytest.approx(0.0, abs=1e-6)


def test_score_term_counts_only_the_supervised_images():
    batch, _, _ = _perfect()
    batch["logits"] = batch["logits"].clone()
    batch["logits"][1] = 0.0  # image 1: p = 0.5 everywhere, but its people are not all annotated
    assert float(L.loss_score(batch["logits"], batch["matched"], torch.tensor([True, False]))) \
        == pytest.approx(0.0, abs=1e-6)
    assert float(L.loss_score(batch["logits"], batch["matched"], torch.tensor([True, True]))) \
        == pytest.approx(math.log(2) / 2, rel=1e-4)


def test_angle_term_by_hand_and_points_near_the_camera_ignored():
    _, pred, gt = _perfect()
    # keypoints at the principal point: rays along +z; every point 0.2 rad off it at 3 m depth
    gt["keypoints_2d"] = torch.tensor([160.0, 120.0]).expand(P, J, 2).clone()
    pred["position"] = torch.zeros(P, 3)
    pred["joints"] = torch.tensor([3.0 * math.tan(0.2), 0.0, 3.0]).expand(P, J, 3).clone()
    # 320 x 240 image, f 300: half-diagonal tangent sqrt(160^2 + 120^2) / 300 = 2/3
    assert float(L.loss_angle2d(pred, gt)) == pytest.approx(0.2 / (2 * math.atan(2 / 3)), rel=1e-5)
    pred["joints"] = torch.tensor([0.05, 0.0, 0.0]).expand(P, J, 3).clone()  # 5 cm from the centre
    assert float(L.loss_angle2d(pred, gt)) == 0.0


def _one_person(gt_offset_px: float, pred_offset_m: float, depth: float = 5.0, x: float = 0.0):
    """A pelvis and one more joint on a 100 px focal camera: the GT joint `gt_offset_px`
    right of the GT pelvis (50, 50); the predicted one `pred_offset_m` right of a pelvis
    at (x, 0, depth)."""
    K = torch.tensor([[[100.0, 0, 50], [0, 100.0, 50], [0, 0, 1]]])
    pred = {"position": torch.tensor([[x, 0.0, depth]]),
            "joints": torch.tensor([[[0.0, 0, 0], [pred_offset_m, 0, 0]]])}
    gt = {"K": K, "loc": torch.tensor([[50.0, 50.0]]),
          "keypoints_2d": torch.tensor([[[50.0, 50], [50 + gt_offset_px, 50]]]), "keypoints_vis": torch.ones(1, 2),
          "image_size": torch.tensor([[320.0, 240.0]]), "sup_reproj": torch.ones(1, dtype=torch.bool)}
    return pred, gt


def test_pose2d_is_in_units_of_the_persons_box_and_relative_to_the_pelvis():
    # predicted joint 0.5 m right at 5 m: 10 px from its pelvis; the true one 20 px; the box
    # around the true joints is 20 px wide and 0 high: |10 - 20| / 20 on that joint, 0 on the
    # pelvis, mean 0.25
    pred, gt = _one_person(gt_offset_px=20.0, pred_offset_m=0.5)
    assert float(L.loss_pose2d(pred, gt)) == pytest.approx(0.25, rel=1e-5)
    # the same body placed 1 m to the side at the same depth: a placement error, not a pose error
    moved, _ = _one_person(gt_offset_px=20.0, pred_offset_m=0.5, x=1.0)
    assert float(L.loss_pose2d(moved, gt)) == pytest.approx(0.25, rel=1e-5)
    assert float(L.loss_reproj(moved, gt)) > float(L.loss_reproj(pred, gt))


def test_pose2d_weighs_a_small_person_as_a_large_one():
    # the same relative error on a person half the size (twice as far): pose2d is unchanged,
    # the image-normalised reprojection term halves
    near_pred, near_gt = _one_person(gt_offset_px=20.0, pred_offset_m=0.5, depth=5.0)
    far_pred, far_gt = _one_person(gt_offset_px=10.0, pred_offset_m=0.5, depth=10.0)
    near = [float(L.loss_pose2d(near_pred, near_gt)), float(L.loss_reproj(near_pred, near_gt))]
    far = [float(L.loss_pose2d(far_pred, far_gt)), float(L.loss_reproj(far_pred, far_gt))]
    assert far == pytest.approx([near[0], near[1] / 2], rel=1e-5)


def test_pose2d_needs_two_labelled_joints_and_is_weighted_off_by_default():
    pred, gt = _one_person(gt_offset_px=20.0, pred_offset_m=0.5)
    gt["keypoints_vis"] = torch.tensor([[1.0, 0.0]])  # only the pelvis: no extent to measure
    assert float(L.loss_pose2d(pred, gt)) == 0.0
    assert L.LossWeights().pose2d == 0.0  # not in the paper: a recipe turns it on
