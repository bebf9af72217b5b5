"""`mhr2 compare` on eval JSON files: verdicts, and clear errors on files it cannot compare."""

import json

from mhr2_ros.cli import main
from mhr2_ros.evaluation.uncertainty import SUM_FIELDS


def _eval_json(path, found_extra=0, images=40, seed_name="images (seed 500)", people=True):
    """An `mhr2 eval --json` result of `images` images of 3 people, 2 found (+1 in every
    image below `found_extra`), and one tracked clip; with `people`, the found people's records
    (PA-MPJPE 90 mm each)."""
    units, records = [], []
    for i in range(images):
        tp = 2 + (i < found_extra) - (i % 7 == 0)  # some images harder than others
        units.append({"stratum": "images", "name": f"{seed_name}/{i}", **dict.fromkeys(SUM_FIELDS, 0.0),
                      "frames": 1, "tp": tp, "fn": 3 - tp, "fp": i % 3 == 0, "pairs": tp,
                      "pa_mpjpe_sum": 90.0 * tp, "mrpe_sum": 1.0 * tp, "fov_error_sum": 6.0})  # fmt: skip
        records += [{"stratum": "images", "unit": f"{seed_name}/{i}", "person": f"0/p{k}", "pa_mpjpe": 90.0,
                     "mrpe": 1.0} for k in range(tp)]  # fmt: skip
    units.append({"stratum": "clips", "name": "clip seed 600", **dict.fromkeys(SUM_FIELDS, 0.0), "frames": 10,
                  "tp": 20, "fn": 10, "idtp_2d": 15, "idfn_2d": 15, "idtp": 5, "idfn": 25})  # fmt: skip
    payload = {"weights": path.stem, "data": "synthetic", "metrics": {"match_iou": 0.1}, "units": units}
    if people:
        payload["people"] = records
    path.write_text(json.dumps(payload))
    return path


def test_a_real_improvement_is_better_and_a_copy_is_the_same(tmp_path, capsys):
    base, new = _eval_json(tmp_path / "base.json"), _eval_json(tmp_path / "new.json", found_extra=20)
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(new), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| detection F1 |" in text and "| better |" in text and "| IDF1, 3D |" in text
    result = json.loads(out.read_text())["comparison"]
    assert result["recall"]["verdict"] == "better" and result["recall"]["difference"] > 0.1
    assert result["pa_mpjpe"]["verdict"] == "same within noise" and result["idf1"]["interval"] == [0.0, 0.0]
    assert main(["compare", str(new), str(base)]) == 0 and "| worse |" in capsys.readouterr().out
    # each stratum alone: the images carry the change, the one clip is the same and too thin to trust
    assert main(["compare", str(base), str(new), "--split", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "images alone (40 units):" in text and "clips alone (1 units):" in text
    assert "caution: fewer than 10 units in clips (1)" in text
    split = json.loads(out.read_text())["by_stratum"]
    assert split["images"]["recall"]["verdict"] == "better"
    assert split["clips"]["recall"]["difference"] == 0.0


def test_files_that_cannot_be_compared_are_named(tmp_path, capsys):
    base = _eval_json(tmp_path / "base.json")
    cases = {
        "missing.json": "no such file",
        "text.json": "not a JSON file",
        "old.json": "older mhr2 eval",
        "other_seed.json": "different frames",
        "fewer.json": "different frames",
    }
    (tmp_path / "text.json").write_text("not json {")
    (tmp_path / "old.json").write_text(json.dumps({"metrics": {"match_iou": 0.1}}))
    _eval_json(tmp_path / "other_seed.json", seed_name="images (seed 0)")
    _eval_json(tmp_path / "fewer.json", images=30)
    for name, message in cases.items():
        assert main(["compare", str(base), str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err
        assert message in err and "mhr2 compare: error:" in err, (name, err)
    other = json.loads(base.read_text())
    other["metrics"]["match_iou"] = 0.5
    (tmp_path / "iou.json").write_text(json.dumps(other))
    assert main(["compare", str(base), str(tmp_path / "iou.json")]) == 2
    assert "--match-iou" in capsys.readouterr().err


def test_same_people_rows_and_a_run_without_person_records(tmp_path, capsys):
    base, new = _eval_json(tmp_path / "base.json"), _eval_json(tmp_path / "new.json", found_extra=20)
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(new), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| PA-MPJPE, same people (mm) | 90.0 | 90.0 | +0.0 |" in text and "| MRPE, same people (m) |" in text
    both = sum(2 - (i % 7 == 0) for i in range(40))  # the base's people, all found again by the new run
    assert f"same people: the {both} people both runs found (base found {both}, new {both + 20})" in text
    result = json.loads(out.read_text())["comparison"]
    assert result["pa_mpjpe_same"]["people"] == both and result["pa_mpjpe_same"]["verdict"] == "same within noise"
    older = _eval_json(tmp_path / "older.json", found_extra=20, people=False)
    assert main(["compare", str(base), str(older)]) == 0
    text = capsys.readouterr().out
    assert f"no same-people rows: {older} has no per-person records" in text and "same people (mm)" not in text
    broken = json.loads(new.read_text())
    broken["people"][0].pop("mrpe")
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    assert main(["compare", str(base), str(tmp_path / "broken.json")]) == 2
    assert "bad \"people\" record: person record without mrpe" in capsys.readouterr().err


def test_the_settings_that_differ_are_named(tmp_path, capsys):
    """Two runs of one model with different tracker units, thresholds and padding: the comparison names
    the changes, not the settings they share, and a file without settings (an older eval) compares none."""
    base, new = _eval_json(tmp_path / "base.json"), _eval_json(tmp_path / "new.json")
    for path, unit, threshold, padding in ((base, "meters_at_depth", 0.4, "nearest training aspect"),
                                           (new, "focal", 0.3, "nearest training aspect, sides only")):
        data = json.loads(path.read_text())
        data.update(gt_intrinsics=False, floor=None, selection={"score_threshold": threshold, "merge_radius": 0.5},
                    tracker={"pixel_unit": unit, "t_pixel": 1.0}, padding=padding)
        path.write_text(json.dumps(data))
    out = tmp_path / "cmp.json"
    assert main(["compare", str(base), str(new), "--json", str(out)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("settings that differ: "))
    assert line == ("settings that differ: padding: nearest training aspect -> nearest training aspect, sides only; "
                    "selection score_threshold: 0.4 -> 0.3; tracker pixel_unit: meters_at_depth -> focal")
    assert json.loads(out.read_text())["settings_differ"] == line.split(": ", 1)[1].split("; ")
    assert main(["compare", str(base), str(base)]) == 0
    assert "settings that differ: none\n" in capsys.readouterr().out
    assert main(["compare", str(base), str(_eval_json(tmp_path / "old.json"))]) == 0
    assert "settings that differ: not recorded\n" in capsys.readouterr().out


def test_the_rule_decides_and_sets_the_exit_status(tmp_path, capsys):
    base, new = _eval_json(tmp_path / "base.json"), _eval_json(tmp_path / "new.json", found_extra=20)
    out = tmp_path / "cmp.json"
    # the default rule (F1, PA-MPJPE, MRPE, IDF1 on person boxes): F1 better, the rest the same
    assert main(["compare", str(base), str(new), "--rule", "--json", str(out)]) == 0
    assert "rule (better on one of f1, pa_mpjpe, mrpe, idf1_2d, worse on none): accepted, better: f1" in (
        capsys.readouterr().out)
    assert json.loads(out.read_text())["rule"] == {"metrics": ["f1", "pa_mpjpe", "mrpe", "idf1_2d"],
                                                   "needs_better": True, "accepted": True, "better": ["f1"],
                                                   "worse": [], "no_verdict": []}  # fmt: skip
    assert main(["compare", str(new), str(base), "--rule"]) == 3  # F1 worse
    assert "rejected, worse: f1" in capsys.readouterr().out
    assert main(["compare", str(base), str(base), "--rule"]) == 3  # a copy: nothing better
    assert "rejected, nothing better" in capsys.readouterr().out
    assert main(["compare", str(base), str(new), "--rule", "pa_mpjpe,mrpe"]) == 3  # only the unchanged ones
    assert main(["compare", str(base), str(new), "--rule", "recall, precision"]) == 0
    # a run without per-person records has no same-people verdict: neither better nor worse
    old = _eval_json(tmp_path / "old.json", people=False)
    assert main(["compare", str(old), str(new), "--rule", "recall,pa_mpjpe_same"]) == 0
    assert "accepted, better: recall (no verdict: pa_mpjpe_same)" in capsys.readouterr().out
    # --guard (a confirmation set): none worse is enough
    assert main(["compare", str(base), str(base), "--guard"]) == 0
    assert "rule (worse on none of f1, pa_mpjpe, mrpe, idf1_2d): accepted, nothing better" in capsys.readouterr().out
    assert main(["compare", str(new), str(base), "--guard", "pa_mpjpe,f1"]) == 3
    assert "rejected, worse: f1" in capsys.readouterr().out


def test_an_unknown_rule_metric_is_named(tmp_path, capsys):
    base = _eval_json(tmp_path / "base.json")
    assert main(["compare", str(base), str(base), "--rule", "f1,mpjpe"]) == 2
    err = capsys.readouterr().err
    assert "--rule 'f1,mpjpe': unknown metric(s) mpjpe; choose among f1, precision" in err
    assert main(["compare", str(base), str(base), "--guard", "idf"]) == 2
    assert "--guard 'idf': unknown metric(s) idf" in capsys.readouterr().err
