"""The learning-rate schedule and `time_limit_min` (training/schedule.py): a run given T
minutes plans its last step from its measured rate so that the cosine still decays, stops
when the time is spent, saves its plan, and a resume keeps that plan."""

import json
import math
import time

import pytest
import torch

from mhr2_ros.errors import ConfigError
from mhr2_ros.training.schedule import (FINAL_PLAN_EVERY, MEASURE_STEPS, PLAN_EVERY, REPORT_CHANGE, SAFETY, SKIP_STEPS,
                                        Schedule, TimeBox, set_plan)
from mhr2_ros.training.train import make_optimizer, train
from test_training import small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_schedule_warms_up_then_decays_by_a_cosine_to_its_floor():
    s = Schedule(steps=110, warmup=10, min_ratio=0.05)
    assert s(0) == pytest.approx(0.1) and s(9) == pytest.approx(1.0)  # linear warm-up: (step + 1) / warmup
    assert s(10) == pytest.approx(1.0)
    assert s(60) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way: cos(pi / 2) = 0
    assert s(110) == pytest.approx(0.05) and s(500) == pytest.approx(0.05)
    s.total = 60  # a shorter plan reaches the floor sooner
    assert s(35) == pytest.approx(0.525) and s(60) == pytest.approx(0.05)


def test_a_plan_shorter_than_the_warm_up_still_decays_to_the_floor():
    """A time limit that allows fewer steps than warmup_steps: the plan warms up over half of
    itself and ends at the floor, not part-way up the warm-up ramp. A configured run shorter
    than its warm-up is left as configured."""
    s = Schedule(steps=100_000, warmup=100, min_ratio=0.05)
    s.total = 40
    assert s(0) == pytest.approx(1 / 20) and s(19) == pytest.approx(1.0)  # warm-up over 20 steps
    assert s(30) == pytest.approx(0.05 + 0.95 * 0.5) and s(40) == pytest.approx(0.05)
    assert Schedule(steps=40, warmup=100, min_ratio=0.05)(39) == pytest.approx(0.4)


def test_schedule_state_travels_with_the_scheduler(tmp_path):
    """LambdaLR saves a callable object's fields: the plan is part of a checkpoint. A resume
    with the configured steps keeps it; one with other steps (--steps) plans anew. The
    warm-up and floor are the resumed config's (as with the closure before), not the saved."""
    cfg = small_config(tmp_path, steps=100, warmup_steps=0)
    opt, sched = make_optimizer(torch.nn.Linear(2, 2), cfg)
    sched.lr_lambdas[0].total = 40
    state = json.loads(json.dumps(sched.state_dict()))  # as last.json holds it
    _, fresh = make_optimizer(torch.nn.Linear(2, 2), cfg)
    fresh.load_state_dict(state)
    schedule = fresh.lr_lambdas[0]
    schedule.restored(100, warmup=0, min_ratio=cfg.lr_min_ratio)
    assert (schedule.steps, schedule.total) == (100, 40)
    schedule.restored(100, warmup=5, min_ratio=0.2)
    assert (schedule.warmup, schedule.min_ratio, schedule.total) == (5, 0.2, 40)
    schedule.restored(300, warmup=5, min_ratio=0.2)
    assert (schedule.steps, schedule.total) == (300, 300)


def test_a_resume_follows_the_configured_warm_up_and_floor(tmp_path):
    """train() resumes with the config's lr_min_ratio: a finished run resumed for two more
    steps with another floor ends at that floor (the saved state held the first one)."""
    run = tmp_path / "run"
    train(small_config(run, steps=2, warmup_steps=1, checkpoint_every=10))
    train(small_config(run, steps=4, warmup_steps=1, lr_min_ratio=0.5), resume=run)
    state = json.loads((run / "last.json").read_text())
    assert state["scheduler"]["lr_lambdas"][0]["min_ratio"] == 0.5
    assert [g["lr"] for g in state["param_groups"]] == pytest.approx([1e-3 * 0.5] * 2)


def test_a_new_plan_sets_the_learning_rate_of_the_next_step(tmp_path):
    """The scheduler set the next step's learning rate from the plan before; a plan that ends
    at the current step (the rate dropped) must leave it at the floor, as the run ends there."""
    cfg = small_config(tmp_path, steps=1000, warmup_steps=2)
    opt, sched = make_optimizer(torch.nn.Linear(2, 2), cfg)
    for _ in range(53):
        opt.step()
        sched.step()
    set_plan(sched, 53)
    floor = [cfg.lr * cfg.lr_min_ratio] * 2
    assert [g["lr"] for g in opt.param_groups] == pytest.approx(floor) and sched.get_last_lr() == pytest.approx(floor)
    set_plan(sched, 106)  # a later, longer plan: half-way down the cosine after the warm-up
    half = cfg.lr * (cfg.lr_min_ratio + (1 - cfg.lr_min_ratio) * 0.5 * (1 + math.cos(math.pi * 51 / 104)))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([half] * 2)


class StepClock:
    """A clock that the test moves: seconds = steps taken * seconds_per_step."""

    def __init__(self, seconds_per_step: float) -> None:
        self.seconds_per_step, self.steps = seconds_per_step, 0

    def __call__(self) -> float:
        return self.steps * self.seconds_per_step


def test_timebox_plans_from_the_measured_rate_and_expires():
    clock = StepClock(0.5)  # 2 steps per second, 60 s budget
    box = TimeBox(1.0, clock)
    box.start(step=100)  # a resumed run: the box counts this process's steps only
    plans = {}
    while not box.expired():
        clock.steps += 1
        last = box.plan(100 + clock.steps, configured=10_000)
        if last is not None:
            plans[clock.steps] = last
    first = SKIP_STEPS + MEASURE_STEPS  # the first plan, then every PLAN_EVERY steps after the measure began
    # at the first plan: rate 2 /s, (60 - 0.5 * first) s left
    assert plans[first] == 100 + first + int(2.0 * (60 - 0.5 * first) * SAFETY)
    # then every PLAN_EVERY steps (53), and every FINAL_PLAN_EVERY steps once the plan's end is
    # nearer than PLAN_EVERY: at 53 it is 100 + 53 + int(2 * (60 - 26.5) * 0.97) = 217, and
    # 217 - 168 = 49, so from step 68 (a multiple of 5 after the measure began at 3) on
    assert sorted(plans) == [first, SKIP_STEPS + PLAN_EVERY] + list(range(68, 120, FINAL_PLAN_EVERY))
    assert plans[SKIP_STEPS + PLAN_EVERY] == 217
    assert all(last <= 100 + 120 for last in plans.values())  # never past the time
    assert clock.steps == 120  # expired after 60 s
    capped = TimeBox(1.0, StepClock(0.5))
    capped.start(0)
    assert [capped.plan(s, configured=30) for s in range(1, first + 1)][-1] == 30  # at most the configured steps


def test_only_plans_that_move_the_end_are_worth_the_log():
    """A re-plan is logged at INFO only when it moves the planned end by REPORT_CHANGE of the run or
    more since the last one logged (the twentieth try's log said the plan 41 times, mostly one step
    apart near the end)."""
    assert REPORT_CHANGE == 0.05
    box = TimeBox(1.0, StepClock(0.5))
    box.start(step=100)  # a resumed run: the share is of this process's planned steps
    assert box.worth_reporting(1100)  # the first plan always
    assert not box.worth_reporting(1140)  # 40 of 1040 planned steps: 3.8%
    assert not box.worth_reporting(1061)  # 39 of 961 from the last reported 1100: 4.1%
    assert box.worth_reporting(1049)  # 51 of 949: 5.4%
    assert not box.worth_reporting(1050) and not box.worth_reporting(1048)  # judged against 1049 now
    box.start(step=100)  # a new process says its first plan again
    assert box.worth_reporting(1049)


class SlowingClock:
    """0.5 s per step for the first 60 steps, then `slow` s per step (a machine that gets busy)."""

    def __init__(self, slow: float) -> None:
        self.slow, self.steps, self.seconds = slow, 0, 0.0

    def step(self) -> None:
        self.steps += 1
        self.seconds += 0.5 if self.steps <= 60 else self.slow

    def __call__(self) -> float:
        return self.seconds


def test_a_rate_that_drops_late_still_ends_by_the_plan():
    """The plan at step 53 (rate 2 /s) ends at 117; from step 61 a step takes 0.65 s, so the
    60 s run out at step 107. Planning only every PLAN_EVERY steps, the clock stopped the run
    there at full cosine (the full-suite failure of the 12 s training test on a busy machine);
    re-planned every FINAL_PLAN_EVERY steps near the end, the run ends at its plan in time."""
    clock = SlowingClock(0.65)
    box = TimeBox(1.0, clock)
    box.start(0)
    total = 10_000
    while clock.steps < total and not box.expired():
        clock.step()
        last = box.plan(clock.steps, configured=10_000)
        total = last if last is not None else total
    assert clock.steps == total == 106 and clock() <= 60.0


def test_timebox_refuses_a_non_positive_limit():
    with pytest.raises(ValueError, match="> 0 minutes"):
        TimeBox(0.0)
    for minutes in (-1.0, float("inf"), float("nan")):  # YAML's .inf would crash the first plan (int(inf))
        with pytest.raises(ConfigError, match="time_limit_min must be a number of minutes >= 0"):
            small_config("out", time_limit_min=minutes)


def test_a_time_limited_run_fits_its_schedule_into_the_time(tmp_path):
    """A run of a million configured steps given 12 seconds: it measures its rate, moves the
    schedule's end to the last step that fits, ends there with the learning rate at its
    floor (not cut off at full rate), writes its model and saves the plan; a resume of that
    state keeps the plan (nothing left to do) rather than the million steps."""
    limit_min = 0.2  # 12 s: the plan needs 13 steps first, about 4 s here (1 s per step would still fit)
    cfg = small_config(tmp_path / "run", steps=1_000_000, warmup_steps=2, checkpoint_every=10_000,
                       time_limit_min=limit_min)  # fmt: skip
    began = time.monotonic()
    final = train(cfg)
    took = time.monotonic() - began
    state = json.loads((tmp_path / "run" / "last.json").read_text())
    planned = state["scheduler"]["lr_lambdas"][0]
    assert planned["steps"] == 1_000_000 and SKIP_STEPS + MEASURE_STEPS <= planned["total"] < 1000
    assert state["step"] == planned["total"]  # ended by the plan, not by the clock
    lrs = [g["lr"] for g in state["param_groups"]]
    assert lrs == pytest.approx([cfg.lr * cfg.lr_min_ratio] * 2)  # the cosine reached its floor
    assert took < 60 * limit_min + 30  # setup (the body model) and the final save included
    meta = json.loads(final.with_suffix(".json").read_text())
    assert meta["steps"] == state["step"] and meta["train_config"]["time_limit_min"] == limit_min
    resumed = train(small_config(tmp_path / "run", steps=1_000_000, warmup_steps=2), resume=tmp_path / "run")
    assert json.loads(resumed.with_suffix(".json").read_text())["steps"] == state["step"]


def test_a_time_limit_spent_before_the_first_plan_stops_the_run_there(tmp_path):
    """A limit shorter than one step: the run stops after its first step, whatever the
    (not yet made) plan says, and still writes its model and state."""
    cfg = small_config(tmp_path / "run", steps=40, warmup_steps=2, checkpoint_every=10_000, time_limit_min=1e-4)
    final = train(cfg)
    state = json.loads((tmp_path / "run" / "last.json").read_text())
    assert state["step"] == 1 and json.loads(final.with_suffix(".json").read_text())["steps"] == 1
    assert state["scheduler"]["lr_lambdas"][0]["total"] == 40  # no plan was made
