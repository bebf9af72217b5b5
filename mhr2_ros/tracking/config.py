"""TrackerConfig: every constant of the paper's tracker ("Tracking in videos") plus the
navigation extras, with the paper's defaults. config/tracker.yaml lists the same fields.

Where the paper gives a number without a unit, the unit chosen here is part of the
field's comment and of the module docstrings that use it (feature_bank, association).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from mhr2_ros.config import CONFIG_DIR, ConfigError, from_dict, read_mapping

FEATURE_NORMS = ("median", "dim", "none")
PIXEL_UNITS = ("meters_at_depth", "focal", "pixels")
ANGLE_UNITS = ("deg", "rad")


@dataclass
class TrackerConfig:
    # --- appearance: feature bank + KNN (paper: 50 frames, K=35, L1, softmax t=15) ---
    bank_frames: int = 50  # frames whose (feature, id) pairs the bank keeps (paper: 50)
    knn_k: int = 35  # nearest bank entries retrieved per detection, L1 distance (paper: 35)
    feature_temperature: float = 15.0  # softmax temperature, in the units of feature_distance_norm (paper: 15)
    # how raw L1 distances are scaled before softmax(-d / t) (paper silent):
    #   "median": percent of the detection's median L1 distance to the whole bank (scale-free)
    #   "dim": mean absolute difference per feature component (L1 / feature dimension)
    #   "none": raw L1 sum over the feature dimension
    feature_distance_norm: str = "median"
    # --- motion: per-ID ridge regression on the last observations (paper: 8) ---
    motion_history: int = 8  # observations per ID fed to the ridge regression (paper: 8)
    ridge_lambda: float = 0.01  # ridge penalty on the slope, seconds^2 (paper silent)
    # --- pelvis similarity exp(-|dp|/t_p) exp(-|dn|/t_n) exp(-|dθ|/t_θ) (paper: 1, 3, 20) ---
    t_pixel: float = 1.0  # t_p, in units of pixel_unit (paper: 1)
    t_nearness: float = 3.0  # t_n, nearness units (natural log of inverse depth) (paper: 3)
    t_orientation: float = 20.0  # t_θ, in units of angle_unit (paper: 20)
    # unit of |p - p̂| (paper silent): "focal" = pixels / focal, the angle between the two rays
    # (radians), in which a detector's pelvis error is about the same near and far; "meters_at_depth" =
    # pixels * depth / focal, the lateral offset at the detection's depth, which grows that error
    # with the distance (association.py: why "focal" is the default); "pixels"
    pixel_unit: str = "focal"
    # unit of the geodesic angle between orientations (paper silent). "rad": t_θ = 20 makes the
    # term a mild factor (>= 0.85, a 180° flip); "deg" is strict: with the 0.69 gate an 8°
    # error alone starts a new track, which fragments tracks at realistic orientation noise
    angle_unit: str = "rad"
    # --- combination, assignment, track life (paper: 1, 8, 0.69, 50) ---
    weight_feature: float = 1.0  # weight of the feature similarity (paper: 1)
    weight_pelvis: float = 8.0  # weight of the pelvis similarity (paper: 8)
    # a detection-track pair can be associated only when
    # (weight_feature * feature + weight_pelvis * pelvis) / (weight_feature + weight_pelvis)
    # reaches this; a detection left without association starts a new track (paper: 0.69)
    new_track_threshold: float = 0.69
    max_missed_frames: int = 50  # a track ends after this many frames without association (paper: 50)
    # --- the same two lifetimes in seconds (not in the paper): each, when set, replaces its
    # frame count above, so tracks and features live a fixed time whatever the processing rate
    # (the node drops frames under load). null: the paper's frame counts ---
    bank_seconds: Optional[float] = None  # the bank keeps the features of the last this many seconds
    max_missed_seconds: Optional[float] = None  # a track ends when unseen for longer than this
    # --- navigation extras (not in the paper) ---
    id_prefix: str = "h"  # track IDs are id_prefix + counter ("h1", "h2", ...): TF-frame safe
    new_track_hits: int = 3  # a track is "new" until it has this many associated detections
    occluded_max_seconds: float = 1.0  # unseen this long or less: "occluded" (predicted), else "lost"
    kf_accel_std: float = 0.25  # constant-velocity Kalman filter: sqrt(white-acceleration density), m/s^1.5
    kf_lateral_std: float = 0.05  # measurement std of the pelvis position along x and y, meters
    kf_depth_std_rel: float = 0.05  # measurement std along z as a fraction of the depth
    kf_init_velocity_std: float = 1.5  # prior std of a new track's velocity, m/s
    # a track moving faster than this (m/s over the ground, across the body's up axis) faces where it
    # walks: its published heading is its velocity's (tracking/heading.py). Needs camera poses (a
    # fixed frame) or a static camera; null: always the network's heading
    velocity_heading_speed: Optional[float] = 0.6
    velocity_heading_min_hits: int = 5  # ... and has at least this many detections (a settled velocity)
    device: str = "cpu"  # torch device of the feature bank: "cpu", "cuda", "cuda:N" or "auto"
    distance_block_pairs: int = 64  # (detection, bank row) pairs per CPU thread per block of the L1 kernel

    def __post_init__(self) -> None:
        positive_ints = ("bank_frames", "knn_k", "motion_history", "max_missed_frames",
                         "new_track_hits", "distance_block_pairs", "velocity_heading_min_hits")
        for name in positive_ints:
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"tracker {name} must be >= 1, got {getattr(self, name)}")
        positive = ("feature_temperature", "t_pixel", "t_nearness", "t_orientation")
        for name in positive:
            if not getattr(self, name) > 0:
                raise ConfigError(f"tracker {name} must be > 0, got {getattr(self, name)}")
        non_negative = ("ridge_lambda", "weight_feature", "weight_pelvis", "occluded_max_seconds",
                        "kf_accel_std", "kf_lateral_std", "kf_depth_std_rel", "kf_init_velocity_std")
        for name in non_negative:
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ConfigError(f"tracker {name} must be finite and >= 0, got {value}")
        for name, null, unit in (("bank_seconds", "count frames", "seconds"), ("max_missed_seconds", "count frames",
                                 "seconds"), ("velocity_heading_speed", "off", "m/s")):  # fmt: skip
            value = getattr(self, name)
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if value is not None and not (number and math.isfinite(value) and value > 0):
                raise ConfigError(f"tracker {name} must be null ({null}) or {unit} > 0, got {value!r}")
        if self.weight_feature + self.weight_pelvis <= 0:
            raise ConfigError("tracker weight_feature + weight_pelvis must be > 0")
        if not 0.0 <= self.new_track_threshold <= 1.0:
            raise ConfigError(f"tracker new_track_threshold must be in [0, 1], got {self.new_track_threshold}")
        for name, allowed in (("feature_distance_norm", FEATURE_NORMS), ("pixel_unit", PIXEL_UNITS),
                              ("angle_unit", ANGLE_UNITS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"tracker {name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(self.id_prefix)):
            raise ConfigError(
                f"tracker id_prefix must be a letter then letters, digits or _, got {self.id_prefix!r}")
        if self.kf_lateral_std <= 0 and self.kf_depth_std_rel <= 0:
            raise ConfigError("tracker needs kf_lateral_std > 0 or kf_depth_std_rel > 0")


def tracker_config_path() -> Path:
    return CONFIG_DIR / "tracker.yaml"


def load_tracker_config(path: Optional[str | Path] = None) -> TrackerConfig:
    """TrackerConfig from a YAML/JSON file (default: config/tracker.yaml, else the defaults)."""
    if path is None:
        path = tracker_config_path()
        if not path.is_file():
            return TrackerConfig()
    return from_dict(TrackerConfig, read_mapping(Path(path)), source=str(path))
