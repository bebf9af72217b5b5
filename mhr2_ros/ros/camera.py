"""Intrinsics from sensor_msgs/CameraInfo, rescaled to the image they are used with.

Duck-typed (fields k, p, d, distortion_model, width, height), so rclpy and rosbags messages
both work. A camera_info of another resolution than the image (binning, a resized stream) is
rescaled, never ignored; an uncalibrated one (all-zero K) gives None, so the
network's predicted field of view is used instead.

The detector assumes a pinhole camera. A raw image from a lens with distortion (camera_info D)
places people near its border along the wrong rays; `LensDistortion` hands out the
inference/rectify.Rectifier that undoes it (the node's rectify parameter), or says so once per
calibration, with the size of the effect and what to do.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from mhr2_ros.geometry import scale_intrinsics

log = logging.getLogger(__name__)

MATRICES = ("k", "p")  # K: raw (distorted) image; P: rectified image
DISTORTION_MIN_PX = 1.0  # a raw image whose border the lens moves by more than this is rectified (or warned about)
BORDER_SAMPLES = 17  # points per image side where the distortion's shift is measured
PINHOLE_MODELS = ("plumb_bob", "rational_polynomial")  # cv2.undistortPoints; "equidistant": cv2.fisheye


def intrinsics_from_camera_info(info, height: int, width: int, matrix: str = "k") -> Optional[np.ndarray]:
    """3x3 K for an image of (height, width) pixels, or None when `info` has none."""
    if info is None:
        return None
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {MATRICES}, got {matrix!r}")
    values = np.asarray(getattr(info, matrix), dtype=np.float64)
    K = values.reshape(3, 4)[:, :3] if matrix == "p" else values.reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        return None
    info_w, info_h = int(info.width), int(info.height)
    if info_w > 0 and info_h > 0 and (info_w, info_h) != (width, height):
        K = scale_intrinsics(K, width / info_w, height / info_h)
    return np.asarray(K, dtype=np.float64)


def distortion_shift(info, height: int, width: int) -> Optional[float]:
    """The largest shift, pixels, that the lens distortion of `info` (D, distortion_model) puts on
    the border of a (height, width) image against a pinhole camera with its K: 0.0 without distortion
    (plumb_bob or rational_polynomial with D all zero or empty) or without a calibrated K, inf when
    undistorting the border fails, None for a model OpenCV cannot undo. An equidistant (fisheye)
    lens is no pinhole even with D all zero."""
    import cv2

    D = np.asarray(getattr(info, "d", None) if getattr(info, "d", None) is not None else (), np.float64).reshape(-1)
    K = intrinsics_from_camera_info(info, height, width, "k")
    model = str(getattr(info, "distortion_model", ""))
    if K is None or (model != "equidistant" and not np.any(D)):
        return 0.0
    u = np.linspace(0.0, width - 1.0, BORDER_SAMPLES)
    v = np.linspace(0.0, height - 1.0, BORDER_SAMPLES)
    border = np.concatenate([np.stack([u, np.zeros_like(u)], 1), np.stack([u, np.full_like(u, height - 1.0)], 1),
                             np.stack([np.zeros_like(v), v], 1), np.stack([np.full_like(v, width - 1.0), v], 1)])
    pts = border.reshape(-1, 1, 2)
    if model in PINHOLE_MODELS:
        undistorted = cv2.undistortPoints(pts, K, D, P=K)
    elif model == "equidistant":
        undistorted = cv2.fisheye.undistortPoints(pts, K, np.resize(D, 4) if D.size else np.zeros(4), P=K)
    else:
        return None
    shift = np.linalg.norm(undistorted.reshape(-1, 2) - border, axis=1)
    return float(np.max(shift)) if np.all(np.isfinite(shift)) else float("inf")


class LensDistortion:
    """Per image, what to do about the lens: `rectifier(info, matrix, height, width, rectify)` is the
    inference/rectify.Rectifier (cached per calibration) for raw images (matrix k) whose camera_info
    distortion moves their border by more than DISTORTION_MIN_PX, or None: nothing to undo, or
    `rectify` off or the model unknown, which is warned about once per calibration with the shift and
    the fix. `shift`: the border shift, pixels, of the last calibration seen (None: unknown)."""

    def __init__(self) -> None:
        self._key: Optional[tuple] = None
        self._rectifier = None
        self.shift: Optional[float] = 0.0
        self._warned: set = set()

    def rectifier(self, info, matrix: str, height: int, width: int, rectify: bool = True):
        if info is None or matrix != "k":  # p: the image is rectified, its camera a pinhole
            return None
        d = getattr(info, "d", None)
        model, D = str(getattr(info, "distortion_model", "")), tuple(np.asarray(d if d is not None else (), float).ravel())
        K = intrinsics_from_camera_info(info, height, width, "k")
        key = (model, D, None if K is None else tuple(K.ravel()), height, width, bool(rectify))
        if key != self._key:
            self._key, self._rectifier = key, self._build(key)
        return self._rectifier

    def _build(self, key: tuple):
        from mhr2_ros.inference.rectify import Rectifier

        model, D, K, height, width, rectify = key
        self.shift = distortion_shift(_Info(model, D, K, height, width), height, width)
        if self.shift is not None and self.shift <= DISTORTION_MIN_PX:
            return None
        if self.shift is not None and rectify:
            log.info("rectifying the %dx%d raw images (%s, D=%s: up to %.0f px at the border) into the pinhole "
                     "images of their K", width, height, model, _listed(D), self.shift)
            return Rectifier(np.reshape(K, (3, 3)), D, model, (height, width))
        if key[:5] not in self._warned:
            self._warned.add(key[:5])
            if self.shift is None:
                log.warning("camera_info distortion model %r is not one OpenCV undoes (%s, equidistant): if the "
                            "images are distorted, feed the rectified ones (image_rect) with intrinsics_matrix p",
                            model, ", ".join(PINHOLE_MODELS))
            else:
                log.warning("camera_info says the %dx%d images are distorted (%s, D=%s): up to %.0f px at the "
                            "border, but they are not rectified (rectify false, or its K not used) and the detector "
                            "assumes a pinhole camera, so people near the border are placed along rays that far "
                            "off; rectify them, or feed the rectified images (image_proc's image_rect) with "
                            "intrinsics_matrix p", width, height, model, _listed(D), self.shift)
        return None


class _Info:
    """The camera_info fields distortion_shift reads."""

    def __init__(self, model: str, d: tuple, k: Optional[tuple], height: int, width: int) -> None:
        self.distortion_model, self.d, self.height, self.width = model, d, height, width
        self.k = k if k is not None else np.zeros(9)


def _listed(values) -> str:
    return "[" + ", ".join(f"{x:g}" for x in values) + "]"
