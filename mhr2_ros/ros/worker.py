"""Latest-frame hand-off: the executor never blocks, stale frames are dropped.

The image callback only puts the message into a depth-1 slot (replacing, and
counting, any frame the worker has not taken yet); one worker thread takes the
newest frame and runs the detector. A camera at 30 Hz and a detector at 8 Hz then
give 8 Hz of fresh results instead of a growing queue of old ones.
"""

from __future__ import annotations

import logging
import threading
from typing import Callable, Generic, Optional, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """A mailbox of depth one. put() never blocks; take() waits for an item."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._full = False
        self._closed = False
        self.replaced = 0  # items overwritten before anyone took them

    def put(self, item: T) -> bool:
        """Store `item`; True when it replaced an item nobody took (a dropped frame)."""
        with self._cond:
            replaced = self._full
            self.replaced += replaced
            self._item, self._full = item, True
            self._cond.notify()
            return replaced

    def take(self, timeout: Optional[float] = None) -> Optional[T]:
        """The newest item, or None on timeout or once closed."""
        with self._cond:
            self._cond.wait_for(lambda: self._full or self._closed, timeout)
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def clear(self) -> None:
        with self._cond:
            self._item, self._full = None, False

    def close(self) -> None:
        """Wake every taker; later take() calls return None at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class FrameWorker(Generic[T]):
    """One daemon thread running `process(item)` on the newest submitted item.

    An exception in `process` is logged and passed to `on_error`; the worker goes on
    with the next frame (one bad image must not stop a robot's perception).
    """

    def __init__(
        self, process: Callable[[T], None], on_error: Optional[Callable[[BaseException], None]] = None,
        name: str = "mhr2-detector",
    ) -> None:  # fmt: skip
        self._process = process
        self._on_error = on_error
        self._name = name
        self._slot: LatestSlot[T] = LatestSlot()
        self._thread: Optional[threading.Thread] = None
        self.processed = 0

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("worker already started")
        self._slot = LatestSlot()
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def submit(self, item: T) -> bool:
        """Hand `item` over; True when it replaced a frame the worker had not taken."""
        return self._slot.put(item)

    def stop(self, timeout: Optional[float] = 10.0) -> bool:
        """Stop after the current frame, waiting at most `timeout` seconds (None: until it
        ends); False when the thread is still busy, and then `stop()` again waits more."""
        thread = self._thread
        self._slot.close()
        if thread is None:
            return True
        thread.join(timeout)
        if thread.is_alive():
            log.warning("worker thread still busy after %.1f s; it stops after its current frame", timeout)
            return False
        self._thread = None
        return True

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        slot = self._slot
        while not slot.closed:
            item = slot.take(timeout=0.5)
            if item is None:
                continue
            try:
                self._process(item)
                self.processed += 1
            except Exception as exc:  # noqa: BLE001 - reported, then the next frame
                log.exception("frame processing failed")
                if self._on_error is not None:
                    self._on_error(exc)
