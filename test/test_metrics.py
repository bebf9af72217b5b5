"""Metrics on cases computed by hand."""

import math

import numpy as np
import pytest

from mhr2_ros.evaluation.metrics import (
    BOX_IOU, MATCH_IOU, Detection, abs_pve, box_iou, fov_bias_deg, fov_error_deg, keypoint_box_iou, match_people,
    facing_camera_deg, heading_error_deg, mpjpe, mrpe, orientation_error_deg, pa_mpjpe, pair_pa_mpjpe, procrustes_align, pve, ta_pve,
)  # fmt: skip

SQUARE = np.array([[0.0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])


def test_mpjpe_ignores_root_translation_and_counts_joint_offsets():
    assert mpjpe(SQUARE + 5.0, SQUARE) == pytest.approx(0.0)
    moved = SQUARE.copy()
    moved[2, 2] = 0.1  # one joint of four off by 10 cm: 25 mm on average
    assert mpjpe(moved, SQUARE) == pytest.approx(25.0)


def test_pa_mpjpe_removes_similarity_but_not_shape():
    c, s = math.cos(0.7), math.sin(0.7)
    R = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    assert pa_mpjpe(2.5 * SQUARE @ R.T + [3, -1, 7], SQUARE) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(procrustes_align(2.5 * SQUARE @ R.T, SQUARE), SQUARE, atol=1e-9)
    # a reflection is not a rotation: a mirrored non-planar shape keeps an error
    tetra = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert pa_mpjpe(tetra * [-1, 1, 1], tetra) > 100


def test_procrustes_is_the_least_squares_similarity_also_when_a_reflection_is_excluded():
    """Against a numerical search over rotation, scale and translation: the closed form must
    reach the same least sum of squares (a mirrored, non-planar shape, where the sign term
    of the rotation also enters the scale)."""
    from scipy.optimize import minimize
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(3)
    gt = rng.normal(size=(8, 3))
    pred = 0.7 * (gt * [-1, 1, 1]) + rng.normal(scale=0.05, size=(8, 3))  # mirrored: no rotation fits

    def sse(x):
        return ((np.exp(x[3]) * pred @ Rotation.from_rotvec(x[:3]).as_matrix().T + x[4:] - gt) ** 2).sum()

    best = min((minimize(sse, np.concatenate([r0, [0.0], np.zeros(3)]), method="BFGS", options={"gtol": 1e-10})
                for r0 in rng.normal(scale=2.0, size=(12, 3))), key=lambda r: r.fun)  # fmt: skip
    closed = ((procrustes_align(pred, gt) - gt) ** 2).sum()
    assert best.fun > 1.0  # the mirror leaves a real error, so a wrong scale shows
    assert closed == pytest.approx(best.fun, rel=1e-6)


def test_pair_pa_mpjpe_sees_relative_placement():
    a, b = SQUARE, SQUARE + [3.0, 0, 0]
    assert pair_pa_mpjpe(a + 1, b + 1, a, b) == pytest.approx(0.0, abs=1e-9)
    # each person alone is perfect, but the second is placed 1 m too far right
    assert pa_mpjpe(b + [1.0, 0, 0], b) == pytest.approx(0.0, abs=1e-9)
    assert pair_pa_mpjpe(a, b + [1.0, 0, 0], a, b) > 50


def test_vertex_errors():
    v = np.random.default_rng(0).normal(size=(30, 3))
    assert pve(v + 2.0, v, np.full(3, 2.0), np.zeros(3)) == pytest.approx(0.0)
    assert abs_pve(v + [0, 0, 0.3], v) == pytest.approx(300.0)
    # scene shifted as a whole by 1 m: TA-PVE forgives it, Abs-PVE does not
    assert ta_pve([v + 1.0, v + [4.0, 1, 1]], [v, v + [3.0, 0, 0]]) == pytest.approx(0.0, abs=1e-9)
    assert ta_pve([v], [v]) is None
    # PVE: pelvis-centred, millimetres (0.3 m off, less the 0.1 m the pelvis moved: 200 mm)
    assert pve(v + [0, 0, 0.3], v, np.array([0, 0, 0.1]), np.zeros(3)) == pytest.approx(200.0)
    # TA-PVE: one shift for the scene, not one per person: the second person 1 m off while
    # the first is right -> the best common shift is 0.5 m, 500 mm on every vertex
    assert ta_pve([v, v + [1.0, 0, 0]], [v, v]) == pytest.approx(500.0)


def test_mrpe_and_fov_error():
    assert mrpe(np.array([0.0, 0, 3]), np.array([0.3, 0.4, 3])) == pytest.approx(0.5)
    assert fov_error_deg(math.radians(65), math.radians(60)) == pytest.approx(5.0)
    assert fov_error_deg(math.radians(55), math.radians(60)) == pytest.approx(5.0)  # too narrow counts as much
    assert fov_bias_deg(math.radians(55), math.radians(60)) == pytest.approx(-5.0)  # ... and the bias says which way
    assert fov_bias_deg(math.radians(65), math.radians(60)) == pytest.approx(5.0)


def test_detection_matching_on_2d_joints():
    gt = np.array([[[10.0, 10], [20, 40]], [[100, 100], [110, 140]]])  # 2 people, 2 joints
    boxes = np.array([[0.0, 0, 30, 40], [90, 90, 120, 130]])  # diagonals 50 and 50 px
    vis = np.ones((2, 2))
    pred = np.stack([gt[1] + 2.0, gt[0] + 20.0, gt[0] + 100])  # good, too far, far away
    rows, cols, det = match_people(pred, gt, vis, boxes, threshold=0.1, criterion="joints")
    assert rows.tolist() == [0] and cols.tolist() == [1]
    assert (det.tp, det.fp, det.fn) == (1, 2, 1)
    assert det.precision == pytest.approx(1 / 3) and det.recall == pytest.approx(0.5)
    assert det.f1 == pytest.approx(0.4)
    assert Detection(0, 0, 0).f1 == 1.0 and match_people(pred[:0], gt, vis, boxes)[2].fn == 2
    assert Detection(0, 3, 2).f1 == 0.0  # nothing right: precision and recall 0
    # no people: every prediction is a false positive
    none = match_people(pred[:1], gt[:0], vis[:0], boxes[:0])[2]
    assert (none.tp, none.fp, none.fn) == (0, 1, 0) and none.precision == 0.0 and none.recall == 1.0


def test_ignored_people_are_neither_missed_nor_false_positives():
    gt = np.array([[[10.0, 10], [20, 40]], [[100, 100], [110, 140]], [[200, 200], [210, 240]]])
    boxes = np.array([[0.0, 0, 30, 40], [90, 90, 120, 130], [190, 190, 220, 230]])  # diagonals 50 px
    vis = np.ones((3, 2))
    ignore = np.array([False, True, True])  # person 0 counts; 1 and 2 are ignore regions
    pred = np.stack([gt[1] + 1.0, gt[0] + 1.0, gt[0] + 3.0, gt[0] + 100.0])  # on 1, on 0, duplicate of 0, nowhere
    rows, cols, det = match_people(pred, gt, vis, boxes, threshold=0.1, ignore=ignore, criterion="joints")
    assert rows.tolist() == [1] and cols.tolist() == [0]  # the true positive, in full GT indices
    # prediction 0 sits on ignored person 1: not a false positive; the duplicate of person 0
    # is no match for an ignored person (too far from both), so it stays a false positive
    assert (det.tp, det.fp, det.fn) == (1, 2, 0) and det.ignored == (0,)
    # without the ignore flags the same predictions give 2 TP, 2 FP, 1 FN
    _, _, plain = match_people(pred, gt, vis, boxes, threshold=0.1, criterion="joints")
    assert (plain.tp, plain.fp, plain.fn, plain.ignored) == (2, 2, 1, ())
    # no predictions: only the counted person is missed
    assert match_people(pred[:0], gt, vis, boxes, ignore=ignore)[2].fn == 1


def test_keypoint_box_iou_by_hand():
    a = np.array([[[0.0, 0], [10, 10]]])  # box 0..10 x 0..10, area 100
    b = np.array([[[5.0, 0], [15, 10]], [[20.0, 20], [30, 30]], [[0.0, 0], [10, 10]]])
    np.testing.assert_allclose(keypoint_box_iou(a, b), [[50 / 150, 0.0, 1.0]])
    # an unlabelled GT joint (stored at 0, 0, as COCO does) widens neither box
    gt = np.array([[[100.0, 100], [110, 110], [0, 0]]])
    pred = np.array([[[100.0, 100], [110, 110], [60, 60]]])  # its third joint is not compared either
    vis = np.array([[True, True, False]])
    np.testing.assert_allclose(keypoint_box_iou(pred, gt, vis), [[1.0]])
    assert keypoint_box_iou(pred, gt)[0, 0] == pytest.approx(50**2 / 110**2)  # all joints: 60..110 in 0..110
    boxes = np.array([[100.0, 100, 110, 110]])
    assert match_people(pred, gt, vis.astype(float), boxes)[2].tp == 1
    assert match_people(pred, gt, np.ones((1, 3)), boxes, threshold=BOX_IOU)[2].tp == 0  # counting it would fail
    # nor does it count in the joint distance: the labelled joints are exact, so "joints" accepts
    assert match_people(pred, gt, vis.astype(float), boxes, criterion="joints")[2].tp == 1


def test_box_iou_by_hand():
    a = np.array([0.0, 0, 10, 10])
    boxes = np.array([[5.0, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [2, 2, 4, 4], [5, 5, 5, 9]])
    np.testing.assert_allclose(box_iou(a, boxes), [50 / 150, 0.0, 1.0, 4 / 100, 0.0])  # last: empty box
    np.testing.assert_allclose(box_iou(boxes[:, None], boxes[None]).diagonal(), [1, 1, 1, 1, 0])


def test_iou_criterion_finds_people_whatever_their_pose():
    """criterion "iou" (default): a prediction whose joint box overlaps the person's with
    IoU >= 0.1 (the paper's protocol, AGORA's) is found even with a wrong pose, which the
    "joints" criterion refuses; threshold=BOX_IOU is the stricter box test."""
    assert (MATCH_IOU, BOX_IOU) == (0.1, 0.5)
    gt = np.array([[[0.0, 0], [10, 100], [20, 50]]])  # one person, 3 joints, box 20 x 100
    boxes = np.array([[0.0, 0, 20, 100]])
    vis = np.ones((1, 3))
    # same box, joints shuffled: mean joint error ~50 px, 49% of the diagonal
    wrong_pose = gt[:, [1, 2, 0]]
    _, _, found = match_people(wrong_pose, gt, vis, boxes)
    _, _, strict = match_people(wrong_pose, gt, vis, boxes, criterion="joints")
    assert (found.tp, found.fp, found.fn) == (1, 0, 0) and (strict.tp, strict.fp, strict.fn) == (0, 1, 1)
    # a box of the right size but beside the person (IoU 1/3): found by the protocol, not by the box test
    beside = gt + np.array([10.0, 0.0])
    assert keypoint_box_iou(beside, gt)[0, 0] == pytest.approx(1 / 3)
    assert match_people(beside, gt, vis, boxes)[2].tp == 1
    assert match_people(beside, gt, vis, boxes, threshold=BOX_IOU)[2].tp == 0
    # a body three times too narrow at the right place (IoU 1/3): the wrong body the box test refuses
    narrow = gt * np.array([1 / 3, 1.0]) + np.array([20 / 3, 0.0])
    assert keypoint_box_iou(narrow, gt)[0, 0] == pytest.approx(1 / 3)
    assert match_people(narrow, gt, vis, boxes)[2].tp == 1
    assert match_people(narrow, gt, vis, boxes, threshold=BOX_IOU)[2].tp == 0
    # the thresholds themselves pass: a 30 px wide person, 10 px beside: 2000 / 4000; 18 px wide, 18 px beside
    wide, wide_box = np.array([[[0.0, 0], [30, 100], [15, 50]]]), np.array([[0.0, 0, 30, 100]])
    assert keypoint_box_iou(wide + [10.0, 0], wide)[0, 0] == 0.5
    assert match_people(wide + [10.0, 0], wide, vis, wide_box, threshold=BOX_IOU)[2].tp == 1
    far = wide + [30.0 * 9 / 11, 0]  # overlap 30 * 2 / 11 wide: IoU (60 / 11) / (60 - 60 / 11) = 0.1
    assert keypoint_box_iou(far, wide)[0, 0] == pytest.approx(0.1)
    assert match_people(far + [-1e-9, 0], wide, vis, wide_box)[2].tp == 1
    assert match_people(far + [0.5, 0], wide, vis, wide_box)[2].tp == 0
    with pytest.raises(ValueError, match="criterion"):
        match_people(gt, gt, vis, boxes, criterion="mask")


def test_the_strict_count_also_needs_the_boxes_to_overlap():
    """A thin person and a prediction 8 px beside it: joints within 10% of the diagonal,
    but boxes at IoU 0.11: found by the protocol (IoU >= 0.1), not by "joints", whose box
    test is the stricter 0.5. 9 px beside (IoU 0.05): found by neither."""
    gt = np.array([[[0.0, 0], [10, 100], [5, 50]]])
    boxes, vis = np.array([[0.0, 0, 10, 100]]), np.ones((1, 3))
    beside = gt + np.array([8.0, 0.0])
    assert keypoint_box_iou(beside, gt)[0, 0] == pytest.approx(2 / 18)
    found = match_people(beside, gt, vis, boxes)[2]
    strict = match_people(beside, gt, vis, boxes, criterion="joints")[2]
    assert (found.tp, found.fp, found.fn) == (1, 0, 0) and (strict.tp, strict.fp, strict.fn) == (0, 1, 1)
    further = gt + np.array([9.0, 0.0])
    assert keypoint_box_iou(further, gt)[0, 0] == pytest.approx(1 / 19)
    for criterion in ("iou", "joints"):
        det = match_people(further, gt, vis, boxes, criterion=criterion)[2]
        assert (det.tp, det.fp, det.fn) == (0, 1, 1), criterion


def test_an_extra_prediction_never_takes_a_person_from_one_that_passes():
    """P1: left and right swapped (same box, IoU 1, joint cost 60 / 116.6 = 0.51); P2: half-size
    body at the right place (closer joints, cost 29.2 / 116.6 = 0.25, IoU 0.25). At the box test
    (IoU 0.5) P2 would win a plain Hungarian on the joint cost and then be refused; the person
    stays found by P1."""
    gt = np.array([[[0.0, 0], [60, 0], [0, 100], [60, 100]]])  # shoulders, then feet
    boxes, vis = np.array([[0.0, 0, 60, 100]]), np.ones((1, 4))
    swapped = gt[:, [1, 0, 3, 2]]
    half = np.array([[[15.0, 25], [45, 25], [15, 75], [45, 75]]])
    diag = math.hypot(60, 100)
    cost = [np.linalg.norm(p - gt, axis=-1).mean() / diag for p in (swapped, half)]
    assert cost == pytest.approx([60 / diag, math.hypot(15, 25) / diag]) and cost[1] < cost[0]
    np.testing.assert_allclose(keypoint_box_iou(np.concatenate([swapped, half]), gt), [[1.0], [0.25]])
    alone = match_people(swapped, gt, vis, boxes, threshold=0.5)[2]
    both = match_people(np.concatenate([swapped, half]), gt, vis, boxes, threshold=0.5)
    assert (alone.tp, alone.fp, alone.fn) == (1, 0, 0)
    assert (both[2].tp, both[2].fp, both[2].fn) == (1, 1, 0) and both[0].tolist() == [0]


def test_orientation_error_by_hand():
    quarter = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    assert orientation_error_deg(np.eye(3), np.eye(3)) == pytest.approx(0.0)
    assert orientation_error_deg(quarter, np.eye(3)) == pytest.approx(90.0)
    assert orientation_error_deg(quarter @ quarter, np.eye(3)) == pytest.approx(180.0)  # facing away
    assert orientation_error_deg(quarter, quarter @ quarter) == pytest.approx(90.0)  # relative, either order


def _about(axis: int, deg: float) -> np.ndarray:
    """Rotation by `deg` about coordinate axis 0, 1 or 2."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def test_heading_error_by_hand():
    """Body axes (REP-103: x chest, y left, z up). A person facing the camera: chest along the
    camera's -z, up along its -y (y points down in an image), left along +x."""
    facing = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # x, y, z columns
    assert np.allclose(facing @ facing.T, np.eye(3)) and np.isclose(np.linalg.det(facing), 1.0)
    assert heading_error_deg(facing, facing) == pytest.approx(0.0)
    turned = facing @ _about(2, 30.0)  # 30 deg about the body's own up axis
    assert heading_error_deg(turned, facing) == pytest.approx(30.0)
    assert orientation_error_deg(turned, facing) == pytest.approx(30.0)
    lean = facing @ _about(0, 20.0)  # sideways, about the chest axis: no heading change
    assert heading_error_deg(lean, facing) == pytest.approx(0.0, abs=1e-9)
    assert orientation_error_deg(lean, facing) == pytest.approx(20.0)
    bow = facing @ _about(1, 40.0)  # forward, about the left axis: the chest dips, still facing the camera
    assert heading_error_deg(bow, facing) == pytest.approx(0.0, abs=1e-9)
    assert heading_error_deg(facing @ _about(2, 30.0) @ _about(1, 40.0), facing) == pytest.approx(30.0)
    assert heading_error_deg(facing @ _about(2, 180.0), facing) == pytest.approx(180.0)  # turned around
    assert heading_error_deg(facing @ _about(2, -120.0), facing) == pytest.approx(120.0)  # either way round
    assert heading_error_deg(facing @ _about(1, 90.0), facing) is None  # lying face down: no heading


def test_facing_the_camera_by_hand():
    """0: chest toward the camera, 180: back to it, measured on the ground plane of the body
    (its up axis: optical -y for a person standing in front of a level camera)."""
    facing = np.column_stack([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # chest toward -z, up -y
    ahead = np.array([0.0, 0.5, 3.0])  # 3 m in front, pelvis a little below the lens
    assert facing_camera_deg(facing, ahead) == pytest.approx(0.0, abs=1e-9)
    assert facing_camera_deg(facing @ _about(2, 180.0), ahead) == pytest.approx(180.0)  # its back
    assert facing_camera_deg(facing @ _about(2, 90.0), ahead) == pytest.approx(90.0)  # in profile
    assert facing_camera_deg(facing, np.array([3.0, 0.5, 3.0])) == pytest.approx(45.0)  # off to the side
    assert facing_camera_deg(facing @ _about(1, 30.0), ahead) == pytest.approx(0.0, abs=1e-9)  # a bow: still toward
    assert facing_camera_deg(facing, np.array([0.0, 2.0, 0.0])) is None  # the camera straight above the body
