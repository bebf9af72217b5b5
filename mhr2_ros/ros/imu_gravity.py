"""The node's IMU gravity (ROS-free): sensor_msgs/Imu messages into a GravityFilter on the executor
thread, and the worker's question: which way is down in this image's frame?

A camera with its own IMU (a RealSense D435i / D455, a phone rig) reports gravity in the IMU's
frame; TF (the driver's static transforms) turns it into the optical frame of the images. The
detector uses it to level a rolled camera when neither floor_frame nor fixed_frame says which way
is down (inference/level.py, inference/gravity.py).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

import numpy as np

from mhr2_ros.inference.gravity import GravityFilter
from mhr2_ros.io.ros_image import stamp_to_ns

NS_PER_S = 1e9


class ImuGravity:
    def __init__(self) -> None:
        self._filter = GravityFilter()
        self._frame = ""
        self._lock = threading.Lock()

    def add(self, msg) -> None:
        """Executor thread: one sensor_msgs/Imu message, O(1)."""
        a = msg.linear_acceleration
        with self._lock:
            self._filter.add([a.x, a.y, a.z], stamp_to_ns(msg.header.stamp) / NS_PER_S)
            self._frame = str(msg.header.frame_id)

    def gravity(self, frame_id: str, rotation: Callable[[str, str], Optional[np.ndarray]]) -> Optional[np.ndarray]:
        """(3,) gravity in the image's frame `frame_id`, or None (no usable reading yet, or no transform).
        `rotation(target, source)`: (3, 3) taking `source` vectors into `target`, or None (a TF lookup)."""
        with self._lock:
            down, frame = self._filter.down, self._frame
        if down is None or frame in ("", frame_id):  # an IMU without a frame is taken as the camera's
            return down
        turn = rotation(frame_id, frame)
        return None if turn is None else np.asarray(turn, np.float64) @ down
