"""A rolled camera seen level (inference/level.py): the roll read from the floor or gravity, pixels
and points turned together, outputs turned back consistent with the real body model, and the
detector's use of it when a floor or gravity alone (a fixed frame's, a mount's angles) is given."""

import copy
import math

import numpy as np
import pytest
import torch

from mhr2_ros.cli.demo_scene import CAMERA_HEIGHT, render_demo_scene
from mhr2_ros.config import override
from mhr2_ros.errors import InputError
from mhr2_ros.geometry import gravity_from_pose, homogeneous, project
from mhr2_ros.inference.floor_contact import floor_plane_from_mount, floor_plane_in_camera, gravity_from_mount
from mhr2_ros.inference.level import Leveller, floor_roll, roll_matrix
from mhr2_ros.ros.tf import fixed_frame_gravity
from mhr2_ros.inference.postprocess import clipped_box


@pytest.mark.parametrize("roll_deg", [-35.0, -5.0, 0.0, 12.0, 60.0])
def test_the_roll_of_a_mount_is_read_from_its_floor(roll_deg):
    rolled = floor_plane_from_mount(1.3, pitch_deg=20.0, roll_deg=roll_deg)
    level = floor_plane_from_mount(1.3, pitch_deg=20.0)
    assert math.degrees(floor_roll(rolled)) == pytest.approx(roll_deg, abs=1e-9)
    lev = Leveller(floor_roll(rolled), None, (120, 160))
    np.testing.assert_allclose(lev.floor(rolled), level, atol=1e-12)  # the level camera's floor, height kept
    assert floor_roll(floor_plane_from_mount(1.3, pitch_deg=85.0, roll_deg=30.0)) is None  # looking down
    small = floor_plane_from_mount(1.3, roll_deg=3.0)
    assert Leveller.from_gravity(small, None, (120, 160), min_deg=4.0) is None  # within the training's roll
    assert Leveller.from_gravity(small, None, (120, 160), min_deg=2.0).angle == pytest.approx(math.radians(3.0))
    assert Leveller.from_gravity(5.0 * small[:3], None, (120, 160), 2.0).angle == pytest.approx(math.radians(3.0))


def test_pixels_and_points_turn_together(rng):
    K = np.array([[300.0, 0.0, 170.0], [0.0, 310.0, 115.0], [0.0, 0.0, 1.0]])  # fx != fy, off-centre
    lev = Leveller(math.radians(25.0), K, (240, 320))
    points = rng.uniform([-2, -1, 3], [2, 1, 8], (50, 3))
    uv = project(points, K)
    mapped = np.concatenate([uv, np.ones((50, 1))], 1) @ lev.H.T
    np.testing.assert_allclose(mapped[:, :2] / mapped[:, 2:], project(points @ lev.R.T, K), atol=1e-9)
    image = np.full((240, 320, 3), 40, np.uint8)
    u, v = np.round(uv[0]).astype(int)
    image[v - 2:v + 3, u - 2:u + 3] = 255  # a bright square where the first point projects
    level = lev.image(image)
    ys, xs = np.nonzero(level[..., 0] > 128)
    np.testing.assert_allclose([xs.mean(), ys.mean()], project(points[:1] @ lev.R.T, K)[0], atol=1.0)
    assert level.shape == image.shape and level[0, 0, 0] == level[-1, -1, 0] == 40  # corners: the border repeated
    depth = np.full((120, 160), 2.5, np.float32)  # half the resolution: K scaled with it
    turned = lev.depth(depth)
    assert turned.shape == (120, 160) and set(np.unique(turned)) == {0.0, 2.5}  # 0: no measurement, not repeated
    assert turned[60, 80] == 2.5 and turned[0, 0] == 0.0


def test_outputs_turned_back_agree_with_the_body_model(body_model):
    """A level camera's detections turned into a camera rolled by 30 degrees: 3D turned by R^T, 2D
    still the projections of 3D, boxes the projected meshes', and the root of pose_6d turned so
    that the body model poses the same mesh."""
    _, truth = render_demo_scene(body_model, width=160, height=120)
    lev = Leveller(math.radians(30.0), truth.K, (120, 160))
    before = copy.deepcopy(truth)
    lev.to_camera(truth, keep_vertices=True)
    for old, new in zip(before.humans, truth.humans):
        np.testing.assert_allclose(new.position, lev.R.T @ old.position, atol=1e-5)
        np.testing.assert_allclose(new.keypoints_2d, project(new.joints_3d, truth.K), atol=1e-3)
        np.testing.assert_allclose(new.pelvis_2d, project(new.position, truth.K), atol=1e-3)
        np.testing.assert_allclose(new.box, clipped_box(project(new.vertices, truth.K), (120, 160)), atol=1e-4)
        with torch.no_grad():
            posed = body_model(torch.as_tensor(new.pose_6d[None]), torch.as_tensor(new.shape[None]))
        np.testing.assert_allclose(posed.vertices[0].numpy() + new.position, new.vertices, atol=2e-4)
        np.testing.assert_allclose(posed.orientation[0].numpy(), new.orientation, atol=1e-5)
        np.testing.assert_allclose(posed.part_rotations[0].numpy(), new.part_rotations, atol=1e-5)
        assert new.depth == old.depth  # z: unchanged by a turn about z
    lev.to_camera(before, keep_vertices=False)
    assert all(h.vertices is None for h in before.humans)


def test_the_detector_levels_a_rolled_camera_given_its_floor(tiny_detector, body_model):
    """With a floor rolled by 20 degrees, the detector's result is the level view's, turned back;
    below the threshold, or with levelling off, the image goes in as it is."""
    image, truth = render_demo_scene(body_model, width=160, height=120)
    floor = np.array([math.sin(math.radians(20.0)), math.cos(math.radians(20.0)), 0.0, CAMERA_HEIGHT])
    detector = copy.copy(tiny_detector)
    detector.cfg = override(tiny_detector.cfg, score_threshold=0.0, max_humans=2, return_vertices=False)
    got = detector(image, K=truth.K, floor=floor)
    lev = Leveller.from_gravity(floor, truth.K, (120, 160), detector.cfg.level_roll_deg)
    plain = copy.copy(detector)
    plain.cfg = override(detector.cfg, level_roll_deg=-1.0, return_vertices=True)
    want = lev.to_camera(plain(lev.image(image), K=truth.K, floor=lev.floor(floor)), keep_vertices=False)
    assert len(got.humans) == len(want.humans) == 2
    for a, b in zip(got.humans, want.humans):
        np.testing.assert_allclose(a.position, b.position, atol=1e-5)
        np.testing.assert_allclose(a.box, b.box, atol=1e-3)
        assert a.vertices is None and a.depth_source == b.depth_source
    unlevelled = plain(image, K=truth.K, floor=floor)
    assert not np.allclose(unlevelled.humans[0].position, got.humans[0].position, atol=1e-3)


def test_a_depth_image_is_levelled_with_the_image(tiny_detector, body_model):
    """RGB-D with a rolled floor: the depth image goes through the levelling with the colour image
    (at another resolution) and the people it measures keep its depth (a wall 3 m away: z near 3,
    which a turn about z leaves as it is; the turn itself: test_pixels_and_points_turn_together)."""
    image, truth = render_demo_scene(body_model, width=160, height=120)
    floor = np.array([math.sin(math.radians(25.0)), math.cos(math.radians(25.0)), 0.0, CAMERA_HEIGHT])
    detector = copy.copy(tiny_detector)
    detector.cfg = override(tiny_detector.cfg, score_threshold=0.0, max_humans=2)
    got = detector(image, K=truth.K, depth=np.full((60, 80), 3.0, np.float32), floor=floor)
    measured = [h for h in got.humans if h.depth_source == "depth image"]
    assert measured and all(2.7 < h.position[2] < 3.6 for h in measured)


def test_gravity_alone_levels_like_a_floor_without_placing_anyone(tiny_detector, body_model):
    """detector(image, gravity=down): the level view's result turned back, as with a floor of that
    gravity, but everyone keeps the network's depth; a floor given too wins; bad vectors are named."""
    image, truth = render_demo_scene(body_model, width=160, height=120)
    down = gravity_from_mount(pitch_deg=10.0, roll_deg=-20.0)
    detector = copy.copy(tiny_detector)
    detector.cfg = override(tiny_detector.cfg, score_threshold=0.0, max_humans=2, return_vertices=False)
    got = detector(image, K=truth.K, gravity=3.0 * down)  # any length
    lev = Leveller.from_gravity(down, truth.K, (120, 160), detector.cfg.level_roll_deg)
    assert math.degrees(lev.angle) == pytest.approx(-20.0)
    plain = copy.copy(detector)
    plain.cfg = override(detector.cfg, level_roll_deg=-1.0, return_vertices=True)
    want = lev.to_camera(plain(lev.image(image), K=truth.K), keep_vertices=False)
    for a, b in zip(got.humans, want.humans):
        np.testing.assert_allclose(a.position, b.position, atol=1e-5)
        assert a.depth_source == "network"
    assert got.level_roll_deg == pytest.approx(-20.0) and want.level_roll_deg is None  # what was turned, said
    assert not np.allclose(plain(image, K=truth.K).humans[0].position, got.humans[0].position, atol=1e-3)
    floor = floor_plane_from_mount(CAMERA_HEIGHT, roll_deg=30.0)
    with_floor = detector(image, K=truth.K, floor=floor, gravity=down)
    floor_only = detector(image, K=truth.K, floor=floor)
    np.testing.assert_allclose(with_floor.humans[0].position, floor_only.humans[0].position)
    for bad in ([0.0, 0.0, 0.0], [1.0, float("nan"), 0.0], [0.0, 1.0]):
        with pytest.raises(InputError, match="gravity must be 3 finite numbers"):
            detector(image, gravity=bad)


def test_gravity_of_a_fixed_frame_pose_is_its_floors_normal():
    """gravity_from_pose (a camera's pose in a z-up frame) against floor_plane_in_camera (the same
    frame's floor seen from the camera), and a rolled mount seen through a z-up world."""
    rng = np.random.default_rng(2)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    rotation = q * np.sign(np.diag(r))
    rotation *= np.linalg.det(rotation)  # a proper rotation
    pose = homogeneous(rotation, [0.3, -1.0, 1.4])  # fixed <- camera
    inverse = np.linalg.inv(pose)  # camera <- fixed: p_camera = R p_fixed + t
    np.testing.assert_allclose(gravity_from_pose(pose), floor_plane_in_camera(inverse[:3, :3], inverse[:3, 3])[:3],
                               atol=1e-12)  # fmt: skip
    level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical axes in a z-up world, facing +x
    rolled = homogeneous(level @ roll_matrix(math.radians(15.0)), np.zeros(3))  # its axes turned about z
    np.testing.assert_allclose(gravity_from_pose(rolled), gravity_from_mount(roll_deg=15.0), atol=1e-12)
    static = fixed_frame_gravity(np.eye(4), "cam_optical", "cam_optical")  # a static camera: its own frame
    assert static is None and fixed_frame_gravity(None, "odom", "cam") is None
    np.testing.assert_allclose(fixed_frame_gravity(rolled, "odom", "cam"), gravity_from_pose(rolled))
