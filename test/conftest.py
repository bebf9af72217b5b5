"""Shared fixtures: the real Anny body model and a tiny detector, built once per session."""

import dataclasses

import numpy as np
import pytest
import torch

from mhr2_ros.config import load_model_config


@pytest.fixture(scope="session")
def body_model():
    from mhr2_ros.body import BodyModel

    return BodyModel("makehuman")


@pytest.fixture(scope="session")
def tiny_config():
    # The tiny preset at a smaller input size keeps CPU tests fast.
    return dataclasses.replace(load_model_config("tiny"), image_size=224, nearness_ref_focal=224.0)


@pytest.fixture(scope="session")
def tiny_detector(tiny_config, body_model):
    from mhr2_ros.inference.detector import Detector

    return Detector.from_random_init(tiny_config, seed=0)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def one_torch_thread():
    """Many small torch ops (the tracker's L1 kernel) wait a scheduler slice per op with
    2+ threads on a busy machine: one thread keeps such tests fast everywhere (the
    benchmarks measure the threaded case)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
