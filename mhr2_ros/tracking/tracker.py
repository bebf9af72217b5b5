"""Online tracker of the paper ("Tracking in videos") with navigation extras.

The Tracker only holds state (feature bank, per-track motion history and Kalman filter,
ID counter); the similarities and the assignment are the pure functions of
feature_bank, motion and association. Per-track numbers live in arrays indexed by a
slot, so prediction and filtering are vectorised over tracks.

Frame counting: `update` is one frame, with or without detections. A track ends when it
had no association in the last `max_missed_frames` frames: at the end of frame k a track
last seen at frame s is dropped (and no longer reported) when k - s >= max_missed_frames.
The bank holds frames k - bank_frames .. k - 1 while frame k is associated, so with
equal defaults (50 / 50) every live track still has features in the bank.

In seconds (`max_missed_seconds`, `bank_seconds`; not in the paper): at the end of a frame
stamped t a track last seen at s is dropped when t - s > max_missed_seconds, and pushing
that frame's features evicts the rows stamped before t - bank_seconds; with equal values
every live track again has features in the bank while the next frame is associated.

Camera motion (not in the paper): `update(..., camera_pose=T)` with T (4, 4) the camera's pose in
a fixed frame (odom: fixed <- camera optical) runs the Kalman filters in that frame, so a
track's velocity is over the ground (expressed in the camera's axes of this image) and an
occluded person stands still while the robot moves; the association sees each track's motion
history from the current camera (motion.py), so a turning head does not break the tracks.
Without poses the filters run in the camera frame (velocities relative to the camera: right
for a static camera) and the association is the paper's. Poses that start later re-express the
tracks at the first pose; a frame without one after that reuses the last pose for the filters
and the paper's pixel extrapolation for the association.
Facing where one walks (heading.py) needs a velocity over the ground: it is used only with poses
(a static camera passes STATIC_CAMERA).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np

from mhr2_ros.geometry import rigid_transform
from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.tracking.association import (
    associate,
    combine_similarities,
    orientation_offsets,
    pelvis_similarity,
    pixel_offsets,
)
from mhr2_ros.tracking.config import TrackerConfig
from mhr2_ros.tracking.detections import Detections, stack_detections
from mhr2_ros.tracking.feature_bank import FeatureBank
from mhr2_ros.tracking.heading import velocity_heading
from mhr2_ros.tracking.kalman import ConstantVelocityKF
from mhr2_ros.tracking.motion import CameraView, MotionHistory
from mhr2_ros.tracking.track import Track, TrackState, format_track_id

log = logging.getLogger(__name__)

# `update`'s camera_pose for a camera that does not move (a tripod, a generated clip): its own
# optical frame is the fixed frame. Read-only: callers share it.
STATIC_CAMERA = np.eye(4)
STATIC_CAMERA.setflags(write=False)


@dataclass
class _Record:
    """Bookkeeping of one live track; its numeric state lives in the slot arrays."""

    number: int
    slot: int
    first_stamp: float
    last_seen_stamp: float
    last_seen_frame: int
    hits: int
    human: Optional[Human]
    score: Optional[float] = None
    seen_camera: Optional[np.ndarray] = None  # (3, 3) fixed <- camera rotation of human's image (None: no poses)


class Tracker:
    """`update(frame_result, stamp)` once per frame; sets `human.track_id` on its humans."""

    def __init__(self, config: Optional[TrackerConfig] = None, first_number: int = 1):
        """`first_number`: the first track number; a tracker replacing another (new
        settings) starts at the old one's `next_number`, so no ID is handed out twice."""
        self.config = config or TrackerConfig()
        self._next_number = int(first_number)  # never reset: one instance never reuses an ID
        self.reset()

    @property
    def next_number(self) -> int:
        """The number the next new track gets."""
        return self._next_number

    def reset(self) -> None:
        """Forget all tracks and features (e.g. when time jumps back); IDs keep counting."""
        cfg = self.config
        self.bank = FeatureBank(cfg.bank_frames, device=cfg.device, max_seconds=cfg.bank_seconds)
        self._motion = MotionHistory(cfg.motion_history)
        self._kf = ConstantVelocityKF()
        self._records: Dict[int, _Record] = {}  # number -> record, in creation order
        self._free_slots: List[int] = []
        self._num_slots = 0
        self.frame_index = -1  # index of the last processed frame
        self._stamp: Optional[float] = None
        self._pose: Optional[tuple] = None  # (R (3, 3), t (3,)) fixed <- camera of the last posed frame
        self._pose_missing = False  # the last frame came without a pose after posed ones (warned once)
        self.tracks: List[Track] = []  # what the last update returned

    # ------------------------------------------------------------------------ update
    def update(self, frame: FrameResult, stamp: float, camera_pose: Optional[np.ndarray] = None) -> List[Track]:
        """Associate this frame's humans with the tracks; returns every live track.

        stamp: the image time in seconds. Frames may be irregular or dropped; a stamp
        earlier than the previous one resets the tracker (bag loop, clock jump).
        camera_pose: (4, 4) the camera's pose in a fixed frame at `stamp` (module docstring).
        """
        t0 = time.perf_counter()
        stamp = float(stamp)
        det = stack_detections(frame)
        self._check_input(det, stamp)  # before any state changes: a bad frame leaves no trace
        pose = None if camera_pose is None else rigid_transform(camera_pose)
        if self._stamp is not None and stamp < self._stamp:
            log.warning("stamp %.6f is before the previous %.6f: tracker reset", stamp, self._stamp)
            self.reset()
        self._set_pose(pose)
        dt = 0.0 if self._stamp is None else stamp - self._stamp
        self.frame_index += 1
        live = list(self._records.values())
        slots = np.array([r.slot for r in live], dtype=np.int64)
        self._kf.predict(slots, dt, self.config.kf_accel_std**2)
        matches, new_dets, scores = self._associate(det, live, slots, stamp)
        numbers = np.zeros(len(det), dtype=np.int64)  # track number of each detection
        for (i, j), s in zip(matches, scores):
            numbers[i] = live[j].number
            self._observe(live[j], frame.humans[i], stamp, float(s))
        started = [self._start_track(frame.humans[i], stamp) for i in new_dets]
        new_slots = np.array([rec.slot for rec in started], dtype=np.int64)
        numbers[new_dets] = [rec.number for rec in started]
        self._filter(det, matches, slots, new_dets, new_slots, stamp, frame.K)
        self.bank.push(self.frame_index, det.features, numbers[det.has_feature], stamp)
        for human, number in zip(frame.humans, numbers):
            human.track_id = format_track_id(self.config.id_prefix, int(number))
        self._stamp = stamp
        self._drop_expired(stamp)
        self.tracks = self._snapshots(stamp)
        frame.timings["tracking"] = time.perf_counter() - t0
        return self.tracks

    # --------------------------------------------------------------------- internals
    def _check_input(self, det: Detections, stamp: float) -> None:
        if not math.isfinite(stamp):
            raise ValueError(f"tracker stamp must be a finite number of seconds, got {stamp}")
        width = det.features.shape[1] if det.features.shape[0] else None
        if width is not None and self.bank.dim is not None and width != self.bank.dim:
            raise ValueError(f"track feature width {width} differs from the earlier frames' {self.bank.dim}")

    def _set_pose(self, pose: Optional[tuple]) -> None:
        """Take this frame's camera pose (module docstring: poses starting late, poses missing)."""
        if pose is None:
            if self._pose is not None and not self._pose_missing:
                log.warning("a frame without a camera pose after posed ones: the camera is assumed where it was")
            self._pose_missing = self._pose is not None
            return
        if self._pose is None and self._records:  # the tracks so far are relative to the camera
            log.info("camera poses start: %d tracks re-expressed in the fixed frame", len(self._records))
            self._kf.transform(*pose)
            self._motion.transform(*pose)
            for rec in self._records.values():  # their detections' camera: taken to be this one
                rec.seen_camera = pose[0]
        self._pose, self._pose_missing = pose, False

    def _associate(self, det: Detections, live: List[_Record], slots: np.ndarray, stamp: float):
        """Paper's similarity + gated Hungarian -> (matches (k, 2), new detections, scores (k,)); with
        camera poses the motion history is seen from this frame's camera (motion.py)."""
        cfg = self.config
        m, t = len(det), len(live)
        if m == 0 or t == 0:
            return np.zeros((0, 2), dtype=np.int64), np.arange(m), np.zeros(0)
        feature = np.zeros((m, t))
        if det.features.shape[0]:
            ids = np.array([r.number for r in live], dtype=np.int64)
            feature[det.has_feature] = self.bank.id_scores(
                det.features, ids, cfg.knn_k, cfg.feature_temperature, cfg.feature_distance_norm,
                cfg.distance_block_pairs)
        # without this frame's pose the paper's pixel extrapolation follows the camera's motion best
        view = None if self._pose is None or self._pose_missing else CameraView(*self._pose)
        pix, near, rot = self._motion.predict(slots, stamp, cfg.ridge_lambda, view)  # (T, 2), (T,), (T, 3, 3)
        pelvis = pelvis_similarity(
            pixel_offsets(det.pixels, pix, det.depth, det.focal, cfg.pixel_unit),
            det.nearness[:, None] - near[None, :],
            orientation_offsets(det.rotations, rot, cfg.angle_unit),
            cfg.t_pixel, cfg.t_nearness, cfg.t_orientation)
        score = combine_similarities(feature, pelvis, cfg.weight_feature, cfg.weight_pelvis, det.has_feature)
        matches, new_dets, _ = associate(score, cfg.new_track_threshold)
        return matches, new_dets, score[matches[:, 0], matches[:, 1]]

    def _observe(self, rec: _Record, human: Human, stamp: float, score: float) -> None:
        rec.last_seen_stamp, rec.last_seen_frame = stamp, self.frame_index
        rec.hits += 1
        rec.human, rec.score = human, score
        rec.seen_camera = None if self._pose is None else self._pose[0]

    def _start_track(self, human: Human, stamp: float) -> _Record:
        """A new track record with the next ID, in a free slot."""
        slot = self._free_slots.pop() if self._free_slots else self._new_slot()
        number = self._next_number
        self._next_number += 1
        rec = _Record(number, slot, stamp, stamp, self.frame_index, 1, human,
                      seen_camera=None if self._pose is None else self._pose[0])
        self._records[number] = rec
        self._motion.reset(np.array([slot]))
        return rec

    def _new_slot(self) -> int:
        slot = self._num_slots
        self._num_slots += 1
        self._motion.ensure(self._num_slots)
        self._kf.ensure(self._num_slots)
        return slot

    def _filter(self, det: Detections, matches: np.ndarray, slots: np.ndarray, new_dets: np.ndarray,
                new_slots: np.ndarray, stamp: float, K: np.ndarray) -> None:
        """Feed the associated detections to the motion history and the Kalman filters."""
        cfg = self.config
        r = np.stack([np.full(len(det), cfg.kf_lateral_std**2), np.full(len(det), cfg.kf_lateral_std**2),
                      (cfg.kf_depth_std_rel * det.depth) ** 2], axis=1)
        r = np.maximum(r, 1e-6)  # (M, 3) m^2 along the camera axes; the floor keeps the gain finite
        z, r = det.positions, r[:, :, None] * np.eye(3)  # (M, 3) m, (M, 3, 3) diagonal covariances
        if self._pose is not None:  # into the fixed frame
            rot, t = self._pose
            z, r = z @ rot.T + t, rot @ r @ rot.T
        di, ds = matches[:, 0], slots[matches[:, 1]]
        self._kf.update(ds, z[di], r[di])
        self._kf.init(new_slots, z[new_dets], r[new_dets], cfg.kf_init_velocity_std**2)
        all_dets = np.concatenate([di, new_dets]).astype(np.int64)
        all_slots = np.concatenate([ds, new_slots]).astype(np.int64)
        pose = self._pose if self._pose is not None else (np.eye(3), np.zeros(3))  # no poses: fixed = camera
        self._motion.add(all_slots, stamp, det.pixels[all_dets], det.nearness[all_dets], det.rotations[all_dets],
                         det.positions[all_dets], K, pose, posed=not self._pose_missing)

    def _drop_expired(self, stamp: float) -> None:
        """End the tracks without association in the last max_missed_frames frames (this one
        included), or, with max_missed_seconds, unseen for longer than that at `stamp`."""
        cfg = self.config

        def expired(r: _Record) -> bool:
            if cfg.max_missed_seconds is not None:
                return stamp - r.last_seen_stamp > cfg.max_missed_seconds
            return self.frame_index - r.last_seen_frame >= cfg.max_missed_frames

        for number in [n for n, r in self._records.items() if expired(r)]:
            rec = self._records.pop(number)
            self._free_slots.append(rec.slot)
            log.debug("track %s ended at frame %d", number, self.frame_index)

    def _snapshots(self, stamp: float) -> List[Track]:
        cfg = self.config
        out = []
        for rec in self._records.values():
            seen = rec.last_seen_frame == self.frame_index
            since = stamp - rec.last_seen_stamp
            if seen:
                state = TrackState.NEW if rec.hits < cfg.new_track_hits else TrackState.TRACKED
            else:
                state = TrackState.OCCLUDED if since <= cfg.occluded_max_seconds else TrackState.LOST
            (pos, pos_cov), (vel, vel_cov) = self._in_camera(rec.slot)
            orientation, turned = self._heading(rec, vel, seen)
            out.append(Track(
                id=format_track_id(cfg.id_prefix, rec.number), state=state, position=pos, position_cov=pos_cov,
                velocity=vel, velocity_cov=vel_cov, human=rec.human, age=stamp - rec.first_stamp,
                time_since_seen=since, frames_since_seen=self.frame_index - rec.last_seen_frame,
                hits=rec.hits, first_stamp=rec.first_stamp, last_seen_stamp=rec.last_seen_stamp, score=rec.score,
                orientation=orientation, heading_from_velocity=turned, ground_velocity=self._pose is not None))
        return out

    def _in_camera(self, slot: int):
        """((position, cov), (velocity, cov)) of a slot in this frame's camera axes."""
        pos, pos_cov = self._kf.position(slot)
        vel, vel_cov = self._kf.velocity(slot)
        if self._pose is None:
            return (pos, pos_cov), (vel, vel_cov)
        rot, t = self._pose  # camera <- fixed: p = R^T (p_w - t), v = R^T v_w
        return (rot.T @ (pos - t), rot.T @ pos_cov @ rot), (rot.T @ vel, rot.T @ vel_cov @ rot)

    def _heading(self, rec: _Record, velocity: np.ndarray, seen: bool):
        """(orientation (3, 3), turned to the velocity?) of a track in this image's camera axes: the last
        detection's (for a track not seen now, turned by the camera's rotation since, when poses say it),
        facing where it walks when it moves over the ground fast enough (heading.py)."""
        cfg = self.config
        if rec.human is None:
            return None, False
        rotation = np.asarray(rec.human.orientation, dtype=np.float64)
        if not seen and rec.seen_camera is not None and self._pose is not None:  # camera <- fixed <- then
            rotation = self._pose[0].T @ rec.seen_camera @ rotation
        if cfg.velocity_heading_speed is None or self._pose is None or rec.hits < cfg.velocity_heading_min_hits:
            return rotation, False
        turned, used = velocity_heading(rotation[None], velocity[None], cfg.velocity_heading_speed)
        return turned[0], bool(used[0])
