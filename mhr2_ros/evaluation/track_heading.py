"""How the tracker's orientations compare with the network's on the tracked clips.

The tracker turns a walking track to face its velocity (tracking/heading.py). Per tracked
person-frame (a visible track whose detection is a true positive of the protocol's match) this
measures the pelvis orientation error (degrees, geodesic, as metrics.orientation_error_deg) of
the track's orientation and of the network's, over the same person-frames, and for the
person-frames whose heading came from the velocity, the heading error (radians, about the body's
up axis): its coverage by the prior's velocity_heading_sigma and the calibrated value (the 68th
percentile), as PriorCheck does for the network's heading (inference/covariance.py), and the MPJPE
(mm, pelvis-centred, metrics.mpjpe) of the published body (the detection's turned whole,
geometry.turned_body) and of the network's.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mhr2_ros.evaluation.metrics import mpjpe, orientation_error_deg
from mhr2_ros.geometry import turned_body
from mhr2_ros.inference.covariance import COVERAGE, RADIUS_1D, CovariancePrior, heading_tilt
from mhr2_ros.inference.results import FrameResult


class TrackHeadings:
    """`add(tracks, result, truth, pairs)` per tracked frame; `summary()` the numbers (docstring)."""

    def __init__(self, prior: Optional[CovariancePrior] = None) -> None:
        self.prior = prior or CovariancePrior()
        self.track_deg: List[float] = []  # per tracked person-frame: the track's orientation error
        self.network_deg: List[float] = []  # ... and the network's
        self.from_velocity: List[bool] = []  # ... and whether the track's heading is its velocity's
        self.velocity_heading: List[float] = []  # radians, per person-frame with a velocity heading
        self.velocity_mpjpe: List[Tuple[float, float]] = []  # mm, (published body, network's), the same ones

    def add(self, tracks: Iterable, result: FrameResult, truth: FrameResult, pairs: Sequence[Tuple[int, int]]) -> None:
        """`pairs`: (detection index in result, person index in truth) of the frame's true positives."""
        truth_of = {id(result.humans[r]): truth.humans[c] for r, c in pairs}
        for track in tracks:
            gt = truth_of.get(id(track.human)) if track.is_visible and track.orientation is not None else None
            if gt is None:
                continue
            self.track_deg.append(orientation_error_deg(track.orientation, gt.orientation))
            self.network_deg.append(orientation_error_deg(track.human.orientation, gt.orientation))
            self.from_velocity.append(bool(track.heading_from_velocity))
            if track.heading_from_velocity:
                h = track.human
                self.velocity_heading.append(heading_tilt(track.orientation, gt.orientation)[0])
                turned = turned_body(h.joints_3d, h.position, h.orientation, track.orientation)
                self.velocity_mpjpe.append((mpjpe(turned, gt.joints_3d), mpjpe(h.joints_3d, gt.joints_3d)))

    def summary(self) -> Dict[str, Optional[float]]:
        """Means in degrees (None without tracked person-frames); the velocity heading's share,
        coverage and calibrated sigma (None without such person-frames)."""
        used, heading = np.array(self.from_velocity, dtype=bool), np.array(self.velocity_heading)
        track, network = np.array(self.track_deg), np.array(self.network_deg)
        joints = np.array(self.velocity_mpjpe).reshape(-1, 2)  # (published, network's) per velocity person-frame

        def mean(values):
            return float(np.mean(values)) if len(values) else None

        return {
            "track_orientation_error": mean(track), "track_orientation_error_network": mean(network),
            "velocity_heading_share": mean(used),
            "velocity_heading_orientation_error": mean(track[used]) if len(used) else None,
            "velocity_heading_orientation_error_network": mean(network[used]) if len(used) else None,
            "velocity_heading_mpjpe": mean(joints[:, 0]), "velocity_heading_mpjpe_network": mean(joints[:, 1]),
            "covariance_velocity_heading_coverage": mean(heading <= RADIUS_1D * self.prior.velocity_heading_sigma),
            "calibrated_velocity_heading_sigma": (float(np.percentile(heading, 100 * COVERAGE) / RADIUS_1D)
                                                  if len(heading) else None),
        }  # fmt: skip
