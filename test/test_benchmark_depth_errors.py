"""benchmarks/depth_errors.py: its split of the MRPE and its counterfactuals measure what they name."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

from mhr2_ros.evaluation.benchmark import SyntheticBenchmark
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import depth_errors as de  # noqa: E402

SCENE = SyntheticBenchmark(images=1, clips=0, size=(192, 144), people=(1, 1), distance_m=(4.0, 4.0))


@pytest.fixture(scope="module")
def scene(body_model):
    """One true person and the truth of its frame (K, image width)."""
    frame = next(iter(SyntheticClip(SCENE.synth_config(independent=True), SCENE.image_seed, body_model)))
    truth = to_frame_result(frame.truth, id_prefix="p")
    return truth.humans[0], truth


def _scaled(person, depth_factor: float, height_factor: float = 1.0):
    """The person moved along the ray through its pelvis (its pixel kept) and made taller."""
    out = copy.deepcopy(person)
    out.position = np.asarray(person.position) * depth_factor
    out.depth, out.height = person.depth * depth_factor, person.height * height_factor
    return out


def test_the_truth_has_no_error(scene):
    true, _ = scene
    row = de.pair_row(true, true)
    assert all(v == pytest.approx(0.0, abs=1e-6) for k, v in row.items() if k != "distance")


def test_a_person_too_far_errs_along_the_ray_only(scene):
    true, _ = scene
    row = de.pair_row(_scaled(true, 1.2), true)
    distance = float(np.linalg.norm(true.position))
    assert row["along"] == pytest.approx(0.2 * distance, rel=1e-5)
    assert row["across"] == pytest.approx(0.0, abs=1e-5)
    assert row["mrpe"] == pytest.approx(row["along"], rel=1e-5)
    assert row["log_depth"] == pytest.approx(np.log(1.2), abs=1e-6)
    assert row["mrpe_true_depth"] == pytest.approx(0.0, abs=1e-5)
    assert row["mrpe_true_height"] == pytest.approx(row["mrpe"], rel=1e-5)  # its height was right


def test_a_wrong_focal_turns_the_ray(scene):
    """Values by hand: the error is (0, 0, 0.3 z), its part across the ray |err x ray|; scaled back to the
    true depth the prediction is off by (1 / 1.3 - 1) of the true x and y."""
    true, _ = scene
    pred = copy.deepcopy(true)  # the predicted camera's focal 1.3 times too long: the same pixel, z 1.3 times
    pred.position = np.asarray(true.position) * [1.0, 1.0, 1.3]
    pred.depth = true.depth * 1.3
    t = np.asarray(true.position, np.float64)
    assert np.linalg.norm(t[:2]) > 0.05  # the person is off the optical axis, where a focal error turns the ray
    err, ray = np.array([0.0, 0.0, 0.3 * t[2]]), t / np.linalg.norm(t)
    row = de.pair_row(pred, true)
    assert row["across"] == pytest.approx(np.linalg.norm(np.cross(err, ray)), rel=1e-5)
    assert row["along"] == pytest.approx(abs(err @ ray), rel=1e-5)
    assert row["mrpe_true_depth"] == pytest.approx((1 - 1 / 1.3) * np.linalg.norm(t[:2]), rel=1e-5)


def test_a_size_consistent_error_is_undone_by_the_true_height(scene):
    true, _ = scene
    row = de.pair_row(_scaled(true, 1.15, height_factor=1.15), true)  # taller and farther: the same pixels
    assert row["mrpe"] > 0.3
    assert row["mrpe_true_height"] == pytest.approx(0.0, abs=1e-5)
    rows = [de.pair_row(_scaled(true, s, height_factor=s), true) for s in (0.8, 0.9, 1.1, 1.3)]
    summary = de.summary(rows)
    assert summary["spread of log(height / depth) ratio: projected size (std)"] == "0.000"
    assert summary["correlation of the two"] == "1.00"


def test_a_mirror_partner_is_found_and_averages_back_to_the_truth(scene):
    true, truth = scene
    width = truth.image_size[1]
    mirror = copy.deepcopy(truth)  # what a perfect detector returns on the mirrored image (same focal)
    partner = copy.deepcopy(true)
    partner.pelvis_2d = de.mirrored(true.pelvis_2d, width)
    np.testing.assert_allclose(de.mirrored(partner.pelvis_2d, width), true.pelvis_2d)  # twice: the identity
    mirror.humans = [partner]
    found = de.flip_partner(mirror, np.asarray(true.pelvis_2d), width, radius_px=2.0)
    assert found is partner
    average = de.flip_average(true, found, truth.K, mirror.K, width)
    np.testing.assert_allclose(average, true.position, atol=2e-3)
    moved = np.asarray(true.pelvis_2d) + [10.0, 0.0]  # nobody within the radius
    assert de.flip_partner(mirror, moved, width, radius_px=2.0) is None


@pytest.mark.parametrize("args, message", [
    (["--image-seed", "1000"], "below 1000"),
    (["--images", "0", "--clips", "0"], "not both 0"),
])  # fmt: skip
def test_bad_sets_are_refused_before_the_model_loads(args, message, capsys):
    with pytest.raises(SystemExit) as stop:
        de.main([*args, "--weights", "no/such/weights.safetensors"])
    assert stop.value.code == 2 and message in capsys.readouterr().err
