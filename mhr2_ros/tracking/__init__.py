"""Online tracking stage (paper, "Tracking in videos"): Tracker, its config and Track.

Importing this package loads numpy, scipy and torch (the feature bank's L1 kernel) and
does no other work.
"""

from mhr2_ros.tracking.config import TrackerConfig, load_tracker_config
from mhr2_ros.tracking.track import Track, TrackState
from mhr2_ros.tracking.tracker import STATIC_CAMERA, Tracker

__all__ = ["STATIC_CAMERA", "Tracker", "TrackerConfig", "load_tracker_config", "Track", "TrackState"]
