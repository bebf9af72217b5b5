"""Gravity from an IMU's accelerometer (inference/gravity.py): the direction of a still sensor,
running means over time, jolts skipped, a rolled camera's gravity through its IMU's mount."""

import math

import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.inference.floor_contact import gravity_from_mount
from mhr2_ros.inference.gravity import STANDARD_GRAVITY, GravityFilter


def test_a_still_sensor_says_down_is_against_its_reading():
    """REP-145: at rest the accelerometer reads +1 g up; down is the other way, whatever the scale."""
    f = GravityFilter()
    assert f.down is None
    f.add([0.0, 0.0, 9.81], 1.0)  # z up
    np.testing.assert_allclose(f.down, [0.0, 0.0, -1.0])
    tilted = GravityFilter()
    up = np.array([0.0, math.sin(0.3), math.cos(0.3)])
    tilted.add(1.1 * STANDARD_GRAVITY * up, 0.0)  # 10% off 1 g: still used
    np.testing.assert_allclose(tilted.down, -up, atol=1e-12)


def test_readings_are_averaged_over_the_time_constant_and_jolts_skipped():
    f = GravityFilter(time_constant_s=0.5)
    f.add([0.0, 0.0, 9.81], 0.0)
    turned = np.array([9.81 * math.sin(0.4), 0.0, 9.81 * math.cos(0.4)])
    f.add(turned, 0.5)  # one time constant later: weight 1 - 1/e on the new direction
    w = 1.0 - math.exp(-1.0)
    mean = (1 - w) * np.array([0.0, 0.0, -1.0]) + w * -turned / 9.81
    np.testing.assert_allclose(f.down, mean / np.linalg.norm(mean), atol=1e-12)
    for t in np.arange(0.6, 5.0, 0.1):  # held turned: the estimate follows
        f.add(turned, t)
    np.testing.assert_allclose(f.down, -turned / 9.81, atol=1e-3)
    before = f.down
    f.add([30.0, 0.0, 9.81], 5.1)  # a jolt of 3 g
    f.add([float("nan"), 0.0, 9.81], 5.2)
    f.add([0.0, 0.0], 5.3)
    assert f.skipped == 3 and np.array_equal(f.down, before)
    f.add([0.0, 9.81, 0.0], 1.0)  # the stamp went back (a looping bag): afresh
    np.testing.assert_allclose(f.down, [0.0, -1.0, 0.0])


def test_a_rolled_cameras_gravity_through_its_imus_mount():
    """An IMU whose frame is the camera link's (x forward, y left, z up) mounted on a camera rolled by
    25 degrees: its down, turned into the optical frame, is the mount's gravity."""
    link_to_optical = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # optical <- link
    c, s = math.cos(math.radians(25.0)), math.sin(math.radians(25.0))
    roll = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])  # the link turned about its x (forward) axis
    world_down_in_link = roll.T @ [0.0, 0.0, -1.0]
    f = GravityFilter()
    f.add(-STANDARD_GRAVITY * world_down_in_link, 0.0)
    np.testing.assert_allclose(link_to_optical @ f.down, gravity_from_mount(roll_deg=25.0), atol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"time_constant_s": 0.0}, "time constant must be > 0 seconds, got 0.0"),
    ({"tolerance": 1.5}, "tolerance must be a fraction of 1 g in \\(0, 1\\), got 1.5"),
])  # fmt: skip
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(InputError, match=message):
        GravityFilter(**kwargs)


def test_the_nodes_imu_gravity_turns_into_the_images_frame():
    """ros/imu_gravity.py with real sensor_msgs/Imu messages: nothing before a reading, the IMU's own
    frame taken as is, another frame turned by the lookup (None when TF has no transform)."""
    from mhr2_ros.ros.imu_gravity import ImuGravity
    from mhr2_ros.ros.typestore import make_typestore

    store = make_typestore("jazzy")
    t = store.types

    def imu(frame_id, accel):
        header = t["std_msgs/msg/Header"](t["builtin_interfaces/msg/Time"](5, 0), frame_id)
        q, v = t["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0), t["geometry_msgs/msg/Vector3"]
        msg = t["sensor_msgs/msg/Imu"](header, q, np.zeros(9), v(0.0, 0.0, 0.0), np.zeros(9), v(*accel), np.zeros(9))
        return store.deserialize_cdr(store.serialize_cdr(msg, "sensor_msgs/msg/Imu"), "sensor_msgs/msg/Imu")

    imu_gravity = ImuGravity()
    assert imu_gravity.gravity("cam", lambda target, source: np.eye(3)) is None
    imu_gravity.add(imu("cam", [0.0, -9.81, 0.0]))  # an IMU in the optical frame: up is -y
    np.testing.assert_allclose(imu_gravity.gravity("cam", lambda target, source: None), [0.0, 1.0, 0.0])
    imu_gravity = ImuGravity()
    imu_gravity.add(imu("cam_imu", [0.0, 0.0, 9.81]))  # link axes: z up
    link_to_optical = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    asked = []
    turned = imu_gravity.gravity("cam", lambda target, source: asked.append((target, source)) or link_to_optical)
    np.testing.assert_allclose(turned, [0.0, 1.0, 0.0])
    assert asked == [("cam", "cam_imu")]
    assert imu_gravity.gravity("cam", lambda target, source: None) is None  # no transform: not used
