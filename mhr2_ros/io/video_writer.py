"""MP4 writer for RGB frames (overlays), atomic: the video appears at its path only when
closed, as a complete file. A run that stops with an exception inside the `with` block
keeps the frames written so far (a valid, shorter video); a process killed mid-way leaves
no file at the path (at worst its hidden temporary file beside it).

cv2.VideoWriter is quiet about mistakes: a frame of the wrong size is dropped with a
log line, and odd widths/heights are silently cropped by the MPEG-4 encoder. This
wrapper checks every frame and pads odd sizes to even with black pixels instead.
"""

from __future__ import annotations

import contextlib
import logging
import math
from pathlib import Path
from typing import Optional, Tuple

import cv2
import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.io.atomic import atomic_path
from mhr2_ros.io.images import check_rgb8

log = logging.getLogger(__name__)

FOURCC = "mp4v"  # MPEG-4 part 2: in every opencv-python wheel, unlike H.264
SUFFIXES = (".mp4", ".m4v", ".mov")


def _check_args(path: Path, fps: float, size: Tuple[int, int]) -> Tuple[int, int]:
    if path.suffix.lower() not in SUFFIXES:
        raise InputError(f"{path}: video output must end in .mp4 (or .m4v/.mov), got {path.suffix!r}")
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"{path}: fps must be a positive number, got {fps!r}")
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InputError(f"{path}: size must be (width, height), got {size!r}") from None
    if width < 2 or height < 2:
        raise InputError(f"{path}: size must be at least (2, 2) pixels as (width, height), got {size!r}")
    return width, height


class VideoWriter:
    """Write HxWx3 uint8 RGB frames of `size` = (width, height) to an MP4 at `fps`.

    The file appears under `path` on `close()` (or at the end of a `with` block) and
    only if the block did not raise and at least one frame was written.
    """

    def __init__(self, path, fps: float, size: Tuple[int, int]):
        self.path = Path(path)
        self.width, self.height = _check_args(self.path, fps, size)
        self.fps = float(fps)
        self.frames_written = 0
        # MPEG-4 needs even dimensions; the encoder would crop, we pad instead.
        self._pad = (self.height % 2, self.width % 2)
        self._writer: Optional[cv2.VideoWriter] = None
        self._stack = contextlib.ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        self._writer = self._open_writer()

    def _open_writer(self) -> cv2.VideoWriter:
        coded = (self.width + self._pad[1], self.height + self._pad[0])
        writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*FOURCC), self.fps, coded)
        if not writer.isOpened():
            writer.release()
            self._abort(RuntimeError)
            raise RuntimeError(
                f"{self.path}: OpenCV could not open an {FOURCC!r} MP4 encoder for {coded[0]}x{coded[1]} "
                f"at {self.fps:g} fps (is this OpenCV built with FFmpeg? is the folder writable?)"
            )
        return writer

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one HxWx3 uint8 RGB frame; its size must match the writer's."""
        if self._writer is None:
            raise RuntimeError(f"{self.path}: write() after close()")
        frame = check_rgb8(frame_rgb, name=f"{self.path.name} frame {self.frames_written}")
        if frame.shape[:2] != (self.height, self.width):
            raise InputError(
                f"{self.path.name} frame {self.frames_written}: received {frame.shape[1]}x{frame.shape[0]} "
                f"(width x height); expected {self.width}x{self.height} like the first frames"
            )
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        if any(self._pad):
            bgr = cv2.copyMakeBorder(bgr, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_CONSTANT, value=0)
        self._writer.write(bgr)
        self.frames_written += 1

    def _abort(self, exc_type=RuntimeError) -> None:
        """Drop the temporary file: the atomic context sees an exception."""
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        with contextlib.suppress(exc_type):
            self._stack.__exit__(exc_type, exc_type("aborted"), None)

    def close(self) -> None:
        """Finish the file and move it to `path` (no file if no frame was written)."""
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        if self.frames_written == 0:
            log.warning("%s: no frame written, no video created", self.path)
            self._abort()
            return
        self._stack.close()
        log.info("wrote %s (%d frames, %dx%d, %g fps)", self.path, self.frames_written,
                 self.width, self.height, self.fps)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Frames already encoded form a valid video: keep them when a run stops early.
        if exc_type is not None:
            log.warning("%s: run stopped (%s); keeping the %d frame(s) written",
                        self.path, exc_type.__name__, self.frames_written)
        self.close()

    def __del__(self):  # forgotten close(): never leave the hidden temp file behind
        if getattr(self, "_writer", None) is not None:
            self._abort()
