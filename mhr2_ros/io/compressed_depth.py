"""sensor_msgs/CompressedImage of image_transport's compressedDepth plugin -> depth in meters.

Depth cameras are recorded and streamed this way (`.../image_raw/compressedDepth`): the
message's `format` is "<encoding>; compressedDepth png" ("<encoding>; compressedDepth" from
older publishers), and its `data` is a 12-byte configuration header (int32 format, float32
depthParam[2], little-endian) followed by a 16-bit PNG:

- 16UC1 / mono16: the depth in millimetres itself (0: no measurement);
- 32FC1: a quantised inverse depth q, depth = depthParam[0] / (q - depthParam[1]) meters
  (q = 0: no measurement, beyond the publisher's depth_max).

The plugin's RVL compression ("compressedDepth rvl", io/rvl.py) holds, in place of the PNG, the
image's width and height and its RVL code, which decodes to the same 16-bit image. A 16-bit
depth image sent through the plain compressed plugin as PNG ("16UC1; png compressed ...": the
PNG alone, no header) is read too. Duck-typed on the fields, like io/ros_image.py: rclpy and
rosbags messages alike.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.io.ros_image import DEPTH_ENCODINGS, MILLIMETRE_ENCODINGS, millimetres_to_meters
from mhr2_ros.io.rvl import decode_rvl_image

CONFIG_HEADER = struct.Struct("<iff")  # compressionFormat (int32), depthParam[0], depthParam[1]
CODECS = ("png", "rvl")  # the plugin's two: the "format" parameter of compressed_depth_image_transport


def compressed_depth_to_meters(msg, name: str = "depth") -> np.ndarray:
    """(H, W) float32 meters of a compressedDepth CompressedImage, or of a 16-bit PNG one (0 or
    NaN: no measurement); InputError naming the message and what would be right for anything else."""
    fmt = str(msg.format)
    encoding, _, compression = (part.strip() for part in fmt.partition(";"))
    if "compressedDepth" not in compression:
        if encoding in MILLIMETRE_ENCODINGS and compression.startswith("png"):  # the plain plugin's PNG
            return millimetres_to_meters(_png16(np.frombuffer(bytes(msg.data), dtype=np.uint8), name))
        raise InputError(f"{name}: format {fmt!r} is not a depth image (expected image_transport's "
                         "'16UC1; compressedDepth png' or '32FC1; compressedDepth png', or '16UC1; png "
                         "compressed')")  # fmt: skip
    codec = compression.replace("compressedDepth", "").strip() or "png"  # older publishers name none: PNG
    if codec not in CODECS:
        raise InputError(f"{name}: {codec!r}-compressed depth (format {fmt!r}) is not supported; expected one of "
                         f"{', '.join(CODECS)} (the publisher's compressedDepth format parameter)")  # fmt: skip
    if encoding not in DEPTH_ENCODINGS:  # 32FC1 is sent as quantised inverse depth
        raise InputError(f"{name}: compressedDepth of encoding {encoding!r} is not a depth image; expected "
                         f"{', '.join(DEPTH_ENCODINGS)}")  # fmt: skip
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if data.size <= CONFIG_HEADER.size:
        raise InputError(f"{name}: compressedDepth message of {data.size} bytes holds no image after its "
                         f"{CONFIG_HEADER.size}-byte header")  # fmt: skip
    _, quant_a, quant_b = CONFIG_HEADER.unpack(data[: CONFIG_HEADER.size].tobytes())
    payload = data[CONFIG_HEADER.size:]
    image = decode_rvl_image(payload, name) if codec == "rvl" else _png16(payload, name)
    if encoding in MILLIMETRE_ENCODINGS:
        return millimetres_to_meters(image)
    q = image.astype(np.float32)  # inverse depth, quantised: q = A / depth + B
    with np.errstate(divide="ignore"):
        depth = np.float32(quant_a) / (q - np.float32(quant_b))
    return np.where(image > 0, depth, np.float32(np.nan)).astype(np.float32)


def _png16(data: np.ndarray, name: str) -> np.ndarray:
    """(H, W) uint16 of PNG bytes; InputError when they hold anything else."""
    png = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if png is None or png.dtype != np.uint16 or png.ndim != 2:
        got = "nothing" if png is None else f"a {png.dtype} image of shape {png.shape}"
        raise InputError(f"{name}: the depth PNG decodes to {got}, not a 16-bit single-channel image")
    return png
