"""Planning a clip before any frame is rendered: camera, people, obstacles, stools,
background, lighting and everyone's trajectory, all from one numpy generator."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List

import numpy as np
import torch

from mhr2_ros.training.synthetic.assets import SynthAssets
from mhr2_ros.training.synthetic.background import (
    BackgroundLayers, BackgroundSpec, background_layers, sample_background,
)  # fmt: skip
from mhr2_ros.training.synthetic.bodies import frame_dofs, pose_bodies
from mhr2_ros.training.synthetic.camera import Camera, sample_camera
from mhr2_ros.training.synthetic.config import SynthConfig
from mhr2_ros.training.synthetic.motion import Trajectories, simulate
from mhr2_ros.training.synthetic.render import Lighting, sample_lighting
from mhr2_ros.training.synthetic.scene import (
    Box, PersonSpec, place_people, sample_distance, sample_obstacles, sample_person,
)  # fmt: skip
from mhr2_ros.training.synthetic.textures import ATTRIBUTES, R as REGION, vertex_attributes

STOOL_DEPTH_PER_HEIGHT = 0.2  # stool footprint depth / sitter height


@dataclass
class ClipPlan:
    """Everything a clip's frames are rendered from (mutable: tests and demos may edit it)."""

    camera: Camera  # fixed for the clip
    people: List[PersonSpec]
    boxes: List[Box]  # obstacles and stools
    background: BackgroundSpec
    lighting: Lighting
    trajectories: Trajectories
    attrs: torch.Tensor  # (P, V, textures.ATTRIBUTES) float32 vertex colours and patterns
    heights: np.ndarray  # (P,) standing heights, meters
    cache: dict = field(default_factory=dict)  # render device -> background.BackgroundLayers

    def layers(self, device) -> BackgroundLayers:
        """The background of the clip's fixed camera on `device`, ray-cast once."""
        key = str(device)
        if key not in self.cache:
            self.cache[key] = background_layers(self.background, self.camera, device)
        return self.cache[key]


def _heights(assets: SynthAssets, people: List[PersonSpec]) -> np.ndarray:
    """(P,) rest standing heights of the sampled bodies, meters (the shape blend alone)."""
    if not people:
        return np.zeros(0)
    body = assets.body
    shape = torch.as_tensor(np.stack([p.phenotype.shape for p in people]), dtype=torch.float32,
                            device=body.faces.device)  # fmt: skip
    with torch.no_grad():
        return body.rest_height(shape).double().cpu().numpy()


def _stools(assets: SynthAssets, plan: ClipPlan, rng: np.random.Generator) -> List[Box]:
    """A stool under every person sitting on one: its top at the lowest point of the
    hips and thighs of the first frame's pose, footprint under the pelvis."""
    seated = [i for i, p in enumerate(plan.people) if p.behaviour == "sit_stool"]
    if not seated:
        return []
    people = [plan.people[i] for i in seated]
    traj = plan.trajectories
    dofs = frame_dofs(people, _subset(traj, seated), 0)
    yaw, ground = traj.yaw[0, seated], traj.position[0, seated]
    posed = pose_bodies(assets.body, assets.rig, people, dofs, yaw, ground, plan.camera)
    thighs = torch.as_tensor(assets.regions.labels == REGION["trousers"])
    boxes = []
    for k, i in enumerate(seated):
        level = posed.vertices[k].double().numpy() @ plan.camera.R  # camera -> level frame
        seat = level[thighs.numpy(), 1].max()  # level y grows downward: the lowest thigh point
        h = plan.camera.height_m - seat
        depth = STOOL_DEPTH_PER_HEIGHT * plan.heights[i]
        yaw = float(traj.yaw[0, i])
        back = np.array([-math.sin(yaw), math.cos(yaw)]) * 0.25 * depth  # a little behind the pelvis
        x, z = traj.position[0, i] + back
        colour = tuple(float(c) for c in rng.uniform(0.1, 0.8, 3))
        boxes.append(Box(float(x), float(z), -yaw, (1.1 * depth, max(h, 0.05), depth), colour))
    return boxes


def _subset(traj: Trajectories, idx: List[int]) -> Trajectories:
    return Trajectories(traj.time, traj.position[:, idx], traj.yaw[:, idx], traj.phase[:, idx], traj.amplitude[:, idx])


def plan_clip(cfg: SynthConfig, rng: np.random.Generator, assets: SynthAssets, frames: int) -> ClipPlan:
    """Everything random about a clip of `frames` frames (or one independent scene)."""
    place = cfg.placement
    count = int(rng.integers(place.people[0], place.people[1] + 1))
    people = [sample_person(rng, i, place, cfg.phenotypes, cfg.appearance) for i in range(count)]
    aim = sample_distance(rng, place)
    camera = sample_camera(rng, cfg.camera, aim)
    half_fov = camera.half_fov_x
    place_people(rng, people, place, half_fov)
    obstacles = sample_obstacles(rng, place, half_fov, people)
    heights = _heights(assets, people)
    traj = simulate(rng, people, heights, frames, cfg.motion, camera, place.distance_m, obstacles)
    if cfg.independent:  # a still of people caught mid-stride
        walk = np.array([p.behaviour == "walk" for p in people], dtype=bool)
        traj.amplitude[:, walk] = rng.uniform(0.5, 1.0, size=(frames, int(walk.sum())))
    far = max([place.distance_m[1]] + [float(np.abs(traj.position[..., 1]).max()) if count else 0.0])
    background = sample_background(rng, cfg.background, far)
    lighting = sample_lighting(rng, cfg.render)
    attrs = torch.stack([vertex_attributes(assets.regions, p.appearance, cfg.appearance) for p in people]) \
        if people else torch.zeros(0, assets.body.num_vertices, ATTRIBUTES)  # fmt: skip
    plan = ClipPlan(camera, people, list(obstacles), background, lighting, traj, attrs, heights)
    plan.boxes += _stools(assets, plan, rng)
    return plan
