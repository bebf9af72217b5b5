"""Image preprocessing (paper, "Image Encoder" and "Inference on images").

The image is optionally padded (centred, so the principal point stays centred)
to the nearest aspect ratio seen in training (a weights' setting can leave out the rows that
padding would add above and below a wide image: `rows`), then resized with one scale so that
its largest side is `image_size`; the smallest side is padded up to a multiple of
the patch size. The
mapping between original and network-input pixels is kept so that every output
can be expressed in pixels of the original image:

    u_input = u_original * sx + dx,   v_input = v_original * sy + dy
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np
import torch

from mhr2_ros.model.vit import PIXEL_MEAN, PIXEL_STD


@dataclass(frozen=True)
class InputGeometry:
    original_hw: Tuple[int, int]  # (height, width) of the original image
    input_hw: Tuple[int, int]  # (height, width) fed to the network
    scale: Tuple[float, float]  # (sx, sy): original -> input pixel scale
    offset: Tuple[float, float]  # (dx, dy): padding before the image, input pixels

    def to_original(self, uv: np.ndarray) -> np.ndarray:
        """(..., 2) input pixels -> original pixels."""
        (sx, sy), (dx, dy) = self.scale, self.offset
        return np.stack([(uv[..., 0] - dx) / sx, (uv[..., 1] - dy) / sy], -1)


def nearest_aspect(width: int, height: int, ratios: Sequence[float]) -> float:
    """Training aspect ratio (width / height) closest to the image's, in log space."""
    r = width / height
    return min(ratios, key=lambda a: abs(math.log(a / r)))


def padded_canvas(width: int, height: int, ratios: Sequence[float], rows: bool = True) -> Tuple[int, int]:
    """(width, height) of the smallest canvas with the nearest training aspect ratio
    that contains the image (padding only, never cropping). `rows` False: an image wider
    than that ratio, which needs rows above and below, keeps its own shape."""
    target = nearest_aspect(width, height, ratios)
    if target > width / height:
        return max(width, round(height * target)), height
    return width, (max(height, round(width / target)) if rows else height)


def _ceil_to_patch(x: float, patch: int) -> int:
    return max(patch, math.ceil(round(x, 6) / patch) * patch)  # round(): 256.0000001 is 256


def _centred_size(size: float, room: int) -> int:
    """The whole number of pixels nearest `size` that leaves an even margin in `room`."""
    n = min(max(1, round(size)), room)
    if (room - n) % 2:
        n = n + 1 if (size > n and n < room) or n == 1 else n - 1
    return n


def compute_geometry(
    height: int, width: int, image_size: int, patch: int, ratios: Sequence[float] | None, pad_rows: bool = True
) -> InputGeometry:
    """Input size and pixel mapping; `ratios=None` disables the aspect padding, `pad_rows` False
    its rows above and below a wide image (padded_canvas).

    One scale for both axes, so square pixels stay square: the canvas's largest side
    becomes `image_size`, the image is resized to whole pixels and placed centred on an
    input whose sides are the canvas's rounded up to the patch size (the remainder is
    padding too). The mapping is that of the integer size and offset actually used."""
    canvas_w, canvas_h = (width, height) if not ratios else padded_canvas(width, height, ratios, pad_rows)
    scale = image_size / max(canvas_w, canvas_h)
    in_w = _ceil_to_patch(canvas_w * scale, patch)
    in_h = _ceil_to_patch(canvas_h * scale, patch)
    return _placed(height, width, (in_h, in_w), scale)


def aspect_input_hw(aspect: float, image_size: int, patch: int) -> Tuple[int, int]:
    """(height, width) of the network input for a canvas of exactly `aspect` (W / H) whose
    largest side is `image_size`: compute_geometry's input for such a canvas, whatever its
    pixel count. Training batches use it, so crops of one aspect from images of different
    sizes (whose rounding puts the short side either side of a patch boundary) stack."""
    width, height = (image_size, image_size / aspect) if aspect >= 1 else (image_size * aspect, image_size)
    # whole pixels first, as an image's are: 448 / 1.333 is 336.08 rows, where a 4:3 image has 336
    return _ceil_to_patch(round(height), patch), _ceil_to_patch(round(width), patch)


def fit_geometry(height: int, width: int, input_hw: Tuple[int, int]) -> InputGeometry:
    """The image at the one scale that fits it into `input_hw`, centred (the rest is padding)."""
    return _placed(height, width, input_hw, min(input_hw[1] / width, input_hw[0] / height))


def _placed(height: int, width: int, input_hw: Tuple[int, int], scale: float) -> InputGeometry:
    """The image resized by `scale` to whole pixels, centred on an input of `input_hw`."""
    in_h, in_w = input_hw
    new_w, new_h = _centred_size(width * scale, in_w), _centred_size(height * scale, in_h)
    x0, y0 = (in_w - new_w) // 2, (in_h - new_h) // 2  # exact: the image centre is the input centre
    return InputGeometry((height, width), (in_h, in_w), (new_w / width, new_h / height), (float(x0), float(y0)))


def resize_and_pad(image: np.ndarray, geom: InputGeometry) -> np.ndarray:
    """HxWx3 uint8 -> input_hw x 3 uint8; padding filled with the mean colour so that
    it normalises to zero."""
    in_h, in_w = geom.input_hw
    (sx, sy), (dx, dy) = geom.scale, geom.offset
    h, w = geom.original_hw
    new_w, new_h = round(w * sx), round(h * sy)  # the integers compute_geometry chose
    interp = cv2.INTER_AREA if sx < 1 and sy < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interp)
    if (new_h, new_w) == (in_h, in_w):
        return resized
    canvas = np.empty((in_h, in_w, 3), np.uint8)
    canvas[:] = PAD_COLOR
    x0, y0 = int(dx), int(dy)
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = resized
    return canvas


PAD_COLOR = tuple(int(round(255 * m)) for m in PIXEL_MEAN)


def to_tensor(image: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HxWx3 uint8 -> (1, 3, H, W) normalised tensor on `device` (normalised there,
    so only uint8 bytes cross the bus)."""
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device, non_blocking=True)
    t = t.permute(2, 0, 1)[None].float().div_(255.0)
    mean = torch.tensor(PIXEL_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=device).view(1, 3, 1, 1)
    return ((t - mean) / std).to(dtype)
