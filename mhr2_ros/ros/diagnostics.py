"""Health of the detector for /diagnostics: input rate, latency, inference time, people.

The image callback and the worker thread both report here, so the statistics are
locked. Rates and medians are over a sliding window of recent events: a robot
operator wants "now", not the average since boot.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Tuple

from mhr2_ros.ros.factory import MessageFactory

# diagnostic_msgs/DiagnosticStatus levels (a byte on the wire).
OK, WARN, ERROR, STALE = 0, 1, 2, 3
WINDOW = 30  # events kept for rates and medians
QUIET_PERIODS = 3.0  # no image for this many expected periods -> WARN


@dataclass(frozen=True)
class StatsSnapshot:
    input_rate: float  # Hz, images received
    output_rate: float  # Hz, frames published
    latency: Optional[float]  # s, median image stamp -> publish
    latency_max: Optional[float]  # s, worst in the window
    processing: Optional[float]  # s, median image receipt -> publish
    inference: Optional[float]  # s, median detector call
    people: int  # people in the last published frame
    tracked: int  # of which with a track state new/tracked
    # tracks started per minute over the window (None before two frames); far more than people arrive
    # means tracks break and restart, each time under a new id
    tracks_started: Optional[float]
    dropped: int  # images replaced by a newer one before the worker took them
    stale: int  # images dropped as older than max_image_age
    errors: int  # frames that raised
    last_error: str
    since_input: Optional[float]  # s since the last image; None before the first
    # degrees the last frame's image was turned to level a rolled camera (FrameResult.level_roll_deg);
    # None: not levelled (level camera, no gravity known, or level_roll_deg off)
    level_roll: Optional[float] = None


def _rate(times: Deque[float]) -> float:
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0])


def _median(values: Deque[float]) -> Optional[float]:
    return statistics.median(values) if values else None


class DetectorStats:
    def __init__(self, clock: Callable[[], float] = time.monotonic, window: int = WINDOW) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._inputs: Deque[float] = deque(maxlen=window)
        self._outputs: Deque[float] = deque(maxlen=window)
        self._latency: Deque[float] = deque(maxlen=window)
        self._processing: Deque[float] = deque(maxlen=window)
        self._inference: Deque[float] = deque(maxlen=window)
        self._started: Deque[int] = deque(maxlen=window)  # per published frame: the tracks it started
        self._people = self._tracked = self._dropped = self._stale = self._errors = 0
        self._last_error = ""
        self._level_roll: Optional[float] = None

    def image_received(self) -> None:
        with self._lock:
            self._inputs.append(self._clock())

    def image_dropped(self, stale: bool = False) -> None:
        with self._lock:
            if stale:
                self._stale += 1
            else:
                self._dropped += 1

    def frame_done(self, latency: float, processing: float, inference: float, people: int, tracked: int,
                   started: int = 0, level_roll: Optional[float] = None) -> None:
        """One published frame; `started`: the tracks it started (new ids); `level_roll`: degrees its
        image was turned to level it (None: not levelled)."""
        with self._lock:
            self._level_roll = level_roll
            self._outputs.append(self._clock())
            self._started.append(started)
            self._latency.append(latency)
            self._processing.append(processing)
            self._inference.append(inference)
            self._people, self._tracked = people, tracked

    def frame_failed(self, message: str) -> None:
        with self._lock:
            self._errors += 1
            self._last_error = message

    def snapshot(self) -> StatsSnapshot:
        with self._lock:
            now = self._clock()
            return StatsSnapshot(
                input_rate=_rate(self._inputs), output_rate=_rate(self._outputs),
                latency=_median(self._latency), latency_max=max(self._latency, default=None),
                processing=_median(self._processing), inference=_median(self._inference),
                people=self._people, tracked=self._tracked, tracks_started=self._started_per_minute(),
                dropped=self._dropped, stale=self._stale,
                errors=self._errors, last_error=self._last_error,
                since_input=(now - self._inputs[-1]) if self._inputs else None, level_roll=self._level_roll,
            )  # fmt: skip

    def _started_per_minute(self) -> Optional[float]:
        """Tracks started by the frames after the window's first, over the time since it (lock held)."""
        if len(self._outputs) < 2 or self._outputs[-1] <= self._outputs[0]:
            return None
        return 60.0 * (sum(self._started) - self._started[0]) / (self._outputs[-1] - self._outputs[0])


def assess(s: StatsSnapshot, period: float, errors_before: int = 0) -> Tuple[int, str]:
    """(level, message): ERROR when a frame failed since the last report, WARN when no
    image arrives, OK otherwise."""
    if s.errors > errors_before:
        return ERROR, f"{s.errors - errors_before} frame(s) failed: {s.last_error}"
    if s.since_input is None:
        return WARN, "waiting for images"
    if s.since_input > QUIET_PERIODS * period:
        return WARN, f"no image for {s.since_input:.1f} s"
    return OK, f"{s.output_rate:.1f} Hz, {s.people} people"


def _fmt(value: Optional[float], unit: str) -> str:
    return "n/a" if value is None else f"{value:.4g} {unit}".strip()


def key_values(s: StatsSnapshot) -> List[Tuple[str, str]]:
    return [
        ("input rate", _fmt(s.input_rate, "Hz")),
        ("output rate", _fmt(s.output_rate, "Hz")),
        ("latency (stamp to publish, median)", _fmt(s.latency, "s")),
        ("latency (stamp to publish, max)", _fmt(s.latency_max, "s")),
        ("processing (receipt to publish, median)", _fmt(s.processing, "s")),
        ("inference time (median)", _fmt(s.inference, "s")),
        ("people", str(s.people)),
        ("tracked", str(s.tracked)),
        ("tracks started (per minute; far above the people arriving: ids break)", _fmt(s.tracks_started, "/min")),
        ("images dropped (newer arrived)", str(s.dropped)),
        ("images dropped (too old)", str(s.stale)),
        ("failed frames", str(s.errors)),
        ("camera roll levelled (last frame)", "no" if s.level_roll is None else _fmt(s.level_roll, "deg")),
    ]


def build_diagnostic_array(
    f: MessageFactory, stamp_ns: int, name: str, hardware_id: str, level: int, message: str,
    values: List[Tuple[str, str]],
) -> object:  # fmt: skip
    status = f.new(
        "diagnostic_msgs/msg/DiagnosticStatus", level=level, name=name, message=message, hardware_id=hardware_id,
        values=[f.new("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in values],
    )  # fmt: skip
    return f.new("diagnostic_msgs/msg/DiagnosticArray", header=f.header(stamp_ns, ""), status=[status])
