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

A moving camera (not in the paper): every observation also keeps its pelvis and orientation in
the tracker's fixed frame (tracker.py: the camera's pose given with each frame). Given the
current camera's pose (`CameraView`), `predict` first re-expresses the history as the current
camera would have seen it (pelvis projected with the K of its own frame, so a K that changes
from frame to frame, as a predicted field of view does, moves nothing; nearness shifted by the
log ratio of the depths; orientation turned), then regresses as above: a robot turning its head
does not move a standing person's predicted pixel. A fixed camera gives the paper's history.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def _newest(times: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T,) index of the latest time among the masked entries of each row of times (T, H)."""
    return np.argmax(np.where(mask, times, -np.inf), axis=1)


MIN_DEPTH = 0.1  # meters: a re-expressed pelvis nearer than this (behind the camera now) is clamped


@dataclass(frozen=True)
class CameraView:
    """The current camera's pose in the fixed frame: p_fixed = R p_camera + t."""

    R: np.ndarray  # (3, 3)
    t: np.ndarray  # (3,) meters


class MotionHistory:
    """The last `length` (stamp, pixel, nearness, orientation) observations of each track slot,
    with the pelvis and orientation in the fixed frame and the depth they were seen at."""

    def __init__(self, length: int = 8, capacity: int = 16):
        self.length = int(length)
        self.times = np.zeros((capacity, self.length))  # (S, H) seconds
        self.pixels = np.zeros((capacity, self.length, 2))  # (S, H, 2) pixels
        self.nearness = np.zeros((capacity, self.length))  # (S, H)
        self.rot = np.tile(np.eye(3), (capacity, self.length, 1, 1))  # (S, H, 3, 3) camera of its frame
        self.points = np.zeros((capacity, self.length, 3))  # (S, H, 3) pelvis, fixed frame, meters
        self.rot_fixed = np.tile(np.eye(3), (capacity, self.length, 1, 1))  # (S, H, 3, 3) body -> fixed
        self.depth = np.ones((capacity, self.length))  # (S, H) pelvis z in the camera of its frame, m
        self.posed = np.zeros((capacity, self.length), dtype=bool)  # (S, H) its camera pose was its own
        self.intrinsics = np.ones((capacity, self.length, 4))  # (S, H, 4) fx, fy, cx, cy of its frame's K
        self.count = np.zeros(capacity, dtype=np.int64)  # observations ever added per slot

    def ensure(self, n: int) -> None:
        """Make room for slot indices < n."""
        if n <= len(self.count):
            return
        n = max(n, 2 * len(self.count))
        names = ("times", "pixels", "nearness", "rot", "points", "rot_fixed", "depth", "posed", "intrinsics", "count")
        for name in names:
            setattr(self, name, _grow(getattr(self, name), n))

    def reset(self, slots: np.ndarray) -> None:
        self.count[slots] = 0

    def add(self, slots: np.ndarray, stamp: float, pixels: np.ndarray, nearness: np.ndarray, rot: np.ndarray,
            positions: np.ndarray, K: np.ndarray, pose: tuple, posed: bool = True) -> None:
        """Append one observation to each of `slots` (k,): pixels (k, 2), nearness (k,), rot (k, 3, 3),
        pelvis positions (k, 3) in the camera of intrinsics K (3, 3), whose pose in the fixed frame is
        `pose` (R, t); `posed` False: a stand-in pose (the frame came without one), left out of
        re-expressed predictions."""
        if len(slots) == 0:
            return
        R, t = pose
        pos = self.count[slots] % self.length
        self.times[slots, pos] = stamp
        self.pixels[slots, pos] = pixels
        self.nearness[slots, pos] = nearness
        self.rot[slots, pos] = rot
        self.points[slots, pos] = positions @ R.T + t
        self.rot_fixed[slots, pos] = R @ rot
        self.depth[slots, pos] = np.maximum(positions[:, 2], MIN_DEPTH)
        self.posed[slots, pos] = posed
        K = np.asarray(K, dtype=np.float64)
        self.intrinsics[slots, pos] = [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]
        self.count[slots] += 1

    def transform(self, R: np.ndarray, t: np.ndarray) -> None:
        """Re-express the fixed-frame history in another frame: p' = R p + t."""
        self.points = self.points @ R.T + t
        self.rot_fixed = R @ self.rot_fixed

    def _seen_from(self, slots: np.ndarray, view: CameraView):
        """The history of `slots` as `view`'s camera sees it: pixels (T, H, 2), nearness (T, H), rot."""
        cam = (self.points[slots] - view.t) @ view.R  # R^T (p - t): (T, H, 3)
        z = np.maximum(cam[..., 2], MIN_DEPTH)
        fx, fy, cx, cy = np.moveaxis(self.intrinsics[slots], -1, 0)  # each (T, H): the entry's own K
        pixels = np.stack([fx * cam[..., 0] / z + cx, fy * cam[..., 1] / z + cy], axis=-1)
        seen_at = np.maximum(self.depth[slots], MIN_DEPTH)  # entries never written (grown slots) hold 0
        nearness = self.nearness[slots] + np.log(seen_at / z)  # nearness = -log z + const
        return pixels, nearness, np.einsum("ji,thjk->thik", view.R, self.rot_fixed[slots])

    def predict(self, slots: np.ndarray, stamp: float, lam: float, view: CameraView = None):
        """Ridge predictions at `stamp` for `slots` (T,): pixels (T, 2), nearness (T,), rot (T, 3, 3);
        with `view`, of the history as that camera sees it (module docstring)."""
        h = self.length
        mask = np.arange(h)[None, :] < np.minimum(self.count[slots], h)[:, None]  # (T, H)
        latest = (self.count[slots] - 1) % h
        if view is None:
            pixels, nearness, rot_all = self.pixels[slots], self.nearness[slots], self.rot[slots]
        else:
            pixels, nearness, rot_all = self._seen_from(slots, view)
            posed = mask & self.posed[slots]  # stand-in poses put the person where they were not
            mask = np.where(posed.any(axis=1, keepdims=True), posed, mask)
            latest = np.where(posed.any(axis=1), _newest(self.times[slots], posed), latest)
        r_ref = rot_all[np.arange(len(slots)), latest]  # (T, 3, 3) newest orientation: tangent point
        rel = np.einsum("tji,thjk->thik", r_ref, rot_all)  # R_ref^T R_h: (T, H, 3, 3)
        values = np.concatenate([pixels, nearness[..., None], rotation_log(rel)], axis=-1)  # (T, H, 6)
        pred = ridge_predict(self.times[slots], values, mask, stamp, lam)
        rot = r_ref @ rotation_exp(pred[:, 3:6])
        return pred[:, 0:2], pred[:, 2], rot
