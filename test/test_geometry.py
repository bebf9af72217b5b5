import math

import numpy as np
import pytest
import torch

from mhr2_ros.geometry import (
    depth_from_nearness,
    focal_from_fov,
    fov_from_focal,
    intrinsics_from_fov,
    matrix_to_quaternion_xyzw,
    quaternion_xyzw_to_matrix,
    matrix_to_rotation_6d,
    nearness_from_depth,
    project,
    rotation_6d_to_matrix,
    scale_intrinsics,
    unproject,
)


def test_fov_focal_round_trip():
    for fov_deg in (30.0, 60.0, 100.0):
        f = focal_from_fov(math.radians(fov_deg), 480)
        assert fov_from_focal(f, 480) == pytest.approx(math.radians(fov_deg))
    # 90 degrees over 480 px: half the size over tan(45 deg) = 240 px.
    assert focal_from_fov(math.pi / 2, 480) == pytest.approx(240.0)


def test_intrinsics_from_fov_centre_and_square_pixels():
    K = intrinsics_from_fov(math.radians(60), 640, 480)
    assert K[0, 0] == K[1, 1] == pytest.approx(240 / math.tan(math.radians(30)))
    assert (K[0, 2], K[1, 2]) == (320, 240)


def test_projection_inverse_projection_round_trip(rng):
    K = np.array([[500.0, 0, 321.5], [0, 480.0, 239.0], [0, 0, 1]])
    points = rng.uniform([-3, -2, 0.5], [3, 2, 20], size=(50, 3))
    uv = project(points, K)
    back = unproject(uv, points[:, 2], K)
    np.testing.assert_allclose(back, points, rtol=1e-9, atol=1e-9)
    # torch path gives the same numbers
    uv_t = project(torch.from_numpy(points), K)
    np.testing.assert_allclose(uv_t.numpy(), uv, rtol=1e-9)


def test_scaled_intrinsics_project_consistently(rng):
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    points = rng.uniform([-1, -1, 2], [1, 1, 5], size=(10, 3))
    K2 = scale_intrinsics(K, 0.5, 0.25, dx=7.0, dy=3.0)
    uv, uv2 = project(points, K), project(points, K2)
    np.testing.assert_allclose(uv2, uv * [0.5, 0.25] + [7.0, 3.0], rtol=1e-5)


def test_nearness_depth_round_trip_and_focal_scaling():
    depth = np.array([0.5, 2.0, 17.0])
    n = nearness_from_depth(depth, focal=800.0, ref_focal=448.0)
    np.testing.assert_allclose(depth_from_nearness(n, 800.0, 448.0), depth)
    # Same nearness (same apparent size) with twice the focal means twice the depth.
    np.testing.assert_allclose(depth_from_nearness(n, 1600.0, 448.0), 2 * depth)


def test_rotation_6d_round_trip():
    R = torch.linalg.qr(torch.randn(8, 3, 3)).Q
    R = R * torch.linalg.det(R)[:, None, None]  # proper rotations
    np.testing.assert_allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(R)), R, atol=1e-5)
    identity = rotation_6d_to_matrix(torch.tensor([1.0, 0, 0, 0, 1, 0]))
    np.testing.assert_allclose(identity, torch.eye(3))


def test_quaternion_of_known_rotations():
    np.testing.assert_allclose(matrix_to_quaternion_xyzw(np.eye(3)), [0, 0, 0, 1])
    Rz90 = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    s = math.sqrt(0.5)
    np.testing.assert_allclose(matrix_to_quaternion_xyzw(Rz90), [0, 0, s, s], atol=1e-12)
    np.testing.assert_allclose(quaternion_xyzw_to_matrix([0.0, 0.0, 2.0, 2.0]), Rz90, atol=1e-12)  # normalised


def test_quaternion_near_half_turns_keeps_its_signs(rng):
    """Half turns about oblique axes plus 1e-7 noise: w is ~0, where sign tricks fail."""
    for axis in ([0.0, 1, 1], [1.0, 1, 1], [1.0, 2, 3]):
        a = np.array(axis) / np.linalg.norm(axis)
        R = 2 * np.outer(a, a) - np.eye(3) + 1e-7 * rng.normal(size=(3, 3))  # 180 degrees about a
        np.testing.assert_allclose(quaternion_xyzw_to_matrix(matrix_to_quaternion_xyzw(R)), R, atol=1e-6)


def test_projection_of_known_points_with_skew():
    """Hand values (skew s = 5). Kills: unproject dropping the K[0, 1] term (round trip with a
    zero-skew K cannot see it) and mirrored / swapped-axis conventions applied to both directions."""
    K = np.array([[500.0, 5.0, 320.0], [0.0, 480.0, 240.0], [0.0, 0.0, 1.0]])
    p = np.array([[1.0, 2.0, 4.0], [-0.5, 0.25, 2.0]])
    uv = np.array([[500 * 0.25 + 5 * 0.5 + 320, 480 * 0.5 + 240], [500 * -0.25 + 5 * 0.125 + 320, 480 * 0.125 + 240]])
    np.testing.assert_allclose(project(p, K), uv, rtol=1e-12)
    np.testing.assert_allclose(unproject(uv, p[:, 2], K), p, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(unproject(torch.from_numpy(uv), torch.from_numpy(p[:, 2]), K).numpy(), p, atol=1e-12)


def test_nearness_convention_and_torch_path():
    """nearness = log inverse depth at the reference focal; larger = nearer. Kills: the torch
    branch of depth_from_nearness / nearness_from_depth with focal and ref_focal swapped (test_init_priors
    calls it with focal == ref_focal), and a flipped sign in both directions."""
    assert nearness_from_depth(1.0, 448.0, 448.0) == pytest.approx(0.0)
    assert nearness_from_depth(2.0, 448.0, 448.0) == pytest.approx(-math.log(2.0))
    n = torch.tensor([0.0, -math.log(4.0), 1.0], dtype=torch.float64)
    z = depth_from_nearness(n, 1600.0, 448.0)
    np.testing.assert_allclose(z.numpy(), 1600.0 / 448.0 * np.exp(-n.numpy()), rtol=1e-12)
    np.testing.assert_allclose(nearness_from_depth(z, 1600.0, 448.0).numpy(), n.numpy(), atol=1e-12)
