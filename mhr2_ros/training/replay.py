"""Batch replay for training runs whose data stream is slower than the GPU (`data_reuse`).

Synthetic scenes are rendered on CPU cores. On a lent H200 fourteen rendering workers give
about 2.6 batches of 32 scenes a second while the network's step takes a fraction of that
time (weights/README.md, the eighteenth try): the GPU waits most of the run. `ReplayStream`
trains up to `reuse` steps per rendered batch: the fresh batch once, then batches drawn at
random from the last `capacity` fresh ones, so each scene is seen up to `reuse` times, in
different company, over a window of recent batches (an experience-replay buffer, as in
reinforcement learning, here for a render-bound supervised stream).

Fixed (the default): exactly `reuse - 1` replays follow each fresh batch. The order is then
fixed by the seed: the same steps see the same batches, whatever the speed of the machine.
Adaptive (`adaptive=True`, `replay_adaptive`): a replay is taken only while the next fresh
batch is still loading (`BatchStream.ready()`), at most `reuse - 1` in a row. The GPU then
waits neither for the workers (up to that cap) nor does it replay once a fresh batch is there,
so the run gets all the scenes the workers render and as many steps as the GPU can take; which
steps replay depends on the machine's timing, so such a run is not reproducible bit for bit.

The buffer itself is not saved with the run's state (it holds up to `capacity` batches of
images on the training device): a resumed run refills it from the wrapped stream, so its
replayed batches differ from an uninterrupted run's, while the fresh ones follow the saved
stream as before.
"""

from __future__ import annotations

from collections import deque
from typing import Dict

import numpy as np

REPLAY_SEED_OFFSET = 7919  # the replay draws its own RNG: seed + this, apart from the stream's


class ReplayStream:
    """Wraps a BatchStream: `next()` returns a fresh batch, or a buffered one (fixed: every
    step but each `reuse`-th; adaptive: while the fresh one is not ready, at most `reuse - 1`
    in a row). `capacity` fresh batches are kept (on the device the stream puts them)."""

    def __init__(self, stream, reuse: int, capacity: int, seed: int, adaptive: bool = False) -> None:
        if reuse < 1:
            raise ValueError(f"reuse must be >= 1 (1: every batch is fresh), got {reuse}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 batch, got {capacity}")
        if adaptive and not hasattr(stream, "ready"):
            raise ValueError(f"adaptive replay needs a stream with ready(), got {type(stream).__name__}")
        self.stream, self.reuse, self.capacity, self.adaptive = stream, reuse, capacity, adaptive
        self._buffer: deque = deque(maxlen=capacity)  # the last fresh batches, newest last
        self._replays = 0  # replays since the last fresh batch
        self._replay_rng = np.random.default_rng(seed + REPLAY_SEED_OFFSET)
        self.fresh = 0  # fresh batches returned by this object (the training log's count)
        self.replayed = 0  # replayed batches returned by this object

    def next(self) -> Dict:
        if self._wants_fresh():
            batch = self.stream.next()
            self._buffer.append(batch)
            self._replays = 0
            self.fresh += 1
        else:
            batch = self._buffer[int(self._replay_rng.integers(len(self._buffer)))]
            self._replays += 1
            self.replayed += 1
        return batch

    def _wants_fresh(self) -> bool:
        if not self._buffer or self._replays >= self.reuse - 1:
            return True
        return self.adaptive and self.stream.ready()

    @property
    def rng(self) -> np.random.Generator:
        return self.stream.rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:
        self.stream.rng = rng

    def state_dict(self) -> Dict:
        """The wrapped stream's state, plus where the replay stands (its buffer is not kept)."""
        return {**self.stream.state_dict(), "replay": {"replays": self._replays,
                                                       "rng": self._replay_rng.bit_generator.state}}  # fmt: skip

    def load_state_dict(self, state: Dict) -> None:
        self.stream.load_state_dict(state)
        self._buffer.clear()
        replay = state.get("replay")  # absent: the state of a run saved without replay
        if replay is not None:
            self._replays = int(replay["replays"])
            self._replay_rng.bit_generator.state = replay["rng"]

    def close(self) -> None:
        self._buffer.clear()
        self.stream.close()

    def __enter__(self) -> "ReplayStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
