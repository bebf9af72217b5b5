"""Which way is down, from an IMU's accelerometer: what levels a rolled camera (level.py) that has
neither a floor nor a fixed frame, e.g. a hand-held RGB-D camera with its own IMU.

An accelerometer reports specific force (REP-145): at rest it reads gravity's reaction, 9.81 m/s^2
pointing up, so down is the opposite of the reading. A moving sensor adds its own acceleration;
`GravityFilter` keeps a running mean of the readings' directions over `time_constant_s` and skips
readings whose magnitude is far from 1 g (a jolt, a swing), which is what a person carrying a camera
does to it. The estimate is in the IMU's own frame; its rotation to the camera's optical frame comes
from TF (ros/tf.py, the node's and `mhr2 bag`'s lookups).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from mhr2_ros.errors import InputError

STANDARD_GRAVITY = 9.80665  # m/s^2


class GravityFilter:
    """Down (a unit vector in the IMU's frame) from accelerometer readings, one `add` per reading."""

    def __init__(self, time_constant_s: float = 0.5, tolerance: float = 0.2) -> None:
        """`time_constant_s`: seconds over which readings are averaged (longer: steadier, slower to follow
        a turn); `tolerance`: readings whose magnitude is off 1 g by more than this fraction are skipped."""
        if not (math.isfinite(time_constant_s) and time_constant_s > 0):
            raise InputError(f"IMU gravity time constant must be > 0 seconds, got {time_constant_s}")
        if not (math.isfinite(tolerance) and 0 < tolerance < 1):
            raise InputError(f"IMU gravity tolerance must be a fraction of 1 g in (0, 1), got {tolerance}")
        self.time_constant_s = float(time_constant_s)
        self.tolerance = float(tolerance)
        self.skipped = 0  # readings off 1 g by more than the tolerance, or not finite
        self._down: Optional[np.ndarray] = None
        self._stamp = 0.0

    def add(self, acceleration, stamp_s: float) -> None:
        """One reading: `acceleration` (3,) m/s^2 in the IMU's frame (sensor_msgs/Imu
        linear_acceleration), taken at `stamp_s` seconds. A stamp going back starts afresh."""
        a = np.asarray(acceleration, dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(a)) if a.size == 3 and np.all(np.isfinite(a)) else float("nan")
        if not abs(norm / STANDARD_GRAVITY - 1.0) <= self.tolerance:  # NaN fails too
            self.skipped += 1
            return
        down = -a / norm
        if self._down is None or stamp_s < self._stamp:
            self._down, self._stamp = down, float(stamp_s)
            return
        weight = 1.0 - math.exp(-(float(stamp_s) - self._stamp) / self.time_constant_s)
        mean = (1.0 - weight) * self._down + weight * down
        self._down = mean / np.linalg.norm(mean)
        self._stamp = float(stamp_s)

    @property
    def down(self) -> Optional[np.ndarray]:
        """(3,) unit gravity in the IMU's frame, or None before the first usable reading."""
        return None if self._down is None else self._down.copy()

    def reset(self) -> None:
        self._down, self._stamp = None, 0.0
