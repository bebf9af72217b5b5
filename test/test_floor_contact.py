"""Floor contact (inference/floor_contact.py): people scaled so their lowest point is on a known floor.

The real Anny body is put on the floor of cameras at known heights and tilts (the synthetic
generator's own camera convention), then placed too near or too far; the scale that puts it back
is known exactly. Then the limits (a ray near the horizon, a floor too far from the network's
depth), the plane checks, and the Detector and `mhr2 eval --floor` around it.
"""

import math

import numpy as np
import pytest
import torch

from mhr2_ros.config import InferenceConfig

ANGLE_SIGMA = InferenceConfig().floor_angle_sigma  # radians, the default
from mhr2_ros.errors import InputError
from mhr2_ros.evaluation.benchmark import fill_bodies
from mhr2_ros.evaluation.benchmark_spec import SyntheticBenchmark
from mhr2_ros.evaluation.runner import Sequence, evaluate, synthetic_sequences
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.floor_contact import (
    MAX_RATIO, MIN_ANGLE_DEG, NETWORK_SIGMA, check_floor_plane, floor_plane_from_mount, floor_plane_in_camera,
    floor_scales,
)
from mhr2_ros.training.synthetic.camera import level_to_camera
from mhr2_ros.training.synthetic.truth import to_frame_result

HW = (120, 160)
K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def standing(body_model):
    """(V, 3) vertices of a standing Anny body in a level frame (y down), its soles at y = 0."""
    with torch.no_grad():
        rest = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).repeat(1, body_model.num_bones, 1)
        v = body_model(rest, torch.full((1, 6), 0.5)).vertices[0].numpy().astype(np.float64)
    return v - [0.0, v[:, 1].max(), 0.0]


def on_floor(body_level: np.ndarray, height: float, pitch_deg: float, roll_deg: float, x: float, z: float):
    """The body standing at level-frame (x, z) on the floor of a camera `height` above it, in
    that camera's optical frame (x_camera = R x_level, the generator's convention)."""
    R = level_to_camera(math.radians(pitch_deg), math.radians(roll_deg))
    return (body_level + [x, height, z]) @ R.T


def test_the_mount_gives_the_generators_floor_plane():
    for pitch, roll in ((0.0, 0.0), (20.0, 3.0), (-10.0, -4.0), (45.0, 0.0)):
        R = level_to_camera(math.radians(pitch), math.radians(roll))
        np.testing.assert_allclose(floor_plane_from_mount(1.7, pitch, roll), [*(R @ [0.0, 1.0, 0.0]), 1.7], atol=1e-12)


def test_a_tf_transform_gives_the_same_plane_as_the_mount():
    """A camera 1.3 m above base_footprint, pitched down 20 degrees, rolled 3: the transform
    base_footprint -> optical frame (what tf2 looks up) gives the mount's plane."""
    R_level = level_to_camera(math.radians(20.0), math.radians(3.0))  # level (x right, y down, z fwd) -> optical
    floor_to_level = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # REP-103 x fwd, z up
    camera_at = np.array([0.4, -0.2, 1.3])  # the camera's optical centre in base_footprint
    R = R_level @ floor_to_level
    plane = floor_plane_in_camera(R, -R @ camera_at)
    np.testing.assert_allclose(plane, floor_plane_from_mount(1.3, 20.0, 3.0), atol=1e-12)
    with pytest.raises(InputError, match="d must be"):  # a camera 0.5 m below the floor
        floor_plane_in_camera(R, -R @ [0.0, 0.0, -0.5])


@pytest.mark.parametrize("height,pitch,roll,x,z", [(1.2, 0.0, 0.0, 0.0, 4.0), (2.5, 25.0, 3.0, -1.0, 6.0),
                                                   (0.6, -8.0, -2.0, 1.5, 3.0)])
def test_a_body_too_near_or_too_far_is_put_back_on_the_floor(standing, height, pitch, roll, x, z):
    person = on_floor(standing, height, pitch, roll, x, z)
    plane = check_floor_plane(floor_plane_from_mount(height, pitch, roll))
    found = floor_scales(np.stack([person * 0.8, person * 1.25, person]), plane, angle_sigma=0.0)  # the floor alone
    np.testing.assert_allclose(found.scale, [1 / 0.8, 1 / 1.25, 1.0], rtol=1e-9)
    assert found.measured.all() and np.all(found.weight == 1.0)
    sole = person[np.argmax(person @ plane[:3])]
    assert found.angle[2] == pytest.approx(math.asin(height / np.linalg.norm(sole)), rel=1e-9)  # the sole: on the floor


def test_the_floor_and_the_network_are_weighed_by_their_variances(standing):
    """A level camera 1.2 m up, a person 4 m ahead placed 0.8x as far: the scale is (1 / 0.8) ** w,
    w = NETWORK_SIGMA^2 / (NETWORK_SIGMA^2 + (ANGLE_SIGMA / tan a)^2), a the sole's angle below the
    horizon (the same before and after scaling about the camera); farther, the floor weighs less."""
    weights = []
    for z in (4.0, 12.0):
        person = on_floor(standing, 1.2, 0.0, 0.0, 0.0, z)
        sole = person[np.argmax(person[:, 1])]
        tan_a = sole[1] / math.hypot(sole[0], sole[2])
        w = NETWORK_SIGMA**2 / (NETWORK_SIGMA**2 + (ANGLE_SIGMA / tan_a) ** 2)
        found = floor_scales(person[None] * 0.8, floor_plane_from_mount(1.2), ANGLE_SIGMA)
        assert found.weight[0] == pytest.approx(w, rel=1e-9) and found.scale[0] == pytest.approx(1.25**w, rel=1e-9)
        weights.append(w)
    assert 0.8 < weights[0] < 0.9 and 0.3 < weights[1] < 0.5  # 17 and 5.7 degrees below the horizon


def test_a_ray_near_the_horizon_keeps_the_network_depth(standing):
    """A camera at ankle height sees the soles of a person 8 m away 0.2 degrees below the
    horizon: a pixel's error there is a third of the distance; the network's depth stays."""
    person = on_floor(standing, 0.03, 0.0, 0.0, 0.0, 8.0)
    found = floor_scales(person[None] * 1.1, floor_plane_from_mount(0.03), ANGLE_SIGMA)
    assert not found.measured[0] and found.scale[0] == 1.0
    assert 0 < found.angle[0] < math.radians(MIN_ANGLE_DEG)


def test_a_floor_too_far_from_the_network_depth_is_not_the_persons(standing):
    """A person on a 1.2 m stage seen from 1.6 m: the floor would push them 4 times farther."""
    person = on_floor(standing - [0.0, 1.2, 0.0], 1.6, 10.0, 0.0, 0.0, 5.0)
    found = floor_scales(person[None], floor_plane_from_mount(1.6, 10.0), ANGLE_SIGMA)
    assert found.scale[0] == 1.0 and not found.measured[0]
    barely = on_floor(standing, 1.6, 10.0, 0.0, 0.0, 5.0) / (0.99 * MAX_RATIO)  # the floor: 0.99 x MAX_RATIO
    assert floor_scales(barely[None], floor_plane_from_mount(1.6, 10.0), 0.0).measured[0]


def test_a_person_lying_down_touches_the_floor_with_their_lowest_point(standing):
    """Lying on the floor (the standing body turned 90 degrees): the lowest vertex is not a sole."""
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # about the level z axis
    lying = standing @ turn.T
    person = on_floor(lying - [0.0, lying[:, 1].max(), 0.0], 1.4, 15.0, 0.0, 0.5, 3.5)
    found = floor_scales(person[None] * 0.7, floor_plane_from_mount(1.4, 15.0), angle_sigma=0.0)
    assert found.scale[0] == pytest.approx(1 / 0.7, rel=1e-9)


@pytest.mark.parametrize("plane,words", [
    ((0.0, 1.0, 0.0), "4 finite numbers"), ((0.0, 0.0, 0.0, 1.0), "non-zero"),
    ((0.0, 1.0, 0.0, float("nan")), "finite"), ((0.0, 1.0, 0.0, -1.5), "d must be"),
])  # fmt: skip
def test_bad_floor_planes_are_named(plane, words):
    with pytest.raises(InputError, match=words):
        check_floor_plane(plane)


def test_a_plane_is_normalised():
    np.testing.assert_allclose(check_floor_plane((0.0, 2.0, 0.0, 3.0)), [0.0, 1.0, 0.0, 1.5])


@pytest.mark.parametrize("args,words", [((0.0,), "height"), ((1.0, 95.0), "pitch"), ((1.0, 0.0, float("inf")), "roll")])
def test_bad_mounts_are_named(args, words):
    with pytest.raises(InputError, match=words):
        floor_plane_from_mount(*args)


def test_detector_puts_people_on_the_floor(tiny_detector, rng):
    """Pixels stay, positions and meshes scale, the lowest vertex lands on the floor, the source
    is named; a depth image's measurement wins over the floor."""
    det = Detector(tiny_detector.model, tiny_detector.model_cfg,
                   InferenceConfig(score_threshold=0.0, max_humans=3, merge_radius=0.0, device="cpu"))  # fmt: skip
    image = rng.integers(0, 255, (*HW, 3), dtype=np.uint8)
    plain = det(image, K=K)
    plane = floor_plane_from_mount(1.0, 30.0)  # steep: every lowest point well below the horizon
    plane[3] = 1.2 * np.max(plain.humans[0].vertices.astype(np.float64) @ plane[:3])  # the first one 1.2x too near
    placed = det(image, K=K, floor=plane)
    expected = floor_scales(np.stack([h.vertices for h in plain.humans]).astype(np.float64), plane, ANGLE_SIGMA)
    assert placed.humans[0].depth_source == "floor" and 1.0 < expected.scale[0] < 1.2
    assert "floor" in placed.timings and len(placed) == len(plain) == 3
    for a, b in zip(plain.humans, placed.humans):
        assert a.depth_source == "network"
        if b.depth_source == "network":  # the floor would move this random body too far
            assert b.depth == a.depth
            continue
        assert b.depth_source == "floor"
        s = expected.scale[placed.humans.index(b)]
        np.testing.assert_allclose(b.position, s * a.position, rtol=1e-4)
        np.testing.assert_allclose(b.vertices, s * a.vertices, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b.keypoints_2d, a.keypoints_2d, atol=1e-2)
        np.testing.assert_array_equal(b.part_rotations, a.part_rotations)  # scaled, not turned
    both = det(image, K=K, depth=np.full(HW, 5.0, np.float32), floor=plane)
    assert {h.depth_source for h in both.humans} == {"depth image"}


@pytest.fixture(scope="module")
def tuning_images(body_model):
    """12 benchmark-protocol images of the tuning seed, rendered once: Sequences of frames in memory."""
    spec = SyntheticBenchmark(images=12, clips=0, image_seed=500)
    return [Sequence(s.name, list(s.frames), s.length, s.tracked) for s in synthetic_sequences(spec, body_model)]


def test_every_synthetic_person_stands_on_the_generators_floor(body_model, tuning_images):
    """The true bodies of benchmark-protocol images (walking, standing, gesturing, seated on stools
    and on the ground), placed 0.75x or 1.3x as far: the floor puts each one back exactly. Holds
    the generator's floor plane and the lowest-point rule to each other."""
    people = 0
    for seq in tuning_images:
        for frame in seq.frames:
            truth = fill_bodies(to_frame_result(frame.truth), body_model)
            if not truth.humans:  # an empty scene
                continue
            verts = np.stack([h.vertices for h in truth.humans]).astype(np.float64)
            factors = np.where(np.arange(len(verts)) % 2 == 0, 0.75, 1.3)
            found = floor_scales(verts * factors[:, None, None], check_floor_plane(frame.truth.floor_plane), 0.0)
            np.testing.assert_allclose(found.scale, 1 / factors, rtol=1e-5)
            people += len(verts)
    assert people >= 20


def test_eval_on_the_floor_places_most_people_better(tuning_images):
    """Shipped weights, benchmark-protocol images of a tuning seed, the true K and the true floor:
    detection and pose unchanged, the median person's position error down (0.60 to 0.49 m on
    these 21 people, a small sample; the whole tuning set: README, The floor)."""
    det = Detector.from_checkpoint(device="cpu")
    rgb = evaluate(det, tuning_images, gt_intrinsics=True)
    floor = evaluate(det, tuning_images, gt_intrinsics=True, floor=lambda plane: plane)
    assert floor.overall["f1"] == rgb.overall["f1"]
    assert floor.overall["pa_mpjpe"] == pytest.approx(rgb.overall["pa_mpjpe"], rel=1e-3)
    before, after = (np.median([p.mrpe for p in r.people]) for r in (rgb, floor))
    assert after < 0.9 * before, (after, before)


def test_a_mount_error_is_the_plane_of_the_believed_mount():
    """`mhr2 eval --floor-pitch-error 1 --floor-height-error 0.05`: the plane of a camera believed
    1 degree further down and 5 cm higher than the one that took the image."""
    from mhr2_ros.cli.floor_options import MountError

    believed = MountError(0.05, math.radians(1.0))(floor_plane_from_mount(1.4, 12.0))
    np.testing.assert_allclose(believed, floor_plane_from_mount(1.45, 13.0), atol=1e-12)
    assert MountError(0.0, 0.0).describe() == "the true floor"
