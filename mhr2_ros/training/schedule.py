"""The learning-rate schedule, and fitting a run into a wall-clock budget.

`Schedule` is the warm-up + cosine factor of `make_optimizer` over `total` steps. It is
a callable object rather than a closure so that `LambdaLR.state_dict()` saves its fields
with the checkpoint: a resumed run continues the same curve, also one that a time limit
had shortened.

`TimeBox` serves `TrainConfig.time_limit_min`: "this run has T minutes, make the most of
them" (a lent GPU for a few minutes, a CI smoke run, a fixed compute budget in an
ablation). Stopping at T would leave the learning rate high and the model noisy; instead,
once the step rate is measured the schedule's end moves to the last step that fits, so
the cosine still decays to its floor when the time is up. The rate is measured again as
the run goes (checkpoints and evaluations included), more often near the planned end, where a
rate that drops would otherwise meet the clock first; the loop stops when the time is spent
whatever the plan says.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Optional

log = logging.getLogger(__name__)

SKIP_STEPS = 3  # first steps of a process left untimed: allocation, cuDNN autotuning, warm caches
MEASURE_STEPS = 10  # steps timed before the first plan
PLAN_EVERY = 50  # steps between later plans (each uses the mean rate since the measure began)
FINAL_PLAN_EVERY = 5  # steps between plans once the planned end is nearer than PLAN_EVERY: a rate that
# drops late (a busy machine) would otherwise hit the clock before the plan, at full learning rate
SAFETY = 0.97  # plan for this share of the time left: the final save and rate jitter
# a new plan is worth the log (INFO) when it moves the end by this share of the planned run or more
# since the last one reported; the small moves of the re-plans near the end (every FINAL_PLAN_EVERY
# steps) go to DEBUG, so that a GPU run's log says the plan a few times rather than forty
REPORT_CHANGE = 0.05


class Schedule:
    """Learning-rate factor: linear warm-up over `warmup` steps, then a cosine from 1 to
    `min_ratio` at step `total`. `steps` is the configured length, `total` the planned one
    (shorter under a time limit). A plan shorter than the configured length warms up over
    at most half of itself, so that its cosine still reaches the floor when the warm-up is
    longer than the time allows."""

    def __init__(self, steps: int, warmup: int, min_ratio: float) -> None:
        self.steps = int(steps)
        self.total = int(steps)
        self.warmup = int(warmup)
        self.min_ratio = float(min_ratio)

    def __call__(self, step: int) -> float:
        warmup = self.warmup if self.total >= self.steps else min(self.warmup, self.total // 2)
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, self.total - warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    def restored(self, steps: int, warmup: int, min_ratio: float) -> None:
        """After loading a saved state: the configured warm-up and floor apply (the state
        holds the ones it was saved with); a run resumed with another step count (--steps)
        plans over the new count, with the same one it keeps the saved plan."""
        self.warmup, self.min_ratio = int(warmup), float(min_ratio)
        if self.steps != steps:
            log.info("steps changed from %d to %d since the saved state: the schedule now spans %d", self.steps,
                     steps, steps)  # fmt: skip
            self.steps = self.total = int(steps)


def set_plan(scheduler, total: int) -> None:
    """Ends the schedule of a LambdaLR over `Schedule`s at `total` and sets the learning rates
    of the step about to be taken from it: `scheduler.step()` set them from the plan before,
    so a run whose plan ends at the current step would otherwise end above its floor."""
    for schedule in scheduler.lr_lambdas:
        schedule.total = int(total)
    lrs = [base * f(scheduler.last_epoch) for base, f in zip(scheduler.base_lrs, scheduler.lr_lambdas)]
    for group, lr in zip(scheduler.optimizer.param_groups, lrs):
        group["lr"] = lr
    scheduler._last_lr = lrs  # what get_last_lr() reports (LambdaLR keeps it there)


class TimeBox:
    """Plans a run's last step from its measured step rate so that it ends `minutes` after
    `start()`. Call `plan(step)` after every step: it returns the new last step when it
    planned (else None); `expired()` says when to stop regardless."""

    def __init__(self, minutes: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not minutes > 0:
            raise ValueError(f"time limit must be > 0 minutes, got {minutes}")
        self.seconds = 60.0 * minutes
        self.clock = clock
        self.t0 = self.t_measure = 0.0
        self.first_step = self.measure_step = 0
        self.last: Optional[int] = None  # the latest plan's last step
        self.reported: Optional[int] = None  # the last step of the latest plan `worth_reporting`

    def start(self, step: int) -> None:
        self.t0 = self.clock()
        self.first_step = step
        self.measure_step = -1
        self.last = self.reported = None

    def expired(self) -> bool:
        return self.clock() - self.t0 >= self.seconds

    def plan(self, step: int, configured: int) -> Optional[int]:
        """The last step that fits (at most `configured`, at least `step`), or None when
        this step is not a planning step."""
        done = step - self.first_step
        if done == SKIP_STEPS:
            self.t_measure, self.measure_step = self.clock(), step
            return None
        measured = step - self.measure_step
        if self.measure_step < 0 or measured <= 0 or not self._plans_at(step, measured):
            return None
        now = self.clock()
        rate = measured / max(now - self.t_measure, 1e-9)  # steps per second
        left = self.seconds - (now - self.t0)
        self.last = max(step, min(configured, step + int(rate * left * SAFETY)))
        return self.last

    def worth_reporting(self, last: int) -> bool:
        """True for this process's first plan and for one that moves the end by REPORT_CHANGE of the
        planned run (from `start`) or more since the last plan it said True for."""
        if self.reported is not None and abs(last - self.reported) < REPORT_CHANGE * max(last - self.first_step, 1):
            return False
        self.reported = last
        return True

    def _plans_at(self, step: int, measured: int) -> bool:
        near_end = self.last is not None and self.last - step < PLAN_EVERY
        return measured == MEASURE_STEPS or measured % (FINAL_PLAN_EVERY if near_end else PLAN_EVERY) == 0
