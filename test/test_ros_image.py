"""sensor_msgs/Image and CompressedImage decoding (mhr2_ros.io.ros_image), on real message
classes: rosbags messages serialized to CDR and read back as a bag reader or a subscriber
gets them, and the strict rclpy stand-in of ros_fakes (array.array data)."""

import array

import cv2
import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.io import ros_image
from mhr2_ros.ros.typestore import make_typestore
from ros_fakes import fake_generated_classes

STORE = make_typestore("humble")
IMAGE, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"


def _header():
    return STORE.types["std_msgs/msg/Header"](STORE.types["builtin_interfaces/msg/Time"](1, 2), "cam_optical_frame")


def received(msg):
    """`msg` as a subscriber (or a bag reader) gets it: serialized to CDR and read back."""
    return STORE.deserialize_cdr(STORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def raw_image(height, width, encoding, step, data, is_bigendian=0):
    """A real sensor_msgs/Image with these fields, through CDR (data: bytes as the wire has them)."""
    data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
    return received(STORE.types[IMAGE](_header(), height, width, encoding, is_bigendian, step, data))


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1", "8UC3", "8UC4"])
def test_raw_encodings_decode_to_rgb(rng, encoding):
    """Every raw encoding the README lists, with padded rows (step > width * bytes): the
    OpenCV-style 8UCn are BGR(A) in memory, mono gives grey RGB, mono16 keeps its high byte."""
    rgb = rng.integers(0, 255, (6, 8, 3), dtype=np.uint8)
    gray = rgb[..., :1]
    alpha = np.full_like(gray, 9)
    planes = {
        "rgb8": rgb, "bgr8": rgb[..., ::-1], "8UC3": rgb[..., ::-1],
        "rgba8": np.dstack([rgb, alpha]), "bgra8": np.dstack([rgb[..., ::-1], alpha]),
        "8UC4": np.dstack([rgb[..., ::-1], alpha]),
        "mono8": gray, "8UC1": gray, "mono16": (gray.astype(np.uint16) << 8) | 7,  # little-endian: low byte first
    }  # fmt: skip
    data = np.ascontiguousarray(planes[encoding])
    padded = np.zeros((6, data.strides[0] + 4), np.uint8)
    padded[:, : data.strides[0]] = data.view(np.uint8).reshape(6, -1)
    out = ros_image.image_msg_to_rgb(raw_image(6, 8, encoding, padded.shape[1], padded))
    expected = np.repeat(gray, 3, axis=2) if encoding in ("mono8", "mono16", "8UC1") else rgb
    assert out.dtype == np.uint8 and out.shape == (6, 8, 3) and np.array_equal(out, expected)


@pytest.mark.parametrize("source", ["rosbags", "rclpy-like"])
def test_big_endian_mono16_from_numpy_or_array_array_data(source):
    """rosbags messages hold data as a numpy array, rclpy's as array.array('B') (the strict
    stand-in of ros_fakes): both decode; big-endian mono16 keeps its first byte of each pixel."""
    wire = bytes([0x12, 0x34, 0xFF, 0x00])  # big-endian 0x1234 and 0xFF00
    if source == "rosbags":
        msg = raw_image(1, 2, "mono16", 4, np.frombuffer(wire, np.uint8), is_bigendian=1)
    else:
        msg = fake_generated_classes(STORE)(IMAGE)(height=1, width=2, encoding="mono16", is_bigendian=1, step=4,
                                                   data=array.array("B", wire))  # fmt: skip
    assert ros_image.image_msg_to_rgb(msg).tolist() == [[[0x12] * 3, [0xFF] * 3]]


@pytest.mark.parametrize("encoding, pattern", [
    ("bayer_rggb8", "RGGB"), ("bayer_bggr8", "BGGR"), ("bayer_gbrg8", "GBRG"), ("bayer_grbg8", "GRBG"),
])  # fmt: skip
def test_bayer_patterns_demosaic_to_the_right_colour(encoding, pattern):
    colour = {"R": 200, "G": 120, "B": 40}
    mosaic = np.zeros((8, 8), np.uint8)
    for (dy, dx), channel in zip(((0, 0), (0, 1), (1, 0), (1, 1)), pattern):
        mosaic[dy::2, dx::2] = colour[channel]
    centre = ros_image.image_msg_to_rgb(raw_image(8, 8, encoding, 8, mosaic))[3:5, 3:5].reshape(-1, 3).mean(0)
    assert np.allclose(centre, [200, 120, 40], atol=2)


def test_yuv422_decodes():
    uyvy = np.tile(np.array([128, 200, 128, 200], np.uint8), (4, 2))  # grey, Y = 200 (BT.601 video range)
    assert np.allclose(ros_image.image_msg_to_rgb(raw_image(4, 4, "yuv422", 8, uyvy)), (200 - 16) * 255 / 219, atol=2)


@pytest.mark.parametrize("encoding", ["rgb16", "bgr16", "rgba16", "bgra16"])
@pytest.mark.parametrize("bigendian", [0, 1])
def test_sixteen_bit_colour_keeps_its_high_byte(rng, encoding, bigendian):
    rgb = rng.integers(0, 255, (4, 6, 3), dtype=np.uint8)
    planes = rgb[..., ::-1] if encoding.startswith("bgr") else rgb
    if encoding.endswith("a16"):
        planes = np.dstack([planes, np.full_like(rgb[..., :1], 77)])
    wide = (planes.astype(np.uint16) << 8) | rng.integers(0, 255, planes.shape, dtype=np.uint16)  # any low byte
    data = wide.astype(">u2" if bigendian else "<u2")
    out = ros_image.image_msg_to_rgb(raw_image(4, 6, encoding, 6 * planes.shape[2] * 2, data, is_bigendian=bigendian))
    assert out.dtype == np.uint8 and np.array_equal(out, rgb)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
def test_sixteen_bit_bayer_demosaics_like_its_eight_bit_twin(rng, pattern):
    mosaic = rng.integers(0, 255, (8, 10), dtype=np.uint8)
    eight = ros_image.image_msg_to_rgb(raw_image(8, 10, f"bayer_{pattern}8", 10, mosaic))
    sixteen = ros_image.image_msg_to_rgb(raw_image(8, 10, f"bayer_{pattern}16", 20, mosaic.astype("<u2") * 257))
    assert np.array_equal(sixteen, eight)


@pytest.mark.parametrize("encoding", ["nv12", "nv21"])
def test_planar_yuv420_decodes_like_opencvs_i420(encoding):
    """NV12 / NV21 (libcamera, Jetson drivers): a Y plane then interleaved chroma rows (UV / VU),
    height x 1.5 rows of `step` bytes; padded rows honoured; the same pixels as OpenCV's I420."""
    y, x = np.mgrid[0:8, 0:12]
    rgb = np.dstack([60 + 5 * x, 6 * y + 40, 200 - 3 * x - 4 * y]).astype(np.uint8)  # smooth: 4:2:0 keeps it
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)  # (12, 12): Y, then U (2 rows), then V (2 rows)
    luma, u, v = i420[:8], i420[8:10].reshape(4, 6), i420[10:12].reshape(4, 6)
    chroma = np.stack([u, v] if encoding == "nv12" else [v, u], axis=-1).reshape(4, 12)
    planes = np.vstack([luma, chroma])
    padded = np.zeros((12, 16), np.uint8)
    padded[:, :12] = planes
    out = ros_image.image_msg_to_rgb(raw_image(8, 12, encoding, 16, padded))
    assert np.array_equal(out, cv2.cvtColor(i420, cv2.COLOR_YUV2RGB_I420))
    assert np.abs(out.astype(int) - rgb).mean() < 4
    with pytest.raises(InputError, match=f"cam: {encoding} image needs an even width and height, got 12x7"):
        ros_image.image_msg_to_rgb(raw_image(7, 12, encoding, 16, padded), "cam")
    with pytest.raises(InputError, match="needs 12 rows of >= 12 bytes"):  # the chroma rows missing
        ros_image.image_msg_to_rgb(raw_image(8, 12, encoding, 16, padded[:8]), "cam")


@pytest.mark.parametrize("change, message", [
    ({"encoding": "32FC1"}, "unsupported image encoding '32FC1'"),
    ({"step": 3}, "needs 2 rows of >= 6 bytes"),
    ({"data": np.zeros(5, np.uint8)}, "got step 6 and 5 bytes"),
    ({"width": 0}, "empty image"),
])  # fmt: skip
def test_bad_raw_images_are_refused_clearly(change, message):
    fields = {"height": 2, "width": 2, "encoding": "rgb8", "step": 6, "data": np.zeros(12, np.uint8), **change}
    with pytest.raises(InputError, match=message):
        ros_image.image_msg_to_rgb(raw_image(**fields), "cam")


def test_compressed_images_decode_and_depth_is_refused(rng):
    rgb = rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))  # cv2 writes BGR pixels

    def compressed(fmt, data):
        return received(STORE.types[COMPRESSED](_header(), fmt, np.asarray(data, np.uint8).reshape(-1)))

    assert np.array_equal(ros_image.compressed_msg_to_rgb(compressed("png", png)), rgb)  # lossless: exact
    with pytest.raises(InputError, match="compressed depth"):
        ros_image.compressed_msg_to_rgb(compressed("16UC1; compressedDepth", png))
    with pytest.raises(InputError, match="cannot decode"):
        ros_image.compressed_msg_to_rgb(compressed("jpeg", np.zeros(10, np.uint8)))


@pytest.mark.parametrize("encoding,dtype,scale", [("16UC1", "u2", 1000.0), ("mono16", "u2", 1000.0),
                                                  ("32FC1", "f4", 1.0)])  # fmt: skip
@pytest.mark.parametrize("bigendian", [0, 1])
def test_depth_images_decode_to_meters(encoding, dtype, scale, bigendian):
    """REP-118 depth: 16UC1 (and mono16) millimetres, 32FC1 meters, padded rows, either byte
    order; 0 and NaN (no measurement) stay as they are."""
    meters = np.array([[0.0, 1.5, 2.25], [4.0, 65.535 if scale > 1 else np.nan, 0.5]], np.float32)
    values = np.round(np.nan_to_num(meters) * scale).astype(dtype) if scale > 1 else meters.astype(dtype)
    order = ">" if bigendian else "<"
    rows = np.zeros((2, 16), np.uint8)  # 3 pixels of 2 or 4 bytes, padded to 16 bytes a row
    rows[:, : 3 * values.itemsize] = values.astype(values.dtype.newbyteorder(order)).view(np.uint8)
    got = ros_image.depth_msg_to_meters(raw_image(2, 3, encoding, 16, rows, is_bigendian=bigendian))
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, meters)


def test_a_colour_image_is_not_a_depth_image():
    with pytest.raises(InputError, match=r"depth: unsupported depth encoding 'rgb8'; supported: 16UC1, mono16, 32FC1"):
        ros_image.depth_msg_to_meters(raw_image(1, 1, "rgb8", 3, np.zeros(3, np.uint8)))
