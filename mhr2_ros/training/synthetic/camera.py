"""Camera sampling: image size, vertical FOV, height above the floor, pitch and roll.

Two frames are used. The *level* frame has its origin at the camera centre, x right,
y down along gravity, z forward and horizontal; the floor is the plane y = height.
The *camera* frame is the OpenCV optical frame (x right, y down, z along the optical
axis), the level frame pitched down by `pitch` and rolled by `roll`:
x_camera = R @ x_level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from mhr2_ros.geometry import intrinsics_from_fov

# Aspect ratios (width, height) sampled when no size is fixed: landscape, portrait, square.
ASPECTS = ((4, 3), (3, 4), (16, 9), (9, 16), (1, 1), (3, 2), (2, 3))


@dataclass(frozen=True)
class CameraConfig:
    """Ranges the camera is drawn from (uniformly unless said otherwise)."""

    fov_deg: Tuple[float, float] = (30.0, 100.0)  # vertical field of view, degrees
    height_m: Tuple[float, float] = (0.4, 4.0)  # optical centre above the floor, meters
    # The camera looks at a point `aim_height_m` above the floor at the distance of a random person
    # slot, plus `pitch_jitter_deg`; the result is clipped to `pitch_deg` (positive looks down).
    aim_height_m: Tuple[float, float] = (0.5, 1.5)
    pitch_jitter_deg: float = 6.0
    pitch_deg: Tuple[float, float] = (-15.0, 50.0)
    roll_deg: Tuple[float, float] = (-4.0, 4.0)  # rotation about the optical axis, degrees
    size: Optional[Tuple[int, int]] = None  # fixed (width, height) in pixels; None: sampled
    aspects: Tuple[Tuple[int, int], ...] = ASPECTS  # (width, height) ratios when size is None
    long_side: Tuple[int, int] = (320, 1280)  # pixels of the longer side when size is None


@dataclass(frozen=True)
class Camera:
    """A sampled pinhole camera (square pixels, principal point at the centre)."""

    width: int  # pixels
    height: int  # pixels
    fov_y: float  # vertical field of view, radians
    height_m: float  # optical centre above the floor, meters
    pitch: float  # radians, positive looks down
    roll: float  # radians, about the optical axis
    K: np.ndarray  # (3, 3) float32 intrinsics, pixels
    R: np.ndarray  # (3, 3) float64 level frame -> camera frame

    @property
    def focal(self) -> float:
        return float(self.K[1, 1])

    @property
    def half_fov_x(self) -> float:
        """Half of the horizontal field of view, radians."""
        return math.atan(self.width / 2.0 / float(self.K[0, 0]))

    def floor_plane(self) -> np.ndarray:
        """(4,) plane (n, d) in the camera frame with n . x = d on the floor, n pointing
        down (gravity) and d the camera height."""
        normal = self.R @ np.array([0.0, 1.0, 0.0])
        return np.array([*normal, self.height_m], dtype=np.float64)

    def side_x(self, z: float, side: float, top_m: float = 2.2) -> float:
        """Level-frame x beyond which a standing person at depth z is out of the image on
        `side` (+1 right, -1 left): where the image border crosses the vertical segment
        from the floor to `top_m` above it, whichever is farther out."""
        f, cx = float(self.K[0, 0]), float(self.K[0, 2])
        edge = (self.width - 0.5 if side > 0 else -0.5) - cx  # border column relative to the centre
        r0, r2 = self.R[0], self.R[2]
        xs = []
        for y in (self.height_m, self.height_m - top_m):  # level y of the floor and of the head
            # f * (r0 . p) = edge * (r2 . p) with p = (x, y, z): linear in x
            a = f * r0[0] - edge * r2[0]
            b = f * (r0[1] * y + r0[2] * z) - edge * (r2[1] * y + r2[2] * z)
            xs.append(-b / a if abs(a) > 1e-9 else side * 1e3)
        return max(xs) if side > 0 else min(xs)

    def to_camera(self, points_level: np.ndarray) -> np.ndarray:
        """(..., 3) level-frame points -> camera frame."""
        return points_level @ self.R.T


def level_to_camera(pitch: float, roll: float) -> np.ndarray:
    """Rotation (3, 3) taking level-frame coordinates to camera coordinates."""
    cp, sp, cr, sr = math.cos(pitch), math.sin(pitch), math.cos(roll), math.sin(roll)
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, cp, sp], [0.0, -sp, cp]])  # camera axes in level: z -> (0, sp, cp)
    spin = np.array([[cr, -sr, 0.0], [sr, cr, 0.0], [0.0, 0.0, 1.0]])
    return (tilt @ spin).T  # columns of tilt @ spin are the camera axes in the level frame


def sample_size(rng: np.random.Generator, cfg: CameraConfig) -> Tuple[int, int]:
    """(width, height): the fixed size, else a random aspect ratio and long side (even)."""
    if cfg.size is not None:
        return int(cfg.size[0]), int(cfg.size[1])
    aw, ah = cfg.aspects[int(rng.integers(len(cfg.aspects)))]
    long_side = rng.uniform(*cfg.long_side)
    scale = long_side / max(aw, ah)
    return 2 * max(8, round(aw * scale / 2)), 2 * max(8, round(ah * scale / 2))


def sample_camera(rng: np.random.Generator, cfg: CameraConfig, aim_distance_m: float) -> Camera:
    """Draw a camera looking roughly at a person `aim_distance_m` away."""
    width, height = sample_size(rng, cfg)
    fov_y = math.radians(rng.uniform(*cfg.fov_deg))
    cam_h = float(rng.uniform(*cfg.height_m))
    aim_h = float(rng.uniform(*cfg.aim_height_m))
    pitch = math.atan2(cam_h - aim_h, max(aim_distance_m, 0.5)) + math.radians(rng.normal(0, cfg.pitch_jitter_deg))
    pitch = float(np.clip(pitch, *np.radians(cfg.pitch_deg)))
    roll = math.radians(rng.uniform(*cfg.roll_deg))
    K = intrinsics_from_fov(fov_y, width, height)
    return Camera(width, height, fov_y, cam_h, pitch, roll, K, level_to_camera(pitch, roll))
