"""Intrinsics from sensor_msgs/CameraInfo, rescaled to the image they are used with.

Duck-typed (fields k, p, width, height), so rclpy and rosbags messages both work.
A camera_info of another resolution than the image (binning, a resized stream) is
rescaled, never ignored; an uncalibrated one (all-zero K) gives None, so the
network's predicted field of view is used instead.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from mhr2_ros.geometry import scale_intrinsics

MATRICES = ("k", "p")  # K: raw (distorted) image; P: rectified image


def intrinsics_from_camera_info(info, height: int, width: int, matrix: str = "k") -> Optional[np.ndarray]:
    """3x3 K for an image of (height, width) pixels, or None when `info` has none."""
    if info is None:
        return None
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {MATRICES}, got {matrix!r}")
    values = np.asarray(getattr(info, matrix), dtype=np.float64)
    K = values.reshape(3, 4)[:, :3] if matrix == "p" else values.reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        return None
    info_w, info_h = int(info.width), int(info.height)
    if info_w > 0 and info_h > 0 and (info_w, info_h) != (width, height):
        K = scale_intrinsics(K, width / info_w, height / info_h)
    return np.asarray(K, dtype=np.float64)
