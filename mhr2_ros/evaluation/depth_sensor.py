"""A depth camera simulated from rendered depth, for `mhr2 eval --depth` (not in the paper).

The rendered depth is exact. A real RGB-D camera's is not, and depth fusion
(inference/depth_fusion.py) should be judged on what a robot's sensor gives. The artefacts
modelled here are those of active stereo and time-of-flight cameras that matter to a
person's scale (pixel sizes are colour-image pixels; the depth is registered to it):

- noise: Gaussian, std `noise` x z^2 meters (stereo depth error grows with the squared
  distance: 0.0025 is 2.5 mm at 1 m, 4 cm at 4 m);
- correlation: the noise of neighbouring pixels is alike (stereo matches windows of pixels):
  the white noise field is smoothed by a Gaussian of this std in pixels, then rescaled to
  unit variance, so the error no longer averages out over a person's pixels;
- fattening: a surface within `fattening` pixels of a nearer one takes the nearer one's
  depth (a stereo matcher's window straddling the edge is matched on the near surface's
  texture): near objects grow into what lies behind them;
- flying pixels: within `edge_width` pixels of a depth discontinuity (neighbouring depths
  differing by more than EDGE_JUMP of the nearer one) the depth lies anywhere between the
  near and the far surface; next to the sky (no surface) there is no measurement;
- misregistration: the depth image sits `shift` = (dx, dy) pixels right / down of where it
  belongs (depth-to-colour extrinsics a little off);
- dropout: this fraction of the pixels, at random, has no measurement;
- range: nothing beyond `max_range` meters.

Applied in that order to the true depth's geometry: shift, fattening, edges, noise, dropout,
range.
`STEREO` holds values typical of a consumer active-stereo camera at VGA (an assumption
stated, not a datasheet's: read results with it as an order of magnitude); it has no
fattening (its flying pixels already spread the edge), which `fattening` adds on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

import cv2
import numpy as np

EDGE_JUMP = 0.1  # relative depth step between neighbouring pixels that counts as a discontinuity


@dataclass(frozen=True)
class DepthSensorConfig:
    noise: float = 0.0  # std of the depth error at 1 m, meters; scales with z^2
    max_range: Optional[float] = None  # no measurement beyond this depth, meters (None: unlimited)
    correlation: float = 0.0  # std of the Gaussian smoothing the noise field, pixels (0: independent pixels)
    edge_width: int = 0  # flying pixels this many pixels either side of a depth discontinuity (0: none)
    fattening: int = 0  # a surface this many pixels from a nearer one takes its depth (0: none)
    shift: Tuple[int, int] = (0, 0)  # (dx, dy) misregistration: depth drawn this many pixels right / down
    dropout: float = 0.0  # fraction of pixels without a measurement, at random

    def describe(self) -> str:
        parts = [f"noise {self.noise:g} x z^2 m" if self.noise else "exact"]
        if self.noise and self.correlation:
            parts.append(f"correlated over {self.correlation:g} px")
        if self.fattening:
            parts.append(f"near surfaces fattened by {self.fattening} px")
        if self.edge_width:
            parts.append(f"flying pixels {self.edge_width} px at edges")
        if any(self.shift):
            parts.append(f"misregistered by ({self.shift[0]}, {self.shift[1]}) px")
        if self.dropout:
            parts.append(f"{100 * self.dropout:g}% dropout")
        if self.max_range is not None:
            parts.append(f"range {self.max_range:g} m")
        return ", ".join(parts)


# A consumer active-stereo camera at VGA (assumed: subpixel 0.08, 50 mm baseline, 640 px focal).
STEREO = DepthSensorConfig(noise=0.0025, max_range=6.0, correlation=2.0, edge_width=2, shift=(2, 1), dropout=0.02)
PRESETS = {"exact": DepthSensorConfig(), "stereo": STEREO}


class DepthSensor:
    """`sensor(true depth (H, W) float32 meters, 0: no surface)` -> the measured depth image
    (float32 meters, 0: no measurement). Deterministic given `seed` and the call sequence."""

    def __init__(self, config: DepthSensorConfig = DepthSensorConfig(), seed: int = 0) -> None:
        self.cfg = config
        self.rng = np.random.default_rng(seed)

    def __call__(self, true_depth: np.ndarray) -> np.ndarray:
        z = shift_image(np.asarray(true_depth, dtype=np.float32), *self.cfg.shift)
        if self.cfg.fattening > 0:
            z = fatten(z, self.cfg.fattening)
        if self.cfg.edge_width > 0:
            z = self._flying_pixels(z)
        valid = z > 0  # no surface stays no measurement
        if self.cfg.noise > 0:
            z = z + (self.cfg.noise * z * z * self._noise_field(z.shape)).astype(np.float32)
        if self.cfg.dropout > 0:
            valid &= self.rng.random(z.shape) >= self.cfg.dropout
        if self.cfg.max_range is not None:
            valid &= z <= self.cfg.max_range
        return np.where(valid, np.maximum(z, 0.0), 0.0).astype(np.float32)

    def _noise_field(self, shape) -> np.ndarray:
        """(H, W) zero-mean, unit-variance noise, smoothed over `correlation` pixels."""
        white = self.rng.standard_normal(shape).astype(np.float32)
        if self.cfg.correlation <= 0:
            return white
        smooth = cv2.GaussianBlur(white, (0, 0), self.cfg.correlation, borderType=cv2.BORDER_REFLECT)
        return smooth / max(float(smooth.std()), 1e-12)

    def _flying_pixels(self, z: np.ndarray) -> np.ndarray:
        """Within edge_width pixels of a discontinuity: a depth between the near and the far
        side (uniform); beside the sky (0): nothing."""
        kernel = _window(self.cfg.edge_width)
        near = _nearest_surface(z, kernel)
        far = cv2.dilate(z, kernel, borderType=cv2.BORDER_REPLICATE)
        beside_sky = cv2.erode((z > 0).astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) == 0
        near = np.where(np.isfinite(near), near, z)  # a window of sky only: no edge
        edge = far > near * (1.0 + EDGE_JUMP)
        mixed = near + self.rng.random(z.shape).astype(np.float32) * (far - near)
        out = np.where(edge, mixed, z)
        return np.where(beside_sky, 0.0, out).astype(np.float32)


def fatten(z: np.ndarray, width: int) -> np.ndarray:
    """Each surface pixel within `width` pixels of a surface nearer by more than EDGE_JUMP takes
    the nearest such depth; smooth surfaces (a ramp) and no surface (0) are left as they are."""
    near = _nearest_surface(z, _window(width))
    behind = (z > 0) & np.isfinite(near) & (z > near * (1.0 + EDGE_JUMP))
    return np.where(behind, near, z).astype(np.float32)


def _window(width: int) -> np.ndarray:
    """The (2 width + 1)^2 square of pixels within `width` of the centre."""
    return np.ones((2 * width + 1, 2 * width + 1), np.uint8)


def _nearest_surface(z: np.ndarray, window: np.ndarray) -> np.ndarray:
    """(H, W) the nearest surface depth within the window around each pixel (inf: sky only)."""
    return cv2.erode(np.where(z > 0, z, np.inf).astype(np.float32), window, borderType=cv2.BORDER_REPLICATE)


def shift_image(image: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The image moved dx pixels right and dy down; uncovered pixels 0 (no measurement)."""
    if dx == 0 and dy == 0:
        return image
    h, w = image.shape
    out = np.zeros_like(image)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = image[max(-dy, 0):h - max(dy, 0),
                                                                       max(-dx, 0):w - max(dx, 0)]
    return out


def preset(name: str, **overrides) -> DepthSensorConfig:
    """PRESETS[name] with the given fields replaced (None values are left as the preset's)."""
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


__all__ = ["DepthSensor", "DepthSensorConfig", "PRESETS", "STEREO", "EDGE_JUMP", "fatten", "preset", "shift_image"]
