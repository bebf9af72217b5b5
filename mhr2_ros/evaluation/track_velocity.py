"""How well the tracker's velocities match the people's, on the tracked clips.

A navigation stack reads each person's velocity (Human.velocity, people_msgs, ROS4HRI) to
predict where they go. Per tracked person-frame (a visible track with at least two detections,
whose detection is a true positive of the protocol's match, and whose person was also in the
previous frame's truth) this measures the error of the track's velocity against the person's
true velocity: the change of the true pelvis position since the previous frame over the time
between them (m/s, camera axes; the generated clips' camera does not move). Beside it, the mean
true speed of the same person-frames: the error a tracker that reported everyone standing
still would make.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mhr2_ros.inference.results import FrameResult


class TrackVelocities:
    """`new_clip()` before each clip, `add(tracks, result, truth, pairs, stamp)` per tracked frame,
    `summary()` the numbers (module docstring)."""

    def __init__(self) -> None:
        self.errors: List[float] = []  # m/s, |track velocity - true velocity| per person-frame
        self.speeds: List[float] = []  # m/s, |true velocity| of the same person-frames
        self._last: Dict[str, Tuple[float, np.ndarray]] = {}  # person id -> (stamp s, pelvis m) last frame

    def new_clip(self) -> None:
        self._last = {}

    def add(self, tracks: Iterable, result: FrameResult, truth: FrameResult, pairs: Sequence[Tuple[int, int]],
            stamp: float) -> None:
        """`pairs`: (detection index in result, person index in truth) of the frame's true positives;
        `stamp`: the frame's time, seconds."""
        true_velocity = {}
        for person in truth.humans:
            position = np.asarray(person.position, dtype=np.float64)
            before = self._last.get(person.track_id)
            if before is not None and stamp > before[0]:
                true_velocity[person.track_id] = (position - before[1]) / (stamp - before[0])
        self._last = {p.track_id: (stamp, np.asarray(p.position, dtype=np.float64)) for p in truth.humans}
        truth_of = {id(result.humans[r]): truth.humans[c] for r, c in pairs}
        for track in tracks:
            person = truth_of.get(id(track.human)) if track.is_visible and track.hits >= 2 else None
            if person is None or person.track_id not in true_velocity:
                continue
            v = true_velocity[person.track_id]
            self.errors.append(float(np.linalg.norm(np.asarray(track.velocity, dtype=np.float64) - v)))
            self.speeds.append(float(np.linalg.norm(v)))

    def summary(self) -> Dict[str, Optional[float]]:
        """Mean and median velocity error and the mean true speed, m/s (None without person-frames)."""
        if not self.errors:
            return {"track_velocity_error": None, "track_velocity_error_median": None, "track_true_speed": None}
        return {"track_velocity_error": float(np.mean(self.errors)),
                "track_velocity_error_median": float(np.median(self.errors)),
                "track_true_speed": float(np.mean(self.speeds))}  # fmt: skip
