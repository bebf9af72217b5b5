"""TrackVelocities (evaluation/track_velocity.py) by hand: the true velocity is the change of the
true pelvis since the previous frame over the time between them; only visible tracks with two
detections or more, on a true positive, with the person in the previous frame, count."""

from types import SimpleNamespace

import numpy as np
import pytest

from mhr2_ros.evaluation.track_velocity import TrackVelocities


def _frame(people):
    """(result, truth): one detection per person, each a true positive of its person."""
    truth = SimpleNamespace(humans=[SimpleNamespace(track_id=pid, position=np.array(pos, float)) for pid, pos in people])
    result = SimpleNamespace(humans=[SimpleNamespace() for _ in people])
    return result, truth, [(k, k) for k in range(len(people))]


def _track(human, velocity, hits=2, visible=True):
    return SimpleNamespace(human=human, velocity=np.array(velocity, float), hits=hits, is_visible=visible)


def test_velocity_error_against_the_truths_finite_difference():
    v = TrackVelocities()
    result, truth, pairs = _frame([("a", (0.0, 0.0, 5.0)), ("b", (1.0, 0.0, 4.0))])
    v.add([_track(result.humans[0], (9.0, 9.0, 9.0))], result, truth, pairs, stamp=0.0)
    assert v.errors == []  # nobody has a previous frame yet
    result, truth, pairs = _frame([("a", (1.0, 0.0, 5.0)), ("b", (1.0, 0.0, 4.0)), ("c", (0.0, 0.0, 3.0))])
    tracks = [
        _track(result.humans[0], (2.0, 0.0, 1.0)),  # a walks at (2, 0, 0) m/s: error 1, speed 2
        _track(result.humans[1], (0.0, 0.0, 0.0), hits=1),  # a new track: no velocity of its own yet
        _track(result.humans[2], (0.0, 0.0, 0.0)),  # c was not in the previous frame
        _track(SimpleNamespace(), (5.0, 0.0, 0.0)),  # a detection on nobody
        _track(result.humans[1], (0.0, 3.0, 4.0), visible=False),  # an occluded track
    ]  # fmt: skip
    v.add(tracks, result, truth, pairs, stamp=0.5)
    assert v.errors == pytest.approx([1.0]) and v.speeds == pytest.approx([2.0])
    v.new_clip()  # ids repeat across clips: the next clip's first frame has no previous one
    v.add([_track(result.humans[0], (0.0, 0.0, 0.0))], result, truth, pairs, stamp=1.0)
    assert len(v.errors) == 1
    assert v.summary() == pytest.approx(
        {"track_velocity_error": 1.0, "track_velocity_error_median": 1.0, "track_true_speed": 2.0})
    assert TrackVelocities().summary()["track_velocity_error"] is None
