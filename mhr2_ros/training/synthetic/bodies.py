"""Posing the people of a frame: joint angles over time, the body model forward, feet
on the floor, and everything expressed in the camera frame.

The ground-truth pose of a person is exactly what the body model was fed: its root
rotation already contains the camera's pitch and roll, so BodyModel(pose_6d, shape)
+ position reproduces the rendered vertices in the camera frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mhr2_ros.body.anny_body import ANNY_TO_CAMERA
from mhr2_ros.training.synthetic import poses
from mhr2_ros.training.synthetic.camera import Camera
from mhr2_ros.training.synthetic.motion import Trajectories
from mhr2_ros.training.synthetic.rig import DOF_INDEX, RigAxes, pose_rotations, rotations_to_6d
from mhr2_ros.training.synthetic.scene import PersonSpec

IDLE_SWAY_DEG = {"spine.bend": 1.5, "neck.twist": 8.0, "neck.flex": 3.0}  # standing still is never frozen


@dataclass
class PosedBodies:
    """P people of one frame, camera frame, meters."""

    pose_6d: torch.Tensor  # (P, 163, 6) float32, fed to the body model
    shape: torch.Tensor  # (P, 6) float32
    vertices: torch.Tensor  # (P, V, 3) float32, placed (pelvis at `position`)
    joints: torch.Tensor  # (P, J, 3) float32, placed
    position: np.ndarray  # (P, 3) pelvis, camera frame
    ground: np.ndarray  # (P, 2) level-frame (x, z) of the pelvis on the floor
    orientation: np.ndarray  # (P, 3, 3) REP-103 body -> camera
    height: np.ndarray  # (P,) rest standing height, meters


def frame_dofs(people: Sequence[PersonSpec], traj: Trajectories, f: int) -> np.ndarray:
    """(P, D) joint angles (degrees) of every person at frame f."""
    t = float(traj.time[f])
    out = np.stack([p.base_pose for p in people]).astype(np.float64) if people else np.zeros((0, len(DOF_INDEX)))
    for i, person in enumerate(people):
        if person.behaviour == "walk":
            continue
        if person.gesture is not None:
            when = np.array([t + person.idle_phase])  # people do not wave in sync
            out[i] = poses.gesture(person.gesture, when, out[i : i + 1], person.mirrored)[0]
        for dof, amp in IDLE_SWAY_DEG.items():
            out[i, DOF_INDEX[dof]] += amp * math.sin(0.7 * t * (1 + DOF_INDEX[dof] % 3) + person.idle_phase)
    walk = np.array([p.behaviour == "walk" for p in people], dtype=bool)
    if walk.any():
        swing = np.array([p.swing_arms for p in people])[walk]
        out[walk] = poses.gait(traj.phase[f, walk], traj.amplitude[f, walk], out[walk], swing)
    return poses.clip_to_limits(out)


def camera_root(cam: Camera) -> np.ndarray:
    """(3, 3) rotation in Anny axes that tilts a body by the camera's pitch and roll:
    x_camera = A2C @ root @ x_anny turns level-frame bodies into camera-frame ones."""
    a2c = ANNY_TO_CAMERA.double().numpy()
    return a2c.T @ cam.R @ a2c


def pose_bodies(body, rig: RigAxes, people: Sequence[PersonSpec], dofs: np.ndarray, yaw: np.ndarray,
                ground: np.ndarray, cam: Camera) -> PosedBodies:  # fmt: skip
    """Run the body model and stand everyone on the floor at `ground` (P, 2)."""
    n = len(people)
    root = np.broadcast_to(camera_root(cam), (n, 3, 3))
    rots = pose_rotations(dofs, yaw, rig, body.num_bones, root)
    device = body.faces.device
    pose_6d = torch.as_tensor(rotations_to_6d(rots), dtype=torch.float32, device=device)
    shape = torch.as_tensor(np.stack([p.phenotype.shape for p in people]) if n else np.zeros((0, 6)),
                            dtype=torch.float32, device=device)  # fmt: skip
    with torch.no_grad():
        out = body(pose_6d, shape)
    R = torch.as_tensor(cam.R, dtype=torch.float32, device=device)
    lowest = (out.vertices @ R)[..., 1].amax(1) if n else torch.zeros(0, device=device)  # level y is down
    level = np.zeros((n, 3))
    level[:, 0], level[:, 2] = ground[:, 0], ground[:, 1]
    level[:, 1] = cam.height_m - lowest.double().cpu().numpy()  # the lowest vertex touches the floor
    position = cam.to_camera(level)
    pos_t = torch.as_tensor(position, dtype=torch.float32, device=device)[:, None]
    return PosedBodies(
        pose_6d=pose_6d.cpu(), shape=shape.cpu(), vertices=(out.vertices + pos_t).cpu(),
        joints=(out.joints + pos_t).cpu(), position=position.astype(np.float32),
        ground=np.asarray(ground, dtype=np.float64).reshape(n, 2),
        orientation=out.orientation.cpu().numpy(), height=out.height.cpu().numpy(),
    )  # fmt: skip
