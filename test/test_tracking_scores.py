"""The tracker's score from the paper's constants, computed by hand on noise-free detections:
(1 F + 8 P) / 9 against the 0.69 gate, P = exp(-|dp| / 1 - |dn| / 3 - |dθ| / 20 rad) with dp in
focal lengths (the default) or meters at the detection's depth, and the feature term F as the KNN
softmax over the bank (K = 35, temperature 15, percent of the median)."""

import math

import numpy as np
import pytest

from mhr2_ros.tracking import Tracker, TrackerConfig
from mhr2_ros.tracking import simulate as sim
from mhr2_ros.tracking.association import associate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


EXACT = sim.SimConfig(pixel_noise=0.0, depth_noise_rel=0.0, orientation_noise_deg=0.0, feature_dim=64)


def _frame(people):
    """FrameResult of noiseless detections: people = [(position (3,), feature (64,))] or
    [(position, feature, rotation (3, 3))]."""
    rng = np.random.default_rng(0)
    humans = [sim.make_human(np.asarray(p[0], float), p[2] if len(p) > 2 else np.eye(3), p[1], EXACT, rng)
              for p in people]
    return sim.FrameResult(humans=humans, K=EXACT.K, K_source="given", fov_y=1.0, image_size=(480, 640))


def _two_frames(dx=0.0, z=5.0, rot=np.eye(3), config=None):
    """Track at (0, 0, 5) (on the optical axis), then one detection at (dx, 0, z) turned by rot,
    with the same feature (the bank holds one ID: KNN term 1)."""
    feat = np.random.default_rng(1).standard_normal(64)
    tracker = Tracker(config)
    tracker.update(_frame([((0.0, 0.0, 5.0), feat)]), 0.0)
    f1 = _frame([((dx, 0.0, z), feat, rot)])
    return tracker.update(f1, 0.1), f1


@pytest.mark.parametrize("unit, meters_per_unit", [("focal", 5.0), ("meters_at_depth", 1.0)])
def test_tracker_score_uses_the_paper_constants_and_gate(unit, meters_per_unit):
    """Normalised score (1 F + 8 P) / 9 against 0.69, P = exp(-|dp| / 1 - |dn| / 3 - |dθ| / 20 rad); at
    5 m a pelvis dx meters aside is dx / 5 focal lengths away, dx meters at its depth. Kills: weights
    swapped, pelvis-only / feature-only scores, the gate not applied (0.0), t_p / t_n / t_θ or the
    pixel unit not passed from the config, a default unit other than "focal"."""
    config = TrackerConfig(pixel_unit=unit) if unit != "focal" else None  # the default
    tracks, f1 = _two_frames(dx=0.4 * meters_per_unit, config=config)  # (1 + 8 e^-0.4) / 9 = 0.707: kept
    assert [t.id for t in tracks] == ["h1"] and f1.humans[0].track_id == "h1"
    assert tracks[0].score == pytest.approx((1 + 8 * math.exp(-0.4)) / 9, rel=1e-4)
    tracks, f1 = _two_frames(dx=0.5 * meters_per_unit, config=config)  # (1 + 8 e^-0.5) / 9 = 0.650: a new track
    assert f1.humans[0].track_id == "h2" and sorted(t.id for t in tracks) == ["h1", "h2"]
    tracks, _ = _two_frames(z=6.0)  # same pixel, nearness log(5 / 6)
    assert tracks[0].score == pytest.approx((1 + 8 * math.exp(-math.log(6 / 5) / 3)) / 9, rel=1e-4)
    quarter = np.array([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # 90 degrees about the camera y axis
    tracks, _ = _two_frames(rot=quarter)
    assert tracks[0].score == pytest.approx((1 + 8 * math.exp(-(math.pi / 2) / 20)) / 9, rel=1e-4)


@pytest.mark.parametrize("k", [35, 2])
def test_tracker_feature_term_is_the_knn_softmax_over_the_bank(k):
    """Three people in frame 0; in frame 1 person A again, at the same place, with a noisy feature.
    The feature term is computed here from the definition (K nearest by L1, percent of the median
    distance, softmax t = 15, summed per ID). Kills: the tracker not passing knn_k / feature_temperature."""
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((3, 64))
    places = [(-2.0, 0.4, 5.0), (0.0, 0.4, 6.0), (2.0, 0.4, 7.0)]
    tracker = Tracker(TrackerConfig(knn_k=k))
    tracker.update(_frame(list(zip(places, feats))), 0.0)
    q = feats[0] + 0.8 * rng.standard_normal(64)
    tracks = tracker.update(_frame([(places[0], q)]), 0.1)
    d = np.abs(feats.astype(np.float32) - q.astype(np.float32)).sum(1).astype(np.float64)
    near = np.argsort(d)[:min(k, 3)]
    pct = 100.0 * d[near] / np.sort(d)[1]
    w = np.exp(-pct / 15.0) / np.exp(-pct / 15.0).sum()
    feature_a = w[near == 0].sum()
    assert 0.05 < feature_a < 0.95  # neither a hard vote nor a uniform one: temperature and K both show
    a = next(t for t in tracks if t.id == "h1")
    assert a.score == pytest.approx((feature_a + 8 * 1.0) / 9, rel=1e-5)


def test_associate_gate_is_inclusive():
    """'a new track for a detection with no association of similarity >= 0.69'. Kills: score > threshold."""
    matches, dets, _ = associate(np.array([[0.69]]), 0.69)
    assert matches.tolist() == [[0, 0]] and dets.size == 0
