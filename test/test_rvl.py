"""RVL, the compressedDepth plugin's lossless codec: codes worked out by hand, the reference encoder
of test_compressed_depth (one pixel at a time, as the C++ plugin does), and real CompressedImage
messages through CDR."""

import struct

import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.io import ros_image
from mhr2_ros.io.rvl import decode_rvl, decode_rvl_image
from test_compressed_depth import encode_compressed_depth, rvl_encode


def test_codes_worked_out_by_hand():
    # [0, 0, 5, 7, 0]: 2 zeros, 2 non-zeros, deltas 5 -> 10, 2 -> 4; 1 zero, 0 non-zeros.
    # Nibbles 2, 2, (10 = 0b1_010: 0xA then 0x1), 4, 1, 0 and one of padding: word 0x22A14100.
    np.testing.assert_array_equal(decode_rvl(b"\x00\x41\xa1\x22", 5), [0, 0, 5, 7, 0])
    # [9, 3]: 0 zeros, 2 non-zeros, deltas 9 -> 18 (0xA, 0x2), -6 -> 11 (0xB, 0x1): word 0x02A2B100
    np.testing.assert_array_equal(decode_rvl(b"\x00\xb1\xa2\x02", 2), [9, 3])
    assert rvl_encode(np.array([0, 0, 5, 7, 0])) == b"\x00\x41\xa1\x22"  # the reference encoder agrees
    image = decode_rvl_image(struct.pack("<II", 5, 1) + b"\x00\x41\xa1\x22")  # width 5, height 1
    assert image.dtype == np.uint16 and image.shape == (1, 5)


@pytest.mark.parametrize("case", ["holes", "no zeros", "all zeros", "extremes", "ends non-zero"])
def test_decoding_inverts_the_reference_encoder(rng, case):
    depth = rng.integers(400, 9000, (48, 64)).astype(np.uint16)
    if case == "holes":  # a depth camera's: scattered pixels and whole blocks without a measurement
        depth[rng.random(depth.shape) < 0.1] = 0
        depth[10:20, 30:50] = 0
    elif case == "all zeros":
        depth[:] = 0
    elif case == "extremes":  # differences of the full 16 bits, both signs, long codes
        depth[::2, ::3] = 65535
        depth[1::2, ::5] = 1
    elif case == "ends non-zero":
        depth[:, :10] = 0
    got = decode_rvl_image(struct.pack("<II", 64, 48) + rvl_encode(depth))
    np.testing.assert_array_equal(got, depth)


def test_compressed_depth_messages_in_rvl_read_as_their_png_twins(rng):
    mm = rng.integers(300, 9000, (30, 40)).astype(np.uint16)
    mm[rng.random(mm.shape) < 0.05] = 0
    rvl, png = (encode_compressed_depth(mm, "16UC1", f"compressedDepth {codec}") for codec in ("rvl", "png"))
    np.testing.assert_array_equal(ros_image.depth_msg_to_meters(rvl), mm.astype(np.float32) / 1000)
    meters = rng.uniform(0.4, 9.5, (30, 40)).astype(np.float32)
    meters[2, 3] = np.nan
    rvl, png = (encode_compressed_depth(meters, "32FC1", f"compressedDepth {codec}") for codec in ("rvl", "png"))
    np.testing.assert_array_equal(ros_image.depth_msg_to_meters(rvl), ros_image.depth_msg_to_meters(png))
    assert np.isnan(ros_image.depth_msg_to_meters(rvl)[2, 3])


def test_malformed_rvl_is_named(rng):
    depth = rng.integers(400, 9000, (6, 8)).astype(np.uint16)
    code = rvl_encode(depth)
    with pytest.raises(InputError, match=r"cam: RVL data ends inside a run, after 0 of 48 pixels"):
        decode_rvl_image(struct.pack("<II", 8, 6) + code[:4], "cam")
    with pytest.raises(InputError, match=r"codes more pixels than its 40"):
        decode_rvl_image(struct.pack("<II", 8, 5) + code)
    with pytest.raises(InputError, match=r"size 0x6 is malformed"):
        decode_rvl_image(struct.pack("<II", 0, 6) + code)
    with pytest.raises(InputError, match=r"3 bytes has no 8-byte size header"):
        decode_rvl_image(b"\x01\x02\x03")
