"""The procedural background's noise textures: the fast form (one summed filter on real FFTs)
gives the texels of its definition (one complex FFT low-pass per octave, summed), so the
benchmark's scenes, rendered from fixed seeds, do not change with it."""

import math

import numpy as np
import pytest

from mhr2_ros.training.synthetic.background import NOISE_SCALES, _tileable_noise


def reference_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """The definition: white noise, each octave low-passed on its own by a complex FFT, summed."""
    white = rng.standard_normal((size, size))
    freq = np.fft.fftfreq(size)
    r2 = freq[:, None] ** 2 + freq[None, :] ** 2
    spectrum = np.fft.fft2(white)
    out = np.zeros((size, size))
    for sigma, weight in NOISE_SCALES:
        out += weight * np.real(np.fft.ifft2(spectrum * np.exp(-2 * (math.pi * sigma) ** 2 * r2)))
    out = (out - out.min()) / (out.max() - out.min())
    return out.astype(np.float32)


@pytest.mark.parametrize("size", [64, 256])
def test_noise_has_the_texels_of_its_definition(size):
    for seed in range(5):
        fast = _tileable_noise(np.random.default_rng(seed), size)
        np.testing.assert_array_equal(fast, reference_noise(np.random.default_rng(seed), size))


def test_noise_spans_zero_to_one_and_tiles_without_a_seam():
    tex = _tileable_noise(np.random.default_rng(3), 128)
    assert tex.dtype == np.float32 and tex.shape == (128, 128)
    assert tex.min() == 0.0 and tex.max() == 1.0
    inner = np.abs(np.diff(tex, axis=1)).max()  # the largest step between neighbouring texels
    assert np.abs(tex[:, 0] - tex[:, -1]).max() <= inner  # across the wrap no larger: no seam
    assert np.abs(tex[0] - tex[-1]).max() <= np.abs(np.diff(tex, axis=0)).max()
    white = np.random.default_rng(3).standard_normal((128, 128))
    white = (white - white.min()) / (white.max() - white.min())
    assert inner < 0.3 * np.abs(np.diff(white, axis=1)).max()  # low-passed: far smoother than white noise
