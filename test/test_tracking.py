"""Online tracker (paper, "Tracking in videos"): association functions, feature bank,
motion models and whole streams from mhr2_ros.tracking.simulate."""

import collections
import dataclasses

import numpy as np
import pytest
import torch
import yaml

from mhr2_ros.config import ConfigError
from mhr2_ros.inference.results import FrameResult
from mhr2_ros.tracking import Tracker, TrackerConfig, TrackState, load_tracker_config
from mhr2_ros.tracking import simulate as sim
from mhr2_ros.tracking.association import (
    associate,
    combine_similarities,
    orientation_offsets,
    pelvis_similarity,
    pixel_offsets,
)
from mhr2_ros.tracking.config import tracker_config_path
from mhr2_ros.tracking.feature_bank import FeatureBank, l1_distances
from mhr2_ros.tracking.kalman import ConstantVelocityKF
from mhr2_ros.tracking.motion import MotionHistory, geodesic_angle, ridge_predict, rotation_exp, rotation_log
from mhr2_ros.tracking.track import TRACK_ID_PATTERN


pytestmark = pytest.mark.usefixtures("one_torch_thread")


FPS = 30.0


def run(frames, tracker=None):
    """Feed a simulated stream; returns (tracker, {identity: Counter(track id)}, tracks per frame)."""
    tracker = tracker or Tracker()
    ids = collections.defaultdict(collections.Counter)
    history = []
    for f in frames:
        history.append(tracker.update(f.frame, f.stamp))
        for human, identity in zip(f.frame.humans, f.identities):
            ids[identity][human.track_id] += 1
    return tracker, ids, history


def walker(identity=0, start=(-1.0, 0.4, 4.0), velocity=(0.5, 0.0, 0.0), **kw):
    return sim.Walker(identity, np.array(start, float), np.array(velocity, float), **kw)


def stamps(n, fps=FPS):
    return np.arange(n) / fps


def empty_frame():
    cfg = sim.SimConfig()
    return FrameResult(humans=[], K=cfg.K, K_source="given", fov_y=1.0, image_size=(cfg.height, cfg.width))


# ------------------------------------------------------------------------- config
def test_yaml_lists_every_field_with_its_default_and_a_comment():
    path = tracker_config_path()
    data = yaml.safe_load(path.read_text())
    assert set(data) == {f.name for f in dataclasses.fields(TrackerConfig)}
    assert load_tracker_config(path) == TrackerConfig()
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert "#" in line or lines[i - 1].startswith("#"), f"no comment for {line!r}"


def test_paper_defaults():
    c = TrackerConfig()
    assert (c.bank_frames, c.knn_k, c.feature_temperature, c.motion_history) == (50, 35, 15.0, 8)
    assert (c.t_pixel, c.t_nearness, c.t_orientation) == (1.0, 3.0, 20.0)
    assert (c.weight_feature, c.weight_pelvis, c.new_track_threshold, c.max_missed_frames) == (1.0, 8.0, 0.69, 50)


@pytest.mark.parametrize("bad", [{"knn_k": 0}, {"angle_unit": "grad"}, {"new_track_threshold": 1.5},
                                 {"feature_distance_norm": "l2"}, {"id_prefix": "1h"}, {"t_pixel": 0.0}])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        TrackerConfig(**bad)


def test_config_file_with_unknown_key_is_an_error(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("knn_k: 10\nbank_size: 3\n")
    with pytest.raises(ConfigError, match="bank_size"):
        load_tracker_config(p)


# -------------------------------------------------------------- association (pure)
def test_associate_is_global_and_gated():
    score = np.array([[0.90, 0.80], [0.85, 0.10]])
    matches, dets, tracks = associate(score, 0.69)
    assert matches.tolist() == [[0, 1], [1, 0]]  # 1.65 beats the greedy 0.90 + nothing
    assert dets.size == 0 and tracks.size == 0
    matches, dets, tracks = associate(np.array([[0.5, 0.68], [0.2, 0.7]]), 0.69)
    assert matches.tolist() == [[1, 1]] and dets.tolist() == [0] and tracks.tolist() == [0]
    matches, dets, tracks = associate(np.zeros((0, 3)), 0.69)
    assert matches.shape == (0, 2) and tracks.tolist() == [0, 1, 2]


def test_pelvis_units_and_formula():
    det = np.array([[400.0, 240.0]])
    pred = np.array([[300.0, 240.0], [400.0, 240.0]])
    m = pixel_offsets(det, pred, depth=np.array([5.0]), focal=500.0, unit="meters_at_depth")
    np.testing.assert_allclose(m, [[1.0, 0.0]])  # 100 px at 5 m with f = 500 px: 1 m sideways
    np.testing.assert_allclose(pixel_offsets(det, pred, np.array([5.0]), 500.0, "focal"), [[0.2, 0.0]])
    np.testing.assert_allclose(pixel_offsets(det, pred, np.array([5.0]), 500.0, "pixels"), [[100.0, 0.0]])
    r90 = rotation_exp(np.array([0.0, np.pi / 2, 0.0]))
    np.testing.assert_allclose(orientation_offsets(np.eye(3)[None], r90[None], "deg"), [[90.0]])
    np.testing.assert_allclose(orientation_offsets(np.eye(3)[None], r90[None], "rad"), [[np.pi / 2]])
    s = pelvis_similarity(np.array([[1.0]]), np.array([[-0.3]]), np.array([[np.pi / 2]]), 1.0, 3.0, 20.0)
    np.testing.assert_allclose(s, np.exp(-1.0) * np.exp(-0.1) * np.exp(-np.pi / 40))


def test_combined_score_is_normalised_by_the_weight_sum():
    feature, pelvis = np.array([[1.0], [0.0]]), np.array([[0.66], [0.75]])
    s = combine_similarities(feature, pelvis, 1.0, 8.0)
    np.testing.assert_allclose(s, [[(1 + 8 * 0.66) / 9], [8 * 0.75 / 9]])
    assert s[0, 0] >= 0.69 > s[1, 0]  # the 0.69 gate applies to this normalised score
    alone = combine_similarities(feature, pelvis, 1.0, 8.0, has_feature=np.array([True, False]))
    np.testing.assert_allclose(alone[1], pelvis[1])  # no feature: pelvis term alone


# -------------------------------------------------------------------- feature bank
def test_feature_scores_softmax_on_percent_of_median_distance():
    rng = np.random.default_rng(0)
    bank_feats = rng.normal(size=(6, 8)).astype(np.float32)
    bank_ids = np.array([1, 1, 2, 2, 3, 3])
    bank = FeatureBank(max_frames=50)
    bank.push(0, bank_feats, bank_ids)
    query = (bank_feats[0] + 0.1 * rng.normal(size=8)).astype(np.float32)[None]
    d = np.abs(bank_feats - query).sum(1).astype(np.float64)
    k = 4
    nearest = np.argsort(d)[:k]
    pct = 100.0 * d[nearest] / np.median(np.sort(d)[[2]])  # torch's median: the lower middle value
    w = np.exp(-pct / 15.0) / np.exp(-pct / 15.0).sum()
    expected = [w[bank_ids[nearest] == i].sum() for i in (1, 2, 3)]
    got = bank.id_scores(query, np.array([1, 2, 3]), k=k, temperature=15.0, norm="median")
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)
    raw = np.exp(-(d[nearest] - d[nearest].min()) / 15.0)
    expected_none = [raw[bank_ids[nearest] == i].sum() / raw.sum() for i in (1, 2, 3)]
    got_none = bank.id_scores(query, np.array([1, 2, 3]), k=k, temperature=15.0, norm="none")
    np.testing.assert_allclose(got_none[0], expected_none, rtol=1e-5)
    per_dim = np.exp(-d[nearest] / 8 / 15.0)
    got_dim = bank.id_scores(query, np.array([3, 1]), k=k, temperature=15.0, norm="dim")
    expected_dim = [per_dim[bank_ids[nearest] == i].sum() / per_dim.sum() for i in (3, 1)]
    np.testing.assert_allclose(got_dim[0], expected_dim, rtol=1e-5)


def test_feature_scores_are_scale_free_and_sum_to_one():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(40, 64)).astype(np.float32)
    ids = np.repeat(np.arange(1, 5), 10)
    q = feats[:3] + 0.05
    a, b = FeatureBank(50), FeatureBank(50)
    a.push(0, feats, ids)
    b.push(0, 100 * feats, ids)
    sa = a.id_scores(q, np.arange(1, 5), 35, 15.0)
    np.testing.assert_allclose(sa, b.id_scores(100 * q, np.arange(1, 5), 35, 15.0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sa.sum(1), 1.0)
    assert np.all(sa.argmax(1) == 0)


@pytest.mark.parametrize("m,n,block", [(1, 50, 64), (3, 37, 4), (70, 9, 64), (5, 0, 64), (0, 5, 64)])
def test_l1_kernel_matches_the_definition(m, n, block):
    rng = np.random.default_rng(m + n)
    q, b = rng.normal(size=(m, 33)).astype(np.float32), rng.normal(size=(n, 33)).astype(np.float32)
    got = l1_distances(torch.from_numpy(q), torch.from_numpy(b), block).numpy()
    np.testing.assert_allclose(got, np.abs(q[:, None] - b[None]).sum(-1), rtol=1e-5)


def test_bank_ring_grows_wraps_and_evicts_by_frame():
    bank = FeatureBank(max_frames=3, capacity=4)
    for frame in range(10):
        n = frame % 4  # 0..3 rows per frame
        bank.push(frame, np.full((n, 2), frame, np.float32), np.full(n, frame))
        assert set(bank.frames) <= {frame - 2, frame - 1, frame}
        assert len(bank) == sum(f % 4 for f in range(max(0, frame - 2), frame + 1))
    d = bank.distances(np.zeros((1, 2), np.float32)).numpy()
    np.testing.assert_allclose(d[0], 2 * bank.frames)  # rows stay in frame order through wraps


# -------------------------------------------------------------------------- motion
def test_ridge_predict_exact_on_lines_with_irregular_times():
    times = np.array([[0.0, 0.013, 0.05, 0.21, 0.22, 0.5, 0.51, 0.9]])
    values = np.stack([3.0 + 2.0 * times, -1.0 - 0.5 * times], axis=-1)
    pred = ridge_predict(times, values, np.ones_like(times, bool), 1.7, lam=0.0)
    np.testing.assert_allclose(pred, [[3.0 + 3.4, -1.0 - 0.85]], atol=1e-9)
    one = ridge_predict(times, values, np.arange(8)[None] < 1, 5.0, lam=0.01)
    np.testing.assert_allclose(one, values[:, 0])  # one sample: constant prediction
    shrunk = ridge_predict(times, values, np.ones_like(times, bool), 1.7, lam=1.0)
    assert abs(shrunk[0, 0] - 6.4) > 0.1  # the penalty shrinks the slope


def test_rotation_log_exp_round_trip_up_to_pi():
    rng = np.random.default_rng(0)
    axes = rng.normal(size=(50, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, 3.1, 48), [1e-10, np.pi - 1e-6]])
    r = axes * angles[:, None]
    R = rotation_exp(r)
    np.testing.assert_allclose(R @ np.swapaxes(R, 1, 2), np.tile(np.eye(3), (50, 1, 1)), atol=1e-9)
    np.testing.assert_allclose(rotation_exp(rotation_log(R)), R, atol=1e-6)
    np.testing.assert_allclose(np.diag(geodesic_angle(R, R)), 0.0, atol=1e-6)


def test_motion_history_extrapolates_constant_motion_and_turn_rate():
    mh = MotionHistory(length=8)
    mh.ensure(1)
    r0, w = rotation_exp(np.array([0.3, -1.0, 0.2])), np.array([0.0, 0.5, 0.1])
    for k in range(12):  # only the last 8 are kept
        t = k / 30
        mh.add(np.array([0]), t, np.array([[100 + 60 * t, 200 - 30 * t]]), np.array([0.2 - 0.1 * t]),
               (r0 @ rotation_exp(w * t))[None], np.array([[0.0, 0.0, 5.0]]), np.eye(3), (np.eye(3), np.zeros(3)))
    pix, near, rot = mh.predict(np.array([0]), 1.0, lam=0.0)
    np.testing.assert_allclose(pix, [[160.0, 170.0]], atol=1e-6)
    np.testing.assert_allclose(near, [0.1], atol=1e-9)
    assert np.degrees(geodesic_angle(rot, (r0 @ rotation_exp(w))[None]))[0, 0] < 1e-3


def test_kalman_closed_form_matches_matrix_filter():
    rng = np.random.default_rng(0)
    kf = ConstantVelocityKF(capacity=1)
    z0, r = np.array([1.0, 0.5, 4.0]), np.array([0.01, 0.02, 0.04])
    kf.init(np.array([0]), z0[None], r[None], 2.0)
    x = np.concatenate([z0, np.zeros(3)])
    P = np.diag(np.concatenate([r, np.full(3, 2.0)]))
    H = np.hstack([np.eye(3), np.zeros((3, 3))])
    q = 0.3
    for dt in (0.03, 0.1, 0.0, 0.5):
        F = np.eye(6)
        F[:3, 3:] = dt * np.eye(3)
        I3 = np.eye(3)
        Q = q * np.block([[dt**3 / 3 * I3, dt**2 / 2 * I3], [dt**2 / 2 * I3, dt * I3]])
        x, P = F @ x, F @ P @ F.T + Q
        kf.predict(np.array([0]), dt, q)
        z = z0 + rng.normal(size=3) * 0.1
        S = H @ P @ H.T + np.diag(r)
        K = P @ H.T @ np.linalg.inv(S)
        x, P = x + K @ (z - H @ x), (np.eye(6) - K @ H) @ P
        kf.update(np.array([0]), z[None], r[None])
        np.testing.assert_allclose(kf.position(0)[0], x[:3], atol=1e-12)
        np.testing.assert_allclose(kf.velocity(0)[0], x[3:], atol=1e-12)
        np.testing.assert_allclose(kf.velocity(0)[1], P[3:, 3:], atol=1e-12)


# --------------------------------------------------------------------- tracker
def test_ids_are_tf_safe_strings_counted_per_instance():
    frames = sim.generate([walker(0), walker(1, start=(1.0, 0.4, 5.0))], stamps(3))
    for _ in range(2):  # a second tracker starts again at h1
        tracker, ids, history = run(frames)
        assert sorted(t.id for t in history[-1]) == ["h1", "h2"]
        assert all(TRACK_ID_PATTERN.match(t.id) for t in history[-1])


@pytest.mark.parametrize("same_depth", [False, True])
def test_two_people_crossing_keep_their_ids(same_depth):
    # A walks right, B walks left; they meet in the image (and in 3D when same_depth) at t = 1.5 s.
    zb = 4.0 if same_depth else 6.0
    za = 4.0 if same_depth else 3.0
    a = walker(0, start=(-1.5, 0.4, za), velocity=(1.0, 0.0, 0.0))
    b = walker(1, start=(1.5 * zb / za, 0.4, zb), velocity=(-zb / za, 0.0, 0.0))
    _, ids, _ = run(sim.generate([a, b], stamps(90), seed=3))
    assert len(ids[0]) == 1 and len(ids[1]) == 1, dict(ids)
    assert set(ids[0]) != set(ids[1])


def test_occluded_for_30_frames_gets_its_id_back():
    w = walker(0, velocity=(0.8, 0.0, -0.2), hidden=[(30, 60)])
    frames = sim.generate([w], stamps(90), seed=1)
    _, ids, history = run(frames)
    assert list(ids[0]) == ["h1"]
    during = [h[0] for h in history[30:60]]
    assert all(t.state == TrackState.OCCLUDED for t in during)  # 1.0 s max: predicted, not lost
    assert during[-1].frames_since_seen == 30
    truth = w.position(59 / FPS)
    assert np.linalg.norm(during[-1].position - truth) < 0.3  # Kalman prediction through the gap
    assert history[60][0].state == TrackState.TRACKED


@pytest.mark.parametrize("gap,same", [(30, True), (49, True), (50, False), (51, False)])
def test_track_ends_after_50_frames_without_association(gap, same):
    w = walker(0, velocity=(0.0, 0.0, 0.0), hidden=[(20, 20 + gap)])
    frames = sim.generate([w], stamps(20 + gap + 5), seed=2)
    _, ids, history = run(frames)
    assert (list(ids[0]) == ["h1"]) if same else (list(ids[0]) == ["h1", "h2"])
    before_return = history[20 + gap - 1]
    assert len(before_return) == (1 if gap < 50 else 0)  # an ended track is no longer reported
    if gap == 49:
        assert before_return[0].state == TrackState.LOST  # 1.6 s unseen: kept for re-identification


@pytest.mark.parametrize("fps,hidden_s,same", [(60.0, 0.9, True), (60.0, 1.2, False), (10.0, 0.9, True),
                                               (10.0, 1.2, False)])
def test_track_lifetime_in_seconds_whatever_the_frame_rate(fps, hidden_s, same):
    """max_missed_seconds 1: a 0.9 s gap keeps the id at 60 Hz (54 frames, past the paper's 50)
    and a 1.2 s gap ends the track at 10 Hz (12 frames, well under 50)."""
    cfg = TrackerConfig(max_missed_seconds=1.0, bank_seconds=1.0)
    gap = round(hidden_s * fps)
    w = walker(0, velocity=(0.0, 0.0, 0.0), hidden=[(20, 20 + gap)])
    frames = sim.generate([w], stamps(20 + gap + 5, fps), seed=2)
    _, ids, history = run(frames, Tracker(cfg))
    assert list(ids[0]) == (["h1"] if same else ["h1", "h2"])
    before_return = history[20 + gap - 1]  # unseen for gap / fps seconds
    assert len(before_return) == (1 if same else 0)
    if same:
        assert before_return[0].state == TrackState.OCCLUDED  # occluded_max_seconds 1.0
        assert before_return[0].frames_since_seen == gap


def test_frame_count_still_rules_without_seconds():
    """The same 0.9 s gap at 60 Hz (54 frames) ends the track under the paper's 50 frames."""
    gap = 54
    w = walker(0, velocity=(0.0, 0.0, 0.0), hidden=[(20, 20 + gap)])
    _, ids, _ = run(sim.generate([w], stamps(20 + gap + 5, 60.0), seed=2))
    assert list(ids[0]) == ["h1", "h2"]


def test_bank_in_seconds_keeps_every_live_tracks_features():
    """bank_seconds = max_missed_seconds: at irregular rates the bank holds exactly the rows
    stamped within bank_seconds of the last pushed frame, and every live track has rows."""
    rng = np.random.default_rng(8)
    t = np.cumsum(rng.uniform(0.01, 0.2, 200))
    walkers = sim.crowd(4, 200, seed=8)
    frames = sim.generate(walkers, t - t[0], sim.SimConfig(miss_rate=0.3, false_positive_rate=0.5), seed=8)
    tracker = Tracker(TrackerConfig(bank_seconds=1.5, max_missed_seconds=1.5))
    pushed = []  # (stamp, rows) per frame
    for f in frames:
        tracks = tracker.update(f.frame, f.stamp)
        pushed.append((f.stamp, len(f.frame.humans)))
        assert len(tracker.bank) == sum(n for s, n in pushed if s >= f.stamp - 1.5)
        assert len(tracker.bank) == 0 or tracker.bank.stamps.min() >= f.stamp - 1.5  # the rows' own stamps
        held = set(tracker.bank.ids.tolist())
        assert all(int(tr.id[1:]) in held for tr in tracks)
        assert all(tr.time_since_seen <= 1.5 for tr in tracks)
    assert tracker.bank.num_frames > 1


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True, "2"])
def test_seconds_must_be_null_or_positive(bad):
    for name in ("bank_seconds", "max_missed_seconds"):
        with pytest.raises(ConfigError, match=name):
            TrackerConfig(**{name: bad})


def test_detection_unlike_all_tracks_starts_a_track():
    frames = sim.generate([walker(0), walker(1, start=(2.0, 0.3, 7.0), velocity=(0, 0, 0),
                                              frames=(20, 40))], stamps(40), seed=4)
    _, ids, history = run(frames)
    assert list(ids[0]) == ["h1"] and list(ids[1]) == ["h2"]
    assert history[20][1].state == TrackState.NEW and history[20][1].score is None
    assert history[22][1].state == TrackState.TRACKED  # new_track_hits = 3


def test_bank_never_holds_more_than_50_frames():
    rng = np.random.default_rng(5)
    walkers = sim.crowd(4, 160, seed=5)
    frames = sim.generate(walkers, stamps(160), sim.SimConfig(miss_rate=0.3, false_positive_rate=0.5), seed=5)
    tracker = Tracker()
    counts = []
    for i, f in enumerate(frames):
        if rng.random() < 0.1:
            f.frame.humans.clear()
        tracker.update(f.frame, f.stamp)
        counts.append(len(f.frame.humans))
        frames_held = tracker.bank.frames
        assert tracker.bank.num_frames <= 50
        assert len(frames_held) == 0 or frames_held.min() > i - 50
        assert len(tracker.bank) == sum(counts[-50:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_velocity_of_constant_velocity_walker_within_10_percent(seed):
    v = np.array([1.0, 0.0, 0.4])
    _, _, history = run(sim.generate([walker(0, start=(-2.0, 0.4, 4.0), velocity=v)], stamps(120), seed=seed))
    track = history[-1][0]
    assert np.linalg.norm(track.velocity - v) < 0.1 * np.linalg.norm(v)
    std = np.sqrt(np.diag(track.velocity_cov))
    assert np.all(std > 0) and np.all(std < 0.5)


def test_irregular_and_dropped_frames():
    rng = np.random.default_rng(6)
    dt = rng.uniform(0.01, 0.08, 150)
    dt[[30, 60, 61, 100]] = 0.4  # dropped frames: 0.4 s gaps
    t = np.cumsum(dt)
    v = np.array([1.5, 0.0, 0.0])
    a = walker(0, start=(-3.0, 0.4, 5.0), velocity=v)
    b = walker(1, start=(3.0, 0.4, 6.5), velocity=(-1.2, 0.0, 0.2))
    frames = sim.generate([a, b], t - t[0], seed=6)
    _, ids, history = run(frames)
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and set(ids[0]) != set(ids[1])
    track = next(tr for tr in history[-1] if tr.id in ids[0])
    assert np.linalg.norm(track.velocity - v) < 0.1 * np.linalg.norm(v)
    assert track.age == pytest.approx(t[-1] - t[0])


def test_zero_detection_frames():
    tracker = Tracker()
    assert tracker.update(empty_frame(), 0.0) == []
    frames = sim.generate([walker(0, velocity=(1.0, 0.0, 0.0))], stamps(10) + 0.1, seed=7)
    _, _, history = run(frames, tracker)
    seen = history[-1][0]
    tracks = tracker.update(empty_frame(), frames[-1].stamp + 0.5)
    assert len(tracks) == 1 and tracks[0].id == seen.id
    assert tracks[0].state == TrackState.OCCLUDED and not tracks[0].is_visible
    assert tracks[0].frames_since_seen == 1 and tracks[0].time_since_seen == pytest.approx(0.5)
    np.testing.assert_allclose(tracks[0].position, seen.position + 0.5 * seen.velocity, atol=1e-9)
    assert tracks[0].position_cov[0, 0] > seen.position_cov[0, 0]  # uncertainty grows unseen
    assert tracker.update(empty_frame(), frames[-1].stamp + 1.6)[0].state == TrackState.LOST


def test_stamp_going_back_resets_without_reusing_ids():
    frames = sim.generate([walker(0)], stamps(5), seed=8)
    tracker, _, _ = run(frames)
    again = sim.generate([walker(0)], stamps(5), seed=9)
    _, ids, _ = run(again, tracker)
    assert list(ids[0]) == ["h2"]
    assert "tracking" in again[-1].frame.timings


def test_detections_without_features_use_the_pelvis_term():
    frames = sim.generate([walker(0)], stamps(20), seed=10)
    for f in frames[5:]:
        for h in f.frame.humans:
            h.track_feature = None
    _, ids, _ = run(frames)
    assert list(ids[0]) == ["h1"]


def test_feature_width_change_is_a_clear_error():
    tracker = Tracker()
    frames = sim.generate([walker(0)], stamps(2), seed=12)
    tracker.update(frames[0].frame, frames[0].stamp)
    frames[1].frame.humans[0].track_feature = np.zeros(16, np.float32)
    with pytest.raises(ValueError, match="width"):
        tracker.update(frames[1].frame, frames[1].stamp)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(frames[0].frame, float("nan"))
    assert tracker.frame_index == 0  # the refused frames changed nothing
