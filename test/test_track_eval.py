"""`mhr2 track-eval`: tracker MOT metrics on simulated scenarios and on synthetic clips
(ground-truth detections and the detector), through the real command line."""

import json

import numpy as np
import pytest

from mhr2_ros.cli import main
from mhr2_ros.geometry import project
from mhr2_ros.tracking import simulate as sim
from mhr2_ros.tracking.scenarios import SCENARIOS, ScenarioConfig, build_walkers

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIM_FRAMES = 200  # per scenario: room for 40-frame occlusions, a few seconds of tracking each
CLIP_FRAMES = 20


def track_eval(capsys, *argv):
    """Run `mhr2 track-eval ARGV`; returns (exit code, stdout, stderr)."""
    code = main(["track-eval", "--no-progress", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def read_json(path):
    return json.loads(path.read_text())  # strict: no NaN


# -------------------------------------------------------------------------- scenarios
def test_scenarios_cross_paths_and_hide_people_up_to_the_limit():
    cfg = ScenarioConfig(frames=SIM_FRAMES, max_occlusion_frames=40)
    stamps = np.arange(cfg.frames) / cfg.fps
    k = sim.SimConfig().K
    crossing = build_walkers("crossing", cfg)
    assert len(crossing) == 6
    for a, b in zip(crossing[0::2], crossing[1::2]):  # each pair crosses in the image, walking opposite ways
        du = np.array([project(a.position(t), k)[0] - project(b.position(t), k)[0] for t in stamps])
        meet = int(np.argmin(np.abs(du)))
        assert abs(du[meet]) < 1.0 and du[0] * du[-1] < 0 and a.velocity[0] * b.velocity[0] < 0
        assert a.present(meet) and b.present(meet)
    assert any(w.hidden for w in crossing)  # the farther person of a depth-separated pair is hidden
    occlusion = build_walkers("occlusion", cfg)
    lengths = [b - a for w in occlusion for a, b in w.hidden]
    assert len(lengths) == len(occlusion) and max(lengths) <= 40 and min(lengths) >= 10
    for w in occlusion:  # hidden inside the presence: the person is seen before and after
        (a, b), (first, last) = w.hidden[0], w.frames
        assert first < a and b < last
    crowd = build_walkers("crowd", cfg)
    assert len(crowd) == 12 and sum(bool(w.hidden) for w in crowd) == 6
    assert build_walkers("crowd", cfg)[3].start.tolist() == crowd[3].start.tolist()  # deterministic


def test_simulate_paper_tracker_scores_idf1_above_0_9_on_every_scenario(tmp_path, capsys):
    out = tmp_path / "sim.json"
    code, text, _ = track_eval(capsys, "--simulate", "--scenario", "all", "--frames", SIM_FRAMES, "--json", out)
    assert code == 0
    for name in (*SCENARIOS, "overall"):  # the table has one row per scenario and an overall row
        assert any(line.startswith(name) for line in text.splitlines()), text
    data = read_json(out)
    assert data["mode"] == "simulate" and data["scenario"]["max_occlusion_frames"] == 40
    assert data["tracker_config"]["new_track_threshold"] == 0.69
    for name in SCENARIOS:
        m = data["sequences"][name]
        assert m["idf1"] >= 0.9, (name, m)
        assert m["num_frames"] == SIM_FRAMES and m["num_false_positives"] > 0 and m["num_misses"] > 0
    total = sum(data["sequences"][n]["num_objects"] for n in SCENARIOS)
    assert data["overall"]["num_objects"] == total and data["overall"]["idf1"] >= 0.9
    assert "boxes" not in data  # simulated streams have pelvises only, no person boxes


def test_broken_tracker_config_scores_much_lower(tmp_path, capsys):
    broken = tmp_path / "broken.yaml"
    broken.write_text("new_track_threshold: 1.0  # no pair reaches it: every detection starts a track\n")
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    args = ("--simulate", "--scenario", "occlusion", "--frames", 120)
    assert track_eval(capsys, *args, "--json", good)[0] == 0
    assert track_eval(capsys, *args, "--tracker-config", broken, "--json", bad)[0] == 0
    g, b = read_json(good)["overall"], read_json(bad)["overall"]
    assert read_json(bad)["tracker_config"]["new_track_threshold"] == 1.0
    assert g["idf1"] >= 0.9 and b["idf1"] < 0.2, (g["idf1"], b["idf1"])
    assert b["num_switches"] > 10 * max(1.0, g["num_switches"])


# -------------------------------------------------------------------------- clips
@pytest.fixture(scope="module")
def clip_dir(make_clip):
    """A small clip as `mhr2 synth` writes it: 4 people walking, 160x120, 10 fps."""
    return make_clip("walk", CLIP_FRAMES, people=4, seed=5)


def test_clip_with_ground_truth_detections_is_tracked_almost_perfectly(clip_dir, tmp_path, capsys):
    out = tmp_path / "gt.json"
    code, text, _ = track_eval(capsys, clip_dir, "--gt-detections", "--json", out)
    assert code == 0 and "walk" in text
    data = read_json(out)
    m = data["sequences"]["walk"]
    assert data["detections"] == "ground truth" and m["num_frames"] == CLIP_FRAMES
    assert m["num_objects"] >= CLIP_FRAMES  # people are in view
    assert m["idf1"] >= 0.95 and m["num_switches"] == 0 and m["num_false_positives"] == 0, m
    # the paper's protocol on person boxes: the true boxes, so every tracked box matches its person
    b = data["boxes"]["sequences"]["walk"]
    assert data["boxes"]["match_iou"] == 0.5 and "person boxes (the paper's protocol)" in text
    assert b["num_objects"] == m["num_objects"] and b["num_false_positives"] == b["num_misses"] == 0, b
    assert b["idf1"] == pytest.approx(m["idf1"]) and b["motp"] == pytest.approx(0.0, abs=1e-9)  # IoU 1


def test_clip_with_the_detector_runs_end_to_end(clip_dir, tmp_path, capsys, tiny_detector):
    from mhr2_ros.checkpoint import save_checkpoint

    weights = save_checkpoint(tiny_detector.model, tiny_detector.model_cfg, tmp_path / "tiny.safetensors")
    out = tmp_path / "det.json"
    # Random weights score every query near the 0.01 prior: threshold 0 keeps the best 3 per frame.
    code, text, _ = track_eval(capsys, clip_dir, "--weights", weights, "--threshold", 0, "--max-humans", 3,
                               "--json", out)
    assert code == 0, text
    data = read_json(out)
    assert data["detections"] == "detector" and data["weights"] == str(weights)
    m = data["overall"]
    assert m["num_frames"] == CLIP_FRAMES and m["num_predictions"] == 3 * CLIP_FRAMES  # every detection tracked
    assert 0.0 <= m["idf1"] <= 1.0 and m["num_objects"] == data["sequences"]["walk"]["num_objects"]
    assert data["boxes"]["overall"]["num_predictions"] == m["num_predictions"]


def test_clear_errors(tmp_path, capsys):
    code, _, err = track_eval(capsys, tmp_path)
    assert code == 2 and "not a synthetic clip" in err and "clip.json" in err
    code, _, err = track_eval(capsys, tmp_path / "missing")
    assert code == 2 and "not a folder" in err
    code, _, err = track_eval(capsys)
    assert code == 2 and "--simulate" in err
    code, _, err = track_eval(capsys, tmp_path, "--people", 3)
    assert code == 2 and "--people" in err and "only for --simulate" in err
    code, _, err = track_eval(capsys, "--simulate", "--gt-detections")
    assert code == 2 and "--gt-detections" in err
    (tmp_path / "bad.yaml").write_text("new_track_treshold: 0.5\n")
    code, _, err = track_eval(capsys, "--simulate", "--tracker-config", tmp_path / "bad.yaml")
    assert code == 2 and "new_track_treshold" in err


def test_box_rows_need_recorded_boxes():
    from mhr2_ros.evaluation.track_eval import SequenceTracks, evaluate_sequences

    seq = SequenceTracks("walk")
    seq.add([("p1", np.zeros(3))], [("h1", np.zeros(3))])
    assert evaluate_sequences([seq])["walk"]["idf1"] == 1.0
    with pytest.raises(ValueError, match="simulated"):
        evaluate_sequences([seq], boxes=True)
    seq.add_boxes([("p1", [0.0, 0, 10, 20])], [("h1", [0.0, 0, 10, 15])])  # IoU 0.75
    rows = evaluate_sequences([seq], boxes=True)
    assert rows["walk"]["idf1"] == 1.0 and rows["walk"]["motp"] == pytest.approx(0.25)
    assert evaluate_sequences([seq], threshold=0.8, boxes=True)["walk"]["num_misses"] == 1


def test_metrics_without_ground_truth_are_null_in_json():
    from mhr2_ros.evaluation import mot
    from mhr2_ros.evaluation.track_eval import json_metrics

    where = np.array([0.0, 0.0, 5.0])
    metrics = mot.evaluate([[]] * 2, [[("h1", where)]] * 2, 0.5)  # tracks, nobody to find
    assert metrics["mota"] == -np.inf
    assert json.loads(json.dumps(json_metrics(metrics), allow_nan=False))["mota"] is None


def test_a_damaged_clip_frame_is_named(clip_dir, tmp_path, capsys):
    import shutil

    damaged = shutil.copytree(clip_dir, tmp_path / "damaged")
    frame = sorted((damaged / "rgb").iterdir())[2]
    frame.write_bytes(b"not a png")
    code, _, err = track_eval(capsys, damaged, "--gt-detections")
    assert code == 2 and frame.name in err and "cannot be decoded" in err


def test_detector_options_without_a_detector_are_refused(clip_dir, capsys):
    code, _, err = track_eval(capsys, "--simulate", "--threshold", "0.5", "--fov", "60")
    assert code == 2 and "--threshold, --fov: no detector runs with --simulate" in err
    code, _, err = track_eval(capsys, clip_dir, "--gt-detections", "--merge", "0")
    assert code == 2 and "--merge: no detector runs with --gt-detections" in err
    code, _, err = track_eval(capsys, clip_dir, "--gt-intrinsics", "--fov", "60")
    assert code == 2 and "drop --fov" in err
    code = main(["eval", "--data", str(clip_dir), "--images", "5"])
    assert code == 2 and "--images: only for the synthetic benchmark" in capsys.readouterr().err
    code, _, err = track_eval(capsys, "--simulate", "--json", clip_dir)  # a folder: refused before the run
    assert code == 2 and "expected a file name" in err
