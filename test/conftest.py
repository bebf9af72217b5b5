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


@pytest.fixture(scope="session")
def shipped_detector(body_model):
    """The shipped weights: for tests whose premise is a person found where a person stands (a random
    network's people lie anywhere, and where depends on the torch version's initialisers)."""
    from mhr2_ros.inference.detector import Detector

    return Detector.from_checkpoint()


@pytest.fixture(scope="session")
def make_clip(tmp_path_factory, body_model):
    """Factory: write a small synthetic clip as `mhr2 synth` does; returns its folder (named `name`)."""
    from mhr2_ros.training.synthetic.config import SynthConfig
    from mhr2_ros.training.synthetic.dataset import write_clip
    from mhr2_ros.training.synthetic.generator import SyntheticClip

    def make(name: str, frames: int, people: int, distance_m=(2.0, 8.0), seed: int = 0, size=(160, 120)):
        base = SynthConfig()
        cfg = dataclasses.replace(
            base, frames=frames, camera=dataclasses.replace(base.camera, size=size),
            placement=dataclasses.replace(base.placement, people=(people, people), distance_m=distance_m),
        )  # fmt: skip
        return write_clip(tmp_path_factory.mktemp(name) / name, SyntheticClip(cfg, seed, body_model))

    return make


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


@pytest.fixture(scope="session")
def recipe_model_config():
    """Function: the ModelConfig a training config in config/ trains. A config with `init`
    continues the config in config/ whose output writes that checkpoint (its model, then
    this config's overrides), or the shipped weights (the model in their JSON); the chain
    must exist, so a stage cannot point nowhere."""
    from pathlib import Path, PurePosixPath

    from mhr2_ros.checkpoint import read_checkpoint_config
    from mhr2_ros.config import CONFIG_DIR
    from mhr2_ros.training.config import load_train_config
    from mhr2_ros.training.train import _with_overrides

    def resolve(path):
        cfg = load_train_config(path)
        if not cfg.init:
            return _with_overrides(load_model_config(cfg.model), cfg.model_overrides, cfg.model)
        init = PurePosixPath(cfg.init)
        if init.parts[0] == "weights":  # the shipped weights, relative to the repository root
            shipped, _ = read_checkpoint_config(Path(__file__).resolve().parents[1] / init)
            return _with_overrides(shipped, cfg.model_overrides, cfg.init)
        stages = [p for p in CONFIG_DIR.glob("train_*.yaml")
                  if PurePosixPath(load_train_config(p).output) / "model.safetensors" == init]
        assert len(stages) == 1, f"{path.name}: init {init} is written by {len(stages)} configs in config/"
        return _with_overrides(resolve(stages[0]), cfg.model_overrides, cfg.init)

    return resolve
