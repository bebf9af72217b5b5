"""image_transport's compressedDepth messages (real CompressedImage through CDR) -> meters: the
16-bit PNG of millimetres, the quantised inverse depth of 32FC1, and clear refusals."""

import struct

import cv2
import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.io import ros_image
from mhr2_ros.io.compressed_depth import compressed_depth_to_meters
from test_ros_image import COMPRESSED, STORE, _header, received

# The publisher's defaults (compressed_depth_image_transport: depth_max, depth_quantization).
DEPTH_MAX_M, DEPTH_QUANTIZATION = 10.0, 100.0


def encode_compressed_depth(depth: np.ndarray, encoding: str, codec: str = "compressedDepth png"):
    """A CompressedImage as the compressedDepth publisher writes it: a 12-byte header (int32
    format 0 = inverse depth, float32 quantisation A, B) then a 16-bit PNG (or RVL); 16UC1 depth in
    millimetres as it is (beyond depth_max: 0), 32FC1 meters as q = A / depth + B, truncated to
    uint16 (not below depth_max, or NaN: 0)."""
    quant_a = quant_b = 0.0
    if encoding == "32FC1":
        quant_a = DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1.0)
        quant_b = 1.0 - quant_a / DEPTH_MAX_M
        with np.errstate(invalid="ignore", divide="ignore"):
            q = np.where(depth < DEPTH_MAX_M, np.float32(quant_a) / depth + np.float32(quant_b), 0.0)
        image = np.nan_to_num(q).astype(np.uint16)
    else:
        image = np.where(depth > DEPTH_MAX_M * 1000, 0, depth).astype(np.uint16)
    if codec.endswith("rvl"):  # the image's width and height, then its RVL code
        payload = struct.pack("<II", image.shape[1], image.shape[0]) + rvl_encode(image)
    else:
        payload = cv2.imencode(".png", image)[1].tobytes()
    data = np.frombuffer(struct.pack("<iff", 0, quant_a, quant_b) + payload, np.uint8)
    return received(STORE.types[COMPRESSED](_header(), f"{encoding}; {codec}", data))


def rvl_encode(pixels: np.ndarray) -> bytes:
    """The RVL words (little-endian int32) of a uint16 image: per run the zero count, the non-zero
    count and each non-zero pixel's zigzagged difference from the previous non-zero pixel; every
    integer in 3-bit groups, low group first, 0x8 on all nibbles but the last; nibbles fill each
    word from its top; the last word padded with zero nibbles."""
    nibbles = []

    def put(value):
        while True:
            nibble, value = value & 0x7, value >> 3
            nibbles.append(nibble | (0x8 if value else 0))
            if not value:
                return

    flat, i, previous = [int(p) for p in pixels.reshape(-1)], 0, 0
    while i < len(flat):
        start = i
        while i < len(flat) and flat[i] == 0:
            i += 1
        put(i - start)
        start = i
        while i < len(flat) and flat[i] != 0:
            i += 1
        put(i - start)
        for current in flat[start:i]:
            delta = current - previous
            put(2 * delta if delta >= 0 else -2 * delta - 1)
            previous = current
    nibbles += [0] * (-len(nibbles) % 8)
    words = [int("".join(f"{n:x}" for n in nibbles[k:k + 8]), 16) for k in range(0, len(nibbles), 8)]
    return struct.pack(f"<{len(words)}I", *words)


@pytest.mark.parametrize("encoding", ["16UC1", "mono16"])
def test_millimetre_depth_decodes_exactly(rng, encoding):
    mm = rng.integers(300, 9000, (24, 32)).astype(np.uint16)
    mm[3, 4] = 0  # no measurement
    msg = encode_compressed_depth(mm, encoding)
    got = ros_image.depth_msg_to_meters(msg)  # what the node and `mhr2 bag` call, with either message type
    assert got.dtype == np.float32 and got.shape == (24, 32)
    np.testing.assert_array_equal(got, mm.astype(np.float32) / 1000)
    # older publishers name no codec ("16UC1; compressedDepth"): PNG
    np.testing.assert_array_equal(compressed_depth_to_meters(encode_compressed_depth(mm, encoding, "compressedDepth")),
                                  mm.astype(np.float32) / 1000)  # fmt: skip


def test_a_16_bit_png_through_the_plain_compressed_plugin_decodes(rng):
    """compressed_image_transport sends a 16UC1 image as its PNG alone: "16UC1; png compressed mono16"."""
    mm = rng.integers(300, 9000, (8, 12)).astype(np.uint16)
    ok, png = cv2.imencode(".png", mm)
    msg = received(STORE.types[COMPRESSED](_header(), "16UC1; png compressed mono16", png.reshape(-1)))
    np.testing.assert_array_equal(ros_image.depth_msg_to_meters(msg), mm.astype(np.float32) / 1000)
    jpeg = received(STORE.types[COMPRESSED](_header(), "16UC1; jpeg compressed mono8", png.reshape(-1)))
    with pytest.raises(InputError, match=r"format '16UC1; jpeg compressed mono8' is not a depth image"):
        ros_image.depth_msg_to_meters(jpeg)  # lossy 8 bits: no depth


def test_metre_depth_decodes_within_its_quantisation(rng):
    meters = rng.uniform(0.4, 9.5, (24, 32)).astype(np.float32)
    meters[0, 0], meters[1, 1] = np.nan, 12.0  # no measurement; beyond depth_max: not sent
    got = compressed_depth_to_meters(encode_compressed_depth(meters, "32FC1"))
    assert np.isnan(got[0, 0]) and np.isnan(got[1, 1])
    ok = np.isfinite(meters) & (meters < DEPTH_MAX_M)
    # one step of q = A / d + B is d^2 / A: 0.9 mm at 3 m, 9 mm at 9.5 m; truncation makes it one-sided
    step = meters[ok] ** 2 / (DEPTH_QUANTIZATION * (DEPTH_QUANTIZATION + 1.0))
    error = got[ok] - meters[ok]
    assert np.all(error >= -1e-4) and np.all(error <= 1.01 * step + 1e-4)
    assert float(np.abs(error).max()) > 1e-4  # a quantised depth, not the input passed through


def test_what_is_not_a_png_compressed_depth_image_is_named(rng):
    mm = rng.integers(300, 9000, (4, 6)).astype(np.uint16)
    with pytest.raises(InputError, match=r"'zstd'-compressed depth \(format '16UC1; compressedDepth zstd'\) is not "
                                         r"supported; expected one of png, rvl"):  # fmt: skip
        compressed_depth_to_meters(encode_compressed_depth(mm, "16UC1", "compressedDepth zstd"))
    with pytest.raises(InputError, match=r"encoding 'rgb8' is not a depth image"):
        compressed_depth_to_meters(encode_compressed_depth(mm, "rgb8"))
    with pytest.raises(InputError, match=r"format 'png' is not a depth image \(expected image_transport's"):
        ros_image.depth_msg_to_meters(received(STORE.types[COMPRESSED](_header(), "png", np.zeros(20, np.uint8))))
    header_only = received(STORE.types[COMPRESSED](_header(), "16UC1; compressedDepth png", np.zeros(12, np.uint8)))
    with pytest.raises(InputError, match=r"12 bytes holds no image after its 12-byte header"):
        compressed_depth_to_meters(header_only)
    ok, colour = cv2.imencode(".png", rng.integers(0, 255, (4, 6, 3), dtype=np.uint8))
    wrong = received(STORE.types[COMPRESSED](_header(), "16UC1; compressedDepth png",
                                             np.frombuffer(bytes(12) + colour.tobytes(), np.uint8)))  # fmt: skip
    with pytest.raises(InputError, match=r"depth PNG decodes to a uint8 image of shape \(4, 6, 3\), not a 16-bit"):
        compressed_depth_to_meters(wrong)
