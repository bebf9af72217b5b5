#!/usr/bin/env python3
"""Synthetic data generator throughput: frames/s against people count and resolution.

    python benchmarks/synth.py                       # CPU, and CUDA when available
    python benchmarks/synth.py --device cpu --threads 1 --people 1 5 --sizes 320x240

Each cell renders a clip in memory (posing with the Anny body model, rasterising,
background, ground truth; no disk writes) and reports the median seconds per frame
as frames/s, after warm-up frames. Prints a table of medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from typing import List

import torch

from mhr2_ros.training.synthetic.config import SynthConfig
from mhr2_ros.training.synthetic.generator import SyntheticClip, default_body
from machine import describe  # benchmarks/machine.py (the script's folder is on the path)


def measure(people: int, size, device: str, warmup: int, iters: int, seed: int) -> float:
    """Median seconds per frame of a clip with `people` people at `size` (W, H)."""
    base = SynthConfig()
    cfg = dataclasses.replace(
        base, frames=warmup + iters,
        camera=dataclasses.replace(base.camera, size=size),
        placement=dataclasses.replace(base.placement, people=(people, people)),
        render=dataclasses.replace(base.render, device=device),
    )  # fmt: skip
    clip = SyntheticClip(cfg, seed, body=default_body())
    times: List[float] = []
    for i in range(len(clip)):
        t0 = time.perf_counter()
        clip.frame(i)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20], help="people counts (columns)")
    p.add_argument("--sizes", nargs="+", default=["320x240", "640x480", "1280x720"], help="WxH image sizes (rows)")
    p.add_argument("--device", nargs="+", default=None, help="devices (default: cpu, and cuda when available)")
    p.add_argument("--warmup", type=int, default=2, help="frames rendered before timing")
    p.add_argument("--iters", type=int, default=8, help="timed frames per cell")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    default_body()  # build the body model outside the timings
    print(f"command: {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, python {platform.python_version()}")
    print(f"config: SynthConfig defaults (clip mode, default behaviours and backgrounds), seed {args.seed}, "
          f"{args.warmup} warm-up + {args.iters} timed frames per cell; frames/s = 1 / median frame time")
    for device in devices:
        print(f"\ndevice: {device} ({describe(device)})")
        print(f"{'size':>10} | " + " | ".join(f"{n:>3} people" for n in args.people))
        print("-" * 11 + "+" + "+".join("-" * 12 for _ in args.people))
        for size in sizes:
            cells = [1.0 / measure(n, size, device, args.warmup, args.iters, args.seed) for n in args.people]
            print(f"{size[0]:>4}x{size[1]:<5} | " + " | ".join(f"{fps:7.1f} /s" for fps in cells), flush=True)


if __name__ == "__main__":
    main()
