"""Detection error types (evaluation/errors.py) on frames laid out by hand."""

import numpy as np

from mhr2_ros.evaluation.errors import LOCATE_FRACTION, ErrorTypes, classify_errors
from mhr2_ros.evaluation.metrics import Detection


def test_every_false_positive_and_miss_gets_one_type():
    # People (pelvis px, box diagonal px): A matched; B missed; C ignored; D missed.
    gt = np.array([[100, 100], [400, 100], [700, 100], [100, 400]], float)
    diag = np.array([200, 200, 100, 200], float)  # "on" within 30, 30, 15, 30 px
    ignore = np.array([False, False, True, False])
    pred = np.array([
        [101, 100],  # 0: matched to A
        [110, 100],  # 1: on A, who is matched already: duplicate
        [405, 100],  # 2: on B, missed: wrong body
        [410, 100],  # 3: a second one on B: duplicate
        [1000, 900],  # 4: on nobody: background
        [700, 100],  # 5: on C, who is not counted (and not matched to C): background
    ], float)  # fmt: skip
    det = Detection(tp=1, fp=5, fn=2)
    e = classify_errors(pred, gt, diag, np.array([0]), np.array([0]), det, ignore)
    assert e == ErrorTypes(wrong_body=1, duplicate=2, background=2, not_found=1)  # D: nothing on them
    assert e.wrong_body + e.duplicate + e.background == det.fp and e.wrong_body + e.not_found == det.fn
    fixed = e.fixed_bodies(det)
    assert (fixed.tp, fixed.fp, fixed.fn) == (2, 4, 1)


def test_predictions_on_ignored_people_are_no_errors():
    gt, diag = np.array([[50, 50]], float), np.array([100.0])
    det = Detection(tp=0, fp=0, fn=0, ignored=(0,))  # prediction 0 matched the ignored person
    e = classify_errors(np.array([[50, 50]], float), gt, diag, np.zeros(0, int), np.zeros(0, int), det, np.array([True]))
    assert e == ErrorTypes()


def test_as_many_missed_people_as_possible_get_their_wrong_body():
    # X and Y 10 px apart (diagonal 100: "on" within 15 px). f0 lies on both, f1 on X alone:
    # pairing f0 with X (a nearest-first greedy would) leaves Y without; the assignment pairs
    # f1-X and f0-Y, two wrong bodies.
    gt, diag = np.array([[0, 0], [10, 0]], float), np.array([100.0, 100.0])
    pred = np.array([[4, 0], [-12, 0]], float)
    assert 12 < LOCATE_FRACTION * 100 < 22  # f1 is on X only
    e = classify_errors(pred, gt, diag, np.zeros(0, int), np.zeros(0, int), Detection(0, 2, 2))
    assert e == ErrorTypes(wrong_body=2)


def test_empty_frames():
    none2, none = np.zeros((0, 2)), np.zeros(0, int)
    assert classify_errors(none2, none2, np.zeros(0), none, none, Detection(0, 0, 0)) == ErrorTypes()
    e = classify_errors(np.ones((2, 2)), none2, np.zeros(0), none, none, Detection(0, 2, 0))
    assert e == ErrorTypes(background=2)
    e = classify_errors(none2, np.ones((3, 2)), np.ones(3), none, none, Detection(0, 0, 3))
    assert e == ErrorTypes(not_found=3)
