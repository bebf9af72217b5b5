"""benchmarks/wrong_bodies.py: its counterfactuals put back exactly the part they name."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest

from mhr2_ros.evaluation.benchmark import SyntheticBenchmark
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import wrong_bodies as wb  # noqa: E402

SCENE = SyntheticBenchmark(images=1, clips=0, size=(192, 144), people=(1, 1), distance_m=(3.0, 3.0))


@pytest.fixture(scope="module")
def person(body_model):
    """One true person (camera-frame joints, pose, shape) and the K of the scene."""
    frame = next(iter(SyntheticClip(SCENE.synth_config(independent=True), SCENE.image_seed, body_model)))
    truth = to_frame_result(frame.truth, id_prefix="p")
    return truth.humans[0], truth.K


def _ious(body_model, pred, true, K):
    true_box = wb.box(wb.project(true.joints_3d, K))
    return wb.counterfactual_ious(body_model, pred, true, K, true_box)


def test_the_truth_passes_every_counterfactual(body_model, person):
    true, K = person
    assert all(v == pytest.approx(1.0, abs=1e-4) for v in _ious(body_model, true, true, K).values())


def test_a_wrong_depth_is_put_back_only_by_the_true_depth(body_model, person):
    true, K = person
    pred = copy.deepcopy(true)  # the same body 1.5 times as far along the ray: its pelvis keeps its pixel
    shift = true.position * 0.5
    pred.position, pred.joints_3d, pred.depth = true.position + shift, true.joints_3d + shift, true.depth * 1.5
    ious = _ious(body_model, pred, true, K)
    assert ious["true depth"] == pytest.approx(1.0, abs=1e-4)
    for name in ("true root rotation", "true pose (every bone)", "true shape", "true body (pose and shape)"):
        assert ious[name] < 0.6, name  # boxes of 1 and 1/1.5 the size: IoU 1/1.5^2 = 0.44


def test_a_turned_body_is_put_back_by_the_true_root_rotation(body_model, person):
    true, K = person
    turn = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90 deg about the camera's y
    pred = copy.deepcopy(true)
    pred.orientation = turn @ true.orientation
    pred.joints_3d = true.position + (true.joints_3d - true.position) @ turn.T
    ious = _ious(body_model, pred, true, K)
    assert ious["true root rotation"] == pytest.approx(1.0, abs=1e-4)
    assert ious["true depth"] < 0.9  # the turned body seen edge-on: another box
    assert ious["true pose (every bone)"] == pytest.approx(1.0, abs=1e-3)  # the pose holds the root


@pytest.mark.parametrize("seed, message", [("1000", "below 1000"), ("-1", ">= 0")])
def test_image_seeds_of_training_data_are_refused_before_the_model_loads(seed, message, capsys):
    with pytest.raises(SystemExit) as stop:
        wb.main(["--image-seed", seed, "--weights", "no/such/weights.safetensors"])
    assert stop.value.code == 2 and message in capsys.readouterr().err
