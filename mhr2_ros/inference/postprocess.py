"""From network outputs to metric humans in the camera frame of the original image.

3D location = inverse projection of (2D pelvis, depth) with K (paper, "Location
prediction"). Given intrinsics are used as they are (rescaled with the image);
otherwise K comes from the predicted vertical FOV, square pixels, principal
point at the image centre.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mhr2_ros.body import BodyOutput
from mhr2_ros.geometry import depth_from_nearness, focal_from_fov, project, scale_intrinsics, unproject
from mhr2_ros.inference.preprocess import InputGeometry
from mhr2_ros.inference.results import GIVEN_K, PREDICTED_K, Human


@dataclass
class CameraQueries:
    """Every query expressed in the original image / camera frame (numpy)."""

    scores: np.ndarray  # (N,) in [0, 1]
    pelvis_2d: np.ndarray  # (N, 2) original pixels
    nearness: np.ndarray  # (N,)
    depth: np.ndarray  # (N,) meters
    positions: np.ndarray  # (N, 3) meters, camera frame
    K: np.ndarray  # (3, 3) intrinsics of the original image
    K_source: str  # "given" or "predicted"


def intrinsics_for(
    geom: InputGeometry, K_given: Optional[np.ndarray], fov_pred: float
) -> Tuple[np.ndarray, np.ndarray, str]:
    """(K of the original image, K of the network input, source)."""
    (sx, sy), (dx, dy) = geom.scale, geom.offset
    if K_given is not None:
        K = np.asarray(K_given, dtype=np.float64)
        return K, scale_intrinsics(K, sx, sy, dx, dy).astype(np.float64), GIVEN_K
    in_h, in_w = geom.input_hw
    f = focal_from_fov(fov_pred, in_h)  # square pixels in the network input
    K_in = np.array([[f, 0.0, in_w / 2.0], [0.0, f, in_h / 2.0], [0.0, 0.0, 1.0]])
    K = np.array(
        [[f / sx, 0.0, (in_w / 2.0 - dx) / sx], [0.0, f / sy, (in_h / 2.0 - dy) / sy], [0.0, 0.0, 1.0]]
    )
    return K, K_in, PREDICTED_K


def queries_to_camera(
    out: Dict[str, torch.Tensor], geom: InputGeometry, K_given: Optional[np.ndarray], ref_focal: float
) -> CameraQueries:
    """Scores, 2D pelvis, depth and 3D location of every query (cheap, numpy)."""
    K, K_in, source = intrinsics_for(geom, K_given, float(out["fov"]))
    scores = torch.sigmoid(out["logits"]).cpu().numpy()
    loc_in = out["loc"].cpu().numpy().astype(np.float64)  # (N, 2) input pixels
    nearness = out["nearness"].cpu().numpy().astype(np.float64)
    depth = depth_from_nearness(nearness, K_in[1, 1], ref_focal)
    pelvis_2d = geom.to_original(loc_in)
    positions = unproject(pelvis_2d, depth, K)
    return CameraQueries(scores, pelvis_2d, nearness, depth, positions, K.astype(np.float32), source)


def clipped_box(points_2d: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """Tight box of projected points, clipped to the image (x_min, y_min, x_max, y_max)."""
    h, w = hw
    # Column by column: numpy's axis-0 min of an (N, 2) array walks it pair by pair, 30x slower
    # on a mesh's 14k vertices, and was most of a frame's post-processing.
    x, y = points_2d[:, 0], points_2d[:, 1]
    return np.array(
        [np.clip(x.min(), 0, w), np.clip(y.min(), 0, h), np.clip(x.max(), 0, w), np.clip(y.max(), 0, h)],
        dtype=np.float32,
    )


def assemble_humans(
    cam: CameraQueries,
    keep: np.ndarray,
    out: Dict[str, torch.Tensor],
    body: BodyOutput,
    image_hw: Tuple[int, int],
    vertices: bool = True,
    track: bool = True,
) -> List[Human]:
    """One Human per kept query; body outputs are pelvis-centred, camera axes."""
    f32 = np.float32
    verts = body.vertices.float().cpu().numpy()  # (M, V, 3)
    joints = body.joints.float().cpu().numpy()  # (M, J, 3)
    orient = body.orientation.float().cpu().numpy()
    parts = body.part_rotations.float().cpu().numpy()  # (M, P, 3, 3)
    height = body.height.float().cpu().numpy()
    keep_t = torch.as_tensor(keep, dtype=torch.long, device=out["shape"].device)
    shape = out["shape"][keep_t].float().cpu().numpy()
    rot6d = out["rot6d"][keep_t].float().cpu().numpy()
    feats = out["track"][keep_t].float().cpu().numpy() if track else None
    humans = []
    for m, q in enumerate(keep):
        position = cam.positions[q]
        joints_cam = joints[m] + position
        verts_cam = verts[m] + position
        humans.append(
            Human(
                score=float(cam.scores[q]),
                pelvis_2d=cam.pelvis_2d[q].astype(f32),
                depth=float(cam.depth[q]),
                nearness=float(cam.nearness[q]),
                position=position.astype(f32),
                orientation=orient[m],
                shape=shape[m],
                pose_6d=rot6d[m],
                height=float(height[m]),
                joints_3d=joints_cam.astype(f32),
                keypoints_2d=project(joints_cam, cam.K).astype(f32),
                box=clipped_box(project(verts_cam, cam.K), image_hw),
                vertices=verts_cam.astype(f32) if vertices else None,
                part_rotations=parts[m],
                track_feature=feats[m] if feats is not None else None,
            )
        )
    return humans
