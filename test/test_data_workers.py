"""`data_workers`: spawned processes load the training samples ahead (training/loader.py).

Real parts throughout: the synthetic generator with the Anny body model (rebuilt in each
worker), a clip written by the project's writer, spawned worker processes. Each pool
start costs a few seconds (importing torch and mhr2_ros; a body model where a synthetic
source needs one), so images are tiny and batches few.
"""

import dataclasses
import json
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from mhr2_ros.config import load_model_config
from mhr2_ros.errors import ConfigError, InputError
from mhr2_ros.training.config import DataSourceConfig, TrainConfig
from mhr2_ros.training.data import BatchStream, InMemorySource, SourceSpec, make_stream, sample_from_truth
from mhr2_ros.training.loader import PickledSources, SourcesFromConfig, WorkerPool
from mhr2_ros.training.synthetic.config import config_from_dict
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.train import train
from test_training import SMALL_MODEL, SMALL_SCENES, blank_sample

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the workers render with one thread too

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def model_cfg():
    return dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)


@pytest.fixture(scope="module")
def clip(make_clip):
    return make_clip("workers_clip", frames=3, people=1, size=(64, 48), seed=4)


def config(data, **changes) -> TrainConfig:
    fields = {"model_overrides": dict(SMALL_MODEL), "batch_size": 3, "device": "cpu", "output": "unused"}
    return TrainConfig(data=data, **{**fields, **changes})


def assert_same_batches(expected, got) -> None:
    assert len(expected) == len(got)
    for a, b in zip(expected, got):
        assert torch.equal(a["images"], b["images"])
        for ta, tb in zip(a["targets"], b["targets"], strict=True):
            assert ta.keys() == tb.keys()
            for key, value in ta.items():
                assert torch.equal(value, tb[key]) if torch.is_tensor(value) else value == tb[key], key


def no_children_after(close) -> None:
    children = multiprocessing.active_children()
    assert children, "the workers should be running"
    close()
    assert not any(c.is_alive() for c in children) and not multiprocessing.active_children()


def test_workers_give_the_batches_of_the_training_process(body_model, model_cfg, clip):
    """Two sources (synthetic, rendered on the CPU either way, and a clip on disk), batches of 3:
    the same tensors bit for bit, and the same saved states, with 0 and 2 workers."""
    cfg = config([DataSourceConfig(synth=SMALL_SCENES, seed=1000), DataSourceConfig("clips", paths=[str(clip)])],
                 data_workers=2)  # fmt: skip
    with make_stream(dataclasses.replace(cfg, data_workers=0), model_cfg, body_model, CPU, seed=5) as plain:
        expected = [plain.next() for _ in range(3)]
        plain_state = plain.state_dict()
    stream = make_stream(cfg, model_cfg, body_model, CPU, seed=5)
    got = [stream.next() for _ in range(3)]
    assert stream.state_dict() == plain_state  # the state saved with a checkpoint does not depend on workers
    no_children_after(stream.close)
    assert_same_batches(expected, got)
    assert {len(t["loc"]) for b in got for t in b["targets"]} != {0}  # people, not empty frames
    assert len({b["images"].shape for b in got}) > 1  # the aspect ratio is drawn per batch


def test_a_stream_with_workers_resumes_exactly(body_model):
    """state_dict after k batches (more are prefetched) continues with batch k + 1, in
    the same stream (its prefetched batches dropped) and in a fresh one; the state is the
    JSON that last.json stores."""
    synth = config_from_dict({**SMALL_SCENES, "independent": True, "frames": 5})
    samples = [sample_from_truth(f.image, f.truth) for f in SyntheticClip(synth, 7, body_model)]
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)

    def stream(workers):
        return BatchStream([SourceSpec(InMemorySource(samples))], model_cfg, 2, seed=3, device=CPU, workers=workers)

    with stream(2) as original:
        first = [original.next() for _ in range(2)]
        state = json.loads(json.dumps(original.state_dict()))
        continuation = [original.next() for _ in range(3)]
        original.load_state_dict(state)
        assert_same_batches(continuation, [original.next() for _ in range(3)])
    with stream(0) as resumed:
        resumed.load_state_dict(state)
        assert_same_batches(continuation, [resumed.next() for _ in range(3)])
    with stream(0) as whole:
        assert_same_batches(first + continuation, [whole.next() for _ in range(5)])


def test_a_corrupt_clip_frame_in_a_worker_names_its_file(model_cfg, clip, tmp_path):
    broken = shutil.copytree(clip, tmp_path / "broken")
    for png in (broken / "rgb").iterdir():
        png.write_bytes(b"not a png")
    cfg = config([DataSourceConfig("clips", paths=[str(broken)])], data_workers=1)
    stream = make_stream(cfg, model_cfg, None, CPU, seed=0)
    with pytest.raises(InputError, match=r"broken/rgb/\d+\.png: cannot be decoded"):
        stream.next()
    no_children_after(stream.close)


def test_a_worker_that_cannot_build_its_sources_says_why(model_cfg):
    """Workers build their synthetic sources themselves: a body model that cannot be built
    there is named, not a bare 'process pool broken'."""
    data = [DataSourceConfig(synth=SMALL_SCENES, seed=1000)]
    plan = InMemorySource([object()])  # draws keys in the training process; never loads
    stream = BatchStream([SourceSpec(plan)], model_cfg, 1, 0, CPU, workers=1,
                         recipe=SourcesFromConfig(data, rig="no_such_rig"))  # fmt: skip
    with pytest.raises(ConfigError, match="cannot build the Anny body model with rig 'no_such_rig'"):
        stream.next()
    no_children_after(stream.close)


def test_clip_sources_reach_the_workers_built(model_cfg, clip, tmp_path):
    """Their index (like a COCO source's JSON) is read once, in the training process: a clip
    whose clip.json is gone after that still loads in the workers (they did not read it)."""
    moved = shutil.copytree(clip, tmp_path / "moved")
    cfg = config([DataSourceConfig("clips", paths=[str(moved)])], data_workers=1)
    with make_stream(cfg, model_cfg, None, CPU, seed=0) as stream:
        (moved / "clip.json").unlink()
        assert stream.next()["images"].shape[0] == cfg.batch_size


class Interrupted(Exception):
    pass


def _interrupt(model, model_cfg):
    raise Interrupted


def test_training_ends_its_workers_when_it_fails(tmp_path):
    cfg = config([DataSourceConfig(synth=SMALL_SCENES, seed=1000)], data_workers=1, steps=3, eval_every=1,
                 output=str(tmp_path), checkpoint_every=10, warmup_steps=1)  # fmt: skip
    with pytest.raises(Interrupted):
        train(cfg, eval_hook=_interrupt)
    assert not multiprocessing.active_children()


def test_data_workers_are_counted_from_zero():
    with pytest.raises(ConfigError, match="data_workers must be >= 0.*got -1"):
        config([DataSourceConfig()], data_workers=-1)
    assert config([DataSourceConfig()]).data_workers == 0
    with pytest.raises(ValueError, match="draw.*load.*Plain"):

        class Plain:
            def sample(self, rng):
                raise AssertionError

        BatchStream([SourceSpec(Plain())], load_model_config("tiny"), 2, 0, CPU, workers=1)


def test_workers_leave_sigint_and_sigterm_to_the_training_process():
    """Ctrl-C reaches the whole process group and a scheduler's SIGTERM every process of the
    job: a worker must outlive both (the training process finishes its step and saves), not
    break the pool under it."""
    sample = blank_sample(64, 48)
    pool = WorkerPool(1, PickledSources([InMemorySource([sample])]), 64, 16)
    try:
        assert pool.submit(0, 0, 4 / 3).result().image.shape == (48, 64, 3)  # the worker is up
        (worker,) = multiprocessing.active_children()
        for signum in (signal.SIGINT, signal.SIGTERM):
            os.kill(worker.pid, signum)
        time.sleep(1.0)
        assert worker.is_alive()
        assert pool.submit(0, 0, 4 / 3).result().image.shape == (48, 64, 3)
    finally:
        pool.close()


def test_a_pool_whose_worker_was_killed_says_so_on_the_next_submit():
    sample = blank_sample(64, 48)
    pool = WorkerPool(1, PickledSources([InMemorySource([sample])]), 64, 16)
    try:
        pool.submit(0, 0, 4 / 3).result()
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)  # the out-of-memory killer, say
        worker.join(10)
        deadline = time.monotonic() + 10  # until the pool's manager thread has noticed
        with pytest.raises(RuntimeError, match="data worker process died.*try fewer data_workers"):
            while time.monotonic() < deadline:
                pool.submit(0, 0, 4 / 3)
                time.sleep(0.1)
    finally:
        pool.close()


class TwoPartError(Exception):
    """An exception that pickle cannot rebuild (its __init__ takes two arguments)."""

    def __init__(self, what, where) -> None:
        super().__init__(f"{what} in {where}")


class FailingSource:
    def draw(self, rng):
        return 0

    def load(self, key):
        raise TwoPartError("bad frame", "clip_7")


def test_an_error_that_cannot_travel_back_keeps_its_type_and_message(model_cfg, caplog):
    """A worker's exception goes back pickled; one that cannot be rebuilt arrives as a
    RuntimeError naming its type and message, not as a pickling error hiding both. The
    training log names the sample and the source (index and type) that failed."""
    with BatchStream([SourceSpec(FailingSource())], model_cfg, 1, 0, CPU, workers=1) as stream:
        with pytest.raises(RuntimeError, match="TwoPartError: bad frame in clip_7"):
            stream.next()
    failed = "data worker failed loading sample 0 of data source 0 (FailingSource)"
    assert ("mhr2_ros.training.data", logging.ERROR, failed) in caplog.record_tuples


POOL_SCRIPT = """
import sys
import numpy as np
from mhr2_ros.training.data import InMemorySource
from mhr2_ros.training.loader import PickledSources, WorkerPool
from mhr2_ros.training.sample import Sample

sample = Sample(image=np.zeros((48, 64, 3), np.uint8), K=np.eye(3, dtype=np.float32), loc=np.zeros((0, 2)),
                keypoints_2d=np.zeros((0, 2, 2)), keypoints_vis=np.zeros((0, 2)))
pool = WorkerPool(2, PickledSources([InMemorySource([sample])]), 64, 16)
[f.result() for f in [pool.submit(0, 0, 4 / 3) for _ in range(8)]]
print("ready", flush=True)
sys.stdin.read()  # until the test kills this process
"""


def children_of(pid: int) -> list:
    """Live processes whose parent is `pid` (Linux /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # ended while listed
            continue
        if int(fields.get("PPid", "0")) == pid and not fields.get("State", "").startswith("Z"):
            found.append(int(status.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_workers_end_with_a_training_process_killed_outright():
    """SIGKILL or the out-of-memory killer leave no shutdown to the training process; its
    workers ignore SIGTERM / SIGINT (the graceful stop is the parent's), so they must notice
    the parent's death themselves rather than linger as orphans."""
    proc = subprocess.Popen([sys.executable, "-c", POOL_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    try:
        assert proc.stdout.readline().strip() == "ready"
        workers = children_of(proc.pid)
        assert len(workers) >= 2  # the two workers (and multiprocessing's resource tracker)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and _alive(p) for p in workers):
        time.sleep(0.2)
    assert not [p for p in workers if Path(f"/proc/{p}").exists() and _alive(p)]


def _alive(pid: int) -> bool:
    try:
        return not (Path(f"/proc/{pid}/status").read_text().split("State:\t", 1)[1].startswith("Z"))
    except (OSError, IndexError):
        return False


def test_workers_are_born_ignoring_ctrl_c():
    """A Ctrl-C in the first seconds of a run reaches workers still importing, before their
    initializer could ignore it: they must ignore it from birth, else the run fails with
    'a data worker process died'."""
    sample = blank_sample(64, 48)
    pool = WorkerPool(2, PickledSources([InMemorySource([sample])]), 64, 16)
    try:
        future = pool.submit(0, 0, 4 / 3)  # spawns the workers; they now import torch for seconds
        workers = multiprocessing.active_children()
        assert len(workers) >= 2  # every worker at once (and the resource tracker is not a child here)
        for worker in workers:
            os.kill(worker.pid, signal.SIGINT)
        assert future.result(timeout=120).image.shape == (48, 64, 3)
        assert all(w.is_alive() for w in workers)
    finally:
        pool.close()
