"""The node's tf2 lookups at an image's stamp: the floor (floor_frame), the camera's pose in a
fixed frame (fixed_frame) and the IMU's gravity turned into the image's frame (imu_gravity).

A lookup that fails (no transform yet, extrapolation, a frame nobody publishes) is warned,
throttled, with what the frame then goes without, and gives None: the image is processed
without it. The node builds one per activation, over the tf2 Buffer its listener fills, and
calls it from the worker thread.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from rclpy.duration import Duration
from rclpy.time import Time
from tf2_ros import TransformException

from mhr2_ros.errors import Mhr2Error
from mhr2_ros.ros.imu_gravity import ImuGravity
from mhr2_ros.ros.tf import camera_pose_from_transform, floor_from_transform
from mhr2_ros.ros.tf_tree import rotation_translation
from mhr2_ros.tracking import STATIC_CAMERA

WARN_EVERY_S = 5.0  # a failing lookup is warned at most this often


class FrameLookups:
    """`buffer`: a tf2_ros.Buffer (lookup_transform), or None when no TF listener runs (no frame
    was set at activation: a lookup then gives None); `session`: the node's DetectorSession (its
    parameter values, read at each lookup); `imu`: the node's ImuGravity."""

    def __init__(self, buffer, logger, session, imu: ImuGravity) -> None:
        self._buffer, self._logger, self._session, self._imu = buffer, logger, session, imu

    def floor(self, header) -> Optional[np.ndarray]:
        """The floor plane in the image's frame at its stamp (floor_frame), or None (warned): the
        people then keep the network's depth."""
        frame = self._session.values["floor_frame"]
        transform = self._lookup("floor_frame", header.frame_id, frame, header, "people keep the network's depth")
        try:
            return None if transform is None else floor_from_transform(transform)
        except Mhr2Error as exc:
            self._logger.warning(f"floor_frame {frame!r}: {exc}; people keep the network's depth",
                                 throttle_duration_sec=WARN_EVERY_S)  # fmt: skip
            return None

    def camera_pose(self, header) -> Optional[np.ndarray]:
        """(4, 4) the camera's pose in fixed_frame at the image's stamp (identity when it is the image's
        own frame), or None (no fixed_frame; or warned: the tracker keeps the last pose)."""
        frame = self._session.values["fixed_frame"]
        if frame and frame == header.frame_id:
            return STATIC_CAMERA  # a static camera: its own frame is fixed
        transform = self._lookup("fixed_frame", frame, header.frame_id, header, "the camera is assumed unmoved")
        return None if transform is None else camera_pose_from_transform(transform)

    def imu_gravity(self, header) -> Optional[np.ndarray]:
        """Gravity in the image's frame from the IMU (imu_gravity), or None (none yet; or warned)."""
        if not self._session.values["imu_gravity"]:
            return None

        def rotation(target, source):
            transform = self._lookup("imu_gravity", target, source, header, "its IMU's gravity is not used")
            return None if transform is None else rotation_translation(transform)[0]

        return self._imu.gravity(header.frame_id, rotation)

    def _lookup(self, param: str, target: str, source: str, header, consequence: str):
        """tf2's transform (points of `source` into `target`) at the image's stamp, or None: no frame
        set, no listener (a frame set after activation: it starts at the next one), or failed (warned)."""
        if not target or not source or self._buffer is None:
            return None
        try:
            return self._buffer.lookup_transform(
                target, source, Time(nanoseconds=header.stamp_ns),
                timeout=Duration(seconds=self._session.values["floor_tf_timeout"]),
            )  # fmt: skip
        except TransformException as exc:
            self._logger.warning(f"{param} {self._session.values[param]!r}: {exc}; {consequence}",
                                 throttle_duration_sec=WARN_EVERY_S)  # fmt: skip
            return None
