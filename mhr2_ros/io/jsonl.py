"""Results as JSON Lines: one JSON object per frame, one line each.

Conventions: camera frame = OpenCV optical frame (x right, y down, z forward);
meters, pixels of the original image, seconds. Non-finite numbers are written as
null (JSON has no NaN). Vertices, pose parameters and track features are left out
(tens of thousands of numbers per person); export meshes with mesh_export instead.

The fields and their units are documented in `frame_to_dict` (the README copies
the table).

Rounding: meters 4 decimals (0.1 mm), pixels 2, rotations/quaternions 6, scores and
shape 4, K 3, degrees 3, seconds 6.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.geometry import matrix_to_quaternion_xyzw
from mhr2_ros.inference.covariance import CovariancePrior, position_sigmas
from mhr2_ros.inference.results import PREDICTED_K, SHAPE_NAMES, FrameResult, Human
from mhr2_ros.io.atomic import atomic_write

log = logging.getLogger(__name__)
HEAD = PART_NAMES.index("head")  # its x axis is where the face looks (ros/tf.py's head_<id> frame)

M, PX, ROT, UNIT, K_DIGITS, DEG, SEC = 4, 2, 6, 4, 3, 3, 6  # decimals per kind of value
PRIOR = CovariancePrior()  # the node's default pose covariance prior, for each human's `sigma`


def _num(value, digits: int) -> Optional[float]:
    """Rounded float, None for None / NaN / inf (invalid in JSON)."""
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def _list(array, digits: int) -> Optional[list]:
    """Nested lists of rounded floats (non-finite -> None); None stays None."""
    if array is None:
        return None
    arr = np.round(np.asarray(array, dtype=np.float64), digits)
    if np.isfinite(arr).all():
        return arr.tolist()
    return _nan_to_none(arr.tolist())


def _nan_to_none(value):
    """Nested lists with NaN / inf replaced by None."""
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value if math.isfinite(value) else None


def human_to_dict(human: Human, index: int, focal: Optional[float] = None, k_predicted: bool = False,
                  track=None) -> Dict[str, Any]:
    """JSON-safe dict of one person (fields: `frame_to_dict`); `sigma` needs the frame's `focal`;
    `track`: the tracker's Track of this detection (None: not tracked)."""
    shape = np.asarray(human.shape, dtype=np.float64).reshape(-1)
    if len(shape) != len(SHAPE_NAMES):
        raise ValueError(
            f"human {index}: shape has {len(shape)} values, expected {len(SHAPE_NAMES)} ({', '.join(SHAPE_NAMES)})"
        )
    orientation = np.asarray(human.orientation, dtype=np.float64)
    quat = matrix_to_quaternion_xyzw(orientation) if np.isfinite(orientation).all() else None
    return {
        "id": None if human.track_id is None else str(human.track_id),
        "index": index,
        "score": _num(human.score, UNIT),
        "pelvis_2d": _list(human.pelvis_2d, PX),
        "depth": _num(human.depth, M),
        "depth_source": str(human.depth_source),
        "position": _list(human.position, M),
        "orientation": _list(orientation, ROT),
        "quaternion_xyzw": _list(quat, ROT),
        "head_direction": None if human.part_rotations is None else _list(human.part_rotations[HEAD][:, 0], ROT),
        "shape": {n: _num(v, UNIT) for n, v in zip(SHAPE_NAMES, shape)},
        "height": _num(human.height, M),
        "box": _list(human.box, PX),
        "joints_3d": _list(human.joints_3d, M),
        "keypoints_2d": _list(human.keypoints_2d, PX),
        "sigma": None if focal is None else _sigma(human, focal, k_predicted, _from_velocity(track)),
        "track": None if track is None else _track(track),
    }


def _from_velocity(track) -> bool:
    return bool(getattr(track, "heading_from_velocity", False))


def _track(track) -> Dict[str, Any]:
    """What the tracker adds to its detection (tracking/track.py)."""
    orientation = getattr(track, "orientation", None)
    return {
        "state": str(getattr(track.state, "value", track.state)),
        "velocity": _list(track.velocity, M),
        "ground_velocity": bool(getattr(track, "ground_velocity", False)),
        "heading_source": "velocity" if _from_velocity(track) else "network",
        "orientation": _list(orientation, ROT),
    }


def _sigma(human: Human, focal: float, k_predicted: bool, from_velocity: bool) -> Dict[str, Optional[float]]:
    """The default pose covariance prior's sigmas (inference/covariance.py, as the node publishes them)."""
    along, across = position_sigmas(float(np.linalg.norm(human.position)), focal, PRIOR, human.depth_source,
                                    k_predicted)  # fmt: skip
    heading = PRIOR.velocity_heading_sigma if from_velocity else PRIOR.heading_sigma
    return {"along_ray": _num(along, M), "across_ray": _num(across, M), "heading": _num(heading, ROT),
            "tilt": _num(PRIOR.tilt_sigma, ROT)}  # fmt: skip


def frame_to_dict(
    frame: FrameResult,
    index: int,
    name: str,
    timestamp: Optional[float],
    joint_names: Optional[Sequence[str]] = None,
    tracks: Optional[Sequence] = None,
) -> Dict[str, Any]:
    """JSON-safe dict of one frame's results, as written on one line of a .jsonl file.
    `tracks`: the tracker's output for this frame (each human's `track` field; None: not tracked).

    Frame fields
    | field            | type                  | unit / meaning                                                    |
    |------------------|-----------------------|-------------------------------------------------------------------|
    | frame            | int                   | 0-based index of the frame in the input                           |
    | name             | str                   | image file name, or frame_000123 for videos and cameras           |
    | timestamp        | float or null         | s; video: index / fps, camera: since opened, images: null         |
    | image_size       | {width, height}       | px, the original image                                            |
    | K                | 3x3 float             | px, intrinsics used (row-major)                                   |
    | K_source         | str                   | "given" (user / camera_info) or "predicted" (network FOV)         |
    | fov_y_deg        | float                 | degrees, vertical field of view of K                              |
    | timings          | {stage: float}        | s, time spent per stage for this frame                            |
    | level_roll_deg   | float or null         | degrees the image was turned to level a rolled camera (by the     |
    |                  |                       | gravity of --camera-roll / --camera-height); null: not levelled   |
    | joint_names      | [str] (optional)      | order of joints_3d / keypoints_2d rows; only when passed          |
    | humans           | [object]              | detections, best score first (fields below)                       |

    Human fields
    | field            | type                  | unit / meaning                                                    |
    |------------------|-----------------------|-------------------------------------------------------------------|
    | id               | str or null           | track id (stable across frames), null without tracking            |
    | index            | int                   | position in this frame's list                                     |
    | score            | float                 | detection confidence in [0, 1]                                    |
    | pelvis_2d        | [u, v]                | px, pelvis in the image                                           |
    | depth            | float                 | m, pelvis z                                                       |
    | depth_source     | str                   | "network", "depth image" (scaled to a registered depth image) or  |
    |                  |                       | "floor" (scaled until the body's lowest point is on the floor)    |
    | position         | [x, y, z]             | m, pelvis in the camera frame                                     |
    | orientation      | 3x3 float             | pelvis rotation, body axes -> camera frame (row-major)            |
    | quaternion_xyzw  | [x, y, z, w]          | same rotation as a unit quaternion, w >= 0                        |
    | head_direction   | [x, y, z] or null     | unit vector, camera frame: where the face looks (head part's x)   |
    | shape            | {gender, age, muscle, weight, height, proportions} | Anny phenotypes in [0, 1]            |
    | height           | float                 | m, standing height of the body (rest pose)                        |
    | box              | [x_min, y_min, x_max, y_max] | px, projected mesh, clipped to the image                   |
    | joints_3d        | Jx3 float             | m, joints in the camera frame                                     |
    | keypoints_2d     | Jx2 float             | px, joints projected with K                                       |
    | sigma            | {along_ray, across_ray, heading, tilt} | 1-sigma of the pose covariance prior (as the  |
    |                  |                       | node publishes it; m along the viewing ray and across it per axis,|
    |                  |                       | rad about the body's up axis and about each horizontal axis)      |
    | track            | object or null        | the tracker's, null without tracking: state ("new", "tracked"),   |
    |                  |                       | velocity [vx, vy, vz] m/s camera frame, ground_velocity (true:    |
    |                  |                       | over the ground, the camera is known static; false: relative to   |
    |                  |                       | the camera), heading_source ("network"; "velocity": a walker      |
    |                  |                       | facing where they go), orientation 3x3 (the track's)              |
    """
    height, width = (int(v) for v in frame.image_size[:2])
    record: Dict[str, Any] = {
        "frame": int(index),
        "name": str(name),
        "timestamp": _num(timestamp, SEC),
        "image_size": {"width": width, "height": height},
        "K": _list(frame.K, K_DIGITS),
        "K_source": str(frame.K_source),
        "fov_y_deg": _num(math.degrees(frame.fov_y), DEG) if frame.fov_y is not None else None,
        "timings": {str(k): _num(v, SEC) for k, v in (frame.timings or {}).items()},
        "level_roll_deg": _num(frame.level_roll_deg, DEG),
    }
    if joint_names is not None:
        record["joint_names"] = [str(n) for n in joint_names]
        for i, human in enumerate(frame.humans):
            count = len(np.asarray(human.joints_3d).reshape(-1, 3))
            if count != len(joint_names):
                raise ValueError(f"human {i}: {count} joints but {len(joint_names)} joint names")
    focal, k_predicted = float(frame.K[1, 1]), frame.K_source == PREDICTED_K
    track_of = {id(t.human): t for t in tracks or () if t.human is not None and t.is_visible}
    record["humans"] = [human_to_dict(h, i, focal, k_predicted, track_of.get(id(h)))
                        for i, h in enumerate(frame.humans)]  # fmt: skip
    return record


class JsonlWriter:
    """Append one JSON object per line; the file appears under `path` on close.

    Lines are flushed one by one into a hidden temporary file beside `path` (it can
    be followed with `tail -f`), renamed to `path` when the writer closes. Every line
    is written whole, so when a run stops on an error or Ctrl-C the frames processed
    so far are still published: nothing is lost and no line is half-written.
    """

    def __init__(self, path):
        self.path = path
        self.lines = 0
        self._stack = contextlib.ExitStack()
        self._handle = self._stack.enter_context(atomic_write(path, "w"))

    def write(self, record: Dict[str, Any]) -> None:
        """Write one record (a dict such as frame_to_dict's) as one line."""
        if self._handle is None:
            raise RuntimeError(f"{self.path}: write() after close()")
        self._handle.write(json.dumps(record, separators=(",", ":"), allow_nan=False) + "\n")
        self._handle.flush()
        self.lines += 1

    def write_frame(self, frame: FrameResult, index: int, name: str, timestamp: Optional[float],
                    joint_names: Optional[Sequence[str]] = None, tracks: Optional[Sequence] = None) -> None:
        self.write(frame_to_dict(frame, index, name, timestamp, joint_names, tracks))

    def close(self) -> None:
        """Flush, fsync and rename to the final path (idempotent)."""
        if self._handle is not None:
            self._handle = None
            self._stack.close()
            log.info("wrote %s (%d lines)", self.path, self.lines)

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            log.warning("%s: run stopped (%s); keeping the %d complete line(s) written",
                        self.path, exc_type.__name__, self.lines)
        self.close()
