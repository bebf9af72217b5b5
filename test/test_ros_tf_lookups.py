"""The node's tf2 lookups (mhr2_ros/ros/tf_lookups.py) over a stand-in tf2 buffer: which frame
is looked up into which, at the image's stamp; what each result becomes (the floor plane, the
camera's pose, the IMU's gravity in the image's frame); the static camera that needs no lookup;
and a failed lookup warned with what the frame goes without. Where ROS 2 is not installed, the
three names the module takes from rclpy and tf2_ros are stood in for."""

import importlib
import sys
import types
from types import SimpleNamespace

import numpy as np
import pytest

from mhr2_ros.geometry import matrix_to_quaternion_xyzw
from mhr2_ros.ros.imu_gravity import ImuGravity
from mhr2_ros.tracking import STATIC_CAMERA

MODULE = "mhr2_ros.ros.tf_lookups"
IMAGE_FRAME = "camera_color_optical_frame"
STAMP_NS = 12_000_000_050
# floor frame (x forward, y left, z up) -> optical frame (x right, y down, z forward)
FLOOR_TO_OPTICAL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
CAMERA_HEIGHT_M = 1.2


def _stand_ins(monkeypatch):
    """TransformException; rclpy.duration.Duration, rclpy.time.Time and tf2_ros stood in for
    when rclpy is not importable."""
    try:
        import rclpy.time  # noqa: F401
        import tf2_ros

        return tf2_ros.TransformException
    except ImportError:
        pass

    class TransformException(Exception):
        pass

    modules = {name: types.ModuleType(name) for name in ("rclpy", "rclpy.duration", "rclpy.time", "tf2_ros")}
    modules["rclpy.duration"].Duration = lambda seconds=0.0: ("duration", seconds)
    modules["rclpy.time"].Time = lambda nanoseconds=0: ("time", nanoseconds)
    modules["tf2_ros"].TransformException = TransformException
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return TransformException


@pytest.fixture
def lookups_of(monkeypatch):
    """lookups_of(transforms, **values) -> (FrameLookups, buffer, warnings)."""
    error = _stand_ins(monkeypatch)
    monkeypatch.delitem(sys.modules, MODULE, raising=False)  # imported afresh, forgotten afterwards
    module = importlib.import_module(MODULE)

    class Buffer:
        def __init__(self, transforms):
            self.transforms, self.calls = transforms, []

        def lookup_transform(self, target, source, time, timeout):
            self.calls.append((target, source, time, timeout))
            if (target, source) not in self.transforms:
                raise error(f'"{source}" passed to lookupTransform argument source_frame does not exist')
            return self.transforms[(target, source)]

    def make(transforms, imu=None, **values):
        buffer = None if transforms is None else Buffer(transforms)
        warnings = []
        logger = SimpleNamespace(warning=lambda msg, throttle_duration_sec: warnings.append(msg))
        session = SimpleNamespace(values={"floor_frame": "", "fixed_frame": "", "imu_gravity": False,
                                          "floor_tf_timeout": 0.05, **values})  # fmt: skip
        return module.FrameLookups(buffer, logger, session, imu or ImuGravity()), buffer, warnings

    return make


def _transform(R, t):
    q = matrix_to_quaternion_xyzw(np.asarray(R, np.float64))
    return SimpleNamespace(transform=SimpleNamespace(
        translation=SimpleNamespace(x=t[0], y=t[1], z=t[2]), rotation=SimpleNamespace(x=q[0], y=q[1], z=q[2], w=q[3])))


def _header(frame_id=IMAGE_FRAME):
    return SimpleNamespace(frame_id=frame_id, stamp_ns=STAMP_NS)


def test_the_floor_is_the_floor_frame_looked_up_into_the_image_frame(lookups_of):
    """A camera 1.2 m above the floor, looking level: the plane (n, d) has n . x = d on the floor,
    n along gravity (down the image: optical +y) and d the camera's height; the lookup is at the
    image's stamp."""
    origin = np.array([0.0, CAMERA_HEIGHT_M, 0.0])  # the floor frame's origin, below the camera
    lookups, buffer, warnings = lookups_of({(IMAGE_FRAME, "base_footprint"): _transform(FLOOR_TO_OPTICAL, origin)},
                                           floor_frame="base_footprint")  # fmt: skip
    plane = lookups.floor(_header())
    np.testing.assert_allclose(plane, [0.0, 1.0, 0.0, CAMERA_HEIGHT_M], atol=1e-9)
    assert plane[:3] @ origin == pytest.approx(plane[3])  # the floor frame's origin is on the floor
    (target, source, time, timeout), = buffer.calls
    assert (target, source) == (IMAGE_FRAME, "base_footprint") and not warnings
    if isinstance(time, tuple):  # the stand-ins record what they were given
        assert time == ("time", STAMP_NS) and timeout == ("duration", 0.05)


def test_a_failed_lookup_or_a_floor_above_the_camera_is_warned_and_skipped(lookups_of):
    lookups, _, warnings = lookups_of({}, floor_frame="base_footprint")
    assert lookups.floor(_header()) is None
    assert len(warnings) == 1 and "floor_frame 'base_footprint'" in warnings[0]
    assert "does not exist" in warnings[0] and warnings[0].endswith("people keep the network's depth")
    above = np.array([0.0, -CAMERA_HEIGHT_M, 0.0])  # the floor 1.2 m above the camera
    lookups, _, warnings = lookups_of({(IMAGE_FRAME, "base_footprint"): _transform(FLOOR_TO_OPTICAL, above)},
                                      floor_frame="base_footprint")  # fmt: skip
    assert lookups.floor(_header()) is None and len(warnings) == 1


def test_the_camera_pose_is_the_image_frame_looked_up_into_the_fixed_frame(lookups_of):
    R, t = FLOOR_TO_OPTICAL.T, np.array([2.0, -1.0, CAMERA_HEIGHT_M])  # optical -> odom, the camera at t
    lookups, buffer, warnings = lookups_of({("odom", IMAGE_FRAME): _transform(R, t)}, fixed_frame="odom")
    pose = lookups.camera_pose(_header())
    np.testing.assert_allclose(pose[:3, :3], R, atol=1e-9)
    np.testing.assert_allclose(pose[:3, 3], t, atol=1e-12)
    assert [c[:2] for c in buffer.calls] == [("odom", IMAGE_FRAME)] and not warnings
    assert lookups.camera_pose(_header("another_camera")) is None and "the camera is assumed unmoved" in warnings[0]


def test_a_static_camera_and_frames_without_a_listener_need_no_lookup(lookups_of):
    lookups, buffer, _ = lookups_of({}, fixed_frame=IMAGE_FRAME)
    assert lookups.camera_pose(_header()) is STATIC_CAMERA and buffer.calls == []
    lookups, _, warnings = lookups_of(None, floor_frame="base_footprint", fixed_frame="odom", imu_gravity=True)
    assert lookups.floor(_header()) is None and lookups.camera_pose(_header()) is None and not warnings
    lookups, buffer, _ = lookups_of({})  # no frame set
    assert lookups.floor(_header()) is None and lookups.camera_pose(_header()) is None and buffer.calls == []


def test_the_imus_gravity_is_turned_into_the_image_frame(lookups_of):
    imu = ImuGravity()
    for i in range(20):  # at rest, the accelerometer reads 1 g up its own z axis
        stamp = SimpleNamespace(sec=12, nanosec=i * 10_000_000)
        imu.add(SimpleNamespace(linear_acceleration=SimpleNamespace(x=0.0, y=0.0, z=9.81),
                                header=SimpleNamespace(stamp=stamp, frame_id="camera_imu_frame")))  # fmt: skip
    down, _ = imu.reading()
    turn = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])  # imu -> optical: 90 deg about x
    transforms = {(IMAGE_FRAME, "camera_imu_frame"): _transform(turn, np.zeros(3))}
    lookups, _, warnings = lookups_of(transforms, imu=imu, imu_gravity=True)
    np.testing.assert_allclose(lookups.imu_gravity(_header()), turn @ down, atol=1e-9)
    assert not warnings
    lookups, _, _ = lookups_of(transforms, imu=imu)  # imu_gravity off
    assert lookups.imu_gravity(_header()) is None
    lookups, _, warnings = lookups_of({}, imu=imu, imu_gravity=True)
    assert lookups.imu_gravity(_header()) is None and warnings[0].endswith("its IMU's gravity is not used")
