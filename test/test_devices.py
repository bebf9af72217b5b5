"""Device names from users: "auto" picks the GPU when there is one; bad names are explained."""

from __future__ import annotations

import pytest
import torch

from mhr2_ros.config import InferenceConfig
from mhr2_ros.devices import device_name, resolve_device
from mhr2_ros.errors import ConfigError


def test_auto_is_the_gpu_when_there_is_one():
    assert device_name("auto", cuda_available=True) == "cuda"
    assert device_name("auto", cuda_available=False) == "cpu"
    assert device_name("cuda:1", cuda_available=False) == "cuda:1"  # explicit names stay
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert InferenceConfig().device == "auto"  # the Python API follows the same default


def test_bad_device_names_say_what_is_accepted():
    with pytest.raises(ConfigError, match="invalid device 'gpu': expected auto, cpu, cuda or cuda:N"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_refused_with_the_way_out():
    with pytest.raises(ConfigError, match="CUDA is not available; use the device 'cpu'"):
        resolve_device("cuda:0")


def test_training_device_typos_are_refused():
    from mhr2_ros.training.config import TrainConfig

    assert TrainConfig(device="auto").device == "auto"
    with pytest.raises(ConfigError, match="device 'gpu': expected one of cuda, cpu, auto"):
        TrainConfig(device="gpu")  # used to fall through to the CPU silently


def test_a_gpu_the_machine_lacks_is_refused_naming_those_it_has():
    """cuda:1 on a one-GPU machine used to pass and fail at the first tensor ("invalid
    device ordinal", a RuntimeError the ROS node and the CLI do not explain)."""
    from mhr2_ros.devices import check_gpu

    check_gpu(torch.device("cuda", 1), count=2)
    check_gpu(torch.device("cuda"), count=1)  # the current GPU
    with pytest.raises(ConfigError, match=r"'cuda:1' requested but this machine has 1 GPU\(s\): use cuda:0 .. cuda:0"):
        check_gpu(torch.device("cuda", 1), count=1)
    with pytest.raises(ConfigError, match="'cuda' requested but CUDA is not available; use the device 'cpu'"):
        check_gpu(torch.device("cuda"), count=0)


def test_torchrun_with_more_ranks_than_gpus_is_refused_with_the_fix(monkeypatch):
    """A local rank without its GPU would fail in set_device with "invalid device ordinal".
    (This machine has no GPU: the CUDA queries are replaced, set_device is never reached.)"""
    from mhr2_ros.training.config import TrainConfig
    from mhr2_ros.training.train import _device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match="local rank 2 needs GPU 2, but this machine has 2: use --nproc_per_node 2"):
        _device(TrainConfig(device="cuda", data=[]), local_rank=2)
