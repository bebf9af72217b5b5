"""What the builders publish per person: a detection or a track, seen the same way.

With a tracker, each track (duck-typed: .id, .state, .human, .velocity, .velocity_cov, .age,
.time_since_seen, optionally .position, .position_cov, .orientation, .heading_from_velocity) becomes a
PersonView; a track not seen in this image is placed where its motion model predicts it.
Without one, each detection does, with id human.track_id or f"p{index}" and state
"untracked". Ids are made TF-safe here once, so the HumanArray id, the TF frame
body_<id>, the marker ids and the people name always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Optional

import numpy as np

from mhr2_ros.geometry import turned_body
from mhr2_ros.inference.results import FrameResult, Human

UNTRACKED, NEW, TRACKED, OCCLUDED, LOST = "untracked", "new", "tracked", "occluded", "lost"
# Human.msg STATE_* values, in this order.
STATES = (UNTRACKED, NEW, TRACKED, OCCLUDED, LOST)
# States whose pose is measured in this image (TF and markers are published for them).
VISIBLE_STATES = frozenset({UNTRACKED, NEW, TRACKED})

_INVALID_ID_CHARS = re.compile(r"[^A-Za-z0-9_]")


def safe_id(raw: Optional[str], index: int) -> str:
    """A TF-safe id: letters, digits and '_', starting with a letter.

    Other characters become '_'; an id not starting with a letter gets a 'p' prefix;
    no id at all gives f"p{index}".
    """
    if raw is None or str(raw) == "":
        return f"p{index}"
    text = _INVALID_ID_CHARS.sub("_", str(raw))
    return text if text[0].isalpha() and text[0].isascii() else f"p{text}"


@dataclass(frozen=True)
class PersonView:
    id: str  # TF-safe id (safe_id)
    state: str  # one of STATES
    human: Human  # the detection (for a track: its last one)
    index: int  # position in the frame's list, for colours of untracked people
    velocity: Optional[np.ndarray] = None  # (3,) m/s, camera frame; None without a tracker
    velocity_cov: Optional[np.ndarray] = None  # (3, 3) (m/s)^2
    age: float = 0.0  # seconds since the track started
    time_since_seen: float = 0.0  # seconds since the track's last detection
    predicted: Optional[np.ndarray] = None  # (3,) m: the motion model's pelvis now, for a track not seen now
    predicted_cov: Optional[np.ndarray] = None  # (3, 3) m^2: its covariance
    orientation: Optional[np.ndarray] = None  # (3, 3) the track's orientation (None: the detection's)
    heading_from_velocity: bool = False  # that orientation faces the track's velocity (tracking/heading.py)

    @property
    def visible(self) -> bool:
        return self.state in VISIBLE_STATES

    @property
    def position(self) -> np.ndarray:
        """(3,) m, pelvis now: the detection's when seen in this image, else the prediction
        (the last detection when the tracker gave none)."""
        return self.predicted if self.predicted is not None else np.asarray(self.human.position, np.float64)

    @property
    def rotation(self) -> np.ndarray:
        """(3, 3) body -> camera: the track's orientation when it has one, else the detection's."""
        return self.orientation if self.orientation is not None else np.asarray(self.human.orientation, np.float64)

    def body_points(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) m, camera frame: points of the detection's body (joints_3d, vertices) where this person
        is published: moved with the pelvis to `position` and turned about it into `rotation` (a track
        not seen now, by the camera's turn since; a walker facing their velocity turns whole: on the
        tuning clips that lowers those bodies' MPJPE from 235 to 197 mm, `mhr2 eval`'s
        velocity_heading_mpjpe, while the network's own turn fits the image better, which is why the 2D
        fields stay the detection's)."""
        h = self.human
        points = np.asarray(points, np.float64)
        if self.orientation is not None and not np.array_equal(self.orientation, h.orientation):
            points = turned_body(points, h.position, h.orientation, self.orientation)  # else nothing to turn
        return points + (self.position - np.asarray(h.position, np.float64))  # non-zero for a track not seen now


def person_views(frame: FrameResult, tracks: Optional[Iterable] = None) -> List[PersonView]:
    """PersonViews of the tracks when a tracker ran, else of the frame's detections."""
    if tracks is None:
        return [
            PersonView(id=safe_id(h.track_id, i), state=UNTRACKED, human=h, index=i)
            for i, h in enumerate(frame.humans)
        ]
    views = []
    for i, track in enumerate(tracks):
        state = str(getattr(track.state, "value", track.state))  # TrackState enum or plain string
        if state not in STATES:
            raise ValueError(f"track {track.id!r}: unknown state {state!r}; expected one of {STATES}")
        unseen = state not in VISIBLE_STATES  # its last detection is not where it is now
        views.append(PersonView(
            id=safe_id(track.id, i), state=state, human=track.human, index=i,
            velocity=_vector(track.velocity, (3,)), velocity_cov=_vector(track.velocity_cov, (3, 3)),
            age=float(track.age), time_since_seen=float(track.time_since_seen),
            predicted=_vector(getattr(track, "position", None), (3,)) if unseen else None,
            predicted_cov=_vector(getattr(track, "position_cov", None), (3, 3)) if unseen else None,
            orientation=_vector(getattr(track, "orientation", None), (3, 3)),
            heading_from_velocity=bool(getattr(track, "heading_from_velocity", False)),
        ))  # fmt: skip
    return views


def _vector(value, shape) -> Optional[np.ndarray]:
    if value is None:
        return None
    out = np.asarray(value, dtype=np.float64)
    if out.shape != shape:
        raise ValueError(f"expected an array of shape {shape}, got {out.shape}")
    return out
