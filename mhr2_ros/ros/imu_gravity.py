"""An IMU's gravity (ROS-free): sensor_msgs/Imu messages into a GravityFilter, and which way is down
in an image's frame. The node feeds it from its `imu` subscription (executor thread) and asks from
the worker; `mhr2 bag --imu-topic` feeds it from the bag and keeps each image's reading.

A camera with its own IMU (a RealSense D435i / D455, a phone rig) reports gravity in the IMU's
frame; TF (the driver's static transforms) turns it into the optical frame of the images. The
detector uses it to level a rolled camera when neither a floor nor a fixed frame says which way
is down (inference/level.py, inference/gravity.py).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, Tuple

import numpy as np

from mhr2_ros.inference.gravity import GravityFilter
from mhr2_ros.io.ros_image import stamp_to_ns

NS_PER_S = 1e9
# rotation(target, source): (3, 3) taking `source` vectors into `target`, or None (a TF lookup that failed)
Rotation = Callable[[str, str], Optional[np.ndarray]]


class ImuGravity:
    def __init__(self) -> None:
        self._filter = GravityFilter()
        self._frame = ""
        self._lock = threading.Lock()

    def add(self, msg) -> None:
        """One sensor_msgs/Imu message, O(1) (the node's executor thread)."""
        a = msg.linear_acceleration
        with self._lock:
            self._filter.add([a.x, a.y, a.z], stamp_to_ns(msg.header.stamp) / NS_PER_S)
            self._frame = str(msg.header.frame_id)

    def reading(self) -> Tuple[Optional[np.ndarray], str]:
        """(gravity in the IMU's frame or None before a usable reading, that frame's id), now."""
        with self._lock:
            return self._filter.down, self._frame

    @property
    def skipped(self) -> int:
        """Readings the filter skipped (off 1 g, not finite)."""
        return self._filter.skipped

    def gravity(self, frame_id: str, rotation: Rotation) -> Optional[np.ndarray]:
        """(3,) gravity in the image's frame `frame_id` now, or None (no usable reading yet, or no transform)."""
        return turned(*self.reading(), frame_id, rotation)


def turned(down: Optional[np.ndarray], imu_frame: str, frame_id: str, rotation: Rotation) -> Optional[np.ndarray]:
    """IMU gravity `down` (its frame `imu_frame`) in the frame `frame_id`, or None (no reading, or no
    transform). An IMU without a frame id is taken as the camera's."""
    if down is None or imu_frame in ("", frame_id):
        return down
    turn = rotation(frame_id, imu_frame)
    return None if turn is None else np.asarray(turn, np.float64) @ down
