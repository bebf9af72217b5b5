"""A walking person faces where they go: the heading of a moving track from its velocity.

A monocular network gets a person's heading (the turn about their own up axis) wrong by a
bias that stays with the person (the shipped model: a median 41 deg per person, 9 deg within
one), and gets their up axis right (0.17 rad). A track's velocity over the ground, projected
across that up axis, points where a walker faces (true within 1.5 deg on the synthetic clips);
a depth error scales that velocity without turning it. Above `min_speed` the tracker turns the
detection's orientation about its own up axis until the body's x axis (REP-103: out of the
chest) points along that velocity; the tilt stays the network's. Measured on the tuning clips
(true K, tracks with >= 5 hits, >= 0.6 m/s): median heading error 51 deg (network) -> 16 deg.

Backward or sideways steps break the assumption; the threshold keeps slow shuffles out.
No guard keeps the network's heading where it points away from the velocity (a backward
step): the shipped network faces the wrong way too often for it to tell one. On the tuning
clips (2026-12-03, predicted K, 284 person-frames that took the velocity heading, all forward
walkers) its heading was off by more than 135 deg in 15% of them and by more than 90 deg in
30%; a 135 deg guard would have put back those wrong headings to catch steps the synthetic
clips never hold.
Only meaningful for a velocity over the ground: a camera that moves needs its poses given to
the tracker (tracker.py), or every person it drives past seems to walk at it.
"""

from __future__ import annotations

import numpy as np

from mhr2_ros.inference.covariance import UP_AXIS as UP

FORWARD, LEFT = 0, 1  # columns of a body rotation (REP-103 body axes -> camera), as UP


def velocity_heading(rotations: np.ndarray, velocities: np.ndarray, min_speed: float):
    """Orientations facing the velocity where it is fast enough.

    rotations (T, 3, 3) body -> camera; velocities (T, 3) m/s over the ground, camera axes.
    Returns (rotations (T, 3, 3), used (T,) bool): rows not used are the input's.
    """
    R = np.array(rotations, dtype=np.float64).reshape(-1, 3, 3)
    v = np.asarray(velocities, dtype=np.float64).reshape(-1, 3)
    up = R[:, :, UP]  # (T, 3) unit
    across = v - np.sum(v * up, axis=1, keepdims=True) * up  # velocity across the up axis
    speed = np.linalg.norm(across, axis=1)
    used = speed >= min_speed
    if used.any():
        forward = across[used] / speed[used, None]
        R[used, :, FORWARD] = forward
        R[used, :, LEFT] = np.cross(up[used], forward)  # z x x = y: right-handed with the same up
    return R, used
