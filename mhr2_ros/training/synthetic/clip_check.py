"""Validation of a clip's ground truth as it is read (docs/dataset_format.md).

Converted datasets (BEDLAM, AnnyOne, own captures) are written by hand, so the reader
refuses what would otherwise train or evaluate silently on wrong data: missing or
misshapen arrays, millimetres for meters, intrinsics of another image size, transposed
rotations, a root rotation in the wrong axes, 2D points not projected with `K`. Every
message names the file, the array and what the format expects.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from mhr2_ros.body.anny_body import ANNY_TO_CAMERA, BODY_TO_ANNY, JOINT_NAMES, PELVIS
from mhr2_ros.errors import InputError

NUM_BONES = 163  # Anny's makehuman rig, the bones of `pose_6d`
NUM_VERTICES = 13718
MAX_PERSON_EXTENT_M = 3.5  # no person's joints or vertices span more (meters; millimetres give 1000s)
MAX_HEIGHT_M = 3.0
PROJECTION_TOL_PX = 1.0  # joints_2d / pelvis_2d against project(3D, K)
METRIC_TOL_M = 2e-3  # depth vs position z, joints_3d[:, PELVIS] vs position, floor plane
ROTATION_TOL = 2e-3  # orthonormality and agreement of rotation matrices (float32 data)
FOV_TOL_RAD = 0.02
DOCS = "docs/dataset_format.md"

# Arrays every gt/NNNNNN.npz holds. The synthetic generator's extras below are optional:
# a converted dataset may leave them out and gets these fills.
REQUIRED = ("K", "fov_y", "image_size", "camera_rotation", "camera_height", "floor_plane", "ids", "shape",
            "pose_6d", "position", "pelvis_2d", "depth", "orientation", "height", "joints_3d", "joints_2d",
            "box", "visible_pixels")  # fmt: skip
OPTIONAL_FILLS = {
    "box_visible": lambda p: np.full((p, 4), np.nan, np.float32),
    "unoccluded_pixels": lambda p: np.zeros(p, np.int32),
    "visibility": lambda p: np.full(p, np.nan, np.float32),
    "truncated": lambda p: np.zeros(p, bool),
    "age_years": lambda p: np.full(p, np.nan, np.float32),
    "label": lambda p: np.full(p, "", dtype="<U1"),
}
# Trailing shape of every per-person array (the leading axis is P = len(ids)).
PER_PERSON = {
    "shape": (6,), "pose_6d": (NUM_BONES, 6), "position": (3,), "pelvis_2d": (2,), "depth": (),
    "orientation": (3, 3), "height": (), "joints_3d": (len(JOINT_NAMES), 3), "joints_2d": (len(JOINT_NAMES), 2),
    "box": (4,), "box_visible": (4,), "visible_pixels": (), "unoccluded_pixels": (), "visibility": (),
    "truncated": (), "age_years": (), "label": (), "vertices": (NUM_VERTICES, 3),
}  # fmt: skip
CAMERA = {"K": (3, 3), "fov_y": (), "image_size": (2,), "camera_rotation": (3, 3), "camera_height": (),
          "floor_plane": (4,), "time": ()}  # fmt: skip


def check_arrays(arrays: Dict[str, np.ndarray], where: str, validate: bool = True) -> Dict[str, np.ndarray]:
    """The arrays of one gt file, checked, with the optional extras filled in.
    Raises InputError naming `where`, the array and what is expected. `validate` False: the
    fills only (a file checked before: the checks cost about as much as reading it)."""
    ids = np.asarray(arrays.get("ids"))
    if validate:
        missing = [k for k in REQUIRED if k not in arrays]
        if missing:
            raise InputError(f"{where}: missing arrays {missing}; every gt file holds {list(REQUIRED)} ({DOCS}, gt table)")
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"{where}: 'ids' must be a 1-D integer array (P,), got {ids.dtype} {ids.shape}")
    p = len(ids)
    out = {**{key: fill(p) for key, fill in OPTIONAL_FILLS.items()}, **arrays}
    if not validate:
        return out
    _check_shapes(out, p, where)
    if len(np.unique(ids)) != p or (p and (ids.min() < 0 or ids.max() >= 65535)):
        raise InputError(f"{where}: 'ids' {ids.tolist()} must be distinct and in 0..65534 "
                         "(the instance mask stores id + 1 as uint16)")  # fmt: skip
    _check_camera(out, where)
    if p:
        _check_people(out, where)
    return out


def _check_shapes(a: Dict[str, np.ndarray], p: int, where: str) -> None:
    for key, trailing in CAMERA.items():
        if key in a and np.shape(a[key]) != trailing:
            raise InputError(f"{where}: '{key}' has shape {np.shape(a[key])}, expected {trailing}")
    for key, trailing in PER_PERSON.items():
        if key in a and np.shape(a[key]) != (p, *trailing):
            hint = " (Anny phenotypes, not SMPL betas)" if key == "shape" else \
                " (Anny's 163 bones of the makehuman rig)" if key == "pose_6d" else ""  # fmt: skip
            raise InputError(f"{where}: '{key}' has shape {np.shape(a[key])}, expected {(p, *trailing)} "
                             f"with P = len(ids) = {p}{hint}")  # fmt: skip
        if key in a and key not in ("label", "truncated") and not np.issubdtype(np.asarray(a[key]).dtype, np.number):
            raise InputError(f"{where}: '{key}' must be numeric, got dtype {np.asarray(a[key]).dtype}")


def _close_rotations(r: np.ndarray) -> bool:
    eye = np.eye(3)
    ortho = np.abs(np.swapaxes(r, -1, -2) @ r - eye).max() if r.size else 0.0
    return ortho < ROTATION_TOL and bool(np.all(np.linalg.det(r) > 0))


def _check_camera(a: Dict[str, np.ndarray], where: str) -> None:
    K = np.asarray(a["K"], np.float64)
    h, w = (int(v) for v in a["image_size"])
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or np.abs(K[2] - (0, 0, 1)).max() > 1e-6:
        raise InputError(f"{where}: 'K' {K.tolist()} is not a pinhole intrinsic matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]")
    cx, cy = K[0, 2], K[1, 2]
    if abs(cx - w / 2) > w / 4 or abs(cy - h / 2) > h / 4:
        raise InputError(f"{where}: K's principal point ({cx:.1f}, {cy:.1f}) is far from the centre "
                         f"({w / 2:.1f}, {h / 2:.1f}) of the image_size [H, W] = [{h}, {w}]: K for another image "
                         "size (scale K's first two rows with the image), or image_size given as [W, H]?")  # fmt: skip
    fov = float(a["fov_y"])
    expected = 2 * np.arctan(h / (2 * K[1, 1]))
    if abs(fov - expected) > FOV_TOL_RAD:
        raise InputError(f"{where}: 'fov_y' is {fov:.4f}, but K and image height {h} give 2 atan(H / (2 fy)) = "
                         f"{expected:.4f} radians (degrees given, or K for another image size?)")  # fmt: skip
    R = np.asarray(a["camera_rotation"], np.float64)
    if not _close_rotations(R):
        raise InputError(f"{where}: 'camera_rotation' is not a rotation matrix: {R.tolist()}")
    plane = np.asarray(a["floor_plane"], np.float64)
    cam_h = float(a["camera_height"])
    if np.abs(plane[:3] - R[:, 1]).max() > METRIC_TOL_M or abs(plane[3] - cam_h) > METRIC_TOL_M * max(1.0, cam_h):
        raise InputError(f"{where}: 'floor_plane' {plane.round(4).tolist()} should be (R[:, 1], camera_height) = "
                         f"{R[:, 1].round(4).tolist() + [round(cam_h, 4)]} with R = camera_rotation (level -> camera, "
                         "x_cam = R @ x_level): camera_rotation transposed, or the plane's normal pointing up?")  # fmt: skip


def _check_people(a: Dict[str, np.ndarray], where: str) -> None:
    joints = np.asarray(a["joints_3d"], np.float64)
    position = np.asarray(a["position"], np.float64)
    for key, pts in (("joints_3d", joints), ("vertices", a.get("vertices"))):
        if pts is None:
            continue
        extent = float((np.asarray(pts).max(1) - np.asarray(pts).min(1)).max())
        if not np.isfinite(extent) or extent > MAX_PERSON_EXTENT_M:
            raise InputError(f"{where}: '{key}' of a person spans {extent:.3g} along an axis; expected meters "
                             f"(under {MAX_PERSON_EXTENT_M} m): millimetres or centimetres?")  # fmt: skip
    height = np.asarray(a["height"], np.float64)
    if not (np.isfinite(height).all() and (height > 0).all() and (height < MAX_HEIGHT_M).all()):
        raise InputError(f"{where}: 'height' {height.round(3).tolist()} must be meters (0 .. {MAX_HEIGHT_M})")
    _agree(where, "joints_3d[:, PELVIS]", joints[:, PELVIS], "position", position, METRIC_TOL_M)
    _agree(where, "depth", np.asarray(a["depth"], np.float64), "position[:, 2]", position[:, 2], METRIC_TOL_M)
    _check_projection(a, where)
    _check_orientation(a, where)


def _agree(where: str, name: str, value: np.ndarray, ref_name: str, ref: np.ndarray, tol: float) -> None:
    err = float(np.abs(value - ref).max()) if value.size else 0.0
    if not err <= tol:
        raise InputError(f"{where}: '{name}' differs from {ref_name} by up to {err:.4g} (tolerance {tol}); "
                         f"the format requires them equal ({DOCS})")  # fmt: skip


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    from mhr2_ros.geometry import project

    return project(points, K)


def _check_projection(a: Dict[str, np.ndarray], where: str) -> None:
    K = np.asarray(a["K"], np.float64)
    for name3, name2 in (("joints_3d", "joints_2d"), ("position", "pelvis_2d")):
        pts = np.asarray(a[name3], np.float64)
        uv = np.asarray(a[name2], np.float64)
        front = pts[..., 2] > 0.05  # behind the camera the projection is undefined
        err = np.linalg.norm(_project(pts, K) - uv, axis=-1)[front]
        tol = PROJECTION_TOL_PX + 1e-4 * np.abs(uv[front]).max(initial=0.0)
        if err.size and not err.max() <= tol:
            raise InputError(f"{where}: '{name2}' is not project({name3}, K) (off by up to {err.max():.1f} px): "
                             "2D points in pixels of this image (u right, v down, pixel centres at integers), "
                             "3D in the camera frame (x right, y down, z forward), K of this image size")  # fmt: skip


def _check_orientation(a: Dict[str, np.ndarray], where: str) -> None:
    orient = np.asarray(a["orientation"], np.float64)
    if not _close_rotations(orient):
        raise InputError(f"{where}: 'orientation' holds matrices that are not rotations (REP-103 body -> camera)")
    d6 = np.asarray(a["pose_6d"], np.float64)[:, 0]
    b1 = d6[:, 0:3] / np.linalg.norm(d6[:, 0:3], axis=-1, keepdims=True)
    a2 = d6[:, 3:6] - (b1 * d6[:, 3:6]).sum(-1, keepdims=True) * b1
    b2 = a2 / np.linalg.norm(a2, axis=-1, keepdims=True)
    root = np.stack([b1, b2, np.cross(b1, b2)], -1)  # columns, as geometry.rotation_6d_to_matrix
    a2c, b2a = ANNY_TO_CAMERA.double().numpy(), BODY_TO_ANNY.double().numpy()
    expected = a2c @ root @ b2a
    err = float(np.abs(expected - orient).max())
    if not err <= ROTATION_TOL * 10:
        raise InputError(f"{where}: 'orientation' disagrees with the root of 'pose_6d' by up to {err:.3f}: "
                         "orientation = ANNY_TO_CAMERA @ R_root @ BODY_TO_ANNY, R_root from the first two *columns* "
                         "in pose_6d[:, 0] and expressed in Anny axes (+X left, +Y backward, +Z up); "
                         f"a transposed matrix or a camera-axes root? ({DOCS}, 'Body pose')")  # fmt: skip


def check_image(image: np.ndarray, image_size, where: str, kind: str = "rgb") -> None:
    """The image of a frame must have the gt's image_size (height, width)."""
    if tuple(image.shape[:2]) != tuple(int(v) for v in image_size):
        raise InputError(f"{where}: the {kind} image is {image.shape[0]}x{image.shape[1]} (HxW) but the gt's "
                         f"image_size is {[int(v) for v in image_size]} ([height, width]); write K and image_size for this image")


def _resolve(pattern: str) -> Optional[str]:
    for args, kwargs in (((), {"frame": 0}), ((0,), {})):
        try:
            return pattern.format(*args, **kwargs)
        except (IndexError, KeyError, ValueError):
            continue
    return None


def check_info(info: Dict, where: str, expected_files: Dict[str, str], joint_names, shape_names) -> None:
    """Refuse clip.json fields the reader cannot honour (other joint orders, file patterns)."""
    if "frames" not in info:
        raise InputError(f"{where}: clip.json has no 'frames' (the number of frames)")
    for key, ours in (("joint_names", list(joint_names)), ("shape_names", list(shape_names))):
        if key in info and list(info[key]) != ours:
            raise InputError(f"{where}: clip.json '{key}' {info[key]} differs from this reader's order {ours}; "
                             "store the arrays in that order")  # fmt: skip
    for kind, pattern in (info.get("files") or {}).items():
        ours = expected_files.get(kind)
        if ours is not None and _resolve(str(pattern)) != _resolve(ours):
            raise InputError(f"{where}: clip.json files.{kind} is {pattern!r}; this reader reads only "
                             f"{ours!r} (PNG images, NPZ ground truth)")  # fmt: skip
    scale = info.get("depth_scale", 1000)
    if not isinstance(scale, (int, float)) or not scale > 0:
        raise InputError(f"{where}: clip.json depth_scale {scale!r} must be a positive number (stored units per meter)")
