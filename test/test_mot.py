"""MOT metrics (mhr2_ros.evaluation.mot) on hand-computed cases and on a simulated stream."""

import io

import numpy as np
import pytest

pytest.importorskip("motmetrics")

from mhr2_ros.evaluation import mot  # noqa: E402
from mhr2_ros.tracking import Tracker  # noqa: E402
from mhr2_ros.tracking import simulate as sim  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


A, B = [0.0, 0.0, 5.0], [2.0, 0.0, 5.0]


def two_people(n=10):
    return [[(1, A), (2, B)] for _ in range(n)]


def test_perfect_tracking_scores_one():
    gt = two_people()
    pred = [[("h1", A), ("h2", B)] for _ in gt]
    r = mot.evaluate(gt, pred, threshold=0.5)
    assert r["idf1"] == r["mota"] == r["hota"] == r["deta"] == r["assa"] == 1.0
    assert r["num_switches"] == r["num_false_positives"] == r["num_misses"] == 0
    assert r["num_objects"] == 20 and r["num_frames"] == 10


def test_perfect_tracking_in_pixels():
    gt = [[(7, [100.0 + f, 50.0])] for f in range(5)]
    pred = [[("x", [101.0 + f, 50.0])] for f in range(5)]  # 1 px off, threshold 5 px
    r = mot.evaluate(gt, pred, threshold=5.0)
    assert r["idf1"] == r["mota"] == 1.0
    assert r["motp"] == pytest.approx(1.0)  # mean matched distance, pixels
    # LocA = 0.8 (similarity 1 - 1/5) for the 16 alphas <= 0.8; TrackEval counts 1 where nothing matches
    assert r["loca"] == pytest.approx((16 * 0.8 + 3) / 19)


def test_known_swap():
    # IDs swap after frame 7 of 10: 2 switches; IDF1 = 14/20; MOTA = 1 - 2/20.
    gt = two_people()
    pred = [[("h1", A), ("h2", B)] if f < 7 else [("h2", A), ("h1", B)] for f in range(10)]
    r = mot.evaluate(gt, pred, threshold=0.5)
    assert r["num_switches"] == 2
    assert r["mota"] == pytest.approx(0.9)
    assert r["idf1"] == pytest.approx(0.7)
    # HOTA by hand: every detection matched (DetA = 1); per true positive the association
    # IoU is 7/(10+10-7) for the 7-frame pairs and 3/(10+10-3) for the 3-frame pairs.
    assa = (2 * 7 * 7 / 13 + 2 * 3 * 3 / 17) / 20
    assert r["deta"] == pytest.approx(1.0)
    assert r["assa"] == pytest.approx(assa)
    assert r["hota"] == pytest.approx(np.sqrt(assa))


def test_false_positive_and_miss():
    gt = [[(1, A)], [(1, A)], [(1, A)], [(1, A)]]
    pred = [[("h1", A)], [], [("h1", A), ("h9", B)], [("h1", A)]]
    r = mot.evaluate(gt, pred, threshold=0.5)
    assert (r["num_misses"], r["num_false_positives"], r["num_switches"]) == (1, 1, 0)
    assert r["mota"] == pytest.approx(1 - 2 / 4)
    assert r["idf1"] == pytest.approx(2 * 3 / (4 + 4))  # IDTP 3, 4 GT, 4 predictions


def test_hota_counts_misses_and_false_positives_also_in_frames_without_ground_truth():
    # frame 1: a miss; frame 2: a false positive beside the match; frame 3: no GT, one prediction.
    # TP 2, FN 1, FP 2 at every alpha: DetA = 2/5; the one pair (1, h1) matched in 2 frames,
    # GT 3 frames, h1 2 frames: association IoU 2/3 for each TP, AssA = 2/3.
    gt = [[(1, A)], [(1, A)], [(1, A)], []]
    pred = [[("h1", A)], [], [("h1", A), ("h9", B)], [("h9", B)]]
    r = mot.evaluate(gt, pred, threshold=0.5)
    assert r["deta"] == pytest.approx(2 / 5)
    assert r["assa"] == pytest.approx(2 / 3)
    assert r["hota"] == pytest.approx(np.sqrt(2 / 5 * 2 / 3))


def test_hota_matches_by_alignment_times_similarity_not_by_similarity_alone():
    # Two people 0.2 m apart, tracked exactly for 9 frames; in the last frame each track drifts
    # towards the other person (similarity 0.87 to its own, 0.93 to the other). The trajectory
    # alignment keeps the identities: AssA = 1 for the 17 alphas <= 0.85; for 0.90 and 0.95 the
    # last frame's pairs fail and each of the 18 TPs has association IoU 9 / (10 + 10 - 9).
    p1, p2 = [0.0, 0.0, 5.0], [0.2, 0.0, 5.0]
    gt = [[(1, p1), (2, p2)] for _ in range(10)]
    pred = [[("h1", p1), ("h2", p2)] for _ in range(9)] + [[("h1", [0.13, 0.0, 5.0]), ("h2", [0.07, 0.0, 5.0])]]
    r = mot.evaluate(gt, pred, threshold=1.0)
    assert r["assa"] == pytest.approx((17 + 2 * 9 / 11) / 19)
    assert r["deta"] == pytest.approx((17 + 2 * 18 / 22) / 19)


def test_threshold_decides_matches():
    gt = [[(1, [0.0, 0.0, 4.0])]]
    pred = [[("h1", [0.62, 0.0, 4.0])]]
    far = mot.evaluate(gt, pred, threshold=0.5)
    assert (far["num_misses"], far["num_false_positives"], far["mota"]) == (1, 1, -1.0)
    near = mot.evaluate(gt, pred, threshold=1.0)
    assert near["mota"] == 1.0 and near["motp"] == pytest.approx(0.62)
    # HOTA: similarity 1 - 0.62 = 0.38 matches for alpha = 0.05 ... 0.35: 7 of 19 alphas.
    assert near["deta"] == pytest.approx(7 / 19)
    # one detection, one track: AssA 1, so HOTA = sqrt(DetA * AssA) per alpha, 1 at alpha 0.05
    assert near["hota_0"] == pytest.approx(1.0) and near["hota"] == pytest.approx(7 / 19)


def test_boxes_matched_by_iou():
    """metric "iou" (the paper's 2D protocol): boxes pair up at IoU >= threshold, MOTP is the mean
    1 - IoU, HOTA's similarity the IoU. Person 1 (box 0..10 x 0..10) is tracked 5 px to the side
    (IoU 50 / 150 = 1/3): a match at threshold 0.3, a miss and a false positive at 0.5."""
    box1, box2 = [0.0, 0, 10, 10], [100.0, 0, 110, 20]
    gt = [[(1, box1), (2, box2)] for _ in range(4)]
    pred = [[("a", [5.0, 0, 15, 10]), ("b", box2)] for _ in range(4)]
    loose = mot.evaluate(gt, pred, threshold=0.3, metric="iou")
    assert loose["idf1"] == loose["mota"] == 1.0
    assert loose["motp"] == pytest.approx((2 / 3 + 0.0) / 2)  # mean 1 - IoU of the matched pairs
    # DetA per alpha: both pairs while alpha <= 1/3 (6 alphas), then person 2 alone: 1 TP, 1 FN, 1 FP
    assert loose["deta"] == pytest.approx((6 * 1.0 + 13 * (1 / 3)) / 19)
    strict = mot.evaluate(gt, pred, threshold=0.5, metric="iou")
    assert (strict["num_misses"], strict["num_false_positives"], strict["num_switches"]) == (4, 4, 0)
    assert strict["mota"] == pytest.approx(1 - 8 / 8) and strict["idf1"] == pytest.approx(0.5)
    # the same observations as points would be refused: a box has 4 numbers
    with pytest.raises(ValueError, match="points"):
        mot.evaluate(gt, pred, threshold=0.5)
    with pytest.raises(ValueError, match="boxes"):
        mot.evaluate(two_people(1), two_people(1), threshold=0.5, metric="iou")
    with pytest.raises(ValueError, match="threshold"):
        mot.evaluate(gt, pred, threshold=1.5, metric="iou")
    with pytest.raises(ValueError, match="metric"):
        mot.evaluate(gt, pred, threshold=0.5, metric="manhattan")


def test_bad_inputs():
    with pytest.raises(ValueError, match="frames"):
        mot.evaluate([[]], [[], []], 1.0)
    with pytest.raises(ValueError, match="twice"):
        mot.evaluate([[(1, A), (1, B)]], [[]], 1.0)
    with pytest.raises(ValueError, match="mix"):
        mot.evaluate([[(1, A)]], [[("h", [0.0, 0.0])]], 1.0)
    with pytest.raises(ValueError, match="threshold"):
        mot.evaluate([[(1, A)]], [[("h", A)]], 0.0)


def test_table():
    r = mot.evaluate(two_people(3), [[("h1", A), ("h2", B)]] * 3, 0.5)
    text = mot.format_table({"tracker": r})
    assert "IDF1" in text.splitlines()[0] and text.splitlines()[1].startswith("tracker")
    buf = io.StringIO()
    mot.print_table(r, file=buf)
    assert "1.000" in buf.getvalue()


def test_tracker_idf1_on_stream_with_crossings_occlusions_and_noise():
    frames_n = 240
    walkers = sim.crowd(6, frames_n, seed=11)
    rng = np.random.default_rng(11)
    for w in walkers[:3]:  # occlusions of 10-40 frames
        s = int(rng.integers(20, frames_n - 60))
        w.hidden = [(s, s + int(rng.integers(10, 41)))]
    cfg = sim.SimConfig(miss_rate=0.05, false_positive_rate=0.3)
    frames = sim.generate(walkers, np.arange(frames_n) / 30.0, cfg, seed=11)
    tracker, gt, pred = Tracker(), [], []
    for f in frames:
        tracks = tracker.update(f.frame, f.stamp)
        gt.append([(i, p) for i, p, _ in f.gt])
        pred.append([(t.id, t.human.position) for t in tracks if t.is_visible])
    r = mot.evaluate(gt, pred, threshold=0.5)
    assert r["idf1"] >= 0.9, r
    assert r["mota"] >= 0.8, r
