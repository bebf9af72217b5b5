"""Trajectories of a clip: people walk between waypoints with bounded turning, stop
now and then, avoid each other and the obstacles, leave the view and come back.

The simulation steps at least `substeps_hz` times a second (a whole number of steps per
frame), so trajectories are smooth at any frame rate, and the same at every fps that
divides `substeps_hz` (with 30: 1, 2, 3, 5, 6, 10, 15, 30); frames are sampled from it.
Ground positions are (x, z) in the camera's level frame, yaw 0 faces the camera (scene.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from mhr2_ros.training.synthetic.camera import Camera
from mhr2_ros.training.synthetic.scene import Box, PersonSpec

STRIDE_PER_HEIGHT = 0.7  # gait cycle (two steps) length / body height, from the gait's hip swing
ARRIVAL_M = 0.5  # a waypoint counts as reached within this distance
PUSH = 1.2  # weight of the inverse-distance repulsion against the pull toward the target


@dataclass(frozen=True)
class MotionConfig:
    """How people move in clips."""

    fps: float = 10.0  # frames per second
    speed_mps: Tuple[float, float] = (0.9, 1.5)  # preferred speed of a 1.7 m adult; scales with height
    turn_rate_deg: float = 150.0  # largest heading change per second, degrees
    accel_mps2: float = 1.5  # largest change of speed per second
    view_overshoot_m: Tuple[float, float] = (1.2, 2.5)  # how far beyond a view side routes turn back
    pause_probability: float = 0.2  # chance of stopping at a waypoint
    pause_s: Tuple[float, float] = (0.8, 2.5)  # duration of a stop, seconds
    avoid_radius_m: float = 1.3  # people steer away from others and obstacles closer than this
    substeps_hz: float = 30.0  # internal simulation rate


@dataclass
class Trajectories:
    """Per frame and person: (F, P, ...) arrays."""

    time: np.ndarray  # (F,) seconds
    position: np.ndarray  # (F, P, 2) ground (x, z), meters
    yaw: np.ndarray  # (F, P) radians
    phase: np.ndarray  # (F, P) gait phase, cycles in [0, 1)
    amplitude: np.ndarray  # (F, P) gait amplitude in [0, 1] (speed / preferred speed)


def make_route(rng: np.random.Generator, person: PersonSpec, cfg: MotionConfig, cam: Camera,
               depth_range: Tuple[float, float]) -> List[np.ndarray]:  # fmt: skip
    """Waypoints of a walker (and its start moved outside the view for 'cross')."""
    x0, z0 = person.start
    side = 1.0 if x0 >= 0 else -1.0

    def out(s: float, z: float) -> np.ndarray:  # a point beyond the view's side s at depth z
        return np.array([cam.side_x(z, s) + s * rng.uniform(*cfg.view_overshoot_m), z])

    if person.route == "cross":
        person.start = out(-side, z0)
        return [out(side if k % 2 == 0 else -side, z0 + rng.normal(0, 0.5)) for k in range(6)]
    if person.route == "out_and_back":
        pts = []
        for k in range(4):
            pts.append(out(side if k % 2 == 0 else -side, z0 + rng.normal(0, 0.3)))
            pts.append(np.array([x0 + rng.normal(0, 0.5), z0 + rng.normal(0, 0.3)]))
        return pts
    lo, hi = max(depth_range[0], 1.5), depth_range[1]
    pts = []
    for _ in range(10):  # wander: anywhere in the arena, which extends beyond the view sides
        z = rng.uniform(lo, max(lo + 0.5, min(hi, z0 * 1.5 + 3.0)))
        a, b = cam.side_x(z, -1.0) - cfg.view_overshoot_m[1], cam.side_x(z, 1.0) + cfg.view_overshoot_m[1]
        pts.append(np.array([rng.uniform(a, b), z]))
    return pts


def _preferred_speed(rng: np.random.Generator, cfg: MotionConfig, height_m: float) -> float:
    """Walking speed, m/s: children walk slower (speed grows with leg length)."""
    return float(rng.uniform(*cfg.speed_mps) * np.clip(height_m / 1.7, 0.45, 1.1))


def _steer(pos: np.ndarray, target: np.ndarray, obstacles: np.ndarray, radius: float) -> np.ndarray:
    """(P, 2) unit desired directions: toward the targets, pushed away from close people
    and obstacles (inverse-distance repulsion inside `radius`)."""
    to = target - pos
    desired = to / np.maximum(np.linalg.norm(to, axis=1, keepdims=True), 1e-6)
    others = np.concatenate([pos, obstacles]) if len(obstacles) else pos
    diff = pos[:, None] - others[None]  # (P, N, 2)
    dist = np.linalg.norm(diff, axis=-1)
    near = (dist < radius) & (dist > 1e-6)
    push = np.where(near[..., None], diff / np.maximum(dist, 1e-6)[..., None] ** 2, 0.0).sum(1) * PUSH
    steer = desired + push
    return steer / np.maximum(np.linalg.norm(steer, axis=1, keepdims=True), 1e-6)


def _beside(offset: np.ndarray, yaw: float) -> np.ndarray:
    """Ground vector of an (left, forward) offset in the frame of a person with `yaw`:
    a person facing the camera (yaw 0) has its left toward +x."""
    left = np.array([math.cos(yaw), math.sin(yaw)])
    fwd = np.array([math.sin(yaw), -math.cos(yaw)])
    return offset[0] * left + offset[1] * fwd


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + math.pi) % (2 * math.pi) - math.pi


def simulate(rng: np.random.Generator, people: Sequence[PersonSpec], heights: np.ndarray, frames: int,
             cfg: MotionConfig, cam: Camera, depth_range: Tuple[float, float],
             boxes: Sequence[Box] = ()) -> Trajectories:  # fmt: skip
    """Trajectories of `frames` frames at cfg.fps; `heights` (P,) body heights in meters."""
    n = len(people)
    walker = np.array([p.behaviour == "walk" for p in people], dtype=bool)
    routes = [make_route(rng, p, cfg, cam, depth_range) if p.behaviour == "walk" and p.route != "follow"
              else [] for p in people]  # fmt: skip
    pos = np.array([p.start for p in people], dtype=np.float64).reshape(n, 2)
    yaw = np.array([p.yaw for p in people], dtype=np.float64)
    pref = np.array([_preferred_speed(rng, cfg, h) for h in heights]).reshape(n)
    cadence = pref / (STRIDE_PER_HEIGHT * np.maximum(heights, 0.3))  # gait cycles per second at full stride
    speed, phase = np.where(walker, pref, 0.0), rng.uniform(0, 1, n)  # walkers are already under way
    wp, pause = np.zeros(n, dtype=np.int64), np.zeros(n)
    obstacles = np.array([[b.x, b.z] for b in boxes]).reshape(-1, 2)
    for i, person in enumerate(people):  # head toward the first waypoint; followers beside
        if routes[i]:
            pos[i] = person.start  # 'cross' routes start outside the view
            d = routes[i][0] - pos[i]
            yaw[i] = math.atan2(d[0], -d[1])
        elif person.route == "follow" and person.leader is not None:
            yaw[i] = yaw[person.leader]
            pos[i] = pos[person.leader] + _beside(person.follow_offset, yaw[i])
            person.start = pos[i].copy()
    sub = max(1, int(math.ceil(cfg.substeps_hz / cfg.fps)))
    dt = 1.0 / (cfg.fps * sub)
    out = Trajectories(np.arange(frames) / cfg.fps, np.zeros((frames, n, 2)), np.zeros((frames, n)),
                       np.zeros((frames, n)), np.zeros((frames, n)))  # fmt: skip
    for k in range(frames * sub):
        if k % sub == 0:
            f = k // sub
            out.position[f], out.yaw[f], out.phase[f] = pos, yaw, phase % 1.0
            out.amplitude[f] = np.where(walker, np.clip(speed / np.maximum(pref, 1e-6), 0, 1), 0.0)
        if not walker.any():
            continue
        target, goal_speed = _targets(people, routes, wp, pos, yaw, pref)
        goal_speed = np.where(pause > 0, 0.0, goal_speed)
        direction = _steer(pos, target, obstacles, cfg.avoid_radius_m)
        want = np.arctan2(direction[:, 0], -direction[:, 1])
        turn = np.clip(_wrap(want - yaw), -math.radians(cfg.turn_rate_deg) * dt, math.radians(cfg.turn_rate_deg) * dt)
        yaw = np.where(walker, _wrap(yaw + turn), yaw)
        speed = np.where(walker, speed + np.clip(goal_speed - speed, -cfg.accel_mps2 * dt, cfg.accel_mps2 * dt), 0.0)
        pos = pos + (speed * dt)[:, None] * np.stack([np.sin(yaw), -np.cos(yaw)], 1)
        phase = phase + dt * cadence * np.clip(speed / np.maximum(pref, 1e-6), 0, 1) ** 0.5
        pause = np.maximum(pause - dt, 0.0)
        for i, route in enumerate(routes):
            if route and np.linalg.norm(route[wp[i] % len(route)] - pos[i]) < ARRIVAL_M:
                wp[i] += 1
                if rng.uniform() < cfg.pause_probability:
                    pause[i] = rng.uniform(*cfg.pause_s)
    return out


def _targets(people, routes, wp, pos, yaw, pref) -> Tuple[np.ndarray, np.ndarray]:
    """(P, 2) current target points and (P,) goal speeds; followers aim at their place
    beside their leader and speed up or slow down to keep it."""
    n = len(people)
    target, goal = pos.copy(), np.zeros(n)
    for i, person in enumerate(people):
        if routes[i]:
            target[i], goal[i] = routes[i][wp[i] % len(routes[i])], pref[i]
        elif person.route == "follow" and person.leader is not None:
            j = person.leader
            spot = pos[j] + _beside(person.follow_offset, yaw[j])
            fwd = np.array([math.sin(yaw[j]), -math.cos(yaw[j])])
            ahead = spot + 1.0 * fwd  # aim a little ahead of the spot to walk parallel
            target[i] = ahead
            gap = float((spot - pos[i]) @ fwd)
            goal[i] = float(np.clip(pref[j] * (1.0 + 0.8 * gap), 0.0, 1.3 * pref[i] + 0.3))
    return target, goal
