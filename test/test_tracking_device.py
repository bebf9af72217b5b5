"""The tracker's feature bank device (tracker.yaml `device`): checked when the tracker is built."""

import numpy as np
import pytest
import torch

from mhr2_ros.errors import ConfigError
from mhr2_ros.tracking import Tracker, TrackerConfig
from mhr2_ros.tracking.feature_bank import FeatureBank


def test_auto_puts_the_bank_on_the_gpu_when_there_is_one():
    bank = FeatureBank(5, device="auto")
    assert bank.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    bank.push(0, np.ones((2, 8)), np.array([1, 2]))  # float64 detections become float32 rows there
    assert bank.distances(np.ones((1, 8))).device == bank.device
    np.testing.assert_allclose(bank.id_scores(np.ones((1, 8)), np.array([1, 2]), k=2, temperature=15.0),
                               [[0.5, 0.5]])  # fmt: skip


def test_a_bad_bank_device_fails_when_the_tracker_is_built():
    """Not at the first frame with people, deep in a worker thread (torch.device('auto') was a
    RuntimeError, 'cuda' without a GPU an AssertionError at the first push)."""
    with pytest.raises(ConfigError, match="invalid device 'gpu'"):
        Tracker(TrackerConfig(device="gpu"))
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            Tracker(TrackerConfig(device="cuda"))
