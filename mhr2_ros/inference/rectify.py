"""A camera with lens distortion seen as the pinhole camera the detector assumes.

The network takes rays from K (the camera head's root frame), and every 3D output is a pinhole
back-projection, so a raw image from a distorted lens (sensor_msgs/CameraInfo D, distortion_model)
places people near its border along the wrong rays. `Rectifier` resamples such an image into the
pinhole image of the same K and size (what image_proc's image_rect holds when P = K), runs nothing
itself, and takes the 2D outputs back into the raw image's pixels, so the boxes and keypoints a
consumer draws still land on the image it has:

    rect = Rectifier(K, D, "plumb_bob", (h, w))
    result = detector(rect.image(raw), K=K, depth=rect.depth(depth))   # 3D: right rays
    tracks = tracker.update(result, stamp)                               # pinhole pixels, as K says
    rect.to_raw(result)                                                  # 2D: the raw image's pixels

Models: plumb_bob and rational_polynomial (OpenCV's radial-tangential), equidistant (OpenCV's
fisheye). Barrel distortion loses the raw image's corners (their rays lie outside the pinhole
view of the same K); pincushion leaves black borders.
"""

from __future__ import annotations

from typing import Optional, Tuple

import cv2
import numpy as np

from mhr2_ros.geometry import scale_intrinsics
from mhr2_ros.inference.postprocess import clipped_box
from mhr2_ros.inference.results import FrameResult

RADIAL_TANGENTIAL = ("plumb_bob", "rational_polynomial")  # cv2.initUndistortRectifyMap / projectPoints
FISHEYE = "equidistant"  # cv2.fisheye
BOX_EDGE_SAMPLES = 16  # points per side of a box without vertices, taken into the raw image
BORDER_SAMPLES = 17  # points per image side where border_shift measures the lens
OPENCV_LENGTHS = (4, 5, 8, 12, 14)  # coefficient counts cv2 takes for the radial-tangential model
FISHEYE_LENGTH = 4  # k1..k4


def lens_coefficients(D, model: str) -> Optional[np.ndarray]:
    """D (camera_info d) as OpenCV takes it for `model`, or None when OpenCV cannot undo it (another
    model, or a coefficient count it does not know). Empty means no distortion (a fisheye lens still
    maps angles, not tangents)."""
    D = np.asarray(D if D is not None else (), np.float64).reshape(-1)
    if model == FISHEYE:
        return np.pad(D, (0, FISHEYE_LENGTH - D.size)) if D.size <= FISHEYE_LENGTH else None
    if model in RADIAL_TANGENTIAL:
        if D.size == 0:
            return np.zeros(5)
        return D if D.size in OPENCV_LENGTHS else None
    return None


def lens_problem(D, model: str) -> str:
    """'' when OpenCV undoes the lens (lens_coefficients), else what is wrong, for the callers' messages."""
    if lens_coefficients(D, model) is not None:
        return ""
    return (f"distortion model {model!r} with {np.size(D)} coefficients is not one OpenCV undoes: "
            f"{' and '.join(RADIAL_TANGENTIAL)} take {', '.join(map(str, OPENCV_LENGTHS))}, "
            f"{FISHEYE} up to {FISHEYE_LENGTH}")


def border_shift(K: np.ndarray, D, model: str, size_hw: Tuple[int, int]) -> Optional[float]:
    """The largest shift, pixels, between where the lens (K, D, model) images points of the border
    of a (height, width) image and where a pinhole camera with K would: None when OpenCV cannot undo
    the lens (lens_coefficients), inf when undistorting the border fails."""
    coefficients = lens_coefficients(D, model)
    if coefficients is None:
        return None
    K = np.asarray(K, np.float64).reshape(3, 3)
    h, w = size_hw
    border = _box_outline(np.array([0.0, 0.0, w - 1.0, h - 1.0]), BORDER_SAMPLES)  # the outer pixel centres
    pts = border.reshape(-1, 1, 2)
    if model == FISHEYE:
        pinhole = cv2.fisheye.undistortPoints(pts, K, coefficients, P=K)
    else:
        pinhole = cv2.undistortPoints(pts, K, coefficients, P=K)
    shift = np.linalg.norm(pinhole.reshape(-1, 2) - border, axis=1)
    return float(np.max(shift)) if np.all(np.isfinite(shift)) else float("inf")


class Rectifier:
    """Lens-distorted (raw) images <-> the pinhole images of the same K (3, 3) and size."""

    def __init__(self, K: np.ndarray, D, model: str, size_hw: Tuple[int, int]) -> None:
        coefficients = lens_coefficients(D, model)
        if coefficients is None:
            raise ValueError(lens_problem(D, model))
        self.K = np.asarray(K, np.float64).reshape(3, 3)
        self.D, self.model = coefficients, model
        self.size_hw = (int(size_hw[0]), int(size_hw[1]))
        self._maps = {self.size_hw: self._build_maps(self.K, self.size_hw)}  # (h, w) -> remap tables

    def _build_maps(self, K: np.ndarray, size_hw: Tuple[int, int]):
        """cv2.remap's (map_x, map_y) taking a raw image of `size_hw` with intrinsics K to its pinhole one."""
        h, w = size_hw
        if self.model == FISHEYE:
            return cv2.fisheye.initUndistortRectifyMap(K, self.D, np.eye(3), K, (w, h), cv2.CV_32FC1)
        return cv2.initUndistortRectifyMap(K, self.D, None, K, (w, h), cv2.CV_32FC1)

    def image(self, raw: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8: the pinhole image of the raw one (bilinear; black where the raw has nothing)."""
        if tuple(raw.shape[:2]) != self.size_hw:
            raise ValueError(f"image of {raw.shape[1]}x{raw.shape[0]} pixels, but the rectifier was built for "
                             f"{self.size_hw[1]}x{self.size_hw[0]}")
        return cv2.remap(raw, *self._maps[self.size_hw], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)  # fmt: skip

    def depth(self, raw: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """A depth image registered to the raw image (any resolution of its aspect), registered to the
        pinhole one (nearest: no depth is blended across an edge; 0, no measurement, where the raw has
        nothing)."""
        if raw is None:
            return None
        size = (int(raw.shape[0]), int(raw.shape[1]))
        if size not in self._maps:  # the same lens at another resolution: K scaled to it
            (h, w), (dh, dw) = self.size_hw, size
            self._maps[size] = self._build_maps(scale_intrinsics(self.K, dw / w, dh / h).astype(np.float64), size)
        return cv2.remap(raw, *self._maps[size], cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    def project(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) raw-image pixels of (N, 3) camera-frame points (in front of the camera)."""
        pts = np.asarray(points, np.float64).reshape(-1, 1, 3)
        if not len(pts):
            return np.zeros((0, 2))
        zero = np.zeros(3)
        if self.model == FISHEYE:
            uv, _ = cv2.fisheye.projectPoints(pts, zero, zero, self.K, self.D)
        else:
            uv, _ = cv2.projectPoints(pts, zero, zero, self.K, self.D)
        return uv.reshape(-1, 2)

    def to_raw_pixels(self, uv: np.ndarray) -> np.ndarray:
        """(N, 2) raw-image pixels of (N, 2) pinhole-image pixels."""
        uv = np.asarray(uv, np.float64).reshape(-1, 2)
        rays = np.concatenate([uv, np.ones((len(uv), 1))], 1) @ np.linalg.inv(self.K).T  # z = 1
        return self.project(rays)

    def to_raw(self, frame: FrameResult) -> FrameResult:
        """The frame's 2D fields (pelvis_2d, keypoints_2d, box) taken into the raw image's pixels, in
        place (the tracker has read the pinhole ones); its 3D fields and K stay. Returns `frame`.
        The box is the lens's projection of the mesh when the humans carry vertices; else the pinhole
        box's outline taken across (within a pixel or two, but a side the pinhole image's border cut
        lands where that border falls in the raw image, while the body may reach further)."""
        h, w = frame.image_size[:2]
        for human in frame.humans:
            human.pelvis_2d = self.project(human.position)[0].astype(np.float32)
            human.keypoints_2d = self.project(human.joints_3d).astype(np.float32)
            if human.vertices is not None:  # the projected mesh's box, as the detector draws it
                outline = self.project(human.vertices)
            else:  # the box's outline taken across: a side the pinhole image cut lands where its border falls
                outline = self.to_raw_pixels(_box_outline(np.asarray(human.box, np.float64), BOX_EDGE_SAMPLES))
            human.box = clipped_box(outline, (h, w))
        return frame


def _box_outline(box: np.ndarray, samples: int) -> np.ndarray:
    """(4 * samples, 2) points along the sides of a box (x0, y0, x1, y1), corners included."""
    x0, y0, x1, y1 = box
    s = np.linspace(0.0, 1.0, samples)
    xs, ys = x0 + s * (x1 - x0), y0 + s * (y1 - y0)
    return np.concatenate([np.stack([xs, np.full_like(xs, y0)], 1), np.stack([xs, np.full_like(xs, y1)], 1),
                           np.stack([np.full_like(ys, x0), ys], 1), np.stack([np.full_like(ys, x1), ys], 1)])
