"""The pose covariance prior (inference/covariance.py): its shape, and the check `mhr2 eval` makes of it."""

import math

import numpy as np
import pytest

from mhr2_ros.inference.covariance import CovariancePrior, PriorCheck, PersonResidual, pose_covariance, residual
from mhr2_ros.inference.results import FLOOR_DEPTH, MEASURED_DEPTH, NETWORK_DEPTH


def _rot_z(deg):
    a = math.radians(deg)
    return np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0.0, 0.0, 1.0]])


def _along_across(cov, position):
    ray = position / np.linalg.norm(position)
    side = np.cross(ray, [1.0, 0.0, 0.0])
    side /= np.linalg.norm(side)
    return ray @ cov[:3, :3] @ ray, side @ cov[:3, :3] @ side


def test_a_predicted_k_widens_both_sigmas_by_the_prior_s_fields():
    prior = CovariancePrior(pixel_sigma=3.0, depth_sigma_ratio=0.1, floor_depth_sigma_ratio=0.05,
                            predicted_fov_pixel_sigma=9.0, predicted_fov_depth_factor=1.5)
    position = np.array([0.0, 0.0, 4.0])
    along, across = _along_across(pose_covariance(position, np.eye(3), 400.0, prior), position)
    assert along == pytest.approx(0.4**2) and across == pytest.approx((3.0 / 400.0 * 4.0) ** 2)
    along, across = _along_across(pose_covariance(position, np.eye(3), 400.0, prior, NETWORK_DEPTH, k_predicted=True), position)
    assert along == pytest.approx(0.6**2) and across == pytest.approx((9.0 / 400.0 * 4.0) ** 2)
    along, _ = _along_across(pose_covariance(position, np.eye(3), 400.0, prior, FLOOR_DEPTH, k_predicted=True), position)
    assert along == pytest.approx((0.05 * 1.5 * 4.0) ** 2)


def _rot_x(deg):
    a = math.radians(deg)
    return np.array([[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]])


def test_the_orientation_prior_is_wide_about_the_body_s_up_axis_and_narrow_about_the_others():
    prior = CovariancePrior(heading_sigma=1.5, tilt_sigma=0.2)
    standing = _rot_x(-90.0)  # body z (up) -> camera -y (up in the optical frame): a person standing upright
    cov = pose_covariance(np.array([0.0, 0.0, 3.0]), standing, 500.0, prior)[3:, 3:]
    np.testing.assert_allclose(cov, np.diag([0.2**2, 1.5**2, 0.2**2]), atol=1e-12)
    lying = np.eye(3)  # body up along the camera's z
    np.testing.assert_allclose(pose_covariance(np.array([0.0, 0.0, 3.0]), lying, 500.0, prior)[3:, 3:],
                               np.diag([0.2**2, 0.2**2, 1.5**2]), atol=1e-12)  # fmt: skip


def test_residual_by_hand():
    # truth 5 m straight ahead; prediction 0.5 m farther and 0.3 m to the side, turned 90 deg about
    # its up axis (the body's z) and, in another case, leaned 30 deg forward about its y
    r = residual([0.3, 0.0, 5.5], [0.0, 0.0, 5.0], _rot_z(90.0), np.eye(3), focal=500.0, depth_source=FLOOR_DEPTH)
    assert r.along == pytest.approx(0.1)  # 0.5 m of 5 m
    assert r.across_px == pytest.approx(30.0)  # 0.3 m at 5 m seen with a 500 px focal
    assert r.heading == pytest.approx(math.pi / 2) and r.tilt == pytest.approx(0.0, abs=1e-9)
    assert r.depth_source == FLOOR_DEPTH
    lean = np.array([[math.cos(math.pi / 6), 0.0, math.sin(math.pi / 6)], [0.0, 1.0, 0.0],
                     [-math.sin(math.pi / 6), 0.0, math.cos(math.pi / 6)]])  # fmt: skip
    r = residual([0.0, 0.0, 5.0], [0.0, 0.0, 5.0], lean, np.eye(3), focal=500.0, depth_source=NETWORK_DEPTH)
    assert r.heading == pytest.approx(0.0, abs=1e-9) and r.tilt == pytest.approx(math.pi / 6)


def test_prior_check_coverage_and_calibrated_values_by_hand():
    prior = CovariancePrior(pixel_sigma=2.0, depth_sigma_ratio=0.1, heading_sigma=0.5, tilt_sigma=0.1,
                            measured_depth_sigma_ratio=0.05, predicted_fov_pixel_sigma=10.0,
                            predicted_fov_depth_factor=2.0)
    check = PriorCheck(prior)
    # 100 network-depth people, K given: along errors 0.001 .. 0.100 (uniform), across 0.1 .. 10 px,
    # heading 0.01 .. 1 rad, tilt 0.002 .. 0.2 rad
    for k in range(1, 101):
        check.add(PersonResidual(k / 1000.0, k / 10.0, k / 100.0, k / 500.0, NETWORK_DEPTH), k_predicted=False)
    s = check.summary()
    assert s["covariance_along_coverage"] == pytest.approx(1.0)  # every error <= 0.1
    assert s["covariance_across_coverage"] == pytest.approx(0.30)  # <= 1.515 * 2 px = 3.03 px: 0.1 .. 3.0
    assert s["covariance_heading_coverage"] == pytest.approx(0.50)  # <= 0.5 rad
    assert s["covariance_tilt_coverage"] == pytest.approx(0.75)  # <= 1.515 * 0.1 rad: k <= 75
    assert s["calibrated_depth_sigma_ratio"] == pytest.approx(np.percentile(np.arange(1, 101) / 1000, 68))
    assert s["calibrated_pixel_sigma"] == pytest.approx(np.percentile(np.arange(1, 101) / 10, 68) / 1.515)
    assert s["calibrated_heading_sigma"] == pytest.approx(np.percentile(np.arange(1, 101) / 100, 68))
    assert s["calibrated_tilt_sigma"] == pytest.approx(np.percentile(np.arange(1, 101) / 500, 68) / 1.515)
    assert s["calibrated_measured_depth_sigma_ratio"] is None and s["calibrated_predicted_fov_pixel_sigma"] is None
    # people with a predicted K are measured against the predicted-K fields, and calibrate only those
    check.add(PersonResidual(0.08, 5.0, 0.0, 0.0, MEASURED_DEPTH), k_predicted=True)  # factor 0.08 / 0.05 = 1.6
    s2 = check.summary()
    assert s2["calibrated_predicted_fov_depth_factor"] == pytest.approx(1.6)
    assert s2["calibrated_predicted_fov_pixel_sigma"] == pytest.approx(5.0 / 1.515)
    assert s2["calibrated_measured_depth_sigma_ratio"] is None  # K given only
    assert s2["covariance_along_coverage"] == pytest.approx(101 / 101)  # 0.08 <= 0.05 * 2


def test_an_empty_check_reports_nothing():
    s = PriorCheck().summary()
    assert all(value is None for value in s.values()) and "covariance_along_coverage" in s


def test_the_eval_table_says_when_nobody_was_found_to_check_the_prior_on():
    from mhr2_ros.cli.evaluate import format_covariance_table

    empty = format_covariance_table(PriorCheck().summary())
    assert empty.endswith("(0.68 when calibrated): none found") and "`pixel_sigma`" not in empty
    check = PriorCheck(CovariancePrior(pixel_sigma=2.0))
    check.add(PersonResidual(0.05, 1.0, 0.2, 0.05, NETWORK_DEPTH), k_predicted=False)
    table = format_covariance_table(check.summary())
    assert "| across the ray, px | `pixel_sigma` | 4 |" in table  # "now": the default the node publishes
    assert table.endswith("along 1.00, across 1.00, heading 1.00, tilt 1.00")
