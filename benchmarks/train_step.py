#!/usr/bin/env python3
"""Where a training step's time goes: its phases under torch.profiler, on one fixed batch.

    python benchmarks/train_step.py                                   # the GPU recipe, here on the CPU
    python benchmarks/train_step.py --device cuda --batch-size 32     # on a GPU (benchmarks/gpu_session.sh)

The step is `mhr2-train`'s (`training.train.train_step`) on the network --config trains (its
init weights, loss, matcher, token supervision, bf16 on CUDA), over one batch of its data
rendered once before timing (the data stream is benchmarks/data_loading.py's subject). The
phases are the named ranges of training/step.py (PHASES): forward, matching (Hungarian
matching and gathering the matched pairs), body (the Anny body model of the matched people's
predictions and targets), losses, backward, optimizer (clipping and AdamW). Per phase: the
host's milliseconds per step and, on CUDA, the span of the phase on the GPU's timeline (its
first kernel to its last, the gaps while the GPU waits for the host included; the backward's
kernels are launched by autograd's own thread and fall outside the ranges), then the GPU's
busy milliseconds (every kernel) per step; then the wall time of a whole step (synchronised),
median of --steps after --warmup, outside the profiler. Where the busy time is far below the
step's wall time, the step is bound by Python and kernel launches, not by the GPU's arithmetic.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from mhr2_ros.training.config import load_train_config
from mhr2_ros.training.step import PHASES
from mhr2_ros.training.train import setup, train_step
from machine import describe  # benchmarks/machine.py (the script's folder is on the path)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "train_gpu_root.yaml"
US_PER_MS = 1000.0


class FixedBatch:
    """A stream that returns the same batch every step (what train_step draws from)."""

    def __init__(self, batch) -> None:
        self.batch = batch

    def next(self):
        return self.batch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_times(run, steps: int) -> list:
    """Wall seconds of `steps` synchronised training steps."""
    times = []
    for _ in range(steps):
        _sync(run.device)
        start = time.perf_counter()
        train_step(run)
        _sync(run.device)
        times.append(time.perf_counter() - start)
    return times


def phase_table(run, steps: int) -> str:
    """Markdown: per phase, host milliseconds per step and, on CUDA, the span of its kernels on the
    GPU's timeline (first to last, idle gaps included), under the profiler; then the GPU's busy
    time (all kernels) per step."""
    cuda = run.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            train_step(run)
        _sync(run.device)
    host, span = dict.fromkeys(PHASES.values(), 0.0), dict.fromkeys(PHASES.values(), 0.0)
    busy = 0.0  # microseconds of kernels, all phases
    for e in prof.events():
        if e.name in host:  # a phase's range: on the host, and (CUDA) its mirror on the GPU's timeline
            (host if e.device_type == DeviceType.CPU else span)[e.name] += e.time_range.elapsed_us()
        elif e.device_type != DeviceType.CPU:
            busy += e.time_range.elapsed_us()
    lines = ["| phase | host ms / step | GPU span ms / step |", "|---|---|---|"]
    for name, key in PHASES.items():
        gpu = f"{span[key] / US_PER_MS / steps:.1f}" if cuda else "-"
        lines.append(f"| {name} | {host[key] / US_PER_MS / steps:.1f} | {gpu} |")
    if cuda:  # the autograd engine launches the backward's kernels from its own thread: outside every range
        lines.append(f"| all kernels (GPU busy) | | {busy / US_PER_MS / steps:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config (default: %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    ap.add_argument("--batch-size", type=int, default=4, help="images per step (default: 4; the recipe's on a GPU)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps, and profiled steps (default: 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default: 2)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        ap.error("--steps and --batch-size must be >= 1 and --warmup >= 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_train_config(args.config)
    cfg = dataclasses.replace(cfg, device=args.device, batch_size=args.batch_size, data_workers=0, data_reuse=1,
                              output=str(Path(tempfile.gettempdir()) / "mhr2_train_step_benchmark"))  # fmt: skip
    run = setup(cfg)
    batch = run.stream.next()
    run.stream.close()
    run.stream = FixedBatch(batch)
    people = sum(len(t["loc"]) for t in batch["targets"])
    step_times(run, args.warmup)
    wall = statistics.median(step_times(run, args.steps))
    table = phase_table(run, args.steps)
    print(f"command: benchmarks/train_step.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"machine: {describe(args.device)}")
    print(f"config: {args.config.name}: {cfg.model} (init {cfg.init}), batch {args.batch_size} "
          f"({people} people), bf16 {cfg.bf16 and run.device.type == 'cuda'}, token supervision "
          f"{cfg.token_supervision}, matcher {cfg.matcher.mode}; median of {args.steps} steps after {args.warmup}")
    print(table)
    print(f"whole step (synchronised, outside the profiler): {wall * US_PER_MS:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
