"""`mhr2 eval` and its protocol (evaluation.benchmark / runner) on real synthetic frames."""

import copy
import dataclasses
import json
import re

import numpy as np
import torch
import pytest
import yaml

from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.cli import main
from mhr2_ros.evaluation.benchmark import Evaluator, SyntheticBenchmark, fill_bodies
from mhr2_ros.evaluation.uncertainty import Unit, metrics_from_sums
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = SyntheticBenchmark(images=2, clips=1, clip_frames=3, size=(192, 144), people=(3, 3), distance_m=(2.0, 6.0))


@pytest.fixture(scope="module")
def truths(body_model):
    """Ground-truth frame results (with vertices) of 2 independent scenes of 3 people."""
    clip = SyntheticClip(SMALL.synth_config(independent=True), SMALL.image_seed, body_model)
    return [to_frame_result(f.truth, id_prefix="p") for f in clip]


def _moved(result, shift):
    out = copy.deepcopy(result)
    for h in out.humans:
        h.position = h.position + shift
        h.joints_3d = h.joints_3d + shift
        h.vertices = h.vertices + shift
    return out


def test_ground_truth_scores_perfectly(truths):
    ev = Evaluator()
    for t in truths:
        ev.add(t, t)
    s = ev.summary()
    n = sum(len(t) for t in truths)
    assert s["f1"] == s["f1_box"] == s["f1_joints"] == 1.0 and s["gt_people"] == n and s["detections"] == n
    assert s["match_iou"] == 0.1
    for key in ("mpjpe", "pa_mpjpe", "pve", "abs_pve", "ta_pve", "pair_pa_mpjpe", "mrpe", "fov_error",
                "orientation_error", "heading_error", "turned_away", "calibrated_depth_sigma_ratio",
                "calibrated_pixel_sigma"):
        assert s[key] == pytest.approx(0.0, abs=1e-3), key
    assert s["covariance_along_coverage"] == s["covariance_across_coverage"] == 1.0


def test_fov_error_and_its_sign(truths):
    """A FOV predicted 5 deg too narrow in one frame and 3 deg too wide in the other: error 4 deg
    on average, bias -1 deg (the sign says which way: too narrow places people too far)."""
    ev = Evaluator()
    for t, delta in zip(truths, (-5.0, 3.0)):
        pred = copy.deepcopy(t)
        pred.fov_y = t.fov_y + np.radians(delta)
        ev.add(pred, t)
    s = ev.summary()
    assert s["fov_error"] == pytest.approx(4.0) and s["fov_bias"] == pytest.approx(-1.0)


def test_a_common_shift_counts_only_in_absolute_metrics(truths):
    # Every person 10 cm to the right (2D joints kept, so the matching is unchanged):
    # MRPE 0.1 m and Abs-PVE 100 mm; centred, aligned and translation-aligned errors stay zero.
    ev = Evaluator()
    for t in truths:
        ev.add(_moved(t, np.array([0.1, 0.0, 0.0], np.float32)), t)
    s = ev.summary()
    assert s["mrpe"] == pytest.approx(0.1, abs=1e-4)
    assert s["abs_pve"] == pytest.approx(100.0, abs=0.1)
    for key in ("mpjpe", "pa_mpjpe", "pve", "ta_pve", "pair_pa_mpjpe"):
        assert s[key] == pytest.approx(0.0, abs=1e-2), key


def test_orientation_error_and_the_covariance_check_by_hand(truths):
    """Every person 20% farther along their ray (2D joints kept) and turned 30 deg about their up
    axis: orientation error 30 deg, the network-depth prior (0.12 of the distance) misses all of
    them along the ray and 0.2 would have held 68%; nobody moved across the ray."""
    ev = Evaluator()
    turn = np.array([[np.cos(np.pi / 6), -np.sin(np.pi / 6), 0.0], [np.sin(np.pi / 6), np.cos(np.pi / 6), 0.0],
                     [0.0, 0.0, 1.0]])  # fmt: skip
    for t in truths:
        pred = copy.deepcopy(t)
        for h in pred.humans:
            h.position, h.orientation = h.position * 1.2, h.orientation @ turn
        ev.add(pred, t)
    s = ev.summary()
    assert s["orientation_error"] == pytest.approx(30.0, abs=1e-3)
    assert s["heading_error"] == pytest.approx(30.0, abs=1e-3)
    assert s["turned_away"] == 0.0
    assert s["calibrated_depth_sigma_ratio"] == pytest.approx(0.2, abs=1e-5)
    assert s["covariance_along_coverage"] == 0.0 and s["covariance_across_coverage"] == 1.0
    assert s["calibrated_heading_sigma"] == pytest.approx(np.radians(30.0), abs=1e-5)  # a turn about the up axis
    assert s["calibrated_tilt_sigma"] == pytest.approx(0.0, abs=1e-5)
    assert s["calibrated_floor_depth_sigma_ratio"] is None  # no one stood on a floor


def test_head_and_part_orientation_errors_by_hand(truths, body_model):
    """Ground truth's part rotations come from its pose (fill_bodies); a prediction whose head part
    is turned 30 deg and left elbow part 60 deg has head error 30 deg and part error (30 + 60) / 15;
    without part rotations on either side the two are undefined."""
    assert all(h.part_rotations is None for h in truths[0].humans)  # to_frame_result: not stored
    filled = [fill_bodies(copy.deepcopy(t), body_model) for t in truths]
    ev = Evaluator()
    for t in truths:
        ev.add(t, t)
    assert ev.summary()["head_orientation_error"] is None and ev.summary()["part_orientation_error"] is None
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    turn30 = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    ev = Evaluator()
    for t in filled:
        pred = copy.deepcopy(t)
        for h in pred.humans:
            h.part_rotations[PART_NAMES.index("head")] = h.part_rotations[PART_NAMES.index("head")] @ turn30
            elbow = PART_NAMES.index("l_elbow")
            h.part_rotations[elbow] = h.part_rotations[elbow] @ turn30 @ turn30
        ev.add(pred, t)
    summary = ev.summary()
    assert summary["head_orientation_error"] == pytest.approx(30.0, abs=1e-2)
    assert summary["part_orientation_error"] == pytest.approx(90.0 / len(PART_NAMES), abs=1e-2)
    assert summary["orientation_error"] == pytest.approx(0.0, abs=1e-3)


def test_nobody_found_leaves_the_pair_metrics_undefined(truths):
    """No detections: recall 0, and the metrics over matched pairs are None, not a perfect 0."""
    ev = Evaluator()
    for t in truths:
        pred = copy.deepcopy(t)
        pred.humans = []
        ev.add(pred, t)
    s = ev.summary()
    assert (s["precision"], s["recall"], s["f1"]) == (1.0, 0.0, 0.0)
    for key in ("mpjpe", "pa_mpjpe", "pve", "abs_pve", "ta_pve", "mrpe"):
        assert s[key] is None, key


def test_a_missed_person_and_a_false_positive(truths):
    t = truths[0]
    pred = copy.deepcopy(t)
    pred.humans = pred.humans[1:]  # miss one of 3
    ghost = copy.deepcopy(t.humans[0])
    ghost.keypoints_2d = ghost.keypoints_2d + 1000.0  # far from everyone: a false positive
    pred.humans.append(ghost)
    ev = Evaluator()
    ev.add(pred, t)
    s = ev.summary()
    assert (s["precision"], s["recall"]) == pytest.approx((2 / 3, 2 / 3))
    assert s["f1"] == pytest.approx(2 / 3)
    assert (s["errors_background"], s["errors_not_found"], s["errors_wrong_body"], s["errors_duplicate"]) == (1, 1, 0, 0)
    assert s["f1_bodies_fixed"] == pytest.approx(2 / 3)  # no wrong body to fix


def test_a_wrong_body_and_a_duplicate(truths):
    """Person 0 found at their pelvis with a body three times too large: its joint box holds
    the true one, IoU 1/9, which the paper's protocol (IoU >= 0.1) accepts and the box test
    (IoU >= 0.5) does not: there it is one wrong body, i.e. one FP and one FN. A copy of
    person 1 two pixels off: a duplicate under both."""
    t = truths[0]
    pred = copy.deepcopy(t)
    big = pred.humans[0]
    big.keypoints_2d = big.keypoints_2d[0] + 3.0 * (big.keypoints_2d - big.keypoints_2d[0])
    twin = copy.deepcopy(t.humans[1])
    twin.keypoints_2d = twin.keypoints_2d + 2.0
    pred.humans.append(twin)
    protocol, box_test = Evaluator(), Evaluator(match_iou=0.5)
    protocol.add(pred, t)
    box_test.add(pred, t)
    s = protocol.summary()
    assert (s["detections"], s["recall"], s["precision"]) == (4, 1.0, 0.75)
    assert (s["errors_wrong_body"], s["errors_duplicate"], s["errors_background"], s["errors_not_found"]) == (0, 1, 0, 0)
    assert s["recall_box"] == pytest.approx(2 / 3) and s["recall_joints"] == pytest.approx(2 / 3)
    s = box_test.summary()
    assert (s["detections"], s["recall"], s["match_iou"]) == (4, pytest.approx(2 / 3), 0.5)
    assert (s["errors_wrong_body"], s["errors_duplicate"], s["errors_background"], s["errors_not_found"]) == (1, 1, 0, 0)
    assert s["f1_bodies_fixed"] == pytest.approx(2 * 0.75 * 1.0 / 1.75)  # 3 TP, 1 FP, 0 FN
    with pytest.raises(ValueError, match="match_iou"):
        Evaluator(match_iou=0.0)


def test_distance_bins_hold_their_lower_edge():
    from mhr2_ros.evaluation.benchmark import distance_bin, distance_labels

    assert [distance_bin(z) for z in (0.5, 2.99, 3.0, 4.5, 7.0, 8.99, 9.0, 40.0)] == [
        "< 3 m", "< 3 m", "3-5 m", "3-5 m", "7-9 m", "7-9 m", ">= 9 m", ">= 9 m"]  # fmt: skip
    assert distance_labels() == ["< 3 m", "3-5 m", "5-7 m", "7-9 m", ">= 9 m"]


def test_people_turned_around_count_as_turned_away_and_their_backs_are_counted(truths):
    """Every person predicted turned 180 deg about their up axis: heading error 180 and all turned
    away; the truth shows its back to the camera where it faces more than 120 deg from it, the
    prediction where the truth faces less than 60 deg from it."""
    from mhr2_ros.evaluation.metrics import facing_camera_deg

    ev = Evaluator()
    for t in truths:
        pred = copy.deepcopy(t)
        for h in pred.humans:
            h.orientation = h.orientation @ _about_up(180.0)
        ev.add(pred, t)
    s = ev.summary()
    facing = np.array([facing_camera_deg(h.orientation, h.position) for t in truths for h in t.humans])
    assert s["heading_error"] == pytest.approx(180.0, abs=1e-3) and s["turned_away"] == 1.0
    assert 0.0 < s["back_to_camera"] == pytest.approx(np.mean(facing > 120.0))
    assert s["back_to_camera_pred"] == pytest.approx(np.mean(facing < 60.0))
    same = Evaluator()
    for t in truths:
        same.add(t, t)
    assert same.summary()["back_to_camera_pred"] == same.summary()["back_to_camera"] == s["back_to_camera"]


def _about_up(deg: float) -> np.ndarray:
    """A turn by `deg` about a body's own up axis (z), applied on the right of its rotation."""
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def test_by_distance_recall_mrpe_depth_ratio_and_heading(truths):
    """Everyone placed 0.5 m too far and turned 40 deg about their up axis, the nearest person of
    the first scene missed: each bin's MRPE is 0.5 m, its depth ratio the median of (z + 0.5) / z,
    its heading error 40 deg, its recall the found share."""
    from mhr2_ros.evaluation.benchmark import distance_bin

    ev = Evaluator()
    preds = [_moved(t, np.array([0.0, 0.0, 0.5], np.float32)) for t in truths]
    for pred in preds:
        for h in pred.humans:
            h.depth = h.depth + 0.5
            h.orientation = h.orientation @ _about_up(40.0)
    missed = truths[0].humans[0]  # the nearest (humans are sorted by depth)
    preds[0].humans = preds[0].humans[1:]
    for pred, t in zip(preds, truths):
        ev.add(pred, t)
    rows = ev.by_distance()
    depths = [h.depth for t in truths for h in t.humans]
    assert sum(r["gt_people"] for r in rows.values()) == len(depths) == 6
    for label, row in rows.items():
        zs = [z for z in depths if distance_bin(z) == label]
        found = [z for z in zs if z != missed.depth]
        assert row["gt_people"] == len(zs)
        assert row["recall"] == pytest.approx(len(found) / len(zs))
        assert row["mrpe"] == pytest.approx(0.5, abs=1e-5)
        assert row["depth_ratio"] == pytest.approx(np.median([(z + 0.5) / z for z in found]), rel=1e-5)
        assert row["heading_error"] == pytest.approx(40.0, abs=1e-3)
    assert rows[distance_bin(missed.depth)]["recall"] < 1.0


def test_barely_visible_and_pelvis_outside_people_are_ignored(body_model):
    """The protocol counts who the training targets hold: >= MIN_VISIBLE_PIXELS visible
    and the pelvis in the image; the others are ignore regions, also for tracking."""
    from mhr2_ros.evaluation.benchmark import counted_tracks, ignored_people
    from mhr2_ros.evaluation.track_eval import track_boxes
    from mhr2_ros.training.data import MIN_VISIBLE_PIXELS

    clip = SyntheticClip(SMALL.synth_config(independent=True), SMALL.image_seed, body_model)
    ft = clip.frame(0).truth
    in_view = np.flatnonzero(ft.visible_pixels > 0)
    ft.visible_pixels[in_view[0]] = MIN_VISIBLE_PIXELS - 1  # barely visible
    ft.pelvis_2d[in_view[1]] = (-5.0, 10.0)  # pelvis left of the image
    truth = to_frame_result(ft, id_prefix="p")
    ignore = ignored_people(ft, truth)
    ids = {f"p{int(ft.ids[i])}" for i in in_view[:2]}
    assert [h.track_id in ids for h in truth.humans] == ignore.tolist() and ignore.sum() == 2
    ev = Evaluator()
    det = ev.add(truth, truth, ignore)  # perfect predictions, two of them on ignored people
    s = ev.summary()
    assert s["f1"] == 1.0 and s["gt_people"] == len(truth) - 2 and s["ignored_people"] == 2
    assert s["detections"] == len(truth) - 2 and len(det.ignored) == 2
    gt_obs, pred_obs = counted_tracks(truth, ignore, truth, det)
    assert {i for i, _ in gt_obs} == {i for i, _ in pred_obs} == {h.track_id for h in truth.humans} - ids
    # the paper's 2D tracking protocol observes the same people by their person boxes
    gt_boxes, _ = counted_tracks(truth, ignore, truth, det, track_boxes)
    counted = [h for h in truth.humans if h.track_id not in ids]
    assert [i for i, _ in gt_boxes] == [h.track_id for h in counted]
    np.testing.assert_array_equal(np.array([b for _, b in gt_boxes]), np.array([h.box for h in counted]))


def test_vertices_posed_from_pose_and_shape_match_the_rendered_mesh(truths, body_model):
    t = copy.deepcopy(truths[0])
    stored = [h.vertices.copy() for h in t.humans]
    for h in t.humans:
        h.vertices = None
    filled = fill_bodies(t, body_model)
    for h, v in zip(filled.humans, stored):
        assert np.abs(h.vertices - v).max() < 2e-3  # meters
        with torch.no_grad():
            posed = body_model(torch.as_tensor(h.pose_6d[None]), torch.as_tensor(h.shape[None]))
        np.testing.assert_allclose(h.part_rotations, posed.part_rotations[0].numpy(), atol=1e-5)


def test_benchmark_seeds_stay_below_the_training_seeds():
    assert SyntheticBenchmark(image_seed=999, clip_seed=997, clips=3).clip_seed == 997  # clips 997, 998, 999
    with pytest.raises(ValueError, match="1000"):
        SyntheticBenchmark(clip_seed=999, clips=2)
    with pytest.raises(ValueError, match="1000"):
        SyntheticBenchmark(image_seed=1000)


@pytest.fixture
def tiny_yaml(tmp_path, tiny_config):
    path = tmp_path / "tiny224.yaml"
    path.write_text(yaml.safe_dump(tiny_config.to_dict()))
    return path


def test_command_on_the_synthetic_benchmark_writes_json(tmp_path, tiny_yaml, capsys):
    out = tmp_path / "eval.json"
    tracker_yaml = tmp_path / "tracker.yaml"
    tracker_yaml.write_text("pixel_unit: meters_at_depth\n")
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--images", "2", "--clips", "1",
               "--clip-frames", "3", "--json", str(out), "--no-progress", "--tracker-config", str(tracker_yaml)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| PA-MPJPE |" in text and "| IDF1, tracked clips, 2D boxes IoU >= 0.5 (the paper's protocol) |" in text
    assert "| detection F1 (2D-joint boxes overlap, IoU >= 0.1) |" in text and "| MOTA, 3D |" in text
    assert "| distance | people | recall | MRPE |" in text
    assert "| sigma | parameter | now | calibrated (68%) |" in text and "people inside the prior's 68% region" in text
    assert "| pelvis orientation error" in text and "| head orientation error" in text
    assert "selection: score_threshold 0.4, nms_distance 0, merge_radius 0" in text
    data = json.loads(out.read_text())
    assert {"track_orientation_error", "velocity_heading_share", "calibrated_velocity_heading_sigma",
            "track_velocity_error", "track_true_speed", "head_orientation_error", "part_orientation_error"} <= set(
        data["metrics"])  # the tracker's headings and velocities on the clip (None where nobody was tracked)
    assert data["metrics"]["frames"] == 5 and data["metrics"]["gt_people"] > 0
    assert set(data["per_sequence"]) == {"images (seed 0)", "clip seed 1"}
    assert {"idf1", "idf1_2d", "mota_2d", "idf1_2d_true_ids"} <= set(data["per_sequence"]["clip seed 1"])
    assert data["tracker"]["pixel_unit"] == "meters_at_depth" and data["tracker"]["t_pixel"] == 1.0  # file + defaults
    assert "| IDF1, 2D boxes, every found person given their true identity" in text
    assert {"f1", "f1_box", "f1_joints", "idf1", "idf1_2d"} <= set(data["metrics"]) and data["metrics"]["match_iou"] == 0.1
    assert sum(row["gt_people"] for row in data["by_distance"].values()) == data["metrics"]["gt_people"]
    assert data["selection"] == {"score_threshold": 0.4, "nms_distance": 0.0, "merge_radius": 0.0}
    assert data["padding"] == "nearest training aspect" and "padding: nearest training aspect" in text  # no setting
    assert re.fullmatch(rf"PyTorch {re.escape(torch.__version__)} on (cpu|cuda(:\d+)?), float32", data["runtime"])
    assert f"runtime: {data['runtime']}" in text
    # resampling units: the 2 images one each, the clip whole; their sums give the reported metrics
    assert [(u["stratum"], u["name"], u["frames"]) for u in data["units"]] == [
        ("images", "images (seed 0)/0", 1), ("images", "images (seed 0)/1", 1), ("clips", "clip seed 1", 3)]
    total = metrics_from_sums(np.sum([Unit.from_json(u).sums for u in data["units"]], axis=0))
    for key in ("f1", "precision", "recall", "fov_error"):
        assert float(total[key]) == pytest.approx(data["metrics"][key]), key
    # every true positive's errors, in its unit: they add up to the unit's sums
    for u in data["units"]:
        mine = [p for p in data["people"] if (p["stratum"], p["unit"]) == (u["stratum"], u["name"])]
        assert len(mine) == u["tp"] == u["pairs"] and len({p["person"] for p in mine}) == len(mine)
        assert sum(p["pa_mpjpe"] for p in mine) == pytest.approx(u["pa_mpjpe_sum"])
        assert sum(p["mrpe"] for p in mine) == pytest.approx(u["mrpe_sum"])
    assert set(data["intervals"]) >= {"f1", "mrpe", "idf1_2d"} and "| 95% interval |" in text
    assert main(["compare", str(out), str(out)]) == 0
    text = capsys.readouterr().out
    assert "| detection F1 | " in text and "| PA-MPJPE, same people (mm) |" in text


def test_tracker_settings_are_refused_without_tracking_and_named_when_bad(tmp_path, capsys):
    bad = tmp_path / "tracker.yaml"
    bad.write_text("pixel_unit: inches\n")
    assert main(["eval", "--no-track", "--tracker-config", str(bad), "--images", "1", "--clips", "0"]) == 2
    err = capsys.readouterr().err
    assert f"--tracker-config {bad} has no use with --no-track" in err
    assert main(["eval", "--tracker-config", str(bad), "--images", "1", "--clips", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: tracker pixel_unit must be one of" in err and "inches" in err  # the file named too


def test_a_stricter_threshold_looks_worse_by_whom_it_finds_and_the_same_on_the_same_people(tmp_path, capsys):
    """The shipped model on 6 images at the paper's threshold and at 0.7: the stricter run keeps a
    subset of the detections (the same people, the same errors), so on the people both found
    the errors are the same, while the plain rows average over different people."""
    runs = {t: tmp_path / f"t{t}.json" for t in ("0.4", "0.7")}
    for threshold, path in runs.items():
        assert main(["eval", "--images", "6", "--clips", "0", "--threshold", threshold, "--json", str(path),
                     "--no-progress"]) == 0  # fmt: skip
    found = {t: len(json.loads(path.read_text())["people"]) for t, path in runs.items()}
    assert found["0.4"] > found["0.7"] > 0
    out = tmp_path / "cmp.json"
    assert main(["compare", str(runs["0.4"]), str(runs["0.7"]), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"the {found['0.7']} people both runs found" in text
    same_row = next(line for line in text.splitlines() if line.startswith("| PA-MPJPE, same people"))
    assert "-0.0" not in same_row, same_row  # float noise prints as 0
    rows = json.loads(out.read_text())["comparison"]
    for metric in ("pa_mpjpe", "mrpe"):
        same = rows[metric + "_same"]
        # zero but for float noise (the bodies of 15 and of 12 people are posed in one batch)
        assert same["people"] == found["0.7"] and same["difference"] == pytest.approx(0.0, abs=1e-4)
        assert same["verdict"] == "same within noise"
        assert same["new"] == pytest.approx(rows[metric]["new"])  # the stricter run's people are all shared
        assert abs(rows[metric]["difference"]) > 1e-3, metric  # the plain rows differ: other people


def test_command_evaluates_a_tuning_set_of_other_seeds_and_refuses_training_seeds(tmp_path, tiny_yaml, capsys):
    """--image-seed / --clip-seed give a set disjoint from the benchmark, on which settings are
    chosen; seeds reaching 1000 (training data) are refused before the model loads."""
    out = tmp_path / "tune.json"
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--images", "1", "--clips", "2",
               "--clip-frames", "2", "--image-seed", "500", "--clip-seed", "600", "--json", str(out), "--no-progress",
               "--match-iou", "0.5"])  # fmt: skip
    assert rc == 0
    assert "| detection F1 (2D-joint boxes overlap, IoU >= 0.5) |" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["metrics"]["match_iou"] == 0.5
    assert set(data["per_sequence"]) == {"images (seed 500)", "clip seed 600", "clip seed 601"}
    assert "image_seed=500" in data["data"] and "clip_seed=600" in data["data"]
    capsys.readouterr()
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--clips", "2", "--clip-seed", "999"])
    err = capsys.readouterr().err
    assert rc == 2 and "--clip-seed" in err and "1000" in err
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--image-seed", "-1"])
    assert rc == 2 and "--image-seed must be >= 0" in capsys.readouterr().err
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--match-iou", "1.5"])
    assert rc == 2 and "--match-iou must be in (0, 1]" in capsys.readouterr().err


def test_command_on_a_dataset_folder_and_a_bad_folder(tmp_path, tiny_yaml, body_model, capsys):
    from mhr2_ros.training.synthetic.dataset import write_clip

    clip = SyntheticClip(dataclasses.replace(SMALL.synth_config(independent=False), frames=2, vertices=False), 5,
                         body_model)  # fmt: skip
    write_clip(tmp_path / "clip", clip)
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--data", str(tmp_path / "clip"),
               "--json", str(tmp_path / "e.json"), "--no-progress"])
    assert rc == 0
    data = json.loads((tmp_path / "e.json").read_text())
    assert data["metrics"]["frames"] == 2 and "idf1" in data["metrics"]
    (tmp_path / "empty").mkdir()
    rc = main(["eval", "--random-init", "--config", str(tiny_yaml), "--data", str(tmp_path / "empty")])
    assert rc == 2
    assert "not a synthetic clip" in capsys.readouterr().err


def test_training_eval_hook_reports_the_headline_metrics(tmp_path, tiny_config, body_model):
    """`mhr2-train`'s periodic evaluation on an on-disk clip: every EVAL_KEYS metric it can
    define, as floats (a random network detects nobody, so the mesh metrics are absent)."""
    from mhr2_ros.model import build_model
    from mhr2_ros.training.config import TrainConfig
    from mhr2_ros.training.eval_hook import EVAL_KEYS, build_eval_hook
    from mhr2_ros.training.synthetic.dataset import write_clip

    clip = SyntheticClip(dataclasses.replace(SMALL.synth_config(independent=False), frames=2, vertices=False), 5,
                         body_model)  # fmt: skip
    write_clip(tmp_path / "clip", clip)
    assert build_eval_hook(TrainConfig(eval_clips=[str(tmp_path / "clip")], eval_every=0)) is None
    hook = build_eval_hook(TrainConfig(eval_clips=[str(tmp_path / "clip")], eval_every=10))
    torch.manual_seed(0)
    with torch.inference_mode():
        metrics = hook(build_model(tiny_config).eval(), tiny_config)
    assert {"f1", "fov_error", "fov_bias", "idf1_2d", "idf1"} <= set(metrics) <= set(EVAL_KEYS)
    assert "pa_mpjpe" not in metrics and "mrpe" not in metrics  # no pairs: absent, never a perfect 0
    assert abs(metrics["fov_bias"]) == pytest.approx(metrics["fov_error"])  # one camera: the same size


def test_generated_clips_tell_the_tracker_their_camera_is_fixed_converted_ones_do_not(tmp_path, body_model):
    """A clip `mhr2 synth` wrote (clip.json holds its config) has one fixed camera: the tracker gets
    its pose (walkers may face their velocity); a converted dataset's camera may move: no pose."""
    from mhr2_ros.evaluation.runner import disk_sequences, synthetic_sequences
    from mhr2_ros.training.synthetic.dataset import write_clip

    clip = SyntheticClip(dataclasses.replace(SMALL.synth_config(independent=False), frames=2, vertices=False), 5,
                         body_model)  # fmt: skip
    write_clip(tmp_path / "generated", clip)
    assert [s.static_camera for s in disk_sequences([tmp_path / "generated"])] == [True]
    assert all(s.static_camera for s in synthetic_sequences(SMALL, body_model) if s.tracked)
    info = json.loads((tmp_path / "generated" / "clip.json").read_text())
    del info["config"], info["seed"]
    (tmp_path / "converted").mkdir()
    for item in (tmp_path / "generated").iterdir():
        target = tmp_path / "converted" / item.name
        target.symlink_to(item, target_is_directory=item.is_dir())
    (tmp_path / "converted" / "clip.json").unlink()
    (tmp_path / "converted" / "clip.json").write_text(json.dumps(info))
    assert [s.static_camera for s in disk_sequences([tmp_path / "converted"])] == [False]
