"""Atomic file writes: a file appears under its final name complete, or not at all.

Every output of the tools (JSON lines, videos, meshes) goes through here, so a crash,
a Ctrl-C or a full disk never leaves a truncated file that looks like a result.
The data is written to a hidden temporary file in the *same* folder (a rename is only
atomic within one file system), flushed to disk with fsync, then renamed over the
final name with os.replace. On failure the temporary file is deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path
from typing import IO, Iterator, Union

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]


def _temp_name(path: Path) -> Path:
    """Hidden sibling of `path` with the same suffix (writers pick the format from it)."""
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return path.with_name(f".{path.stem}.tmp-{token}{path.suffix}")


def _fsync_file(path: Path) -> None:
    """Flush a file written by someone else (cv2, trimesh) to disk before the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; best effort (not supported on every OS)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask_mode() -> int:
    """0o666 less the process umask: the permissions open() would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb", encoding: str = "utf-8") -> Iterator[IO]:
    """Open `path` for writing through a temporary file renamed on success.

    `mode` is "wb" (bytes) or "w" (text, `encoding`). The parent folder is created if
    needed. If the body raises, the temporary file is removed and the exception
    propagates; an existing file under `path` is left untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    # os.open with 0o666 lets the umask decide the permissions, as open() would
    # (tempfile.mkstemp would leave every output readable by its owner only).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path (same folder, same suffix) renamed to `path` on success.

    For writers that insist on a file name (cv2.VideoWriter, trimesh.export). The
    writer must have closed the file when the body ends. If the body raises, or
    nothing was written, the temporary file is removed and `path` is not created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{path}: the writer produced no file (expected one at {tmp})")
        _fsync_file(tmp)
        os.chmod(tmp, _umask_mode())  # some writers create owner-only files
        os.replace(tmp, path)
    except BaseException:
        _discard(tmp)
        raise
    _fsync_dir(path.parent)
