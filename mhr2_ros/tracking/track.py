"""Track: what the tracker reports for one person, a snapshot taken at each update."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mhr2_ros.inference.results import Human

# Track IDs are TF frame names too (body_<id>): a letter, then letters, digits, "_".
TRACK_ID_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class TrackState(str, enum.Enum):
    NEW = "new"  # associated in this frame, fewer than new_track_hits detections so far
    TRACKED = "tracked"  # associated in this frame
    OCCLUDED = "occluded"  # not seen for <= occluded_max_seconds: pose predicted by the motion model
    LOST = "lost"  # not seen for longer; kept for re-identification until max_missed_frames (or _seconds)


def format_track_id(prefix: str, number: int) -> str:
    return f"{prefix}{number}"


@dataclass
class Track:
    id: str  # e.g. "h7": starts with a letter, TF-frame safe
    state: TrackState
    position: np.ndarray  # (3,) filtered (or predicted) pelvis position, camera frame, m
    position_cov: np.ndarray  # (3, 3) m^2
    velocity: np.ndarray  # (3,) pelvis velocity, camera axes, m/s (over the ground when ground_velocity)
    velocity_cov: np.ndarray  # (3, 3) (m/s)^2
    human: Optional[Human]  # last associated detection (this frame's when state is new/tracked)
    age: float  # seconds since the first detection
    time_since_seen: float  # seconds since the last associated detection (0 when seen now)
    frames_since_seen: int  # frames processed since the last association (0 when seen now)
    hits: int  # associated detections so far
    first_stamp: float  # seconds
    last_seen_stamp: float  # seconds
    score: Optional[float] = None  # normalised association score of the last match (None: started a track)
    # (3, 3) body -> this image's camera: the last detection's orientation (for a track not seen now,
    # turned by the camera's rotation since, when camera poses are given), turned about its up axis to
    # face the velocity when heading_from_velocity (tracking/heading.py); None without a detection
    orientation: Optional[np.ndarray] = None
    heading_from_velocity: bool = False  # the heading is the velocity's, not the network's
    ground_velocity: bool = False  # velocity is over the ground (camera poses given), else relative to the camera

    @property
    def is_visible(self) -> bool:
        """Associated with a detection in the latest frame."""
        return self.state in (TrackState.NEW, TrackState.TRACKED)
