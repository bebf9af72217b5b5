"""Depth fusion (inference/depth_fusion.py): people scaled to a registered depth image.

Depth images are splatted from the real Anny mesh (a z-buffer of its vertices), so the scale
a mesh placed too near must take is known exactly; then occluders, holes, background, another
resolution, millimetre images, and the Detector and `mhr2 eval --depth` around it.
"""

import numpy as np
import pytest
import torch

from mhr2_ros.config import InferenceConfig
from mhr2_ros.errors import InputError
from mhr2_ros.evaluation.benchmark_spec import SyntheticBenchmark
from mhr2_ros.evaluation.depth_sensor import DepthSensor, DepthSensorConfig
from mhr2_ros.evaluation.runner import evaluate, synthetic_sequences
from mhr2_ros.inference.depth_fusion import (
    MAX_RATIO, MIN_PIXELS, check_depth_image, depth_scales, facing_camera, robust_scale,
)
from mhr2_ros.inference.detector import Detector
from mhr2_ros.training.synthetic.generator import SyntheticClip

HW = (120, 160)  # colour image (H, W)
K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])
TRUE_Z = 4.0  # meters to the pelvis


@pytest.fixture(scope="module")
def person(body_model):
    """(V, 3) camera-frame vertices of a standing Anny body, pelvis TRUE_Z ahead."""
    with torch.no_grad():
        rest = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(1, body_model.num_bones, 1)
        out = body_model(rest, torch.full((1, 6), 0.5))
    return out.vertices[0].numpy().astype(np.float64) + [0.0, 0.0, TRUE_Z]


def splat(points: np.ndarray, hw=HW, background=0.0) -> np.ndarray:
    """Depth image (hw, registered to the HW colour image) of points: a z-buffer of their pixels,
    what a depth camera would see of them."""
    image = np.full(hw, np.inf)
    u = K[0, 0] * points[:, 0] / points[:, 2] + K[0, 2]  # colour pixels
    v = K[1, 1] * points[:, 1] / points[:, 2] + K[1, 2]
    col, row = np.floor(u * hw[1] / HW[1]).astype(int), np.floor(v * hw[0] / HW[0]).astype(int)
    ok = (col >= 0) & (col < hw[1]) & (row >= 0) & (row < hw[0])
    np.minimum.at(image, (row[ok], col[ok]), points[ok, 2])
    return np.where(np.isfinite(image), image, background).astype(np.float32)


def test_a_person_placed_too_near_gets_the_measured_scale(person):
    depth = splat(person)
    found = depth_scales(np.stack([person * 0.8, person * 1.3, person]), K, depth, HW)
    np.testing.assert_allclose(found.scale, [1 / 0.8, 1 / 1.3, 1.0], rtol=1e-6)
    assert found.measured.all() and (found.pixels >= MIN_PIXELS).all()


def test_occluders_holes_and_background_miss_the_peak(person):
    depth = splat(person, background=12.0)  # a wall behind: between the legs the ratio is about 3
    rows = np.flatnonzero((depth > 0).any(axis=1) & (depth < 12).any(axis=1))
    depth[rows[: len(rows) // 5]] = 1.0  # something 3 m in front of the top fifth of the person (ratio 0.3: out)
    arms = rows[len(rows) // 5: len(rows) * 2 // 5]
    depth[arms] *= 0.85  # a closer surface within the ratio limits (0.85 / 0.8): off the peak
    depth[rows[-3:]] = np.nan  # no measurement at the feet
    found = depth_scales((person * 0.8)[None], K, depth, HW)
    assert found.scale[0] == pytest.approx(1 / 0.8, rel=1e-6)
    depth[rows] = 1.0  # the whole person hidden: no scale, the network's depth stays
    hidden = depth_scales((person * 0.8)[None], K, depth, HW)
    assert hidden.scale[0] == 1.0 and not hidden.measured[0] and hidden.pixels[0] == 0


def test_the_scale_is_the_densest_ratio_not_the_median():
    """Worked by hand: 30 ratios agree on 1.25; 40 spread evenly over 1.3-1.9 (flying pixels)
    hold the median at 1.36; the peak stays on the 30."""
    agree, spread = np.full(30, 1.25), np.linspace(1.3, 1.9, 40)
    ratios = np.concatenate([agree, spread])
    assert np.median(ratios) > 1.35
    assert robust_scale(ratios) == pytest.approx(1.25, rel=1e-12)
    jitter = 1.25 * np.exp(np.random.default_rng(0).normal(0.0, 0.01, 30))  # a 1% sensor noise
    assert robust_scale(np.concatenate([jitter, spread])) == pytest.approx(1.25, rel=0.01)
    two = np.concatenate([np.full(20, 0.8), np.full(21, 1.1)])  # two surfaces: the larger one
    assert robust_scale(two) == pytest.approx(1.1) and robust_scale(two[::-1]) == pytest.approx(1.1)
    assert robust_scale(np.array([1.0 / MAX_RATIO] * 3 + [MAX_RATIO] * 4)) == pytest.approx(MAX_RATIO)


def test_flying_pixels_at_the_silhouette_do_not_push_the_person_away(person, monkeypatch):
    """The real body 4 m ahead of a wall at 8 m, seen by a sensor with flying pixels 2 px either
    side of every edge (evaluation/depth_sensor.py): most of a 15-px-wide person is silhouette."""
    from mhr2_ros.inference import depth_fusion

    depth = DepthSensor(DepthSensorConfig(edge_width=2), seed=0)(splat(person, background=8.0))
    found = depth_scales((person * 0.8)[None], K, depth, HW)
    assert found.scale[0] == pytest.approx(1 / 0.8, rel=0.01)
    monkeypatch.setattr(depth_fusion, "robust_scale", lambda r: float(np.median(r)))  # the premise
    assert depth_scales((person * 0.8)[None], K, depth, HW).scale[0] > 1.05 / 0.8


def test_a_fattened_near_surface_over_the_person_misses_the_peak(person):
    """A surface 1.5 m nearer than the person hugging their right side in every row, seen by a
    stereo sensor that fattens near surfaces by 3 px (evaluation/depth_sensor.py): its depth
    covers the 3 rightmost pixels of the person's every row."""
    truth = splat(person, background=8.0)
    body = truth < 8.0
    for row in np.flatnonzero(body.any(axis=1)):
        right = np.flatnonzero(body[row])[-1]
        truth[row, right + 1: right + 5] = TRUE_Z - 1.5
    depth = DepthSensor(DepthSensorConfig(fattening=3), seed=0)(truth)
    covered = body & (depth == TRUE_Z - 1.5)
    assert covered.sum() > 0.15 * body.sum()  # the premise: a sixth of the person takes its depth
    found = depth_scales((person * 0.8)[None], K, depth, HW)
    assert found.scale[0] == pytest.approx(1 / 0.8, rel=0.01)


def test_ratios_beyond_the_limit_are_not_the_person(person):
    depth = splat(person)
    far = depth_scales((person / (MAX_RATIO * 1.05))[None], K, depth, HW)  # the mesh 2.1x too near
    assert not far.measured[0] and far.scale[0] == 1.0
    near = depth_scales((person / (MAX_RATIO * 0.95))[None], K, depth, HW)
    assert near.measured[0] and near.scale[0] == pytest.approx(MAX_RATIO * 0.95, rel=1e-6)


def test_too_few_pixels_keep_the_network_depth(person):
    depth = splat(person)
    keep = np.zeros_like(depth)
    ys, xs = np.nonzero(depth)
    keep[ys[: MIN_PIXELS - 1], xs[: MIN_PIXELS - 1]] = depth[ys[: MIN_PIXELS - 1], xs[: MIN_PIXELS - 1]]
    found = depth_scales((person * 0.8)[None], K, keep, HW)
    assert not found.measured[0] and found.pixels[0] == MIN_PIXELS - 1 and found.scale[0] == 1.0
    assert depth_scales(np.zeros((0, 10, 3)), K, depth, HW).scale.shape == (0,)


def test_other_resolution_and_millimetres(person):
    half = splat(person, hw=(60, 80))
    found = depth_scales((person * 0.8)[None], K, check_depth_image(half, HW), HW)
    assert found.scale[0] == pytest.approx(1 / 0.8, rel=1e-6)
    mm = np.round(splat(person) * 1000).astype(np.uint16)
    meters = check_depth_image(mm, HW)
    np.testing.assert_array_equal(check_depth_image(mm.astype(">u2"), HW), meters)  # either byte order
    assert meters.dtype == np.float32 and meters.max() == pytest.approx(mm.max() / 1000.0)
    assert depth_scales((person * 0.8)[None], K, meters, HW).scale[0] == pytest.approx(1 / 0.8, rel=2e-3)


def test_near_people_are_not_pulled_in_by_their_back(body_model, monkeypatch):
    """A person 1-1.2 m away covers more depth pixels than the mesh has vertices: in pixels no front
    vertex reaches, a back vertex would be the mesh's nearest and pull the scale below 1 (as it
    did a median's; the density peak resists it better). Rendered true bodies with their
    rendered depth must keep scale 1 with the faces given."""
    from mhr2_ros.inference import depth_fusion

    spec = SyntheticBenchmark(images=4, clips=0, people=(1, 1), distance_m=(1.0, 1.2), size=(640, 480))
    faces = body_model.faces.cpu().numpy()
    frames = [(f.truth.vertices[:1].astype(np.float64), f.truth.K.astype(np.float64), f.depth)
              for f in SyntheticClip(spec.synth_config(independent=True), 0, body_model)]  # fmt: skip
    facing = [depth_scales(verts, K, depth, (480, 640), faces).scale[0] for verts, K, depth in frames]
    assert max(abs(s - 1.0) for s in facing) < 0.005, facing
    monkeypatch.setattr(depth_fusion, "robust_scale", lambda r: float(np.median(r)))
    every = [depth_scales(verts, K, depth, (480, 640)).scale[0] for verts, K, depth in frames]
    assert min(every) < 0.99  # what the back vertices did to a median (the test's premise)
    verts = frames[-1][0]
    front = facing_camera(verts[0], faces)
    assert 0.3 < front.mean() < 0.7 and np.all(facing_camera(verts[0], faces[:, ::-1]) == front)  # either winding


@pytest.mark.parametrize("bad,words", [(np.zeros((4, 5, 1)), "2D"), (np.zeros((120, 160), np.int32), "dtype int32"),
                                       (np.zeros((120, 120), np.float32), "not registered to the 160x120")])
def test_bad_depth_images_are_named(bad, words):
    with pytest.raises(InputError, match=words):
        check_depth_image(bad, HW)


def test_detector_scales_people_about_the_camera(tiny_detector, rng):
    """Pixels stay (2D joints, box), positions, meshes and heights scale, the source is named."""
    det = Detector(tiny_detector.model, tiny_detector.model_cfg,
                   InferenceConfig(score_threshold=0.0, max_humans=3, merge_radius=0.0, device="cpu"))  # fmt: skip
    image = rng.integers(0, 255, (*HW, 3), dtype=np.uint8)
    plain = det(image, K=K)
    fused = det(image, K=K, depth=np.full(HW, 5.0, np.float32))  # a wall 5 m ahead
    assert "depth" in fused.timings and len(fused) == len(plain) == 3
    for a, b in zip(plain.humans, fused.humans):
        assert a.depth_source == "network" and b.depth_source == "depth image"
        s = b.depth / a.depth
        np.testing.assert_allclose(b.position, s * a.position, rtol=1e-4)
        np.testing.assert_allclose(b.vertices, s * a.vertices, rtol=1e-4, atol=1e-5)
        assert b.height == pytest.approx(s * a.height, rel=1e-5)
        np.testing.assert_allclose(b.keypoints_2d, a.keypoints_2d, atol=1e-2)
        np.testing.assert_allclose(b.box, a.box, atol=1e-2)
        # the fused mesh's front surface lies on the wall: measured again, nothing to change
        again = depth_scales(b.vertices[None].astype(np.float64), K, np.full(HW, 5.0, np.float32), HW, det.faces)
        assert again.scale[0] == pytest.approx(1.0, abs=1e-3)  # the peak is found on 0.33% bins


def test_eval_with_a_depth_camera_places_people_better(body_model):
    """Shipped weights, benchmark-protocol images of a tuning seed: the true K either way."""
    det = Detector.from_checkpoint(device="cpu")
    spec = SyntheticBenchmark(images=12, clips=0, image_seed=500)
    rgb = evaluate(det, synthetic_sequences(spec, det.body), gt_intrinsics=True).overall
    rgbd = evaluate(det, synthetic_sequences(spec, det.body), gt_intrinsics=True, depth_sensor=DepthSensor()).overall
    assert rgbd["f1"] == rgb["f1"] and rgbd["pa_mpjpe"] == pytest.approx(rgb["pa_mpjpe"], rel=1e-3)
    assert rgbd["mrpe"] < 0.6 * rgb["mrpe"], (rgbd["mrpe"], rgb["mrpe"])  # 0.39 vs 0.75 m on these 21 people
