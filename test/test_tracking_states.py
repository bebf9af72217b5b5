"""Track states and the Kalman filter's start as the tracker sets them, on exact hand values."""

import numpy as np
import pytest

from mhr2_ros.tracking import Tracker, TrackerConfig, TrackState
from mhr2_ros.tracking import simulate as sim
from test_tracking import empty_frame, run, stamps, walker

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_new_track_starts_at_its_detection_with_the_measurement_variances():
    # kf_lateral_std 0.05 m along x and y, kf_depth_std_rel 0.05 of the depth along z; velocity 0
    # with kf_init_velocity_std. A floor or a mixed-up axis on these variances shows here.
    cfg = TrackerConfig()
    frame = sim.generate([walker(0, start=(0.5, 0.4, 6.0))], stamps(1), seed=13)[0].frame
    track = Tracker(cfg).update(frame, 0.0)[0]
    h = frame.humans[0]
    np.testing.assert_allclose(track.position, h.position)
    np.testing.assert_allclose(np.diag(track.position_cov), [0.05**2, 0.05**2, (0.05 * h.depth) ** 2], rtol=1e-12)
    np.testing.assert_allclose(track.velocity, 0.0)
    np.testing.assert_allclose(np.diag(track.velocity_cov), cfg.kf_init_velocity_std**2)


def test_occluded_up_to_exactly_occluded_max_seconds_then_lost():
    t = np.arange(10) / 32.0  # binary fractions: the time since seen is exactly 1.0 s below
    tracker, _, _ = run(sim.generate([walker(0)], t, seed=14))
    assert tracker.config.occluded_max_seconds == 1.0
    assert tracker.update(empty_frame(), t[-1] + 1.0)[0].state == TrackState.OCCLUDED
    assert tracker.update(empty_frame(), t[-1] + 1.0 + 1 / 32)[0].state == TrackState.LOST
