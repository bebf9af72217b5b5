"""Metrics on cases computed by hand."""

import math

import numpy as np
import pytest

from mhr2_ros.evaluation.metrics import (
    Detection, abs_pve, fov_error_deg, match_people, mpjpe, mrpe, pa_mpjpe, pair_pa_mpjpe,
    procrustes_align, pve, ta_pve,
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


def test_mrpe_and_fov_error():
    assert mrpe(np.array([0.0, 0, 3]), np.array([0.3, 0.4, 3])) == pytest.approx(0.5)
    assert fov_error_deg(math.radians(65), math.radians(60)) == pytest.approx(5.0)


def test_detection_matching_on_2d_joints():
    gt = np.array([[[10.0, 10], [20, 40]], [[100, 100], [110, 140]]])  # 2 people, 2 joints
    boxes = np.array([[0.0, 0, 30, 40], [90, 90, 120, 130]])  # diagonals 50 and 50 px
    vis = np.ones((2, 2))
    pred = np.stack([gt[1] + 2.0, gt[0] + 20.0, gt[0] + 100])  # good, too far, far away
    rows, cols, det = match_people(pred, gt, vis, boxes, threshold=0.1)
    assert rows.tolist() == [0] and cols.tolist() == [1]
    assert (det.tp, det.fp, det.fn) == (1, 2, 1)
    assert det.precision == pytest.approx(1 / 3) and det.recall == pytest.approx(0.5)
    assert det.f1 == pytest.approx(0.4)
    assert Detection(0, 0, 0).f1 == 1.0 and match_people(pred[:0], gt, vis, boxes)[2].fn == 2


def test_ignored_people_are_neither_missed_nor_false_positives():
    gt = np.array([[[10.0, 10], [20, 40]], [[100, 100], [110, 140]], [[200, 200], [210, 240]]])
    boxes = np.array([[0.0, 0, 30, 40], [90, 90, 120, 130], [190, 190, 220, 230]])  # diagonals 50 px
    vis = np.ones((3, 2))
    ignore = np.array([False, True, True])  # person 0 counts; 1 and 2 are ignore regions
    pred = np.stack([gt[1] + 1.0, gt[0] + 1.0, gt[0] + 3.0, gt[0] + 100.0])  # on 1, on 0, duplicate of 0, nowhere
    rows, cols, det = match_people(pred, gt, vis, boxes, threshold=0.1, ignore=ignore)
    assert rows.tolist() == [1] and cols.tolist() == [0]  # the true positive, in full GT indices
    # prediction 0 sits on ignored person 1: not a false positive; the duplicate of person 0
    # is no match for an ignored person (too far from both), so it stays a false positive
    assert (det.tp, det.fp, det.fn) == (1, 2, 0) and det.ignored == (0,)
    # without the ignore flags the same predictions give 2 TP, 2 FP, 1 FN
    _, _, plain = match_people(pred, gt, vis, boxes, threshold=0.1)
    assert (plain.tp, plain.fp, plain.fn, plain.ignored) == (2, 2, 1, ())
    # no predictions: only the counted person is missed
    assert match_people(pred[:0], gt, vis, boxes, ignore=ignore)[2].fn == 1
