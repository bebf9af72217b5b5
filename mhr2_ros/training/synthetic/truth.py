"""Ground truth of a synthetic frame, and its view as a detector FrameResult.

All arrays are numpy; P is the number of people of the clip (every person, in
view or not, in id order), J = len(body.JOINT_NAMES), B = 163 bones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Dict, List, Optional

import numpy as np

from mhr2_ros.inference.results import FrameResult, Human


@dataclass
class FrameTruth:
    """Ground truth of one frame (the arrays of gt/NNNNNN.npz, docs/dataset_format.md)."""

    # camera
    K: np.ndarray  # (3, 3) float32 intrinsics, pixels
    fov_y: float  # vertical field of view, radians
    image_size: tuple  # (height, width) pixels
    camera_rotation: np.ndarray  # (3, 3) float32 level frame (gravity-aligned) -> camera frame
    camera_height: float  # optical centre above the floor, meters
    floor_plane: np.ndarray  # (4,) float32 (n, d), camera frame: n . x = d on the floor, n = gravity
    # people, (P, ...)
    ids: np.ndarray  # (P,) int32 stable person ids
    shape: np.ndarray  # (P, 6) float32 Anny phenotypes in [0, 1], SHAPE_NAMES order
    pose_6d: np.ndarray  # (P, B, 6) float32 local-ref bone rotations in Anny axes (root: the body's
    # turn, the camera's tilt included; body/anny_body.py)
    position: np.ndarray  # (P, 3) float32 pelvis, camera frame, meters
    pelvis_2d: np.ndarray  # (P, 2) float32 pelvis projected with K, pixels
    depth: np.ndarray  # (P,) float32 pelvis z, meters
    orientation: np.ndarray  # (P, 3, 3) float32 REP-103 body axes -> camera frame
    height: np.ndarray  # (P,) float32 standing (rest pose) height, meters
    joints_3d: np.ndarray  # (P, J, 3) float32 camera frame, meters
    joints_2d: np.ndarray  # (P, J, 2) float32 projected with K, pixels
    box: np.ndarray  # (P, 4) float32 projected mesh (x0, y0, x1, y1), clipped to the image
    box_visible: np.ndarray  # (P, 4) float32 bounds of the visible mask pixels; NaN when none
    visible_pixels: np.ndarray  # (P,) int32 pixels of the person's visible instance mask
    unoccluded_pixels: np.ndarray  # (P,) int32 pixels of the person rendered alone
    visibility: np.ndarray  # (P,) float32 visible / unoccluded pixels, 0 when out of view
    truncated: np.ndarray  # (P,) bool: in view but the projected mesh crosses the image border
    age_years: np.ndarray  # (P,) float32 morphological age
    label: np.ndarray  # (P,) str pose label ("walk", "stand", "wave", "sit_chair", ...)
    vertices: Optional[np.ndarray] = None  # (P, V, 3) float32 camera frame, meters (optional)

    @property
    def in_view(self) -> np.ndarray:
        """(P,) bool: at least one pixel of the person is visible."""
        return self.visible_pixels > 0

    def to_arrays(self) -> Dict[str, np.ndarray]:
        """Every field as an array (what the dataset writer stores)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = np.asarray(value)
        return out

    @classmethod
    def from_arrays(cls, arrays: Dict[str, np.ndarray]) -> "FrameTruth":
        kwargs = {}
        for f in fields(cls):
            if f.name not in arrays:
                continue
            value = np.asarray(arrays[f.name])
            if f.name in ("fov_y", "camera_height"):
                value = float(value)
            elif f.name == "image_size":
                value = tuple(int(v) for v in value)
            kwargs[f.name] = value
        return cls(**kwargs)


def mask_boxes(owner: np.ndarray, num: int) -> np.ndarray:
    """(num, 4) float32 bounds (x0, y0, x1, y1) of each slot's pixels in `owner` (H, W), NaN if none."""
    out = np.full((num, 4), np.nan, dtype=np.float32)
    rows, cols = np.nonzero(owner >= 0)
    slots = owner[rows, cols]
    for s in np.unique(slots):
        sel = slots == s
        out[s] = (cols[sel].min(), rows[sel].min(), cols[sel].max(), rows[sel].max())
    return out


def projected_boxes(uv: np.ndarray, width: int, height: int) -> tuple:
    """(P, 4) boxes of projected vertices (P, V, 2) clipped to the image, and (P,) whether
    the unclipped box crosses the border (pixel centres span -0.5 .. size - 0.5)."""
    lo, hi = uv.min(1), uv.max(1)
    crosses = (lo[:, 0] < -0.5) | (lo[:, 1] < -0.5) | (hi[:, 0] > width - 0.5) | (hi[:, 1] > height - 0.5)
    box = np.concatenate([lo, hi], 1)
    box[:, 0::2] = np.clip(box[:, 0::2], 0, width - 1)
    box[:, 1::2] = np.clip(box[:, 1::2], 0, height - 1)
    return box.astype(np.float32), crosses


def to_frame_result(truth: FrameTruth, include_hidden: bool = False, id_prefix: str = "") -> FrameResult:
    """A detector-shaped view of the ground truth: one Human per person in view (all
    people with include_hidden), score 1, track_id = id_prefix + person id."""
    humans: List[Human] = []
    for p in range(len(truth.ids)):
        if not include_hidden and truth.visible_pixels[p] == 0:
            continue
        humans.append(Human(
            score=1.0, pelvis_2d=truth.pelvis_2d[p], depth=float(truth.depth[p]), nearness=float("nan"),
            position=truth.position[p], orientation=truth.orientation[p], shape=truth.shape[p],
            pose_6d=truth.pose_6d[p], height=float(truth.height[p]), joints_3d=truth.joints_3d[p],
            keypoints_2d=truth.joints_2d[p], box=truth.box[p],
            vertices=None if truth.vertices is None else truth.vertices[p],
            track_id=f"{id_prefix}{int(truth.ids[p])}",
        ))  # fmt: skip
    humans.sort(key=lambda h: h.depth)  # nearest first, a deterministic order
    return FrameResult(humans, np.asarray(truth.K, np.float32), "given", float(truth.fov_y),
                       tuple(truth.image_size))  # fmt: skip
