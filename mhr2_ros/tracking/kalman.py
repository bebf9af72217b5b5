"""Constant-velocity Kalman filter on each track's 3D pelvis position (not in the paper:
it gives navigation a metric velocity with a covariance, and a predicted position while
a person is occluded).

The three camera axes are filtered independently (the measurement covariance is diagonal
in the camera frame and the motion model is separable), so the state of every track is
(3, 2) = per axis (position m, velocity m/s) with a (3, 2, 2) covariance, and all tracks
are predicted and updated together with closed-form 2x2 algebra: no Python loop per track.
Process noise: white acceleration of spectral density q = accel_std^2 (m^2/s^3), the
usual discretisation Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]] for a step of dt seconds.
"""

from __future__ import annotations

import numpy as np


class ConstantVelocityKF:
    """Per-slot states x (S, 3, 2) and covariances P (S, 3, 2, 2), camera frame, SI units."""

    def __init__(self, capacity: int = 16):
        self.x = np.zeros((capacity, 3, 2))
        self.P = np.tile(np.eye(2), (capacity, 3, 1, 1))

    def ensure(self, n: int) -> None:
        """Make room for slot indices < n."""
        if n <= len(self.x):
            return
        n = max(n, 2 * len(self.x))
        x, P = np.zeros((n, 3, 2)), np.tile(np.eye(2), (n, 3, 1, 1))
        x[: len(self.x)], P[: len(self.P)] = self.x, self.P
        self.x, self.P = x, P

    def init(self, slots: np.ndarray, z: np.ndarray, r: np.ndarray, velocity_var: float) -> None:
        """Start slots (k,) at positions z (k, 3) with variances r (k, 3), velocity 0 +- sqrt(velocity_var)."""
        self.x[slots, :, 0] = z
        self.x[slots, :, 1] = 0.0
        self.P[slots] = 0.0
        self.P[slots, :, 0, 0] = r
        self.P[slots, :, 1, 1] = velocity_var

    def predict(self, slots: np.ndarray, dt: float, q: float) -> None:
        """Move slots (k,) forward by dt seconds (dt >= 0)."""
        if len(slots) == 0 or dt <= 0:
            return
        x, P = self.x[slots], self.P[slots]
        x[..., 0] += dt * x[..., 1]
        p00, p01, p11 = P[..., 0, 0], P[..., 0, 1], P[..., 1, 1]
        n00 = p00 + 2 * dt * p01 + dt * dt * p11 + q * dt**3 / 3
        n01 = p01 + dt * p11 + q * dt**2 / 2
        n11 = p11 + q * dt
        P[..., 0, 0], P[..., 0, 1], P[..., 1, 0], P[..., 1, 1] = n00, n01, n01, n11
        self.x[slots], self.P[slots] = x, P

    def update(self, slots: np.ndarray, z: np.ndarray, r: np.ndarray) -> None:
        """Fuse positions z (k, 3) measured with variances r (k, 3) into slots (k,)."""
        if len(slots) == 0:
            return
        x, P = self.x[slots], self.P[slots]
        p00, p01, p11 = P[..., 0, 0], P[..., 0, 1], P[..., 1, 1]
        s = p00 + r  # innovation variance (k, 3)
        k0, k1 = p00 / s, p01 / s  # Kalman gains for position and velocity
        innov = z - x[..., 0]
        x[..., 0] += k0 * innov
        x[..., 1] += k1 * innov
        n00, n01, n11 = (1 - k0) * p00, (1 - k0) * p01, p11 - k1 * p01
        P[..., 0, 0], P[..., 0, 1], P[..., 1, 0], P[..., 1, 1] = n00, n01, n01, n11
        self.x[slots], self.P[slots] = x, P

    def position(self, slot: int):
        """(3,) position in m and its (3, 3) covariance (diagonal: axes are filtered apart)."""
        return self.x[slot, :, 0].copy(), np.diag(self.P[slot, :, 0, 0])

    def velocity(self, slot: int):
        """(3,) velocity in m/s and its (3, 3) covariance."""
        return self.x[slot, :, 1].copy(), np.diag(self.P[slot, :, 1, 1])
