"""Synthetic detection streams for tests and benchmarks of the tracker.

People walk on straight lines at constant velocity in the camera frame (meters), are
projected with a pinhole K, and become `Human`s with noisy pixel, depth, orientation
(facing the walking direction) and a track feature = per-identity random 4096-d vector +
noise. Occlusions (frame intervals), random misses and false positives (random place,
random feature) are available. Ground truth comes with every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mhr2_ros.geometry import intrinsics_from_values, nearness_from_depth, project, unproject
from mhr2_ros.inference.results import FrameResult, Human


@dataclass
class Walker:
    identity: int
    start: np.ndarray  # (3,) camera-frame position at stamp 0, meters
    velocity: np.ndarray  # (3,) m/s, constant
    frames: Optional[Tuple[int, int]] = None  # [first, last) frames in the scene; None = always
    hidden: List[Tuple[int, int]] = field(default_factory=list)  # [first, last) frames not detected

    def position(self, stamp: float) -> np.ndarray:
        return np.asarray(self.start, float) + stamp * np.asarray(self.velocity, float)

    def present(self, frame: int) -> bool:
        return self.frames is None or self.frames[0] <= frame < self.frames[1]

    def visible(self, frame: int) -> bool:
        return self.present(frame) and not any(a <= frame < b for a, b in self.hidden)


@dataclass
class SimConfig:
    width: int = 640  # image size, pixels
    height: int = 480
    focal: float = 500.0  # pixels
    feature_dim: int = 4096
    feature_noise: float = 0.3  # std of the per-detection noise; identity vectors have std 1
    pixel_noise: float = 2.0  # std, pixels
    depth_noise_rel: float = 0.02  # std, fraction of the depth
    orientation_noise_deg: float = 3.0  # std of a random rotation angle, degrees
    miss_rate: float = 0.0  # probability that a visible person is not detected
    false_positive_rate: float = 0.0  # expected false detections per frame (Poisson)
    nearness_ref_focal: float = 768.0

    @property
    def K(self) -> np.ndarray:
        return intrinsics_from_values(self.focal, self.focal, self.width / 2.0, self.height / 2.0)


@dataclass
class SimFrame:
    stamp: float
    frame: FrameResult
    identities: List[Optional[int]]  # per human: walker identity, None for a false positive
    gt: List[Tuple[int, np.ndarray, np.ndarray]]  # visible walkers: (identity, position (3,), pixel (2,))


def facing_rotation(velocity: np.ndarray) -> np.ndarray:
    """Body (x forward, y left, z up) -> camera rotation for a person walking along velocity."""
    fwd = np.array([velocity[0], 0.0, velocity[2]], dtype=float)
    fwd = fwd / np.linalg.norm(fwd) if np.linalg.norm(fwd) > 1e-9 else np.array([0.0, 0.0, -1.0])
    up = np.array([0.0, -1.0, 0.0])  # camera y points down
    return np.stack([fwd, np.cross(up, fwd), up], axis=1)


def _random_rotation(rng: np.random.Generator, std_deg: float) -> np.ndarray:
    axis = rng.standard_normal(3)
    axis /= np.linalg.norm(axis)
    angle = np.radians(std_deg) * rng.standard_normal()
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def make_human(position: np.ndarray, rotation: np.ndarray, feature: np.ndarray, cfg: SimConfig,
               rng: np.random.Generator, score: float = 0.9) -> Human:
    """A noisy detection of a pelvis at `position` (3,) with orientation `rotation` (3, 3)."""
    K = cfg.K
    pixel = project(np.asarray(position, float), K) + cfg.pixel_noise * rng.standard_normal(2)
    depth = float(position[2] * (1.0 + cfg.depth_noise_rel * rng.standard_normal()))
    pos = unproject(pixel, np.float64(depth), K)
    rot = rotation @ _random_rotation(rng, cfg.orientation_noise_deg)
    half = 0.3 * cfg.focal / max(depth, 0.1)  # ~ body half-width, pixels
    return Human(
        score=score, pelvis_2d=pixel.astype(np.float32), depth=depth,
        nearness=float(nearness_from_depth(depth, cfg.focal, cfg.nearness_ref_focal)),
        position=pos.astype(np.float32), orientation=rot.astype(np.float32),
        shape=np.zeros(6, np.float32), pose_6d=np.zeros((1, 6), np.float32), height=1.7,
        joints_3d=pos[None].astype(np.float32), keypoints_2d=pixel[None].astype(np.float32),
        box=np.array([pixel[0] - half, pixel[1] - 3 * half, pixel[0] + half, pixel[1] + 3 * half], np.float32),
        track_feature=feature.astype(np.float32),
    )


def panning_camera(stamps: Sequence[float], amplitude_deg: float, period_s: float) -> List[np.ndarray]:
    """(4, 4) poses (fixed <- camera) of a camera turning its head left and right about its vertical
    axis, yaw = amplitude sin(2 pi t / period), from the fixed frame = the camera at yaw 0."""
    poses = []
    for t in stamps:
        yaw = np.radians(amplitude_deg) * np.sin(2.0 * np.pi * float(t) / period_s)
        c, s = np.cos(yaw), np.sin(yaw)
        pose = np.eye(4)
        pose[:3, :3] = [[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]  # about y (the camera's y points down)
        poses.append(pose)
    return poses


def _in_view(position: np.ndarray, cfg: SimConfig, min_depth: float = 0.5) -> bool:
    """The pelvis is in front of the camera and inside the image."""
    if position[2] < min_depth:
        return False
    u, v = project(position, cfg.K)
    return 0.0 <= u < cfg.width and 0.0 <= v < cfg.height


def generate(walkers: Sequence[Walker], stamps: Sequence[float], cfg: Optional[SimConfig] = None,
             seed: int = 0, camera_poses: Optional[Sequence[np.ndarray]] = None) -> List[SimFrame]:
    """One SimFrame per stamp: detections of the visible walkers (minus misses) + false positives.
    `camera_poses`: per stamp the camera's (4, 4) pose in the walkers' frame (fixed <- camera); the
    detections and `gt` are then in each frame's camera, of the walkers in its view. None: the camera
    is the walkers' frame (every visible walker is detected, in view or not)."""
    cfg = cfg or SimConfig()
    rng = np.random.default_rng(seed)
    identity_features = {w.identity: rng.standard_normal(cfg.feature_dim) for w in walkers}
    out = []
    for f, stamp in enumerate(stamps):
        pose = np.eye(4) if camera_poses is None else np.asarray(camera_poses[f], dtype=np.float64)
        R, c = pose[:3, :3], pose[:3, 3]
        humans, ids, gt = [], [], []
        for w in walkers:
            if not w.visible(f):
                continue
            pos = R.T @ (w.position(stamp) - c)
            if camera_poses is not None and not _in_view(pos, cfg):  # turned away from
                continue
            gt.append((w.identity, pos, project(pos, cfg.K)))
            if rng.random() < cfg.miss_rate:
                continue
            feat = identity_features[w.identity] + cfg.feature_noise * rng.standard_normal(cfg.feature_dim)
            humans.append(make_human(pos, R.T @ facing_rotation(w.velocity), feat, cfg, rng))
            ids.append(w.identity)
        for _ in range(rng.poisson(cfg.false_positive_rate)):
            pos = unproject(np.array([rng.uniform(0, cfg.width), rng.uniform(0, cfg.height)]),
                            np.float64(rng.uniform(2.0, 8.0)), cfg.K)
            humans.append(make_human(pos, _random_rotation(rng, 180.0), rng.standard_normal(cfg.feature_dim),
                                     cfg, rng, score=0.5))
            ids.append(None)
        frame = FrameResult(humans=humans, K=cfg.K, K_source="given",
                            fov_y=2 * np.arctan(cfg.height / 2 / cfg.focal), image_size=(cfg.height, cfg.width))
        out.append(SimFrame(float(stamp), frame, ids, gt))
    return out


def crowd(n: int, frames: int, fps: float = 30.0, seed: int = 0, speed: float = 1.2) -> List[Walker]:
    """n people at 2-9 m, walking in random horizontal directions, staying mostly in view."""
    rng = np.random.default_rng(seed)
    duration = frames / fps
    walkers = []
    for i in range(n):
        z0 = rng.uniform(2.5, 8.5)
        heading = rng.uniform(0, 2 * np.pi)
        v = speed * rng.uniform(0.3, 1.0) * np.array([np.cos(heading), 0.0, np.sin(heading)])
        mid = np.array([rng.uniform(-0.35, 0.35) * z0, 0.4, z0])  # position at mid-sequence
        start = mid - v * duration / 2
        start[2] += max(0.0, 1.5 - min(start[2], start[2] + v[2] * duration))  # stay >= 1.5 m away
        walkers.append(Walker(identity=i, start=start, velocity=v))
    return walkers
