"""Image checks, conversions and loading: everything becomes HxWx3 uint8 RGB.

Two entry points on purpose:
- `check_rgb8` is strict (the Detector API): a wrong array is refused with a message
  saying what was received, so a BGR/float/CHW mistake is never silently "fixed".
- `to_rgb8` / `load_image` convert explicitly (grayscale, RGBA, 16-bit, float in
  [0, 1]); `load_image` logs each conversion so the user knows it happened.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from mhr2_ros.errors import InputError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)

EXPECTED = "an HxWx3 uint8 RGB numpy array (H, W > 0)"
READABLE = "a readable PNG/JPEG/BMP/TIFF/WebP image"
CONVERT_HINT = "convert it explicitly with mhr2_ros.io.images.to_rgb8(image)"


# ------------------------------------------------------------------------ strict check
def describe_array(image) -> str:
    """'numpy array of shape (480, 640) and dtype uint16', or the type for non-arrays."""
    if isinstance(image, np.ndarray):
        return f"numpy array of shape {tuple(image.shape)} and dtype {image.dtype}"
    shape = getattr(image, "shape", None)
    extra = f" of shape {tuple(shape)}" if shape is not None else ""
    return f"{type(image).__module__}.{type(image).__qualname__}{extra}"


def _layout_problem(image: np.ndarray) -> Optional[str]:
    """What is wrong with the shape, in words, or None when it is HxWx3 and non-empty."""
    if image.size == 0:
        return "a zero-size array (no pixels)"
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return "a grayscale image (HxW or HxWx1)"
    if image.ndim == 3 and image.shape[2] == 4:
        return "an RGBA image (HxWx4)"
    if image.ndim == 3 and image.shape[0] in (1, 3, 4) and image.shape[2] > 4:
        return "a channels-first array (CxHxW; transpose it to HxWxC)"
    if image.ndim != 3 or image.shape[2] != 3:
        return f"an array with {image.ndim} dimensions and shape {tuple(image.shape)}"
    return None


def _dtype_problem(dtype: np.dtype) -> Optional[str]:
    """What is wrong with the dtype, in words, or None for uint8."""
    if dtype == np.uint8:
        return None
    if dtype == np.uint16:
        return "16-bit pixels (uint16)"
    if np.issubdtype(dtype, np.floating):
        return f"floating-point pixels ({dtype})"
    return f"pixels of dtype {dtype}"


def check_rgb8(image, name: str = "image") -> np.ndarray:
    """Return `image` (C-contiguous) if it is HxWx3 uint8 with H, W > 0; else InputError.

    The message names `name`, what was received (type, shape, dtype, and what that
    looks like: grayscale, RGBA, 16-bit, float...) and what is expected.
    """
    if not isinstance(image, np.ndarray):
        hint = " (for a torch tensor use tensor.cpu().numpy(); for a PIL image np.asarray(img))"
        raise InputError(f"{name}: received a {describe_array(image)}; expected {EXPECTED}{hint}")
    problems = [p for p in (_layout_problem(image), _dtype_problem(image.dtype)) if p]
    if problems:
        raise InputError(
            f"{name}: received a {describe_array(image)}, i.e. {' with '.join(problems)}; "
            f"expected {EXPECTED}, RGB channel order; {CONVERT_HINT}"
        )
    return np.ascontiguousarray(image)


# ------------------------------------------------------------------------- conversion
def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    """Pixel values to uint8: uint16 >> 8, float [0, 1] * 255, bool * 255."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if image.dtype == np.bool_:
        return image.astype(np.uint8) * 255
    if np.issubdtype(image.dtype, np.floating):
        lo, hi = float(np.min(image)), float(np.max(image))
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-3 or hi > 1 + 1e-3:
            raise InputError(
                f"{name}: received floating-point pixels in [{lo:g}, {hi:g}]; "
                "expected values in [0, 1] (divide by 255 first if they are 0..255)"
            )
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(image.dtype, np.integer) and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    raise InputError(
        f"{name}: received pixels of dtype {image.dtype}; expected uint8, uint16, bool "
        "or float in [0, 1]"
    )


def _to_three_channels(image: np.ndarray, name: str) -> np.ndarray:
    """Grayscale -> RGB by replication, RGBA -> RGB by dropping alpha."""
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise InputError(
            f"{name}: received a {describe_array(image)}; expected HxW (grayscale), "
            "HxWx1, HxWx3 (RGB) or HxWx4 (RGBA)"
        )
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    return image[:, :, :3]


def to_rgb8(image, name: str = "image") -> np.ndarray:
    """Convert grayscale / RGBA / 16-bit / float [0, 1] to HxWx3 uint8 RGB (contiguous).

    Channel order is assumed RGB(A) already: this never swaps BGR. Alpha is dropped,
    not composited. Zero-size arrays raise InputError.
    """
    image = np.asarray(image)
    if image.size == 0:
        raise InputError(f"{name}: received a {describe_array(image)} (no pixels); expected {EXPECTED}")
    image = _to_three_channels(image, name)
    return np.ascontiguousarray(_to_uint8(image, name))


# ---------------------------------------------------------------------------- loading
def _bit_depth(image: np.ndarray) -> str:
    if image.dtype == np.uint8:
        return "8-bit"
    if image.dtype == np.uint16:
        return "16-bit"
    return f"{image.dtype}"


def _conversion_note(image: np.ndarray) -> Optional[str]:
    """Words for what `to_rgb8` will do to a decoded file, or None if nothing."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    if channels == 3 and image.dtype == np.uint8:
        return None
    target = "3-channel 8-bit RGB" if image.dtype != np.uint8 else "3-channel RGB"
    alpha = " (alpha dropped)" if channels == 4 else ""
    return f"{channels}-channel {_bit_depth(image)} image converted to {target}{alpha}"


def _bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """OpenCV decodes to BGR(A); the package works in RGB."""
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    return image


def _read_flags(path: Path) -> int:
    """IMREAD_UNCHANGED keeps alpha and 16 bits but ignores EXIF orientation; JPEG has
    neither alpha nor (baseline) 16 bits, so it is decoded with flags that keep depth and
    colour *and* apply the EXIF rotation phones write."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        return cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH
    return cv2.IMREAD_UNCHANGED


EXIF_ORIENTATION = 0x0112  # TIFF/EXIF tag: how the stored pixels must turn to be upright
# EXIF orientation -> the numpy operation that makes an (H, W, ...) image upright.
_UPRIGHT = {
    2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}  # fmt: skip


def _exif_upright(path: Path, image: np.ndarray) -> np.ndarray:
    """Apply the EXIF orientation of a non-JPEG file (PNG, WebP, TIFF: OpenCV's
    IMREAD_UNCHANGED ignores it; JPEG is turned by OpenCV itself, see _read_flags)."""
    if path.suffix.lower() in (".jpg", ".jpeg"):
        return image
    try:
        from PIL import Image

        with Image.open(path) as im:
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - no readable EXIF: the pixels as stored
        return image
    turn = _UPRIGHT.get(orientation)
    return image if turn is None else np.ascontiguousarray(turn(image))


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file; expected {READABLE}")
    if not path.is_file():
        raise InputError(f"{path}: is not a regular file; expected {READABLE}")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); expected {READABLE}")


def load_image(path) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB; converts (and warns) gray/RGBA/16-bit.

    Raises InputError naming the file for a missing, empty, undecodable or zero-size
    image.
    """
    path = Path(path)
    _check_file(path)
    try:
        raw = cv2.imread(str(path), _read_flags(path))
    except cv2.error as exc:  # some decoders raise instead of returning None
        raw, detail = None, f" ({exc.msg.strip() if hasattr(exc, 'msg') else exc})"
    else:
        detail = ""
    if raw is None:
        size = path.stat().st_size
        raise InputError(
            f"{path}: cannot be decoded as an image ({size} bytes, not a valid "
            f"{path.suffix or 'image'} file{detail}); expected {READABLE}"
        )
    if raw.size == 0:
        raise InputError(f"{path}: decoded to a zero-size image {raw.shape}; expected {READABLE}")
    note = _conversion_note(raw)
    image = to_rgb8(_bgr_to_rgb(_exif_upright(path, raw)), name=str(path))
    if note:
        log.warning("%s: %s", path.name, note)
    return image
