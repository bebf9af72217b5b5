"""Stopping a training run on SIGINT / SIGTERM without losing its steps.

Ctrl-C, or the SIGTERM that a cluster scheduler sends before it kills a job at the end of
its time, used to end the run where it stood: everything since the last `checkpoint_every`
save was lost. Under `GracefulStop` the first signal only sets a flag; the loop finishes
the step in progress, saves the resumable state and stops (`TrainingStopped`), so
`--resume` continues from that very step. A second signal stops at once, as before.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Dict, Optional

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingStopped(Exception):
    """A signal stopped the run after `step`; its state is saved in `output`."""

    def __init__(self, signum: int, step: int, output: str) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; the state is saved in "
                         f"{output}: continue with --resume {output}")  # fmt: skip
        self.signum, self.step, self.output = signum, step, output


class StopNow(KeyboardInterrupt):
    """The second signal: stop at once. A KeyboardInterrupt (what Ctrl-C twice has always
    raised) that remembers which signal, so the exit code can say it (128 + signum)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulStop:
    """Context manager: while inside, SIGINT / SIGTERM request a stop (`requested`) instead
    of interrupting; a second one raises StopNow (a KeyboardInterrupt). Outside the main thread
    (where Python cannot install handlers) it changes nothing."""

    def __init__(self) -> None:
        self.signum = 0
        self._previous: Dict[int, object] = {}

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def _handle(self, signum: int, frame) -> None:
        if self.signum:
            raise StopNow(signum)
        self.signum = signum
        log.warning("%s: the run stops after this step and saves its state (send it again to stop at once)",
                    signal.Signals(signum).name)  # fmt: skip

    def requested(self, device: Optional["torch.device"] = None) -> int:
        """The signal number that asked for a stop, else 0. Under torchrun every rank gets
        the largest over the ranks, so all stop (and save together) at the same step."""
        import torch  # here, not at import: the mhr2-train command line loads this module torch-free

        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return self.signum
        flag = torch.tensor([self.signum], device=device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag.item())
