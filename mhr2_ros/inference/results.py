"""Plain result types: numpy float32 arrays, no torch, no ROS.

Frames are the camera (optical) frame: x right, y down, z forward, meters.
Pixel coordinates refer to the original input image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

# Anny phenotypes predicted per person, in this order (paper, "HMR prediction"); each in [0, 1].
SHAPE_NAMES = ("gender", "age", "muscle", "weight", "height", "proportions")


NETWORK_DEPTH = "network"  # Human.depth_source: the network's monocular depth
MEASURED_DEPTH = "depth image"  # Human.depth_source: scaled to a registered depth image
FLOOR_DEPTH = "floor"  # Human.depth_source: scaled so the body's lowest point is on a known floor
DEPTH_SOURCES = (NETWORK_DEPTH, MEASURED_DEPTH, FLOOR_DEPTH)  # the order of Human.msg's DEPTH_* values
GIVEN_K, PREDICTED_K = "given", "predicted"  # FrameResult.K_source: the caller's K, the network's field of view


@dataclass
class Human:
    score: float  # detection confidence in [0, 1]
    pelvis_2d: np.ndarray  # (2,) pelvis pixel (u, v) in the original image
    depth: float  # pelvis z in meters
    nearness: float  # network nearness, log-inverse depth normalised by focal (depth fusion leaves it)
    position: np.ndarray  # (3,) pelvis position, camera frame, meters
    orientation: np.ndarray  # (3, 3) pelvis rotation, camera frame (body axes -> camera)
    shape: np.ndarray  # (6,) Anny phenotypes in [0, 1]: gender, age, muscle, weight, height, proportions
    pose_6d: np.ndarray  # (num_bones, 6) local bone rotations (6D), root first
    height: float  # standing height of the body in meters (rest pose)
    joints_3d: np.ndarray  # (J, 3) joints, camera frame, meters (order: body.JOINT_NAMES)
    keypoints_2d: np.ndarray  # (J, 2) joints projected with K, pixels
    box: np.ndarray  # (4,) x_min, y_min, x_max, y_max in pixels (projected mesh, clipped to image)
    vertices: Optional[np.ndarray] = None  # (V, 3) mesh vertices, camera frame, meters
    track_feature: Optional[np.ndarray] = None  # (track_dim,) appearance feature
    track_id: Optional[str] = None  # set by the tracker
    # where depth / position come from: one of DEPTH_SOURCES, NETWORK_DEPTH (monocular),
    # MEASURED_DEPTH (scaled to a depth camera's image, inference/depth_fusion.py) or FLOOR_DEPTH
    # (scaled until the lowest point is on a known floor, inference/floor_contact.py); keypoints_2d
    # and box are unchanged by either
    depth_source: str = NETWORK_DEPTH
    # (P, 3, 3) body axes -> camera of the REP-155 body parts (body.joints.BODY_PARTS, their bones' turns);
    # None where no body model posed them (ground truth read from disk, stand-ins)
    part_rotations: Optional[np.ndarray] = None


@dataclass
class FrameResult:
    humans: List[Human]  # detections, best score first
    K: np.ndarray  # (3, 3) intrinsics used, pixels of the original image
    K_source: str  # "given" (user / camera_info) or "predicted" (network FOV)
    fov_y: float  # vertical field of view of K, radians
    image_size: tuple  # (height, width) of the original image
    timings: dict = field(default_factory=dict)  # stage -> seconds
    # degrees the image was turned about its optical axis to level it (inference/level.py: a rolled
    # camera whose gravity was given); None: it went in as it came
    level_roll_deg: Optional[float] = None

    def __len__(self) -> int:
        return len(self.humans)
