"""Intrinsics from sensor_msgs/CameraInfo, rescaled to the image they are used with.

Duck-typed (fields k, p, d, distortion_model, width, height; a ROS 1 bag's K, P, D), so rclpy
and rosbags messages both work. A camera_info of another resolution than the image (binning, a
resized stream) is rescaled, never ignored; an uncalibrated one (all-zero K) gives None, so the
network's predicted field of view is used instead.

The detector assumes a pinhole camera. A raw image from a lens with distortion (camera_info D)
places people near its border along the wrong rays; `LensDistortion` hands out the
inference/rectify.Rectifier that undoes it (the node's rectify parameter), or says so once per
calibration, with the size of the effect and what to do.
"""

from __future__ import annotations

import logging
from typing import Optional, Tuple

import numpy as np

from mhr2_ros.geometry import scale_intrinsics

log = logging.getLogger(__name__)

MATRICES = ("k", "p")  # K: raw (distorted) image; P: rectified image
DISTORTION_MIN_PX = 1.0  # a raw image whose border the lens moves by more than this is rectified (or warned about)


def intrinsics_from_camera_info(info, height: int, width: int, matrix: str = "k") -> Optional[np.ndarray]:
    """3x3 K for an image of (height, width) pixels, or None when `info` has none."""
    if info is None:
        return None
    if matrix not in MATRICES:
        raise ValueError(f"matrix must be one of {MATRICES}, got {matrix!r}")
    values = np.asarray(_field(info, matrix), dtype=np.float64)
    K = values.reshape(3, 4)[:, :3] if matrix == "p" else values.reshape(3, 3)
    if not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        return None
    info_w, info_h = int(info.width), int(info.height)
    if info_w > 0 and info_h > 0 and (info_w, info_h) != (width, height):
        K = scale_intrinsics(K, width / info_w, height / info_h)
    return np.asarray(K, dtype=np.float64)


def distortion_shift(info, height: int, width: int) -> Optional[float]:
    """The largest shift, pixels, that the lens of `info` (D, distortion_model) puts on the border of a
    (height, width) image against a pinhole camera with its K (inference/rectify.border_shift): 0.0
    without a calibrated K or without distortion (D all zero or empty; an equidistant, fisheye, lens
    is no pinhole even then), None for a lens OpenCV cannot undo."""
    from mhr2_ros.inference.rectify import FISHEYE, border_shift

    K = intrinsics_from_camera_info(info, height, width, "k")
    model, D = _lens(info)
    if K is None or (model != FISHEYE and not np.any(D)):
        return 0.0
    return border_shift(K, D, model, (height, width))


def _lens(info) -> Tuple[str, Tuple[float, ...]]:
    """(distortion_model, D) of a camera_info."""
    d = _field(info, "d")
    return str(getattr(info, "distortion_model", "")), tuple(np.asarray(d if d is not None else (), float).ravel())


def _field(info, name: str):
    """A camera_info matrix by its ROS 2 name (k, p, d), or its ROS 1 one (K, P, D); None when neither."""
    value = getattr(info, name, None)
    return getattr(info, name.upper(), None) if value is None else value


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
        model, D = _lens(info)
        K = intrinsics_from_camera_info(info, height, width, "k")
        key = (model, D, None if K is None else tuple(K.ravel()), height, width, bool(rectify))
        if key != self._key:
            self._key, self._rectifier = key, self._build(key, info)
        return self._rectifier

    def _build(self, key: tuple, info):
        from mhr2_ros.inference.rectify import Rectifier, lens_problem

        model, D, K, height, width, rectify = key
        self.shift = distortion_shift(info, height, width)
        if self.shift is not None and self.shift <= DISTORTION_MIN_PX:
            return None
        if self.shift is not None and rectify:
            log.info("rectifying the %dx%d raw images (%s, D=%s: up to %.0f px at the border) into the pinhole "
                     "images of their K", width, height, model, _listed(D), self.shift)
            return Rectifier(np.reshape(K, (3, 3)), D, model, (height, width))
        if key[:5] not in self._warned:
            self._warned.add(key[:5])
            if self.shift is None:
                log.warning("camera_info: %s; if the images are distorted, feed the rectified ones (image_proc's "
                            "image_rect) with intrinsics_matrix p", lens_problem(D, model))
            else:
                log.warning("camera_info says the %dx%d images are distorted (%s, D=%s): up to %.0f px at the "
                            "border, but they are not rectified (rectify false, or its K not used) and the detector "
                            "assumes a pinhole camera, so people near the border are placed along rays that far "
                            "off; rectify them, or feed the rectified images (image_proc's image_rect) with "
                            "intrinsics_matrix p", width, height, model, _listed(D), self.shift)
        return None


def _listed(values) -> str:
    return "[" + ", ".join(f"{x:g}" for x in values) + "]"
