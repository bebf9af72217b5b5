"""Frame sources: one iterable for an image, a folder of images, a video or a camera.

`open_source(spec)` decides what INPUT is and fails early (InputError) when it cannot
be used, so a long run never starts on a bad input. Inside a folder, a bad file does
not stop the run: it comes out as a `Frame` carrying the error, and the caller lists
the failures at the end.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional

import cv2
import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.io.images import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, load_image

log = logging.getLogger(__name__)

INPUT_KINDS = (
    "an image file ({img}), a folder of images, a video file ({vid}) "
    "or a camera index such as 0".format(
        img=", ".join(sorted(IMAGE_EXTENSIONS)), vid=", ".join(sorted(VIDEO_EXTENSIONS))
    )
)


@dataclass
class Frame:
    """One input frame. Exactly one of `image` / `error` is set."""

    index: int  # 0-based position in the source
    timestamp: Optional[float]  # seconds: video index / fps, camera since open, images None
    name: str  # file name (images) or f"frame_{index:06d}" (video, camera)
    image: Optional[np.ndarray] = None  # HxWx3 uint8 RGB
    error: Optional[InputError] = None  # why this file of a folder could not be read

    @property
    def ok(self) -> bool:
        return self.image is not None


class FrameSource:
    """Base class: iterable over Frames, with `kind`, `length`, `fps`, `close()`."""

    kind: str = ""
    fps: Optional[float] = None

    @property
    def length(self) -> Optional[int]:
        """Number of frames, None when unknown (cameras)."""
        return None

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError(f"a {self.kind} source has no length")
        return self.length

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file; safe to call twice."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------ images
def _natural_key(path: Path):
    """Sort 'img2' before 'img10' (plain sorting when names are zero-padded)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class ImageFileSource(FrameSource):
    """A single image, read when opened so a bad file fails before any work."""

    kind = "image"

    def __init__(self, path: Path):
        self.path = path
        self._image = load_image(path)

    @property
    def length(self) -> int:
        return 1

    def __iter__(self) -> Iterator[Frame]:
        yield Frame(0, None, self.path.name, image=self._image)


class FolderSource(FrameSource):
    """Image files of one folder (not recursive, hidden files skipped), natural name order."""

    kind = "folder"

    def __init__(self, folder: Path):
        self.folder = folder
        self.paths = list_images(folder)

    @property
    def length(self) -> int:
        return len(self.paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            try:
                yield Frame(index, None, path.name, image=load_image(path))
            except InputError as exc:
                log.warning("skipping %s", exc)
                yield Frame(index, None, path.name, error=exc)


def list_images(folder: Path) -> List[Path]:
    """Image files directly in `folder`, sorted by name; InputError if there are none."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    images = [p for p in entries if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    if not images:
        raise InputError(
            f"{folder}: the folder contains no image files ({len(entries)} other entries); "
            f"expected files ending in {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return sorted(images, key=_natural_key)


# ------------------------------------------------------------------------ video/camera
def _valid_fps(value: float) -> Optional[float]:
    """Containers and drivers report 0, NaN or absurd values when they do not know."""
    return float(value) if math.isfinite(value) and 0.0 < value <= 1000.0 else None


class CaptureSource(FrameSource):
    """Shared cv2.VideoCapture reading: BGR -> RGB, first frame probed at open."""

    def _start(self) -> None:
        self._cap = self._open_capture()
        ok, first = self._cap.read()
        if not ok or first is None or first.size == 0:
            self._cap.release()
            raise InputError(f"{self._label()}: opened, but no frame could be decoded; "
                             f"{self._expected()}")
        self._first: Optional[np.ndarray] = first

    def _open_capture(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def _label(self) -> str:
        raise NotImplementedError

    def _expected(self) -> str:
        raise NotImplementedError

    def _read(self) -> Optional[np.ndarray]:
        """Next decoded BGR frame (the probed one first), None at the end."""
        if self._first is not None:
            frame, self._first = self._first, None
            return frame
        if self._cap is None:
            return None
        ok, frame = self._cap.read()
        return frame if ok and frame is not None else None

    def close(self) -> None:
        if getattr(self, "_cap", None) is not None:
            self._cap.release()
            self._cap = None
        self._first = None


class VideoSource(CaptureSource):
    """A video file; timestamps are index / fps (the container's nominal rate)."""

    kind = "video"

    def __init__(self, path: Path):
        self.path = path
        self._consumed = False
        self._start()
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        count = self._cap.get(cv2.CAP_PROP_FRAME_COUNT)  # 0, -1 or NaN when unknown
        self._length = int(count) if math.isfinite(count) and count > 0 else None
        if self.fps is None:
            log.warning("%s: the video reports no frame rate; timestamps will be None", path)

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise InputError(f"{self.path}: cannot be opened as a video (corrupt, truncated "
                             f"or unsupported codec); {self._expected()}")
        return cap

    def _label(self) -> str:
        return str(self.path)

    def _expected(self) -> str:
        return "expected a video file readable by OpenCV/FFmpeg (e.g. H.264 or MPEG-4 in .mp4)"

    @property
    def length(self) -> Optional[int]:
        """Frame count as the container reports it (None if it does not)."""
        return self._length

    def __iter__(self) -> Iterator[Frame]:
        if self._consumed:  # a second pass re-opens the file from the start
            self.close()
            self._start()
        self._consumed = True
        index = 0
        while (bgr := self._read()) is not None:
            stamp = index / self.fps if self.fps else None
            yield Frame(index, stamp, f"frame_{index:06d}", image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
        if self._length is not None and index < self._length:
            log.warning("%s: decoding stopped after %d of %d frames", self.path, index, self._length)


class CameraSource(CaptureSource):
    """A live camera (cv2 device index); endless, timestamps are seconds since open."""

    kind = "camera"

    def __init__(self, index: int):
        self.index = index
        self._start()
        self.fps = _valid_fps(self._cap.get(cv2.CAP_PROP_FPS))
        self._t0 = time.monotonic()

    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise InputError(f"camera {self.index}: cannot be opened; {self._expected()}")
        return cap

    def _label(self) -> str:
        return f"camera {self.index}"

    def _expected(self) -> str:
        return (f"expected a connected camera at index {self.index} (Linux: /dev/video{self.index}, "
                "not used by another program)")

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        while (bgr := self._read()) is not None:
            stamp = time.monotonic() - self._t0
            yield Frame(index, stamp, f"frame_{index:06d}", image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1
        log.warning("camera %d: no more frames after %d (disconnected?)", self.index, index)


# ------------------------------------------------------------------------------ entry
_VIDEO_DEVICE = re.compile(r"^/dev/video(\d+)$")  # Linux V4L2 camera nodes


def open_source(spec) -> FrameSource:
    """Open INPUT: an image, a folder of images, a video, or a camera ("0" or /dev/video0).

    An existing path always wins over a camera index, so a file named "0" is a file.
    Raises InputError (naming INPUT and listing what it may be) when it cannot be used.
    """
    text = os.fspath(spec) if not isinstance(spec, int) else str(spec)
    path = Path(text)
    if text.strip().isdigit() and not path.exists():
        return CameraSource(int(text))
    device = _VIDEO_DEVICE.match(text)
    if device and path.exists() and not path.is_file():  # /dev/video2: the camera at index 2
        return CameraSource(int(device.group(1)))
    if not path.exists():
        raise InputError(f"INPUT {text!r}: no such file or folder; expected {INPUT_KINDS}")
    if path.is_dir():
        return FolderSource(path)
    suffix = path.suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return ImageFileSource(path)
    if suffix in VIDEO_EXTENSIONS:
        return VideoSource(path)
    raise InputError(f"INPUT {text!r}: unknown file extension {path.suffix!r}; expected {INPUT_KINDS}")
