"""sensor_msgs/Image and CompressedImage -> HxWx3 uint8 RGB (and depth images -> meters),
without cv_bridge.

Duck-typed on the message fields, so the same code decodes rclpy messages on a
robot (data is an array.array) and rosbags messages offline (data is a numpy
array). Unknown encodings are refused with a message naming the encoding and the
supported ones, never guessed.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Tuple

import cv2
import numpy as np

from mhr2_ros.errors import InputError

log = logging.getLogger(__name__)

# encoding -> (channels, bytes per channel); sensor_msgs/image_encodings.hpp's colour, mono and Bayer
# ones, OpenCV's 8UC1/3/4, packed 4:2:2 and planar 4:2:0 YUV (NV12/NV21: a full-size Y plane, then
# half-size interleaved chroma rows, height x 1.5 rows of `step` bytes in all)
RAW_LAYOUTS: Dict[str, Tuple[int, int]] = {
    "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1), "mono8": (1, 1), "mono16": (1, 2),
    "rgb16": (3, 2), "bgr16": (3, 2), "rgba16": (4, 2), "bgra16": (4, 2),
    "8UC1": (1, 1), "8UC3": (3, 1), "8UC4": (4, 1),
    "yuv422": (2, 1), "uyvy": (2, 1), "yuv422_yuy2": (2, 1), "yuyv": (2, 1), "nv12": (1, 1), "nv21": (1, 1),
    "bayer_rggb8": (1, 1), "bayer_bggr8": (1, 1), "bayer_gbrg8": (1, 1), "bayer_grbg8": (1, 1),
    "bayer_rggb16": (1, 2), "bayer_bggr16": (1, 2), "bayer_gbrg16": (1, 2), "bayer_grbg16": (1, 2),
}  # fmt: skip
PLANAR_420 = ("nv12", "nv21")  # their rows: 3 / 2 of the image's height
# cv2 conversions to RGB; OpenCV names Bayer patterns after the second row's
# first two pixels, hence RGGB -> BayerBG (as cv_bridge does).
_CV2_TO_RGB = {
    "bgr8": cv2.COLOR_BGR2RGB, "8UC3": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB, "8UC4": cv2.COLOR_BGRA2RGB, "mono8": cv2.COLOR_GRAY2RGB, "8UC1": cv2.COLOR_GRAY2RGB,
    "yuv422": cv2.COLOR_YUV2RGB_UYVY, "uyvy": cv2.COLOR_YUV2RGB_UYVY,
    "yuv422_yuy2": cv2.COLOR_YUV2RGB_YUY2, "yuyv": cv2.COLOR_YUV2RGB_YUY2,
    "bayer_rggb8": cv2.COLOR_BayerBG2RGB, "bayer_bggr8": cv2.COLOR_BayerRG2RGB,
    "bayer_gbrg8": cv2.COLOR_BayerGR2RGB, "bayer_grbg8": cv2.COLOR_BayerGB2RGB,
    "nv12": cv2.COLOR_YUV2RGB_NV12, "nv21": cv2.COLOR_YUV2RGB_NV21,
}  # fmt: skip
# 16-bit encodings -> the 8-bit one of the same layout (their high byte is kept, as mono16's)
EIGHT_BIT = {"mono16": "mono8", "rgb16": "rgb8", "bgr16": "bgr8", "rgba16": "rgba8", "bgra16": "bgra8",
             **{f"bayer_{p}16": f"bayer_{p}8" for p in ("rggb", "bggr", "gbrg", "grbg")}}  # fmt: skip
SUPPORTED = ", ".join(sorted(RAW_LAYOUTS))


def stamp_to_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_and_frame(msg) -> Tuple[int, str]:
    """(stamp ns, frame_id) of an image message: its header's, or the fields of their own of a
    foxglove_msgs/CompressedVideo, which has no header."""
    header = getattr(msg, "header", None)
    stamp, frame_id = (header.stamp, header.frame_id) if header is not None else (msg.timestamp, msg.frame_id)
    return stamp_to_ns(stamp), str(frame_id)


def _pixels(msg, channels: int, depth: int, name: str, rows: int = 0) -> np.ndarray:
    """The (rows, W, C) array of a raw image (rows: its height unless given), honouring row padding
    (step) and endianness."""
    height, width, step = rows or int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * depth
    data = np.frombuffer(msg.data, dtype=np.uint8)
    if height <= 0 or width <= 0:
        raise InputError(f"{name}: empty image ({width}x{height})")
    if step < row_bytes or data.size < height * step:
        raise InputError(
            f"{name}: {msg.encoding} image {width}x{height} needs {height} rows of >= {row_bytes} bytes, "
            f"got step {step} and {data.size} bytes"
        )
    rows = data[: height * step].reshape(height, step)[:, :row_bytes]
    if depth in (2, 4):  # uint16, or float32 (32FC1)
        dtype = np.dtype(("u2" if depth == 2 else "f4")).newbyteorder(">" if msg.is_bigendian else "<")
        return np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels)
    return rows.reshape(height, width, channels)


def image_msg_to_rgb(msg, name: str = "image") -> np.ndarray:
    """sensor_msgs/Image -> HxWx3 uint8 RGB (a copy: the message may be reused)."""
    encoding = str(msg.encoding)
    layout = RAW_LAYOUTS.get(encoding)
    if layout is None:
        raise InputError(f"{name}: unsupported image encoding {encoding!r}; supported: {SUPPORTED}")
    planar = encoding in PLANAR_420
    if planar and (int(msg.height) % 2 or int(msg.width) % 2):  # 4:2:0: a 2x2 block shares its chroma
        raise InputError(f"{name}: {encoding} image needs an even width and height, got {msg.width}x{msg.height}")
    pixels = _pixels(msg, *layout, name, rows=int(msg.height) * 3 // 2 if planar else 0)
    if encoding in EIGHT_BIT:
        pixels = (pixels >> 8).astype(np.uint8)
        encoding = EIGHT_BIT[encoding]
    if encoding == "rgb8":
        return np.array(pixels, dtype=np.uint8, order="C")
    if encoding in ("mono8", "8UC1") or encoding.startswith("bayer_") or planar:
        pixels = pixels[..., 0]
    if RAW_LAYOUTS[encoding] == (2, 1) and pixels.shape[1] % 2:  # 4:2:2: two pixels share a chroma pair
        raise InputError(f"{name}: {encoding} image needs an even width, got {pixels.shape[1]}")
    return cv2.cvtColor(np.ascontiguousarray(pixels), _CV2_TO_RGB[encoding])


MILLIMETRE_ENCODINGS = ("16UC1", "mono16")  # REP-118 depth in millimetres
DEPTH_ENCODINGS = MILLIMETRE_ENCODINGS + ("32FC1",)  # ... or in meters


def millimetres_to_meters(mm: np.ndarray) -> np.ndarray:
    """uint16 millimetres (0: no measurement) -> float32 meters."""
    return mm.astype(np.float32) / np.float32(1000.0)


def depth_msg_to_meters(msg, name: str = "depth") -> np.ndarray:
    """sensor_msgs/Image of depth (REP-118: 16UC1 millimetres, 32FC1 meters; 0 or NaN: no
    measurement), or the CompressedImage of image_transport's compressedDepth plugin
    (io/compressed_depth.py) -> (H, W) float32 meters, a copy."""
    if hasattr(msg, "format"):  # a CompressedImage: only compressedDepth carries a depth image
        from mhr2_ros.io.compressed_depth import compressed_depth_to_meters  # here: it imports this module

        return compressed_depth_to_meters(msg, name)
    encoding = str(msg.encoding)
    if encoding not in DEPTH_ENCODINGS:
        raise InputError(f"{name}: unsupported depth encoding {encoding!r}; supported: {', '.join(DEPTH_ENCODINGS)}")
    if encoding == "32FC1":
        return np.array(_pixels(msg, 1, 4, name)[..., 0], dtype=np.float32)
    return millimetres_to_meters(_pixels(msg, 1, 2, name)[..., 0])


def nearest_in_time(messages, stamp_ns: int):
    """The message whose header stamp is nearest to `stamp_ns` (the earlier one on a tie), or None."""
    best, best_gap = None, None
    for msg in messages:
        gap = abs(stamp_to_ns(msg.header.stamp) - stamp_ns)
        if best_gap is None or gap < best_gap:
            best, best_gap = msg, gap
    return best


def depth_in_sync(depth_msg, image_stamp_ns: int, tolerance_s: float, image_hw,
                  name: str = "depth") -> Optional[np.ndarray]:
    """`depth_msg` in meters when its header stamp is within `tolerance_s` seconds of the image's
    and it can serve the (H, W) image, else None (the network's depths are used): a depth image of
    another moment would place moving people where they were, not where the colour image shows
    them. A depth stream that cannot be used (an encoding or size that does not fit) is named in
    a warning, once per problem, and detection goes on without it."""
    from mhr2_ros.inference.depth_fusion import check_depth_image  # numpy only

    if depth_msg is None:
        return None
    gap = abs(stamp_to_ns(depth_msg.header.stamp) - image_stamp_ns) / 1e9
    if gap > tolerance_s:
        log.debug("%s image %.3f s from the colour image (tolerance %.3f s): not used", name, gap, tolerance_s)
        return None
    try:
        return check_depth_image(depth_msg_to_meters(depth_msg, name), image_hw)
    except InputError as exc:
        if str(exc) not in _DEPTH_PROBLEMS:
            _DEPTH_PROBLEMS.add(str(exc))
            log.warning("%s; people keep the network's depths", exc)
        return None


_DEPTH_PROBLEMS: set = set()  # depth problems already warned about (a stream repeats them every frame)


def compressed_msg_to_rgb(msg, name: str = "image") -> np.ndarray:
    """sensor_msgs/CompressedImage (JPEG, PNG, ...) -> HxWx3 uint8 RGB.

    image_transport's compressed plugin encodes colour images as BGR whatever the
    source encoding ("rgb8; jpeg compressed bgr8"), which imdecode returns as BGR.
    """
    fmt = str(msg.format)
    if "compressedDepth" in fmt:
        raise InputError(f"{name}: {fmt!r} is a compressed depth image, not a camera image")
    data = np.frombuffer(msg.data, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError(f"{name}: cannot decode the compressed image (format {fmt!r}, {data.size} bytes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
