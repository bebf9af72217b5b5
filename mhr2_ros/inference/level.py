"""A rolled camera seen as a level one: the image turned about the optical axis until gravity
(the floor's normal) points straight down in it, before the network, and the outputs turned back
after it.

The network was trained on cameras within a few degrees of level (the synthetic scenes' roll),
and a camera rolled about its optical axis (a humanoid's tilted head, a robot on a slope, a
hand-held camera) costs it people and metres (README, benchmarks/camera_roll.py). When gravity's
direction in the camera frame is known, so is the roll: the angle of its projection on the image
plane from straight down. It comes with a floor plane (n, d) (floor_contact.py's plane: n . x = d,
n along gravity; the node's floor_frame, `mhr2 detect --camera-height`) or alone (the node's
fixed_frame, z up by REP-105, without a floor_frame; `mhr2 detect --camera-roll` without a height).
`Leveller` rotates the camera frame about its z axis by that angle, which for a pinhole camera is
the homography H = K R K^-1 on the pixels (the same K and size: a turn about the principal point):

    lev = Leveller.from_gravity(floor, K, (h, w), 4.0)  # None: level already, or looking straight down
    result = detector(lev.image(rgb), K=K, depth=lev.depth(depth), floor=lev.floor(floor))
    lev.to_camera(result)                               # 3D and 2D fields back in the real camera

Every 3D output turns back by R^T (positions, joints, vertices, the pelvis orientation and the
root of pose_6d); the 2D points go back through H^-1 (exactly: a turn of the camera is a
homography), and each box is the projected mesh's again, clipped to the real image.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import cv2
import numpy as np
import torch

from mhr2_ros.body.anny_body import ANNY_TO_CAMERA
from mhr2_ros.errors import InputError
from mhr2_ros.geometry import matrix_to_rotation_6d, project, rotation_6d_to_matrix
from mhr2_ros.inference.postprocess import clipped_box
from mhr2_ros.inference.results import FrameResult

MIN_TILT = 0.2  # |(n_x, n_y)| below this (the camera within ~12 deg of straight down or up): no roll to undo


def floor_roll(floor: np.ndarray) -> Optional[float]:
    """Radians to turn the camera frame about its z axis (x right, y down) so that gravity (a (3,)
    direction, or a floor plane's n) has no x part and a positive y part (straight down in the
    image); None when the camera looks almost along gravity."""
    n = np.asarray(floor, np.float64).reshape(-1)[:3]
    n = n / np.linalg.norm(n)
    if math.hypot(n[0], n[1]) < MIN_TILT:
        return None
    return math.atan2(n[0], n[1])


def check_gravity(gravity) -> np.ndarray:
    """(3,) gravity (down) in the camera frame, any length -> float64 unit vector, or InputError."""
    g = np.asarray(gravity, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(g)) if g.size == 3 and np.all(np.isfinite(g)) else 0.0
    if norm < 1e-6:
        raise InputError(f"gravity must be 3 finite numbers (its direction in the camera frame: x right, y down, "
                         f"z forward), not all zero, got {np.asarray(gravity).tolist()}")
    return g / norm


def roll_matrix(angle: float) -> np.ndarray:
    """(3, 3) rotation about the camera's z axis: leveled = R @ camera."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class Leveller:
    """The level view of one rolled camera (see the module docstring): the same size and K, turned
    about the principal point. Where the turned view holds no pixel of the camera's (its corners),
    the nearest border pixel is repeated: black corners, which the training never showed, cost the
    shipped model a fifth of its recall and most of the gain, and a canvas large enough for the
    whole turned image shrinks the people at the network's fixed input size (at 10 degrees: F1 0.88
    against 0.92 for this view, MRPE 0.62 against 0.48 m; README, benchmarks/camera_roll.py)."""

    def __init__(self, angle: float, K: Optional[np.ndarray], size_hw: Tuple[int, int]) -> None:
        """`angle`: floor_roll's; `K`: the camera's, or None (the detector predicts it: its principal
        point is the image centre, and a turn about the axis does not depend on the focal length)."""
        h, w = size_hw
        self.size_hw = (int(h), int(w))
        self.angle = float(angle)
        self.R = roll_matrix(angle)
        K0 = np.array([[1.0, 0.0, w / 2.0], [0.0, 1.0, h / 2.0], [0.0, 0.0, 1.0]]) if K is None else K
        K0 = np.asarray(K0, np.float64)
        self.H = K0 @ self.R @ np.linalg.inv(K0)  # camera pixels -> level pixels

    @classmethod
    def from_gravity(cls, down, K: Optional[np.ndarray], size_hw, min_deg: float) -> Optional["Leveller"]:
        """A Leveller for the roll of gravity `down` ((3,) direction or (4,) floor plane), or None when
        it is under `min_deg` or undefined."""
        angle = floor_roll(down)
        if angle is None or abs(math.degrees(angle)) < min_deg:
            return None
        return cls(angle, K, size_hw)

    def image(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) the level view (bilinear; the border repeated where the camera saw nothing)."""
        h, w = self.size_hw
        return cv2.warpPerspective(image, self.H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def depth(self, depth: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """The depth image (any resolution of the image's aspect) turned alike: nearest, 0 (no
        measurement) where the camera saw nothing. Depth is z, which a turn about z leaves as it is."""
        if depth is None:
            return None
        (h, w), (dh, dw) = self.size_hw, depth.shape[:2]
        S = np.diag([dw / w, dh / h, 1.0])
        H = S @ self.H @ np.linalg.inv(S)
        return cv2.warpPerspective(depth, H, (dw, dh), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)

    def floor(self, floor: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """The floor plane (n, d) in the level camera frame: n turned, d as it is."""
        if floor is None:
            return None
        plane = np.asarray(floor, np.float64).reshape(-1).copy()
        plane[:3] = self.R @ plane[:3]
        return plane.astype(np.asarray(floor).dtype)

    def to_camera(self, frame: FrameResult, keep_vertices: bool = True) -> FrameResult:
        """The level view's result back in the real camera, in place (its K, given or predicted, is
        the camera's); returns it. Boxes need the humans' vertices (the projected mesh's box);
        `keep_vertices` False drops them afterwards."""
        back = self.R.T  # level -> camera
        H_back = np.linalg.inv(self.H)
        anny = ANNY_TO_CAMERA.double().numpy()
        root_turn = torch.as_tensor(anny.T @ back @ anny)  # the root of pose_6d is in Anny axes
        for human in frame.humans:
            human.position = (back @ np.asarray(human.position, np.float64)).astype(np.float32)
            human.orientation = (back @ np.asarray(human.orientation, np.float64)).astype(np.float32)
            if human.part_rotations is not None:
                human.part_rotations = (back @ np.asarray(human.part_rotations, np.float64)).astype(np.float32)
            human.joints_3d = (np.asarray(human.joints_3d, np.float64) @ self.R).astype(np.float32)  # rows: R^T x
            human.pelvis_2d = _homography(H_back, human.pelvis_2d).reshape(2).astype(np.float32)
            human.keypoints_2d = _homography(H_back, human.keypoints_2d).astype(np.float32)
            root = rotation_6d_to_matrix(torch.as_tensor(human.pose_6d[:1], dtype=torch.float64))
            pose = np.array(human.pose_6d, copy=True)
            pose[0] = matrix_to_rotation_6d(root_turn @ root)[0].numpy()
            human.pose_6d = pose
            if human.vertices is not None:
                human.vertices = (np.asarray(human.vertices, np.float64) @ self.R).astype(np.float32)
                human.box = clipped_box(project(human.vertices, frame.K), self.size_hw)
                if not keep_vertices:
                    human.vertices = None
        return frame


def _homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N, 2) pixels mapped by the 3x3 homography H."""
    uv = np.asarray(points, np.float64).reshape(-1, 2)
    mapped = np.concatenate([uv, np.ones((len(uv), 1))], 1) @ H.T
    return mapped[:, :2] / mapped[:, 2:3]
