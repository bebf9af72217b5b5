"""Batch replay (`data_reuse`, training/replay.py): which steps get fresh batches, that the
fresh ones are the plain stream's in its order, that the replayed ones come from the window
of recent fresh batches, its determinism, its saved state, a training run with it, and the
adaptive mode, which replays only while the workers still load the next batch."""

import dataclasses
import json
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mhr2_ros.config import load_model_config
from mhr2_ros.errors import ConfigError
from mhr2_ros.training.config import TrainConfig
from mhr2_ros.training.data import BatchStream, InMemorySource, SourceSpec, make_stream
from mhr2_ros.training.replay import ReplayStream
from mhr2_ros.training.train import train
from test_training import SMALL_MODEL, Interrupted, _interrupt, blank_sample, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
SAMPLES = 50  # distinct images: a batch is known by its pixel values


def _stream(seed: int = 0) -> BatchStream:
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)
    samples = []
    for i in range(SAMPLES):
        s = blank_sample(64, 48)
        s.image[:] = i  # uint8 grey level i: image i normalises to its own value
        samples.append(s)
    return BatchStream([SourceSpec(InMemorySource(samples))], model_cfg, batch_size=2, seed=seed, device=CPU)


def _key(batch) -> tuple:
    return tuple(batch["images"][:, 0, 0, 0].tolist())


def test_every_kth_batch_is_the_plain_streams_next_and_the_rest_come_from_the_window():
    reuse, capacity, steps = 3, 4, 30
    with _stream() as plain:
        fresh = [_key(plain.next()) for _ in range(steps // reuse)]
    with ReplayStream(_stream(), reuse, capacity, seed=0) as replay:
        served = [_key(replay.next()) for _ in range(steps)]
    assert replay.fresh == steps // reuse
    assert served[::reuse] == fresh  # steps 0, 3, 6...: the stream's batches in its order
    for step, key in enumerate(served):
        newest = step // reuse  # the fresh batches served so far: 0..newest
        window = fresh[max(0, newest - capacity + 1): newest + 1]
        assert key in window, (step, key)
    replayed = [k for i, k in enumerate(served) if i % reuse]
    assert len(set(replayed)) > capacity  # the window moves on: not the first batches over and over


def test_the_same_seed_replays_the_same_batches_and_another_does_not():
    def keys(seed):
        with ReplayStream(_stream(), 4, 8, seed=seed) as replay:
            return [_key(replay.next()) for _ in range(40)]

    assert keys(1) == keys(1)
    assert keys(1) != keys(2)


def test_a_restored_state_continues_the_fresh_batches_and_the_cycle():
    """The buffer is not saved: after a restore the fresh batches go on as the plain stream's,
    at the same steps of the cycle; the first step after a restore mid-cycle takes a fresh
    batch, since there is nothing to replay yet."""
    reuse = 3
    whole = ReplayStream(_stream(), reuse, 4, seed=0)
    served = [_key(whole.next()) for _ in range(12)]
    first = ReplayStream(_stream(), reuse, 4, seed=0)
    for _ in range(6):
        first.next()
    state = json.loads(json.dumps(first.state_dict()))  # as saved in last.json
    assert state["replay"]["replays"] == 2  # steps 4 and 5 replayed: step 6 is fresh
    resumed = ReplayStream(_stream(seed=99), reuse, 4, seed=5)  # seeds overwritten by the state
    resumed.load_state_dict(state)
    again = [_key(resumed.next()) for _ in range(6)]
    assert again[0] == served[6] and again[3] == served[9]  # the fresh ones
    assert resumed.fresh == 2
    mid = ReplayStream(_stream(), reuse, 4, seed=0)
    mid.next(), mid.next()  # a fresh batch and a replay: the next would be a replay
    mid_state = mid.state_dict()
    mid.load_state_dict(mid_state)
    mid.next()
    assert mid.fresh == 2  # empty buffer: fresh
    for s in (whole, first, resumed, mid):
        s.close()


def test_bad_reuse_settings_are_refused_with_their_names():
    with pytest.raises(ConfigError, match="data_reuse"):
        TrainConfig(data_reuse=0)
    with pytest.raises(ConfigError, match="replay_batches"):
        TrainConfig(data_reuse=2, replay_batches=0)
    with pytest.raises(ValueError, match="reuse"):
        ReplayStream(_stream(), 0, 4, seed=0)


def test_make_stream_wraps_only_when_batches_are_reused(tmp_path):
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)
    with make_stream(small_config(tmp_path), model_cfg, None, CPU, seed=0) as plain:
        assert isinstance(plain, BatchStream)
    cfg = small_config(tmp_path, data_reuse=3, replay_batches=5)
    with make_stream(cfg, model_cfg, None, CPU, seed=0) as replay:
        assert isinstance(replay, ReplayStream) and (replay.reuse, replay.capacity) == (3, 5)


def test_a_run_with_replay_trains_saves_where_it_stands_and_resumes_identically(tmp_path, caplog):
    """4 steps of reuse 2 in one go == 2 steps, a crash, a resume, 2 more: with a window of one
    batch and a stop after a whole cycle the replayed batch is the last fresh one either way,
    so the saved cycle position and the stream's state must carry the run exactly."""
    changes = {"data_reuse": 2, "replay_batches": 1}
    with caplog.at_level("INFO", logger="mhr2_ros.training.train"):
        train(small_config(tmp_path / "whole", **changes))
    assert "batch replay: 2 fresh batches, 2 replayed" in caplog.text  # the log says what the run reused
    split = small_config(tmp_path / "split", eval_every=2, **changes)
    with pytest.raises(Interrupted):
        train(split, eval_hook=_interrupt)
    train(split, resume=tmp_path / "split")
    infos = [json.loads((tmp_path / d / "last.json").read_text()) for d in ("whole", "split")]
    assert infos[0]["stream"]["replay"]["replays"] == infos[1]["stream"]["replay"]["replays"] == 1
    assert infos[0]["stream"] == infos[1]["stream"]
    final_a, final_b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "split"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    assert np.isfinite([float(v.float().abs().sum()) for v in final_a.values()]).all()


class SlowSource:
    """Samples that take `seconds` to load (a data worker rendering a scene); key i is image i."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.samples = _stream().sources[0].source.samples

    def draw(self, rng):
        return int(rng.integers(SAMPLES))

    def load(self, key):
        time.sleep(self.seconds)
        return self.samples[key]


def _slow_stream(seconds: float) -> BatchStream:
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)
    return BatchStream([SourceSpec(SlowSource(seconds))], model_cfg, batch_size=2, seed=0, device=CPU, workers=1)


def _served(replay: ReplayStream, steps: int, pause_s: float) -> list:
    """(batch key, whether it was fresh) of `steps` steps that each take `pause_s`."""
    served = []
    for _ in range(steps):
        before = replay.fresh
        served.append((_key(replay.next()), replay.fresh > before))
        time.sleep(pause_s)  # the step's own time
    return served


def test_adaptive_replay_fills_the_wait_and_takes_every_fresh_batch_in_order():
    """Workers that need 0.25 s a batch and steps that take no time: the steps between two
    fresh batches are replays, at most reuse - 1 in a row; the fresh batches are the stream's,
    in its order, none skipped. Steps slower than the loading replay nothing."""
    reuse = 50
    with _stream() as plain:  # the same seed and plan: the batches the workers load, in order
        order = [_key(plain.next()) for _ in range(20)]
    with ReplayStream(_slow_stream(0.125), reuse, 8, seed=0, adaptive=True) as fast:
        served = _served(fast, 60, pause_s=0.0)
    fresh = [key for key, was_fresh in served if was_fresh]
    assert fresh == order[: len(fresh)] and 2 <= len(fresh) < 60
    assert fast.replayed > 0
    with ReplayStream(_slow_stream(0.01), reuse, 8, seed=0, adaptive=True) as slow:
        served = _served(slow, 6, pause_s=0.5)  # far longer than a batch's loading
    assert [was_fresh for _, was_fresh in served] == [True] * 6 and slow.replayed == 0
    assert [key for key, _ in served] == order[:6]


def test_adaptive_replay_still_caps_the_replays_in_a_row():
    """Loading that never finishes in time (the batch after the first takes longer than the
    steps allow): after reuse - 1 replays the stream is waited for, as in fixed replay."""
    with ReplayStream(_slow_stream(0.2), 3, 4, seed=0, adaptive=True) as replay:
        flags = [was_fresh for _, was_fresh in _served(replay, 7, pause_s=0.0)]
    assert flags[0]
    runs, count = [], 0
    for was_fresh in flags[1:]:
        count = 0 if was_fresh else count + 1
        runs.append(count)
    assert max(runs) == 2  # reuse - 1 replays, then the stream is waited for
