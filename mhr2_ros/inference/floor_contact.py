"""Metric depth from the floor a person stands on (not in the paper).

A robot knows where its camera is mounted: the floor plane in the camera frame follows from its
TF tree (camera height above the floor and the camera's tilt). A person stands, walks or sits on
that floor, so the lowest point of their body touches it. The network's body, scaled about the
camera centre by s, keeps every pixel where the network put it (2D joints, box, overlay); only
one s puts its lowest point on the floor:

    s = d / max_v (n . v)        plane n . x = d in the camera frame, n pointing down (gravity),
                                 d > 0 the camera's height above the floor, v the mesh vertices

That is the classic ground-plane range of a mobile robot's people detector, with the sole
found on the predicted mesh rather than at a box's bottom edge (a person cut off by the image
border or sitting on the ground still has a lowest point). Its error grows as the lowest point's
ray flattens towards the horizon: a ray `a` radians below it, off by `e` radians (the mesh's foot
a pixel off, the mount's pitch a little wrong), moves the person by a factor of about
e / tan(a). So the two depths are combined by their variances, in log depth: the floor's
relative sigma angle_sigma / tan(a) (InferenceConfig.floor_angle_sigma, 0.015 rad), the network's
NETWORK_SIGMA; the person is scaled by s ** w, w = NETWORK_SIGMA^2 / (NETWORK_SIGMA^2 +
(angle_sigma / tan a)^2): the floor decides for a steep ray (w 0.96 at 30 degrees with 0.015 rad),
the network's depth for one near the horizon (w 0.5 at 7 degrees), and a pitch error costs less
than with the floor alone (README, The floor). A person whose lowest
point is less than MIN_ANGLE_DEG below the horizon keeps the network's depth outright, and so does
one the floor would move by more than MAX_RATIO either way (standing on a stair, a chair or
another floor; being carried): the monocular depth is rarely that wrong.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mhr2_ros.errors import InputError

MIN_ANGLE_DEG = 2.0  # least angle of a person's lowest point below the horizon for a floor range
MAX_RATIO = 1.5  # a floor range farther than this factor from the network's is not the person's floor
# Relative sigma of the network's depth: the 68th percentile of |log(predicted / true depth)| of the
# shipped model on the tuning set with the true K (0.122)
NETWORK_SIGMA = 0.12


@dataclass
class FloorScales:
    scale: np.ndarray  # (M,) factor applied to each person's distance from the camera (1: unchanged)
    measured: np.ndarray  # (M,) bool: the floor took part in the scale
    angle: np.ndarray  # (M,) radians of each person's lowest point below the horizon (before scaling)
    weight: np.ndarray  # (M,) the floor's weight in the scale (0: the network's depth, 1: the floor's)


def check_floor_plane(plane) -> np.ndarray:
    """(4,) (n_x, n_y, n_z, d) in the camera's optical frame with n . x = d on the floor, n along
    gravity (down), d > 0 the camera's height above the floor in meters -> float64, n of unit length."""
    p = np.asarray(plane, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(p[:3])) if p.size == 4 else 0.0
    if p.size != 4 or not np.all(np.isfinite(p)) or norm < 1e-6:
        raise InputError(f"floor plane must be 4 finite numbers (n_x, n_y, n_z, d) with a non-zero normal n, "
                         f"got {np.asarray(plane).tolist()}")
    p = p / norm
    if p[3] <= 0:
        raise InputError(f"floor plane (n, d) = {np.round(p, 4).tolist()}: d must be the camera's height above the "
                         "floor (> 0) with n pointing down, along gravity; is the camera below the floor or n up?")
    return p


def floor_plane_from_mount(height_m: float, pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """The floor plane of a camera `height_m` above it, pitched down by `pitch_deg` (positive looks
    down) and rolled by `roll_deg` about its optical axis: (4,) in its optical frame."""
    if not (math.isfinite(height_m) and height_m > 0):
        raise InputError(f"camera height above the floor must be > 0 meters, got {height_m}")
    return np.array([*gravity_from_mount(pitch_deg, roll_deg), height_m], dtype=np.float64)


def gravity_from_mount(pitch_deg: float = 0.0, roll_deg: float = 0.0) -> np.ndarray:
    """(3,) unit gravity (down) in the optical frame of a camera pitched down by `pitch_deg` and
    rolled by `roll_deg` about its optical axis."""
    for name, value in (("pitch", pitch_deg), ("roll", roll_deg)):
        if not (math.isfinite(value) and abs(value) < 90):
            raise InputError(f"camera {name} must be between -90 and 90 degrees, got {value}")
    p, r = math.radians(pitch_deg), math.radians(roll_deg)
    # Gravity in the optical frame (x right, y down, z forward): (0, 1, 0) for a level camera;
    # pitching down turns it towards the optical axis (+z), rolling turns it about that axis.
    return np.array([math.sin(r) * math.cos(p), math.cos(r) * math.cos(p), math.sin(p)])


def floor_plane_in_camera(rotation, translation) -> np.ndarray:
    """The floor of a frame whose z = 0 plane is the floor and whose z axis points up (REP-105's
    base_footprint, odom, map), from the transform taking its points into the camera's optical
    frame (p_camera = rotation @ p_floor + translation: a TF lookup with the camera as target)
    -> (4,) plane (n, d) in the optical frame, checked (`check_floor_plane`)."""
    R = np.asarray(rotation, dtype=np.float64)
    t = np.asarray(translation, dtype=np.float64).reshape(-1)
    if R.shape != (3, 3) or t.shape != (3,) or not (np.all(np.isfinite(R)) and np.all(np.isfinite(t))):
        raise InputError(f"floor transform must be a finite 3x3 rotation and 3-vector, got shapes {R.shape}, {t.shape}")
    down = -R[:, 2]  # the floor frame's -z (gravity) in camera axes
    return check_floor_plane([*down, float(down @ t)])  # the floor frame's origin lies on the floor


def floor_scales(vertices: np.ndarray, plane: np.ndarray, angle_sigma: float) -> FloorScales:
    """vertices (M, V, 3) camera frame, meters; plane from `check_floor_plane`; angle_sigma: the
    lowest point's angular error, radians (0: the floor alone) -> FloorScales."""
    m = vertices.shape[0]
    scale, measured, angle, weight = np.ones(m), np.zeros(m, dtype=bool), np.zeros(m), np.zeros(m)
    n, d = plane[:3], float(plane[3])
    for i in range(m):
        v = vertices[i].astype(np.float64)
        below = v @ n  # (V,) meters below the camera centre
        low = int(np.argmax(below))
        angle[i] = math.asin(float(np.clip(below[low] / max(np.linalg.norm(v[low]), 1e-9), -1.0, 1.0)))
        if angle[i] < math.radians(MIN_ANGLE_DEG):
            continue
        s = d / below[low]
        if 1.0 / MAX_RATIO <= s <= MAX_RATIO:
            floor_sigma = angle_sigma / math.tan(angle[i])  # relative sigma of the floor's depth
            weight[i] = NETWORK_SIGMA**2 / (NETWORK_SIGMA**2 + floor_sigma**2)
            scale[i], measured[i] = s ** weight[i], True
    return FloorScales(scale, measured, angle, weight)


__all__ = ["FloorScales", "check_floor_plane", "floor_plane_from_mount", "floor_plane_in_camera", "floor_scales",
           "MIN_ANGLE_DEG", "MAX_RATIO", "NETWORK_SIGMA"]
