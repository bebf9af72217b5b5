"""The embedded default input of `mhr2 demo`: a procedural scene with exact ground truth.

Three Anny bodies (an adult, a child, an elder) stand on a floor in front of a
level camera at 1.4 m. Meshes are rendered with the overlay rasteriser, so no
image file ships with the package and the ground truth is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List

import cv2
import numpy as np
import torch

from mhr2_ros.body import BodyModel, SHAPE_NAMES
from mhr2_ros.geometry import IDENTITY_6D, intrinsics_from_fov, matrix_to_rotation_6d, project
from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.io.overlay import draw_meshes

CAMERA_HEIGHT = 1.4  # meters above the floor; the floor is the plane y = CAMERA_HEIGHT


@dataclass
class Person:
    x: float  # meters, right of the optical axis
    z: float  # meters, depth of the pelvis
    yaw_deg: float  # rotation about the vertical; 0 faces the camera
    age: float  # Anny age phenotype in [0, 1]: 0 newborn, 0.215 4 years, 0.415 11, 0.77 18, 1 110


DEFAULT_PEOPLE = (Person(-1.1, 4.0, 20.0, 0.8), Person(0.3, 3.2, -30.0, 0.22), Person(1.6, 6.0, 0.0, 1.0))  # ~41, 4, 110 years


def _background(width: int, height: int, K: np.ndarray) -> np.ndarray:
    """Sky gradient above the horizon, a floor with a perspective grid below it."""
    img = np.zeros((height, width, 3), np.uint8)
    horizon = int(round(K[1, 2]))
    rows = np.linspace(0, 1, max(horizon, 1))[:, None, None]
    img[:horizon] = (1 - rows) * np.array([120, 160, 220]) + rows * np.array([200, 215, 235])
    img[horizon:] = (150, 140, 120)
    for x in np.arange(-10.0, 10.5, 1.0):  # lines running away from the camera
        ends = project(np.array([[x, CAMERA_HEIGHT, 1.0], [x, CAMERA_HEIGHT, 60.0]]), K)
        cv2.line(img, tuple(map(int, ends[0])), tuple(map(int, ends[1])), (110, 100, 90), 1, cv2.LINE_AA)
    for z in np.arange(1.0, 30.0, 1.0):  # lines across
        ends = project(np.array([[-30.0, CAMERA_HEIGHT, z], [30.0, CAMERA_HEIGHT, z]]), K)
        cv2.line(img, tuple(map(int, ends[0])), tuple(map(int, ends[1])), (110, 100, 90), 1, cv2.LINE_AA)
    return img


def _yaw_6d(deg: float) -> torch.Tensor:
    """Root rotation turning the body about its vertical (Anny's Z) axis."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    R = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return matrix_to_rotation_6d(R)


def render_demo_scene(
    body: BodyModel, width: int = 640, height: int = 480, fov_deg: float = 60.0,
    people: tuple = DEFAULT_PEOPLE,
) -> tuple[np.ndarray, FrameResult]:  # fmt: skip
    """(HxWx3 uint8 RGB image, ground-truth FrameResult with K_source "given")."""
    K = intrinsics_from_fov(math.radians(fov_deg), width, height)
    n = len(people)
    rot6d = torch.tensor(IDENTITY_6D).repeat(n, body.num_bones, 1)
    rot6d[:, 0] = torch.stack([_yaw_6d(p.yaw_deg) for p in people])
    shape = torch.full((n, len(SHAPE_NAMES)), 0.5)
    shape[:, SHAPE_NAMES.index("age")] = torch.tensor([p.age for p in people])
    with torch.no_grad():
        out = body(rot6d, shape)
    humans: List[Human] = []
    for i, p in enumerate(people):
        verts = out.vertices[i].numpy().astype(np.float64)
        # feet on the floor: the lowest vertex (largest y) touches y = CAMERA_HEIGHT
        position = np.array([p.x, CAMERA_HEIGHT - verts[:, 1].max(), p.z])
        joints = out.joints[i].numpy() + position
        verts = verts + position
        uv = project(verts, K)
        humans.append(Human(
            score=1.0, pelvis_2d=project(position, K).astype(np.float32), depth=float(p.z),
            nearness=float("nan"), position=position.astype(np.float32),
            orientation=out.orientation[i].numpy(), shape=shape[i].numpy(),
            pose_6d=rot6d[i].numpy(), height=float(out.height[i]),
            joints_3d=joints.astype(np.float32), keypoints_2d=project(joints, K).astype(np.float32),
            box=np.array([*uv.min(0), *uv.max(0)], np.float32), vertices=verts.astype(np.float32),
            part_rotations=out.part_rotations[i].numpy(), track_id=f"gt{i}",
        ))  # fmt: skip
    frame = FrameResult(humans, K, "given", math.radians(fov_deg), (height, width))
    image = _background(width, height, K)
    draw_meshes(image, frame, body.faces.cpu().numpy(), alpha=1.0)
    return image, frame
