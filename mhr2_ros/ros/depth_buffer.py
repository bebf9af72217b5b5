"""The node's recent depth images, and the one that goes with a colour image (ROS-free).

RGB-D drivers publish the aligned depth image just after the colour image of the same moment, so
the newest depth image when the worker takes a colour image may be the previous frame's (or, when
the worker is behind, a later one). The buffer keeps the last few; the worker asks for the one
nearest in stamp and, while none is stamped at or after its image, waits up to the sync tolerance
for it (the worker thread, never the executor).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Optional

from mhr2_ros.io.ros_image import nearest_in_time, stamp_to_ns

DEPTH_CANDIDATES = 8  # depth images kept: a few frames of a 30 Hz camera


class DepthBuffer:
    def __init__(self, size: int = DEPTH_CANDIDATES) -> None:
        self._messages: deque = deque(maxlen=size)
        self._arrived = threading.Condition()

    def add(self, msg: Any) -> None:
        """Executor thread: O(1)."""
        with self._arrived:
            self._messages.append(msg)
            self._arrived.notify_all()

    def nearest(self, stamp_ns: int, wait_s: float) -> Optional[Any]:
        """The depth image nearest in stamp to `stamp_ns`; waits up to `wait_s` seconds while none
        is stamped at or after it (a later one could then only be nearer). None: no depth image."""
        deadline = time.monotonic() + max(wait_s, 0.0)
        with self._arrived:
            while True:
                best = nearest_in_time(self._messages, stamp_ns)
                remaining = deadline - time.monotonic()
                if (best is not None and stamp_to_ns(best.header.stamp) >= stamp_ns) or remaining <= 0:
                    return best
                self._arrived.wait(remaining)

    def clear(self) -> None:
        with self._arrived:
            self._messages.clear()
