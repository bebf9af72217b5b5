"""Per-ID motion prediction of the paper's tracker: ridge regression on the last 8 pelvis
pixels, nearness values and orientations predicts them at the current frame.

Paper silent on the regression itself; choices made here:
- the regressor is time, in seconds, taken from the frame stamps: y(t) = a + b (t - t̄),
  so irregular and dropped frames extrapolate by the real elapsed time;
- the ridge penalty lam * b^2 acts on the slope only (lam in s^2): with one or two close
  observations the slope is shrunk towards 0 (the prediction falls back to the mean),
  with 8 frames at 30 Hz (sum of tau^2 = 0.05 s^2) a lam of 0.01 s^2 shrinks it by ~17 %;
- orientations are regressed as rotation vectors in the tangent space of the track's
  latest orientation (body-frame offsets R_ref^T R), then mapped back with exp.
Everything is vectorised over tracks: histories are (T, H, ...) arrays with a mask.
"""

from __future__ import annotations

import numpy as np

from mhr2_ros.geometry import matrix_to_quaternion_xyzw


# ----------------------------------------------------------------------------- rotations
def rotation_log(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) rotation vectors (axis * angle, radians, angle <= pi)."""
    q = matrix_to_quaternion_xyzw(R)  # (..., 4), w >= 0: the short way round
    v, w = q[..., :3], q[..., 3]
    s = np.linalg.norm(v, axis=-1)
    angle = 2.0 * np.arctan2(s, w)
    scale = np.where(s > 1e-9, angle / np.maximum(s, 1e-12), 2.0)  # small angles: 2 v
    return v * scale[..., None]


def rotation_exp(r: np.ndarray) -> np.ndarray:
    """(..., 3) rotation vectors -> (..., 3, 3) matrices (Rodrigues)."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    k = np.zeros(r.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2] = -r[..., 2], r[..., 1]
    k[..., 1, 0], k[..., 1, 2] = r[..., 2], -r[..., 0]
    k[..., 2, 0], k[..., 2, 1] = -r[..., 1], r[..., 0]
    small = theta < 1e-8
    safe = np.where(small, 1.0, theta)
    a = np.where(small, 1.0, np.sin(safe) / safe)  # sin(t)/t
    b = np.where(small, 0.5, (1.0 - np.cos(safe)) / safe**2)  # (1 - cos t)/t^2
    return np.eye(3) + a * k + b * (k @ k)


def geodesic_angle(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """(M, 3, 3) x (T, 3, 3) -> (M, T) angle of Ra^T Rb in radians, in [0, pi]."""
    trace = np.einsum("mij,tij->mt", Ra, Rb)  # trace(Ra^T Rb)
    return np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))


# ---------------------------------------------------------------------------- ridge fit
def ridge_predict(times: np.ndarray, values: np.ndarray, mask: np.ndarray, t_query, lam: float) -> np.ndarray:
    """Ridge-regularised linear fit in time, evaluated at t_query, for T series at once.

    times: (T, H) seconds; values: (T, H, C); mask: (T, H) valid samples (>= 1 per row);
    t_query: scalar or (T,) seconds; lam: slope penalty, s^2. Returns (T, C).
    """
    t_query = np.broadcast_to(np.asarray(t_query, dtype=np.float64), times.shape[:1])
    w = mask.astype(np.float64)
    n = np.maximum(w.sum(axis=1), 1.0)  # (T,)
    rel = (times - t_query[:, None]) * w  # seconds relative to the query: no precision loss on epoch stamps
    t_mean = rel.sum(axis=1) / n  # (T,)
    tau = (rel - t_mean[:, None]) * w  # (T, H), 0 where invalid
    y_mean = np.einsum("th,thc->tc", w, values) / n[:, None]  # (T, C)
    sxx = (tau * tau).sum(axis=1) + lam  # (T,)
    sxy = np.einsum("th,thc->tc", tau, values - y_mean[:, None, :])  # (T, C)
    slope = np.where(sxx[:, None] > 0, sxy / np.where(sxx > 0, sxx, 1.0)[:, None], 0.0)
    return y_mean + slope * (0.0 - t_mean)[:, None]  # evaluated at rel = 0, i.e. t_query


def _grow(arr: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + arr.shape[1:], dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


class MotionHistory:
    """The last `length` (stamp, pixel, nearness, orientation) observations of each track slot."""

    def __init__(self, length: int = 8, capacity: int = 16):
        self.length = int(length)
        self.times = np.zeros((capacity, self.length))  # (S, H) seconds
        self.pixels = np.zeros((capacity, self.length, 2))  # (S, H, 2) pixels
        self.nearness = np.zeros((capacity, self.length))  # (S, H)
        self.rot = np.tile(np.eye(3), (capacity, self.length, 1, 1))  # (S, H, 3, 3)
        self.count = np.zeros(capacity, dtype=np.int64)  # observations ever added per slot

    def ensure(self, n: int) -> None:
        """Make room for slot indices < n."""
        if n <= len(self.count):
            return
        n = max(n, 2 * len(self.count))
        for name in ("times", "pixels", "nearness", "rot", "count"):
            setattr(self, name, _grow(getattr(self, name), n))

    def reset(self, slots: np.ndarray) -> None:
        self.count[slots] = 0

    def add(self, slots: np.ndarray, stamp: float, pixels: np.ndarray, nearness: np.ndarray,
            rot: np.ndarray) -> None:
        """Append one observation to each of `slots` (k,): pixels (k, 2), nearness (k,), rot (k, 3, 3)."""
        if len(slots) == 0:
            return
        pos = self.count[slots] % self.length
        self.times[slots, pos] = stamp
        self.pixels[slots, pos] = pixels
        self.nearness[slots, pos] = nearness
        self.rot[slots, pos] = rot
        self.count[slots] += 1

    def predict(self, slots: np.ndarray, stamp: float, lam: float):
        """Ridge predictions at `stamp` for `slots` (T,): pixels (T, 2), nearness (T,), rot (T, 3, 3)."""
        h = self.length
        mask = np.arange(h)[None, :] < np.minimum(self.count[slots], h)[:, None]  # (T, H)
        latest = (self.count[slots] - 1) % h
        r_ref = self.rot[slots, latest]  # (T, 3, 3) newest orientation: tangent point
        rel = np.einsum("tji,thjk->thik", r_ref, self.rot[slots])  # R_ref^T R_h: (T, H, 3, 3)
        values = np.concatenate(
            [self.pixels[slots], self.nearness[slots][..., None], rotation_log(rel)], axis=-1
        )  # (T, H, 6): u, v, nearness, rotation vector
        pred = ridge_predict(self.times[slots], values, mask, stamp, lam)
        rot = r_ref @ rotation_exp(pred[:, 3:6])
        return pred[:, 0:2], pred[:, 2], rot
