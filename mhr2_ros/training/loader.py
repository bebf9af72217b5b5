"""Worker processes that load training samples ahead of the network (`data_workers`).

`BatchStream` (training/data.py) draws every batch's plan in the training process
(aspect ratio, then per sample the source and its key, from its one RNG) and hands the
samples to a `WorkerPool`: each worker loads its sample (`source.load(key)`: renders a
synthetic scene on its CPU, or reads a clip frame) and crops it (`crop_resize`); the
training process only turns the returned numpy Samples into tensors. Since a sample
depends on its key alone, the batches are those of `data_workers: 0` whichever worker
loads which sample.

The workers are spawned, not forked: the training process may hold CUDA (a forked child
of a CUDA process fails), and a spawned child starts clean on every platform. A spawned
worker builds its sources once, in the pool's initializer, from a picklable recipe:
`SourcesFromConfig` (the training config's `data` list and the body rig: a synthetic
source needs a body model, rebuilt on the worker's CPU from anny's disk cache in a few
seconds) or `PickledSources` (sources that pickle cheaply, e.g. `InMemorySource`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import signal
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from mhr2_ros.training.sample import Sample, crop_resize

log = logging.getLogger(__name__)

WORKER_THREADS = 1  # torch threads per worker: N workers share the cores instead of each taking all


@dataclass
class PickledSources:
    """Recipe: the sources themselves, pickled into every worker."""

    sources: Sequence[object]

    def __call__(self) -> List[object]:
        return list(self.sources)


@dataclass
class SourcesFromConfig:
    """Recipe: the sources of a TrainConfig's `data` list (`data.build_sources`). Entries of
    `built` that are not None are the training process's own sources, pickled into each
    worker: clips and COCO sources, whose index (a COCO JSON of hundreds of MB, the frames of
    thousands of clips) is then read once rather than once per worker. Synthetic sources
    (None in `built`, or every source when `built` is empty) are built in the worker and
    render on its CPU unless their synth config names a render.device; they need a body
    model of `rig`, built only when there is one."""

    data: list  # DataSourceConfig entries, in the order of the training process's sources
    rig: str  # ModelConfig.rig
    built: list = field(default_factory=list)  # per entry of `data`: its built source, or None

    def __call__(self) -> List[object]:
        from types import SimpleNamespace

        from mhr2_ros.training.data import build_sources

        built = self.built or [None] * len(self.data)
        rebuild = [d for d, source in zip(self.data, built) if source is None]
        body = None
        if any(d.kind == "synthetic" for d in rebuild):
            from mhr2_ros.body import BodyModel

            body = BodyModel(self.rig)
        rebuilt = iter(spec.source for spec in build_sources(SimpleNamespace(data=rebuild), body, device=None))
        return [source if source is not None else next(rebuilt) for source in built]


# Per worker process, not per import: a spawned worker runs `_init_worker` once, before
# any task, and its tasks (plain functions: what a process pool can call) read the sources
# from here. The training process never sets them.
_sources: Optional[List[object]] = None
_init_error: Optional[BaseException] = None


def _init_worker(recipe: Callable[[], List[object]]) -> None:
    global _sources, _init_error
    # Ctrl-C reaches the whole process group, and a scheduler's SIGTERM every process of the
    # job: the training process alone handles them (it saves its state after the step in
    # progress, training/stop.py) and shuts the pool down; a worker dying of one would break
    # the pool before that step is done. WorkerPool._start already gives them ignored from
    # birth when it runs on the main thread; this covers a pool started elsewhere. A worker
    # outlives a parent killed outright (SIGKILL, out of memory) unless it watches it: it then
    # ends with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _end_with_parent()
    import torch

    torch.set_num_threads(WORKER_THREADS)
    try:
        _sources = recipe()
    except Exception as exc:  # kept for the first task: a failed initializer only says "broken pool"
        _init_error = _portable(exc)


def _end_with_parent() -> None:
    parent = multiprocessing.parent_process()  # None outside a multiprocessing child
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True, name="parent-watch").start()


def _started() -> None:
    """A worker's first task: none (WorkerPool._start spawns every worker with it)."""


def _load(index: int, key, aspect: float, image_size: int, patch: int) -> Sample:
    """A worker's task: sample `key` of source `index`, cropped to `aspect`."""
    if _init_error is not None:
        raise _init_error
    try:
        return crop_resize(_sources[index].load(key), aspect, image_size, patch)
    except Exception as exc:
        raise _portable(exc)


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives the pickling back to the training process (its type and message
    then reach the caller), else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")


class WorkerPool:
    """`workers` spawned processes loading samples; started on the first `submit`."""

    def __init__(self, workers: int, recipe: Callable[[], List[object]], image_size: int, patch: int) -> None:
        if workers < 1:
            raise ValueError(f"a WorkerPool needs workers >= 1, got {workers}")
        self.workers, self.recipe, self.image_size, self.patch = workers, recipe, image_size, patch
        self._pool: Optional[ProcessPoolExecutor] = None

    def submit(self, index: int, key, aspect: float) -> Future:
        if self._pool is None:
            self._pool = self._start()
        try:
            return self._pool.submit(_load, index, key, aspect, self.image_size, self.patch)
        except BrokenProcessPool as exc:  # a worker died while an earlier batch was loading
            raise RuntimeError(f"a data worker process died (killed, or out of memory?); the {self.workers} "
                               "workers cannot load more: try fewer data_workers, or 0") from exc  # fmt: skip

    def _start(self) -> ProcessPoolExecutor:
        """Spawns every worker now, with SIGINT / SIGTERM ignored here meanwhile: a spawned
        process keeps an ignored signal from its birth, so a Ctrl-C during the seconds a worker
        spends importing, before `_init_worker` runs, does not kill it (the run then failed
        with "a data worker process died"). A signal to this process in those milliseconds is
        lost; one that follows works as usual."""
        log.info("starting %d data workers", self.workers)
        main = threading.current_thread() is threading.main_thread()  # only it may set handlers
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)} if main else {}
        try:
            pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.recipe,),
            )  # fmt: skip
            for _ in range(self.workers):  # a spawn pool starts a process per task while none is idle
                pool.submit(_started)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        return pool

    def close(self) -> None:
        """Cancel what has not started, wait for the running tasks, end the workers."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
