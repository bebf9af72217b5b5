#!/usr/bin/env python3
"""Cost of one training step with 2D-location matching against 3D-joint matching.

    python benchmarks/matching.py --preset tiny --image-size 256 --batch-size 4 --queries 50 --threads 1
    python benchmarks/matching.py --preset large --batch-size 8 --queries 100 --device cuda

A step is what `mhr2-train` does per batch (`training.train.train_step`): forward,
Hungarian matching, body model, losses, backward, gradient clipping, optimizer step.
The two modes differ only in the matcher (`matcher: {mode: ...}`):

- loc2d    (the paper's): L1 on 2D pelvis locations + focal score term, before any
           body-model call; only the matched queries go through Anny afterwards.
- joints3d (the ablation, as AiOS / SAT-HMR): every query of the batch goes through
           Anny first, to compare 3D joints.

Each mode runs in a fresh subprocess with the same batch (synthetic scenes rendered
from the same seed; the checksum of the images is printed per mode) and the same
randomly initialised network (same torch seed). Times are medians over --steps steps
after --warmup steps.

Peak memory:
- CUDA: torch.cuda.max_memory_allocated over the measured steps (reset after setup,
  so it counts weights, optimizer state, activations and the body model's buffers).
- CPU: the peak resident set size (VmHWM of /proc/self/status, reset through
  /proc/self/clear_refs after setup) minus the resident size just before the first
  step (after glibc's malloc_trim): the extra memory the steps needed on top of the
  model, optimizer and data.
  Allocator caching makes RSS coarse, so compare the two modes, not absolute bytes.

Paper (Multi-HMR 2, "Matching"): 0.35 s against 0.48 s per step and 7 GB against
27 GB of GPU memory for 2D-location against 3D-joint matching.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import hashlib
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import describe  # benchmarks/machine.py (the script's folder is on the path)

MODES = ("loc2d", "joints3d")
PAPER = {"loc2d": (0.35, 7.0), "joints3d": (0.48, 27.0)}  # seconds per step, GB of GPU memory
ASPECT = 4.0 / 3.0  # width / height of the benchmark images and of the network input
STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK_RSS = "5"  # written to clear_refs: reset VmHWM to the current RSS (Linux >= 4.0)


# ----------------------------------------------------------------------------- worker
def _status_kib(field: str) -> int:
    """A memory line of /proc/self/status (VmRSS, VmHWM), in KiB."""
    for line in STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {STATUS}")


def _release_free_heap() -> None:
    """glibc's malloc_trim: return freed heap pages (setup's temporaries) to the system,
    so the steps' allocations show in the RSS instead of reusing them unseen."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the delta may then under-count


class FixedBatch:
    """Stands in for the run's BatchStream: the same batch at every step."""

    def __init__(self, batch: dict) -> None:
        self.batch = batch

    def next(self) -> dict:
        return self.batch


class TimedMatcher:
    """Wraps the run's matcher to time its calls (the joints3d body-model pass included)."""

    def __init__(self, matcher, sync) -> None:
        self.matcher, self.cfg, self.sync, self.times = matcher, matcher.cfg, sync, []

    def __call__(self, outputs, targets):
        self.sync()
        t0 = time.perf_counter()
        out = self.matcher(outputs, targets)
        self.sync()
        self.times.append(time.perf_counter() - t0)
        return out


def train_config(args, mode: str):
    from mhr2_ros.training.config import TrainConfig
    from mhr2_ros.training.matcher import MatcherConfig

    overrides = {"num_queries": args.queries, "train_aspect_ratios": [ASPECT]}
    if args.image_size:
        overrides.update(image_size=args.image_size, nearness_ref_focal=float(args.image_size))
    return TrainConfig(
        model=args.preset, model_overrides=overrides, data=[], steps=10**6, batch_size=args.batch_size,
        device=args.device, seed=args.seed, warmup_steps=1, matcher=MatcherConfig(mode=mode), output="unused",
    )  # fmt: skip


class InOrder:
    """A source handing out its samples in order, so a batch holds each scene once."""

    def __init__(self, samples) -> None:
        self.samples, self.next = samples, 0

    def sample(self, rng):
        sample = self.samples[self.next % len(self.samples)]
        self.next += 1
        return sample


def make_batch(args, run) -> dict:
    """One batch of synthetic scenes with --people people each (fewer where some hide),
    built by the training BatchStream (crop/resize to the input, targets)."""
    from mhr2_ros.training.data import BatchStream, SourceSpec, sample_from_truth
    from mhr2_ros.training.synthetic.config import SynthConfig
    from mhr2_ros.training.synthetic.generator import SyntheticClip

    base = SynthConfig()
    size = run.model_cfg.image_size
    synth = dataclasses.replace(
        base, independent=True, frames=args.batch_size,
        camera=dataclasses.replace(base.camera, size=(size, round(size / ASPECT))),
        placement=dataclasses.replace(base.placement, people=(args.people, args.people), distance_m=(2.0, 10.0)),
    )  # fmt: skip
    samples = [sample_from_truth(f.image, f.truth) for f in SyntheticClip(synth, args.seed)]
    stream = BatchStream([SourceSpec(InOrder(samples))], run.model_cfg, args.batch_size, args.seed, run.device)
    return stream.next()


def worker(args) -> dict:
    """Run --warmup + --steps training steps in this process; returns the measurements."""
    import torch

    from mhr2_ros.training.train import setup, train_step

    if args.threads:
        torch.set_num_threads(args.threads)
    run = setup(train_config(args, args.worker))
    cuda = run.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    batch = make_batch(args, run)
    run.stream = FixedBatch(batch)
    timed = TimedMatcher(run.matcher, sync)
    run.matcher = timed
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _release_free_heap()
        CLEAR_REFS.write_text(RESET_PEAK_RSS)
        before = _status_kib("VmRSS") * 1024
    steps, matched = [], 0
    for _ in range(args.warmup + args.steps):
        sync()
        t0 = time.perf_counter()
        _, _, matched, _ = train_step(run)
        sync()
        steps.append(time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated() if cuda else _status_kib("VmHWM") * 1024
    measured = slice(args.warmup, None)
    return {
        "mode": args.worker, "step_s": statistics.median(steps[measured]),
        "match_s": statistics.median(timed.times[measured]), "peak_bytes": peak, "before_bytes": before,
        "people": matched, "queries": args.batch_size * run.model_cfg.num_queries,
        "checksum": hashlib.sha1(batch["images"].cpu().numpy().tobytes()).hexdigest()[:10],
        "input": list(batch["images"].shape[-2:])[::-1], "model": _describe(run.model_cfg),
        "threads": torch.get_num_threads(),
    }  # fmt: skip


def _describe(cfg) -> str:
    return (f"ViT {cfg.encoder_dim}x{cfg.encoder_depth}, decoder {cfg.decoder_dim}x{cfg.decoder_depth}, "
            f"{cfg.num_queries} queries, {cfg.num_bones} bones")  # fmt: skip


# ----------------------------------------------------------------------------- parent
def run_worker(args, mode: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", mode] + _forwarded(args)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{mode} worker failed ({shlex.join(cmd)}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _forwarded(args) -> list:
    out = []
    for name in ("preset", "image_size", "batch_size", "queries", "people", "steps", "warmup", "device",
                 "threads", "seed"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def _memory(result: dict, cuda: bool) -> int:
    """The bytes the table shows: CUDA peak, or the CPU peak RSS above the baseline."""
    return result["peak_bytes"] if cuda else result["peak_bytes"] - result["before_bytes"]


def print_table(args, results: dict) -> None:
    cuda = args.device.startswith("cuda")
    first = results[MODES[0]]
    print(f"command: {shlex.join(sys.argv)}")
    threads = "" if args.device.startswith("cuda") else f" (the timed processes: {first['threads']} torch threads)"
    print(f"machine: {describe(args.device)}{threads}")
    print(f"config: {args.preset} ({first['model']}), input {first['input'][0]}x{first['input'][1]}, "
          f"batch {args.batch_size}, {args.people} people per image placed ({first['people']} matched per step), "
          f"{'bf16 autocast' if cuda else 'float32'}; median of {args.steps} steps after {args.warmup} warm-up")
    memory = ("torch.cuda.max_memory_allocated over the steps" if cuda else
              "peak RSS during the steps (VmHWM reset after setup) minus RSS before them, fresh process per mode")
    print(f"peak memory: {memory}")
    print("Anny bodies: matched predictions + their targets (both modes), + every query and every target "
          "before matching (joints3d)")
    unit = "GB" if cuda else "MB"
    scale = 1e9 if cuda else 1e6
    print(f"| matching | step (s) | matching (ms) | peak memory ({unit}) | Anny bodies per step | batch checksum |")
    print("|---|---|---|---|---|---|")
    for mode in MODES:
        r = results[mode]
        body = 2 * r["people"] + (r["queries"] + r["people"] if mode == "joints3d" else 0)
        print(f"| {mode} | {r['step_s']:.3f} | {1000 * r['match_s']:.1f} | {_memory(r, cuda) / scale:.1f} | "
              f"{body} | {r['checksum']} |")
    a, b = results["joints3d"], results["loc2d"]
    paper_t, paper_m = PAPER["joints3d"][0] / PAPER["loc2d"][0], PAPER["joints3d"][1] / PAPER["loc2d"][1]
    print(f"| ratio joints3d / loc2d | {a['step_s'] / b['step_s']:.2f} | {a['match_s'] / b['match_s']:.0f} | "
          f"{_memory(a, cuda) / max(_memory(b, cuda), 1):.2f} | | |")
    print(f"| paper ratio (0.48/0.35 s, 27/7 GB) | {paper_t:.2f} | | {paper_m:.2f} | | |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", help="model preset (tiny, small, large) or model config file")
    p.add_argument("--image-size", type=int, default=None, help="network input size (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=4, help="images per step")
    p.add_argument("--queries", type=int, default=100, help="queries per image (paper: 100)")
    p.add_argument("--people", type=int, default=4, help="people placed in each synthetic image")
    p.add_argument("--steps", type=int, default=5, help="measured steps per mode")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured steps first")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0, help="seeds the scenes and the network")
    p.add_argument("--worker", choices=MODES, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    print_table(args, {mode: run_worker(args, mode) for mode in MODES})


if __name__ == "__main__":
    main()
