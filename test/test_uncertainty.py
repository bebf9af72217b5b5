"""Bootstrap intervals and paired comparisons (evaluation/uncertainty.py) on cases computed by hand."""

import numpy as np
import pytest

from mhr2_ros.evaluation import uncertainty as U


def unit(name, stratum="images", **sums):
    row = dict.fromkeys(U.SUM_FIELDS, 0.0)
    row.update(sums)
    return U.Unit(stratum, name, tuple(float(row[k]) for k in U.SUM_FIELDS))


def test_metrics_from_summed_counts():
    s = np.array([dict(frames=4, tp=8, fp=2, fn=2, pairs=8, pa_mpjpe_sum=640.0, mrpe_sum=4.0, fov_error_sum=10.0,
                       idtp_2d=6, idfp_2d=2, idfn_2d=4, idtp=3, idfp=5, idfn=7, headings=6,
                       heading_error_sum=240.0)[k] for k in U.SUM_FIELDS], float)  # fmt: skip
    m = {k: float(v) for k, v in U.metrics_from_sums(s).items()}
    assert m["precision"] == pytest.approx(0.8) and m["recall"] == pytest.approx(0.8) and m["f1"] == pytest.approx(0.8)
    assert m["pa_mpjpe"] == pytest.approx(80.0) and m["mrpe"] == pytest.approx(0.5) and m["fov_error"] == 2.5
    assert m["idf1_2d"] == pytest.approx(12 / 18) and m["idf1"] == pytest.approx(6 / 18)
    assert m["heading_error"] == pytest.approx(40.0)  # over the 6 pairs with a heading, not the 8 pairs
    # nothing matched: no mesh metric, no clips: no IDF1; no predictions: precision 1 (metrics.Detection)
    empty = U.metrics_from_sums(np.array([1.0 if k in ("frames", "fn") else 0.0 for k in U.SUM_FIELDS]))
    assert np.isnan(empty["pa_mpjpe"]) and np.isnan(empty["idf1"]) and float(empty["precision"]) == 1.0
    assert float(empty["recall"]) == 0.0 and float(empty["f1"]) == 0.0


def test_frames_of_a_clip_form_one_unit_with_its_id_counts():
    a = U.frame_sums(2, 1, 0, [50.0, 70.0], [0.2, 0.4], 3.0)
    b = U.frame_sums(1, 0, 1, [90.0], [1.0], 5.0)
    assert a["pairs"] == 2 and a["pa_mpjpe_sum"] == 120.0 and a["idtp"] == 0
    frames = [("img", "0", a), ("img", "1", b), ("clip 1", "0", a), ("clip 1", "1", b), ("clip 2", "0", b)]
    units = U.merge_units(frames, {"clip 1": {"idtp_2d": 5, "idfp_2d": 1, "idfn_2d": 2, "idtp": 3}, "clip 2": {}})
    by_key = {(u.stratum, u.name): dict(zip(U.SUM_FIELDS, u.sums)) for u in units}
    assert set(by_key) == {("images", "img/0"), ("images", "img/1"), ("clips", "clip 1"), ("clips", "clip 2")}
    clip = by_key[("clips", "clip 1")]
    assert (clip["frames"], clip["tp"], clip["fp"], clip["fn"], clip["pairs"]) == (2, 3, 1, 1, 3)
    assert (clip["idtp_2d"], clip["idfp_2d"], clip["idfn_2d"], clip["idtp"], clip["idfn"]) == (5, 1, 2, 3, 0)
    assert U.clip_count(units) == 2  # clip 2 was not tracked: still resampled whole
    total = U.metrics_from_sums(np.sum([u.sums for u in units], axis=0))
    assert float(total["pa_mpjpe"]) == pytest.approx((120 + 90 + 120 + 90 + 90) / 7)
    assert U.Unit.from_json(units[2].to_json()) == units[2]
    # an evaluation written before the heading sums: read as none, so its heading error is n/a
    old = U.Unit.from_json({k: v for k, v in units[0].to_json().items() if k not in U.OPTIONAL_SUM_FIELDS})
    assert np.isnan(U.metrics_from_sums(np.array(old.sums))["heading_error"])
    c = U.frame_sums(1, 0, 0, [60.0, 80.0], [0.3, 0.5], 2.0, heading=[30.0])  # one pair without a heading
    assert (c["pairs"], c["headings"], c["heading_error_sum"]) == (2, 1, 30.0)
    with pytest.raises(ValueError, match="without idfn"):
        U.Unit.from_json({k: v for k, v in units[0].to_json().items() if k != "idfn"})


def test_two_units_give_the_three_resamples_by_hand():
    """Units found (tp 1) and missed (fn 1): replicates AA (F1 1), AB (F1 2/3), BB (F1 0) drawn
    with probabilities 1/4, 1/2, 1/4, so the 95% interval spans [0, 1] and the median is 2/3."""
    units = [unit("a", frames=1, tp=1), unit("b", frames=1, fn=1)]
    counts = U._resample_counts(units, 4000, np.random.default_rng(1))
    f1 = U._replicate_metrics(units, counts)["f1"]
    assert set(np.round(f1, 6)) == {0.0, round(2 / 3, 6), 1.0}
    assert np.mean(f1 == 1.0) == pytest.approx(0.25, abs=0.03) and np.median(f1) == pytest.approx(2 / 3)
    assert U.intervals(units)["f1"] == [0.0, 1.0]
    varied = _tuning_like(np.random.default_rng(4), n=30)  # two units allow [0, 1] only: seeds need more
    assert U.intervals(varied) == U.intervals(varied)  # seeded: the same JSON gives the same interval
    assert U.intervals(varied, seed=1) != U.intervals(varied)  # ... and the seed is what fixes it


def test_strata_keep_their_size_and_identical_units_give_a_point():
    images = [unit(str(i), frames=1, tp=2, fp=1, fn=1, pairs=2, pa_mpjpe_sum=160, mrpe_sum=1, fov_error_sum=4)
              for i in range(5)]  # fmt: skip
    clips = [unit("c1", "clips", frames=3, tp=3, fov_error_sum=12, idtp_2d=4, idfn_2d=4, idtp=2, idfp=2, idfn=4)]
    units = images + clips
    counts = U._resample_counts(units, 300, np.random.default_rng(0))
    assert (counts[:, :5].sum(axis=1) == 5).all() and (counts[:, 5] == 1).all()
    bounds = U.intervals(units)
    assert bounds["pa_mpjpe"] == pytest.approx([80.0, 80.0]) and bounds["fov_error"] == pytest.approx([4.0, 4.0])
    # one clip is always drawn once: its IDF1 has no spread to show
    assert bounds["idf1_2d"] == pytest.approx([2 / 3, 2 / 3]) and bounds["idf1"] == pytest.approx([0.4, 0.4])
    assert U.intervals(images)["idf1"] is None  # no clips, no IDF1
    assert U.thin_strata(units) == {"images": 5, "clips": 1} and "clips (1)" in U.thin_note(units)
    assert U.thin_note([unit(str(i)) for i in range(U.MIN_UNITS)]) is None
    with pytest.raises(ValueError, match="no units"):
        U.intervals([])


def _tuning_like(rng, n=60, found=0.8):
    """n images of 4 people each, a fraction found; PA-MPJPE around 90 mm per pair."""
    out = []
    for i in range(n):
        tp = int(rng.binomial(4, found))
        out.append(unit(str(i), frames=1, tp=tp, fp=int(rng.integers(0, 2)), fn=4 - tp, pairs=tp,
                        pa_mpjpe_sum=float(rng.normal(90, 15, tp).sum()), mrpe_sum=float(rng.uniform(0, 2, tp).sum()),
                        fov_error_sum=float(rng.uniform(0, 12))))  # fmt: skip
    return out


def test_a_paired_comparison_sees_what_two_separate_intervals_cannot():
    """A candidate finding one more person in every fifth image: +0.017 recall, far inside each
    run's own interval, but the pairing cancels the images' shared difficulty."""
    rng = np.random.default_rng(3)
    base = _tuning_like(rng)
    new = []
    for i, u in enumerate(base):
        s = dict(zip(U.SUM_FIELDS, u.sums))
        if i % 5 == 0 and s["fn"] > 0:
            s.update(tp=s["tp"] + 1, fn=s["fn"] - 1)
        new.append(unit(u.name, **s))
    alone_b, alone_n = U.intervals(base)["recall"], U.intervals(new)["recall"]
    assert alone_n[0] < alone_b[1]  # the separate intervals overlap
    result = U.compare(base, list(reversed(new)))  # the order of the units does not matter
    assert result["recall"]["verdict"] == "better" and result["recall"]["interval"][0] > 0
    assert result["recall"]["difference"] == pytest.approx(float(U.metrics_from_sums(
        np.sum([u.sums for u in new], 0))["recall"] - U.metrics_from_sums(np.sum([u.sums for u in base], 0))["recall"]))
    assert result["pa_mpjpe"]["verdict"] == "same within noise" and result["idf1"]["verdict"] == "n/a"
    assert U.compare(new, base)["recall"]["verdict"] == "worse"
    same = U.compare(base, base)
    assert all(r["verdict"] in ("same within noise", "n/a") for r in same.values())
    assert same["f1"]["interval"] == [0.0, 0.0]


def test_lower_is_better_for_errors_and_mismatched_runs_are_refused():
    rng = np.random.default_rng(4)
    base = _tuning_like(rng)
    closer = [unit(u.name, **{**dict(zip(U.SUM_FIELDS, u.sums)), "mrpe_sum": u.sums[U.SUM_FIELDS.index("mrpe_sum")] * 0.7})
              for u in base]  # fmt: skip
    assert U.compare(base, closer)["mrpe"]["verdict"] == "better"
    # a consistent but negligible change (float noise of a frozen network) is no verdict
    tiny = [unit(u.name, **{**dict(zip(U.SUM_FIELDS, u.sums)), "pa_mpjpe_sum": u.sums[U.SUM_FIELDS.index("pa_mpjpe_sum")]
                            - 1e-4 * u.sums[U.SUM_FIELDS.index("pairs")]}) for u in base]  # fmt: skip
    result = U.compare(base, tiny)["pa_mpjpe"]
    assert result["interval"][1] < 0 and result["verdict"] == "same within noise"
    with pytest.raises(ValueError, match="different frames"):
        U.compare(base, base[1:])
    recounted = [unit(u.name, **{**dict(zip(U.SUM_FIELDS, u.sums)), "fn": u.sums[U.SUM_FIELDS.index("fn")] + 1})
                 for u in base]  # fmt: skip
    with pytest.raises(ValueError, match="different people"):
        U.compare(base, recounted)


def _found(errors_mm, keep):
    """Units of images of 4 found people each and their PersonError records; `keep(errors)`:
    which of an image's people this run found (bool per person)."""
    units, people = [], []
    for i, errors in enumerate(errors_mm):
        found = keep(errors)
        units.append(unit(str(i), frames=1, tp=int(found.sum()), fn=int((~found).sum()), pairs=int(found.sum()),
                          pa_mpjpe_sum=float(errors[found].sum()), mrpe_sum=float(found.sum())))  # fmt: skip
        people += [U.PersonError("images", str(i), f"0/p{k}", float(e), 1.0) for k, e in enumerate(errors) if found[k]]
    return units, people


def test_same_people_rows_undo_a_selection_and_keep_a_real_gain():
    """A run that stops finding the hardest person of each image: PA-MPJPE over its own people
    falls by ~7 mm, on the people both runs found by 0. A run fitting everyone 5 mm better is
    better on both."""
    errors = np.random.default_rng(5).normal(90, 20, (60, 4))  # mm
    base, base_people = _found(errors, lambda e: np.ones(4, bool))
    easy, easy_people = _found(errors, lambda e: e < e.max())
    result = U.compare(base, easy, people=(base_people, easy_people))
    assert result["recall"]["verdict"] == "worse" and result["pa_mpjpe"]["verdict"] == "better"
    assert result["pa_mpjpe"]["difference"] < -5
    same = result["pa_mpjpe_same"]
    assert same["people"] == 180 and same["difference"] == pytest.approx(0.0, abs=1e-9)
    assert same["verdict"] == "same within noise" and same["interval"] == [0.0, 0.0]
    assert same["base"] == pytest.approx(float(np.sort(errors, axis=1)[:, :3].mean()))
    assert result["mrpe_same"]["difference"] == pytest.approx(0.0) and "pa_mpjpe_same" not in U.compare(base, easy)
    better, better_people = _found(errors - 5.0, lambda e: np.ones(4, bool))
    gain = U.compare(base, better, people=(base_people, better_people))["pa_mpjpe_same"]
    assert gain["verdict"] == "better" and gain["difference"] == pytest.approx(-5.0) and gain["people"] == 240
    # a record of a frame the evaluation does not hold is refused, naming it, even when only one run has it
    stray = [*base_people, U.PersonError("images", "99", "0/p0", 90.0, 1.0)]
    with pytest.raises(ValueError, match="images/99"):
        U.compare(base, base, people=(stray, base_people))
    nobody = U.compare(base, base, people=(base_people, []))["pa_mpjpe_same"]  # no one found by both
    assert nobody["people"] == 0 and nobody["verdict"] == "n/a" and nobody["base"] is None
    assert U.PersonError.from_json(base_people[0].to_json()) == base_people[0]
    with pytest.raises(ValueError, match="without mrpe"):
        U.PersonError.from_json({"stratum": "images", "unit": "0", "person": "0/p0", "pa_mpjpe": 1.0})
