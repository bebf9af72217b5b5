"""RVL, the lossless depth codec of image_transport's compressedDepth plugin ("compressedDepth rvl").

RVL (A. D. Wilson, "Fast Lossless Depth Image Compression", ISS 2017) codes a 16-bit image, row
after row, as runs: the number of zero pixels, the number of non-zero pixels that follow, then
each of those as its difference from the previous non-zero pixel (the last one of any earlier
run; 0 at the start), zigzag-mapped to a non-negative integer (d >= 0: 2d, d < 0: -2d - 1).
Every integer is a variable-length code of 4-bit nibbles, 3 value bits each, least significant
group first, the high bit set while more nibbles follow. The nibbles fill 32-bit words from the
most significant end; the words are stored little-endian (the codec writes int32s on x86), the
last one padded with zero nibbles.

The compressedDepth message holds, after its 12-byte configuration header, uint32 width and
height (little-endian) and then the RVL words. Decoding is vectorised over nibbles and over
pixels; only the runs are walked one by one (a depth image has a few hundred to a few thousand).
"""

from __future__ import annotations

import struct

import numpy as np

from mhr2_ros.errors import InputError

SIZE_HEADER = struct.Struct("<II")  # width (cols), height (rows)
NIBBLES_PER_WORD = 8
VALUE_BITS = 3  # value bits per nibble; the fourth is the continuation flag
CONTINUE = 0x8
MAX_PIXELS = 1 << 28  # 16k x 16k: a larger size is a corrupt header, not a depth camera


def decode_rvl_image(data: bytes | np.ndarray, name: str = "depth") -> np.ndarray:
    """(H, W) uint16 of a compressedDepth RVL payload (uint32 width, height, then the RVL words);
    InputError naming the message when the payload is cut short or inconsistent."""
    raw = _byte_array(data)
    if raw.size < SIZE_HEADER.size:
        raise InputError(f"{name}: RVL payload of {raw.size} bytes has no {SIZE_HEADER.size}-byte size header")
    width, height = SIZE_HEADER.unpack(raw[: SIZE_HEADER.size].tobytes())
    if width == 0 or height == 0 or width * height > MAX_PIXELS:
        raise InputError(f"{name}: RVL image of size {width}x{height} is malformed (expected a non-empty image "
                         f"of at most {MAX_PIXELS} pixels)")  # fmt: skip
    pixels = decode_rvl(raw[SIZE_HEADER.size:], width * height, name)
    return pixels.reshape(height, width)


def decode_rvl(words: bytes | np.ndarray, num_pixels: int, name: str = "depth") -> np.ndarray:
    """(num_pixels,) uint16 of RVL-coded little-endian 32-bit words."""
    values = _vle_values(_nibbles(words))
    zeros, nonzeros, delta_at = _runs(values, num_pixels, name)
    coded = values[delta_at]
    deltas = (coded >> 1) ^ -(coded & 1)  # zigzag back to signed differences
    out = np.zeros(num_pixels, dtype=np.uint16)
    is_nonzero = np.repeat(np.tile(np.array([False, True]), zeros.size), np.stack([zeros, nonzeros], 1).reshape(-1))
    out[is_nonzero] = (np.cumsum(deltas) & 0xFFFF).astype(np.uint16)  # each pixel is the previous plus its delta
    return out


def _nibbles(words: bytes | np.ndarray) -> np.ndarray:
    """(8 * words,) uint8 nibbles in code order: each word's most significant nibble first."""
    raw = _byte_array(words)
    big_endian = raw[: raw.size - raw.size % 4].reshape(-1, 4)[:, ::-1].reshape(-1)  # a word's top byte first
    return np.stack([big_endian >> 4, big_endian & 0xF], axis=1).reshape(-1)


def _byte_array(data: bytes | np.ndarray) -> np.ndarray:
    """(N,) uint8 view of bytes or of a uint8 array (a message's data), without a copy."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _vle_values(nibbles: np.ndarray) -> np.ndarray:
    """(N,) int64: the integers the nibbles code; a code left open at the end is dropped."""
    ends = np.flatnonzero(nibbles < CONTINUE)
    if ends.size == 0:
        return np.zeros(0, dtype=np.int64)
    nibbles = nibbles[: ends[-1] + 1]
    index = np.arange(nibbles.size)
    is_start = np.zeros(nibbles.size, dtype=bool)
    is_start[0], is_start[ends[:-1] + 1] = True, True
    place = index - np.maximum.accumulate(np.where(is_start, index, 0))  # nibble index within its code
    groups = (nibbles & (CONTINUE - 1)).astype(np.int64) << (VALUE_BITS * place)
    return np.add.reduceat(groups, np.flatnonzero(is_start))


def _runs(values: np.ndarray, num_pixels: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per run its zero count and non-zero count, and the indices of the values holding the deltas.

    The one sequential part: where a run's counts sit depends on the run before it."""
    zeros, nonzeros, firsts = [], [], []
    at = decoded = 0
    count, listed = values.size, values.tolist()  # Python ints: indexing them is what the loop does
    while decoded < num_pixels:
        if at + 2 > count:
            raise InputError(f"{name}: RVL data ends after {decoded} of {num_pixels} pixels")
        zero_count, nonzero_count = listed[at], listed[at + 1]
        if decoded + zero_count + nonzero_count > num_pixels:
            raise InputError(f"{name}: RVL data codes more pixels than its {num_pixels}")
        if at + 2 + nonzero_count > count:
            raise InputError(f"{name}: RVL data ends inside a run, after {decoded + zero_count} of {num_pixels} "
                             "pixels")  # fmt: skip
        decoded += zero_count + nonzero_count
        zeros.append(zero_count)
        nonzeros.append(nonzero_count)
        firsts.append(at + 2)
        at += 2 + nonzero_count
    counts = np.asarray(nonzeros, dtype=np.int64)
    starts = np.repeat(np.asarray(firsts, dtype=np.int64), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.asarray(zeros, dtype=np.int64), counts, starts + within
