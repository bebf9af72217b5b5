"""Constant-velocity Kalman filter on each track's 3D pelvis position (not in the paper:
it gives navigation a metric velocity with a covariance, and a predicted position while
a person is occluded).

The state of a track is (6,) = position (m) then velocity (m/s) in the tracker's frame with a
full (6, 6) covariance: the frame is the camera's, or a fixed frame (odom) when the tracker
knows where the camera is (tracker.py), and then a detection's covariance, diagonal along the
camera axes, is a full 3x3 block. All tracks are predicted and updated together (batched
matrix algebra over slots): no Python loop per track.
Process noise: white acceleration of spectral density q = accel_std^2 (m^2/s^3), the
usual discretisation Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]] (x I3) for a step of dt seconds.
"""

from __future__ import annotations

import numpy as np

POS, VEL = slice(0, 3), slice(3, 6)  # blocks of the state
STATE = 6


def _as_cov(r: np.ndarray) -> np.ndarray:
    """(k, 3) variances or (k, 3, 3) covariances -> (k, 3, 3)."""
    r = np.asarray(r, dtype=np.float64)
    return np.einsum("ki,ij->kij", r, np.eye(3)) if r.ndim == 2 else r


class ConstantVelocityKF:
    """Per-slot states x (S, 6) and covariances P (S, 6, 6), SI units."""

    def __init__(self, capacity: int = 16):
        self.x = np.zeros((capacity, STATE))
        self.P = np.tile(np.eye(STATE), (capacity, 1, 1))

    def ensure(self, n: int) -> None:
        """Make room for slot indices < n."""
        if n <= len(self.x):
            return
        n = max(n, 2 * len(self.x))
        x, P = np.zeros((n, STATE)), np.tile(np.eye(STATE), (n, 1, 1))
        x[: len(self.x)], P[: len(self.P)] = self.x, self.P
        self.x, self.P = x, P

    def init(self, slots: np.ndarray, z: np.ndarray, r: np.ndarray, velocity_var: float) -> None:
        """Start slots (k,) at positions z (k, 3) with covariances r ((k, 3) variances or (k, 3, 3)),
        velocity 0 +- sqrt(velocity_var) per axis."""
        self.x[slots, POS] = z
        self.x[slots, VEL] = 0.0
        self.P[slots] = 0.0
        self.P[slots, POS, POS] = _as_cov(r)
        self.P[slots, VEL, VEL] = velocity_var * np.eye(3)

    def predict(self, slots: np.ndarray, dt: float, q: float) -> None:
        """Move slots (k,) forward by dt seconds (dt >= 0)."""
        if len(slots) == 0 or dt <= 0:
            return
        F = np.eye(STATE)
        F[POS, VEL] = dt * np.eye(3)
        Q = q * np.kron(np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]]), np.eye(3))
        self.x[slots] = self.x[slots] @ F.T
        self.P[slots] = F @ self.P[slots] @ F.T + Q

    def update(self, slots: np.ndarray, z: np.ndarray, r: np.ndarray) -> None:
        """Fuse positions z (k, 3) measured with covariances r ((k, 3) variances or (k, 3, 3))."""
        if len(slots) == 0:
            return
        x, P = self.x[slots], self.P[slots]
        S = P[:, POS, POS] + _as_cov(r)  # innovation covariance (k, 3, 3)
        gain = np.linalg.solve(S, P[:, POS, :]).transpose(0, 2, 1)  # K = P H^T S^-1: (k, 6, 3)
        innov = np.asarray(z, dtype=np.float64) - x[:, POS]
        self.x[slots] = x + np.einsum("kij,kj->ki", gain, innov)
        P = P - gain @ S @ gain.transpose(0, 2, 1)
        self.P[slots] = 0.5 * (P + P.transpose(0, 2, 1))  # symmetric against rounding

    def transform(self, rotation: np.ndarray, translation: np.ndarray) -> None:
        """Re-express every slot in another frame: p' = R p + t, v' = R v (rotation (3, 3))."""
        A = np.kron(np.eye(2), np.asarray(rotation, dtype=np.float64))
        self.x = self.x @ A.T
        self.x[:, POS] += np.asarray(translation, dtype=np.float64)
        self.P = A @ self.P @ A.T

    def position(self, slot: int):
        """(3,) position in m and its (3, 3) covariance."""
        return self.x[slot, POS].copy(), self.P[slot, POS, POS].copy()

    def velocity(self, slot: int):
        """(3,) velocity in m/s and its (3, 3) covariance."""
        return self.x[slot, VEL].copy(), self.P[slot, VEL, VEL].copy()
