"""One way to build the online tracker from a settings file, for every front end
(`mhr2 detect --track`, `mhr2 bag`, detector_node's session)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

from mhr2_ros.tracking.config import load_tracker_config
from mhr2_ros.tracking.tracker import Tracker


def make_tracker(config_path: Optional[Union[str, Path]] = None, first_number: int = 1) -> Tracker:
    """A Tracker with the settings of `config_path` (YAML/JSON); None or '' takes the
    shipped config/tracker.yaml. A missing or invalid file raises ConfigError naming it.
    `first_number`: see Tracker (IDs go on counting across a replaced tracker)."""
    return Tracker(load_tracker_config(config_path or None), first_number=first_number)
