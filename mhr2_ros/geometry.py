"""Camera and rotation geometry shared by every stage.

Conventions: OpenCV / ROS optical frame (x right, y down, z forward), meters,
radians, pixels of the original image unless a name says otherwise. Functions
accept numpy arrays or torch tensors where noted and keep the input's type. torch is
imported where it is used: the numpy functions serve the ROS parameter checks, which the
launch file runs with the system Python (no torch there on a venv install).
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def _is_tensor(x) -> bool:
    """A torch tensor (without importing torch: none exists before torch is imported)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


# --------------------------------------------------------------------------- FOV / focal
def focal_from_fov(fov: float, size: float) -> float:
    """Focal length in pixels for a field of view `fov` (radians) spanning `size` pixels."""
    return (size / 2.0) / math.tan(fov / 2.0)


def fov_from_focal(focal: float, size: float) -> float:
    """Field of view in radians spanned by `size` pixels at focal length `focal` pixels."""
    return 2.0 * math.atan((size / 2.0) / focal)


def intrinsics_from_fov(fov_y: float, width: int, height: int) -> np.ndarray:
    """3x3 K from a vertical FOV (radians): square pixels, principal point at the centre."""
    f = focal_from_fov(fov_y, height)
    return np.array(
        [[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float32
    )


def intrinsics_from_values(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float32)


def scale_intrinsics(K: np.ndarray, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> np.ndarray:
    """K of an image resized by (sx, sy) then shifted by (dx, dy) pixels (padding)."""
    K2 = np.array(K, dtype=np.float32, copy=True)
    K2[0, 0] *= sx
    K2[0, 1] *= sx
    K2[0, 2] = K2[0, 2] * sx + dx
    K2[1, 1] *= sy
    K2[1, 2] = K2[1, 2] * sy + dy
    return K2


# ------------------------------------------------------------------------ projections
def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points in meters -> (..., 2) pixels. Works on numpy or torch."""
    is_torch = _is_tensor(points)
    if is_torch:
        import torch

        K = torch.as_tensor(K, dtype=points.dtype, device=points.device)
        z = points[..., 2:3].clamp(min=1e-6)
    else:
        z = np.maximum(points[..., 2:3], 1e-6)
    xy = points[..., :2] / z
    u = K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2]
    v = K[1, 1] * xy[..., 1] + K[1, 2]
    stack = sys.modules["torch"].stack if is_torch else np.stack
    return stack([u, v], -1)


def unproject(pixels: np.ndarray, depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Inverse projection: (..., 2) pixels and (...) depths (z, meters) -> (..., 3) points."""
    is_torch = _is_tensor(pixels)
    if is_torch:
        import torch

        K = torch.as_tensor(K, dtype=pixels.dtype, device=pixels.device)
    y = (pixels[..., 1] - K[1, 2]) / K[1, 1]
    x = (pixels[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    stack = sys.modules["torch"].stack if is_torch else np.stack
    return stack([x * depth, y * depth, depth], -1)


def depth_from_nearness(nearness, focal, ref_focal: float):
    """Metric depth (z, meters) from nearness: z = focal / ref_focal * exp(-nearness).

    Nearness is a log inverse depth normalised by the focal: a person's size in
    pixels is proportional to focal / z, so the network predicts it from pixels
    alone and the depth stays consistent when the camera (focal) changes.
    """
    if _is_tensor(nearness):
        return focal / ref_focal * nearness.neg().exp()
    return focal / ref_focal * np.exp(-np.asarray(nearness))


def nearness_from_depth(depth, focal, ref_focal: float):
    """Inverse of `depth_from_nearness`."""
    if _is_tensor(depth):
        return -(depth * ref_focal / focal).log()
    return -np.log(np.asarray(depth) * ref_focal / focal)


# --------------------------------------------------------------------------- rotations
def rotation_6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt (Zhou et al. 2019).

    The 6D vector holds the first two *columns* of the rotation matrix, so the
    identity is (1, 0, 0, 0, 1, 0).
    """
    import torch

    a1, a2 = d6[..., 0:3], d6[..., 3:6]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack((b1, b2, b3), dim=-1)


def matrix_to_rotation_6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, as in `rotation_6d_to_matrix`."""
    import torch

    return torch.cat((R[..., :, 0], R[..., :, 1]), dim=-1)


IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def intrinsics_from_fov_batch(fov: torch.Tensor, width, height) -> torch.Tensor:
    """(N,) vertical FOV (radians) and image width / height (floats or (N,) tensors, pixels)
    -> (N, 3, 3) intrinsics: square pixels, principal point at the image centre."""
    import torch

    f = (height / 2) / torch.tan(fov / 2)
    K = torch.zeros(len(fov), 3, 3, dtype=fov.dtype, device=fov.device)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2], K[:, 2, 2] = f, f, width / 2, height / 2, 1.0
    return K


def ray_rotation(pixels: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """(..., 2) pixels and (..., 3, 3) intrinsics -> (..., 3, 3) the smallest rotation taking
    the optical axis (0, 0, 1) onto the viewing ray through each pixel (Rodrigues with
    v = z x d: R = I + [v]x + [v]x^2 / (1 + z.d); the ray points forward, so z.d > 0)."""
    import torch

    x = (pixels[..., 0] - K[..., 0, 2]) / K[..., 0, 0]
    y = (pixels[..., 1] - K[..., 1, 2]) / K[..., 1, 1]
    d = torch.nn.functional.normalize(torch.stack([x, y, torch.ones_like(x)], -1), dim=-1)
    zero = torch.zeros_like(x)
    vx = torch.stack([torch.stack([zero, zero, d[..., 0]], -1),  # [v]x with v = (-d_y, d_x, 0)
                      torch.stack([zero, zero, d[..., 1]], -1),
                      torch.stack([-d[..., 0], -d[..., 1], zero], -1)], -2)  # fmt: skip
    eye = torch.eye(3, dtype=d.dtype, device=d.device).expand_as(vx)
    return eye + vx + vx @ vx / (1.0 + d[..., 2])[..., None, None]


def matrix_to_quaternion_xyzw(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (x, y, z, w), w >= 0.

    Shepperd's method: each matrix is solved from its largest of 4w^2, 4x^2, 4y^2, 4z^2,
    so the signs stay right near 180 degrees, where w is about 0."""
    R = np.asarray(R, dtype=np.float64)
    m = R.reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # 4 * (w^2, x^2, y^2, z^2) - 1, up to a common term: pick the largest per matrix
    cand = np.stack([trace, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    best = cand.argmax(-1)
    q = np.empty((len(m), 4))
    for k, (i, j, l) in ((1, (0, 1, 2)), (2, (1, 2, 0)), (3, (2, 0, 1))):  # x, y, z the largest
        sel = best == k
        r = np.sqrt(np.maximum(1.0 + m[sel, i, i] - m[sel, j, j] - m[sel, l, l], 1e-300))
        q[sel, i] = r / 2
        q[sel, j] = (m[sel, j, i] + m[sel, i, j]) / (2 * r)
        q[sel, l] = (m[sel, l, i] + m[sel, i, l]) / (2 * r)
        q[sel, 3] = (m[sel, l, j] - m[sel, j, l]) / (2 * r)
    sel = best == 0  # w the largest
    r = np.sqrt(np.maximum(1.0 + trace[sel], 1e-300))
    q[sel, 3] = r / 2
    q[sel, 0] = (m[sel, 2, 1] - m[sel, 1, 2]) / (2 * r)
    q[sel, 1] = (m[sel, 0, 2] - m[sel, 2, 0]) / (2 * r)
    q[sel, 2] = (m[sel, 1, 0] - m[sel, 0, 1]) / (2 * r)
    q = np.where(q[:, 3:] < 0, -q, q).reshape(R.shape[:-2] + (4,))  # w >= 0
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def quaternion_xyzw_to_matrix(q) -> np.ndarray:
    """(4,) quaternion (x, y, z, w), normalised here -> (3, 3) rotation matrix (the inverse of
    `matrix_to_quaternion_xyzw`; ROS messages carry (x, y, z, w))."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])  # fmt: skip


def rotation_angle(R) -> float:
    """Radians of the rotation (3, 3) R, in [0, pi]: the geodesic distance between two rotations
    A and B is rotation_angle(A.T @ B)."""
    m = np.asarray(R, dtype=np.float64)
    return float(np.arccos(np.clip((np.trace(m) - 1.0) / 2.0, -1.0, 1.0)))


def homogeneous(R, t) -> np.ndarray:
    """(4, 4) rigid transform of a rotation (3, 3) and a translation (3,): p' = R p + t."""
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = np.asarray(R, dtype=np.float64), np.asarray(t, dtype=np.float64)
    return T


def rigid_transform(T, tolerance: float = 1e-3) -> tuple:
    """(R (3, 3), t (3,)) of a (4, 4) homogeneous rigid transform; ValueError naming what is wrong
    (shape, non-finite values, a last row other than [0, 0, 0, 1], R not a rotation)."""
    m = np.asarray(T, dtype=np.float64)
    if m.shape != (4, 4):
        raise ValueError(f"a rigid transform is a (4, 4) matrix, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("a rigid transform must hold finite numbers")
    if np.abs(m[3] - [0.0, 0.0, 0.0, 1.0]).max() > tolerance:
        raise ValueError(f"a rigid transform's last row must be [0, 0, 0, 1], got {m[3].tolist()}")
    R = m[:3, :3]
    if np.abs(R.T @ R - np.eye(3)).max() > tolerance or np.linalg.det(R) < 0:
        raise ValueError(f"the (3, 3) block of a rigid transform must be a rotation, got {R.round(4).tolist()}")
    return R.copy(), m[:3, 3].copy()


def turned_body(points: np.ndarray, pelvis: np.ndarray, network: np.ndarray, track: np.ndarray) -> np.ndarray:
    """(N, 3) m, camera frame: a detection's body points (joints, vertices) turned about its `pelvis` (3,)
    from its orientation `network` into the track's `track` ((3, 3) body -> camera each): the body a
    velocity heading (tracking/heading.py) publishes (ros/persons.py), whole, not only its pelvis frame."""
    pelvis = np.asarray(pelvis, np.float64)
    turn = np.asarray(track, np.float64) @ np.asarray(network, np.float64).T
    return pelvis + (np.asarray(points, np.float64) - pelvis) @ turn.T


def gravity_from_pose(camera_pose: np.ndarray) -> np.ndarray:
    """(3,) gravity in the camera frame from its (4, 4) pose in a fixed frame whose z points up
    (REP-105's odom and map; fixed <- camera): that frame's -z seen from the camera, the last row of
    the rotation, negated."""
    return -np.asarray(camera_pose, dtype=np.float64)[2, :3]
