"""Depth images on disk for `mhr2 detect --depth`: one per colour image, registered to it.

Formats: a 16-bit single-channel PNG in millimetres (0: no measurement; what RGB-D recorders
and this project's clips write, docs/dataset_format.md) or a .npy float array in meters
(0 or NaN: no measurement). For a folder of images, the depth of `NAME.jpg` is `NAME.png` or
`NAME.npy` in the depth folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from mhr2_ros.errors import InputError

log = logging.getLogger(__name__)

DEPTH_SUFFIXES = (".png", ".npy")


def read_depth_file(path: Path) -> np.ndarray:
    """(H, W) depth: uint16 millimetres (PNG) or float meters (.npy), as check_depth_image takes it."""
    path = Path(path)
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"depth file {path}: not a readable .npy array ({exc})") from exc
        if depth.ndim != 2 or not np.issubdtype(depth.dtype, np.floating):
            raise InputError(f"depth file {path}: expected a 2D float array of meters, got {depth.dtype} {depth.shape}")
        return depth
    if path.suffix.lower() != ".png":
        raise InputError(f"depth file {path}: expected a 16-bit PNG (millimetres) or a .npy array (meters)")
    import cv2

    depth = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if depth is None:
        raise InputError(f"depth file {path}: cannot be read as a PNG")
    if depth.dtype != np.uint16 or depth.ndim != 2:
        channels = 1 if depth.ndim == 2 else depth.shape[2]
        raise InputError(f"depth file {path}: expected a 16-bit single-channel PNG of millimetres, got "
                         f"{depth.dtype} with {channels} channel(s)")
    return depth


class DepthFiles:
    """The depth image of each input frame: `path` is a depth file (a single image input) or a
    folder of depth files named like the images (a folder input)."""

    def __init__(self, path: Path, source_kind: str) -> None:
        self.path = Path(path)
        if source_kind not in ("image", "folder"):
            raise InputError(f"--depth needs image files as input (a depth image per image), not a {source_kind}")
        self.folder = source_kind == "folder"
        if self.folder and not self.path.is_dir():
            raise InputError(
                f"--depth {self.path}: a folder input needs a folder of depth images named like its images")
        if not self.folder and not self.path.is_file():
            raise InputError(f"--depth {self.path}: a single image input needs one depth file (.png mm or .npy m)")

    def for_frame(self, name: str) -> Optional[np.ndarray]:
        """The depth of the image file `name`, or None (with a warning) when the folder has none."""
        if not self.folder:
            return read_depth_file(self.path)
        stem = Path(name).stem
        for suffix in DEPTH_SUFFIXES:
            candidate = self.path / (stem + suffix)
            if candidate.is_file():
                return read_depth_file(candidate)
        log.warning("no depth image for %s in %s (looked for %s): the network's depths", name, self.path,
                    " or ".join(stem + s for s in DEPTH_SUFFIXES))
        return None
