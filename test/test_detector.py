import dataclasses
import math

import numpy as np
import pytest

from mhr2_ros.body import PELVIS
from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.errors import InputError
from mhr2_ros.geometry import project, unproject
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.postprocess import clipped_box


class TopK(Detector):
    """Selects the k best queries whatever their score, to exercise the body path."""

    k = 3

    def select(self, cam):
        return np.argsort(-cam.scores)[: self.k]


@pytest.fixture(scope="module")
def topk(tiny_detector):
    return TopK(tiny_detector.model, tiny_detector.model_cfg, tiny_detector.cfg)


@pytest.mark.parametrize("hw", [(240, 320), (320, 180)])
def test_humans_are_consistent_in_the_camera_frame(topk, hw, rng):
    image = rng.integers(0, 255, (*hw, 3), dtype=np.uint8)
    frame = topk(image)
    assert len(frame) == 3 and frame.K_source == "predicted" and frame.image_size == hw
    # predicted K: square pixels, principal point at the centre, fov matches focal
    K = frame.K
    # the network's K is mapped back through the letterbox: exact up to float32 rounding (a half-pixel
    # shift of the principal point, or a non-square scale, must show)
    assert K[0, 0] == pytest.approx(K[1, 1], rel=1e-5)
    np.testing.assert_allclose(K[:2, 2], [hw[1] / 2, hw[0] / 2], atol=1e-3)
    assert math.tan(frame.fov_y / 2) == pytest.approx(hw[0] / 2 / K[1, 1], rel=1e-4)
    for h in frame.humans:
        np.testing.assert_allclose(unproject(h.pelvis_2d, h.depth, K), h.position, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(h.joints_3d[PELVIS], h.position, atol=1e-4)
        np.testing.assert_allclose(project(h.joints_3d, K), h.keypoints_2d, rtol=1e-3, atol=1e-2)
        assert h.vertices.shape == (topk.body.num_vertices, 3) and h.track_feature.shape == (4096,)
        assert 0 <= h.box[0] <= h.box[2] <= hw[1] and 0 <= h.box[1] <= h.box[3] <= hw[0]
        assert np.allclose(h.orientation @ h.orientation.T, np.eye(3), atol=1e-4)
        assert h.part_rotations.shape == (len(PART_NAMES), 3, 3)  # REP-155 body parts: rotations
        assert np.allclose(h.part_rotations @ h.part_rotations.transpose(0, 2, 1), np.eye(3), atol=1e-4)
        assert np.allclose(np.linalg.det(h.part_rotations), 1.0, atol=1e-4)
        assert h.depth > 0 and h.height > 0.3
    scores = [h.score for h in frame.humans]
    assert scores == sorted(scores, reverse=True)
    assert set(frame.timings) >= {"preprocess", "encoder", "decoder", "heads", "body", "postprocess", "total"}


def test_given_intrinsics_are_used_and_scaled(topk, rng):
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 150], [0, 310.0, 130], [0, 0, 1]])
    frame = topk(image, K=K)
    assert frame.K_source == "given"
    np.testing.assert_allclose(frame.K, K, rtol=1e-6)
    pred = topk(image)
    # the same network outputs, a different camera: the pixel stays, the ray changes
    for a, b in zip(frame.humans, pred.humans):
        np.testing.assert_allclose(a.pelvis_2d, b.pelvis_2d, atol=1e-3)
        np.testing.assert_allclose(project(a.position, K), a.pelvis_2d, atol=1e-2)


def test_threshold_semantics_through_the_detector(tiny_detector, rng):
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    d = tiny_detector
    try:
        d.cfg = dataclasses.replace(d.cfg, score_threshold=1.0)
        assert len(d(image)) == 0  # nothing is above 1.0; an empty frame is fine
        d.cfg = dataclasses.replace(d.cfg, score_threshold=0.0, max_humans=4, return_vertices=False)
        frame = d(image)
        assert len(frame) == 4 and all(h.vertices is None for h in frame.humans)
    finally:
        d.cfg = dataclasses.replace(d.cfg, score_threshold=0.4, max_humans=100, return_vertices=True)


@pytest.mark.parametrize(
    "bad, words",
    [
        (np.zeros((50, 60), np.uint8), "grayscale"),
        (np.zeros((50, 60, 4), np.uint8), "RGBA"),
        (np.zeros((50, 60, 3), np.uint16), "uint16"),
        (np.zeros((0, 60, 3), np.uint8), "zero-size|empty"),
        ("image.png", "numpy"),
    ],
)
def test_bad_arrays_are_refused_with_clear_errors(tiny_detector, bad, words):
    with pytest.raises(InputError, match=f"(?i){words}") as err:
        tiny_detector(bad)
    assert "HxWx3 uint8" in str(err.value)


@pytest.mark.parametrize("K", [np.eye(2), np.array([[0, 0, 1], [0, 1, 1], [0, 0, 1.0]])])
def test_bad_intrinsics(tiny_detector, K):
    with pytest.raises(InputError, match="intrinsics"):
        tiny_detector(np.zeros((64, 64, 3), np.uint8), K=K)


def test_merge_radius_comes_from_the_checkpoint_unless_set(tiny_detector, rng):
    """The checkpoint JSON's "inference": {"merge_radius"} applies while the config leaves
    it None; a group's score is the sum of its members', so merging keeps the total score
    above MERGE_FLOOR (capped at 1 per group) and never adds people."""
    import copy

    import torch

    from mhr2_ros.config import ConfigError
    from mhr2_ros.inference.select import MERGE_FLOOR

    d = tiny_detector
    model = copy.deepcopy(d.model)
    with torch.no_grad():  # an untrained network scores ~0.01: lift every score to ~0.2
        model.query_heads.score.fc2.bias.fill_(math.log(0.2 / 0.8))
    merging = Detector(model, d.model_cfg, dataclasses.replace(d.cfg, score_threshold=0.0),
                       {"inference": {"merge_radius": 2.0}})  # fmt: skip
    assert merging.merge_radius == 2.0 and d.merge_radius == 0.0  # no setting: off
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    merged = merging(image)
    merging.cfg = dataclasses.replace(merging.cfg, merge_radius=0.0)  # the config wins: off
    plain = merging(image)
    assert 0 < len(merged) < len(plain)
    assert max(h.score for h in merged.humans) > max(h.score for h in plain.humans)
    voters = sum(h.score for h in plain.humans if h.score >= MERGE_FLOOR)
    assert sum(h.score for h in merged.humans if h.score >= MERGE_FLOOR) <= voters + 1e-6
    with pytest.raises(ConfigError, match="merge_radius"):
        Detector(d.model, d.model_cfg, d.cfg, {"inference": {"merge_radius": "wide"}})


def test_pad_rows_comes_from_the_checkpoint_unless_set(tiny_detector, rng):
    """The checkpoint JSON's "inference": {"pad_rows": false} runs a 2:1 image (wider than every
    training aspect) as it is, exactly as no padding does; the config's value wins; a value that is
    not a boolean is refused."""
    from mhr2_ros.config import ConfigError

    d = tiny_detector
    image = rng.integers(0, 255, (128, 256, 3), dtype=np.uint8)
    sides = Detector(d.model, d.model_cfg, d.cfg, {"inference": {"pad_rows": False}})
    unpadded = Detector(d.model, d.model_cfg, dataclasses.replace(d.cfg, pad_to_train_aspect=False))
    assert d.pad_rows and not sides.pad_rows  # no setting: the paper's padding
    assert (d.padding, sides.padding, unpadded.padding) == (
        "nearest training aspect", "nearest training aspect, sides only", "none")
    assert sides(image).fov_y == unpadded(image).fov_y != d(image).fov_y
    sides.cfg = dataclasses.replace(sides.cfg, pad_rows=True)  # the config wins
    assert sides.pad_rows and sides(image).fov_y == d(image).fov_y
    with pytest.raises(ConfigError, match="pad_rows"):
        Detector(d.model, d.model_cfg, d.cfg, {"inference": {"pad_rows": "no"}})


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own imports of torch.jit
def test_compile_wraps_the_stages_inference_runs(tiny_detector):
    """torch.compile of the module would cover only forward(), which __call__ never uses."""
    d = Detector(tiny_detector.model, tiny_detector.model_cfg, dataclasses.replace(tiny_detector.cfg, compile=True))
    for stage in ("encode", "decode", "predict_heads"):
        assert hasattr(getattr(d._network, stage), "_torchdynamo_orig_callable"), stage


def test_depth_is_focal_normalised_with_the_given_k_rescaled_to_the_input(topk, tiny_config, rng):
    """depth = fy_input / ref_focal * exp(-nearness), fy_input = fy * 224 / 320 (a 320 x 240 image
    at image_size 224). Kills: given K not rescaled with the image; depth ignoring the focal."""
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    K = np.array([[300.0, 0, 150], [0, 310.0, 130], [0, 0, 1]])
    K2 = K.copy()
    K2[0, 0], K2[1, 1] = 600.0, 620.0  # the same pixels seen through twice the focal
    ref = tiny_config.nearness_ref_focal
    a, b, pred = topk(image, K=K), topk(image, K=K2), topk(image)
    assert len(a) == 3
    for ha, hb, hp in zip(a.humans, b.humans, pred.humans):
        assert ha.depth == pytest.approx(310.0 * 0.7 / ref * math.exp(-ha.nearness), rel=1e-5)
        assert hb.nearness == pytest.approx(ha.nearness, abs=1e-6)
        assert hb.depth == pytest.approx(2.0 * ha.depth, rel=1e-5)
        assert hp.depth == pytest.approx(float(pred.K[1, 1]) * 0.7 / ref * math.exp(-hp.nearness), rel=1e-4)


def test_detector_applies_its_nms_distance(tiny_detector, rng):
    """Kills: Detector.select not passing cfg.nms_distance to select_queries."""
    image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    d = tiny_detector
    old = d.cfg
    try:
        d.cfg = dataclasses.replace(old, score_threshold=0.0, max_humans=5, nms_distance=0.0)
        assert len(d(image)) == 5
        d.cfg = dataclasses.replace(old, score_threshold=0.0, max_humans=5, nms_distance=1000.0)
        assert len(d(image)) == 1  # every pelvis within 1 km of the best one
    finally:
        d.cfg = old


def test_clipped_box_is_the_tight_box_of_the_points_clipped_to_the_image():
    points = np.array([[30.0, -5.0], [700.0, 40.0], [12.0, 300.0], [50.0, 90.0]])  # (N, 2) pixels
    assert clipped_box(points, (480, 640)).tolist() == [12.0, 0.0, 640.0, 300.0]  # x clipped at w, y at 0
    strided = np.asfortranarray(points[::-1])  # any memory layout of the same points
    assert clipped_box(strided, (480, 640)).tolist() == [12.0, 0.0, 640.0, 300.0]
