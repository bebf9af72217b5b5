#!/usr/bin/env python3
"""Training data throughput: batches/s of the training BatchStream against `data_workers`.

    python benchmarks/data_loading.py                          # the GPU recipe's data, workers 0 1 2
    python benchmarks/data_loading.py --workers 0 2 4 8 --batches 20
    python benchmarks/data_loading.py --size 320x240 --people 1 2 --batch-size 4 --batches 4

The stream is the one `mhr2-train` builds for --config (its synthetic sources, model input
size and batch size; --size / --long-side / --people / --batch-size change them): batches of
scenes rendered on the fly and cropped to the network input, as tensors on --device.
With 0 workers the training process renders on --device (as training does); with N
workers, N spawned processes render on their CPU cores, a few batches ahead. Nothing
trains: the batches/s here is the most a training step could consume. Each row reports
1 / the median time of next() over --batches batches, after --warmup batches (the first
starts the workers), and its ratio to 0 workers measured in the same run. --best-to FILE
writes the worker count a training run should use (`training_workers`; gpu_session.sh trains
with it).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from mhr2_ros.body import BodyModel
from mhr2_ros.io.atomic import atomic_write
from mhr2_ros.training.config import load_train_config
from mhr2_ros.training.data import make_stream
from mhr2_ros.training.train import model_config_of
from machine import describe  # benchmarks/machine.py (the script's folder is on the path)

DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "config" / "train_synthetic_tiny.yaml"
# With 0 workers the training process renders between its steps; with N, beside them. A step then
# costs render + compute against max(render, compute): with the compute unknown but up to half of
# the workers' batch time, rendering in the process wins only when it is this many times faster.
IN_PROCESS_MARGIN = 2.0


def train_config(args):
    """--config with the benchmark's changes to its synthetic sources and batch size."""
    cfg = load_train_config(args.config)
    data = []
    for d in cfg.data:
        synth = dict(d.synth)
        if args.size:  # one fixed size instead of the config's random aspects and long sides
            synth["camera"] = {**synth.get("camera", {}), "size": [int(v) for v in args.size.split("x")]}
        if args.long_side:
            synth["camera"] = {**synth.get("camera", {}), "long_side": [args.long_side, args.long_side]}
        if args.people:
            synth["placement"] = {**synth.get("placement", {}), "people": list(args.people)}
        data.append(dataclasses.replace(d, synth=synth))
    return dataclasses.replace(cfg, data=data, batch_size=args.batch_size or cfg.batch_size)


def measure(cfg, model_cfg, body, device: torch.device, workers: int, warmup: int, batches: int) -> float:
    """Median seconds per batch of the stream with `workers` data workers."""
    cfg = dataclasses.replace(cfg, data_workers=workers)
    with make_stream(cfg, model_cfg, body, device, cfg.seed) as stream:
        for _ in range(warmup):
            stream.next()
        times = []
        for _ in range(batches):
            t0 = time.perf_counter()
            stream.next()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def training_workers(rates: dict) -> int:
    """The data_workers of the fastest training stream, from batches/s per worker count (the rows
    that ran): the fastest row with workers, or 0 when it is IN_PROCESS_MARGIN times faster."""
    best = max((w for w in rates if w > 0), key=rates.get, default=0)
    return 0 if best == 0 or rates.get(0, 0.0) >= IN_PROCESS_MARGIN * rates[best] else best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="training config whose data is measured")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="data_workers values (rows)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the config's)")
    p.add_argument("--size", default=None, help="one rendered image size WxH (default: the config's sizes)")
    p.add_argument("--long-side", type=int, default=None, help="rendered longer side, px (default: the config's)")
    p.add_argument("--people", type=int, nargs=2, default=None, help="people per scene: MIN MAX (default: config)")
    p.add_argument("--device", default=None, help="training device (default: cuda when available, else cpu)")
    p.add_argument("--warmup", type=int, default=2, help="batches before timing (the first starts the workers)")
    p.add_argument("--batches", type=int, default=10, help="timed batches per row")
    p.add_argument("--best-to", type=Path, default=None,
                   help="write the worker count a training run should use to this file (training_workers)")
    args = p.parse_args()
    if 0 not in args.workers:
        args.workers = [0, *args.workers]  # the reference of the ratios
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cfg = train_config(args)
    model_cfg = model_config_of(cfg)  # an `init` checkpoint's input size, not its preset's
    body = BodyModel(model_cfg.rig).to(device)  # outside the timings
    print(f"command: {' '.join(sys.argv)}")
    print(f"torch {torch.__version__}, python {platform.python_version()}")
    gpu = f"; training device: {describe(str(device))}" if device.type == "cuda" else ""
    print(f"machine: {describe('cpu')}{gpu}")
    sources = "; ".join(f"{d.kind} (weight {d.weight}) {d.synth}" for d in cfg.data)
    print(f"config: {args.config}: {sources}; batch {cfg.batch_size}, network input {model_cfg.image_size} px, "
          f"device {device}; {args.warmup} warm-up + {args.batches} timed batches per row; "
          "batches/s = 1 / median next() time")  # fmt: skip
    print(f"\n{'workers':>7} | {'batches/s':>9} | {'images/s':>8} | vs 0 workers")
    print("-" * 8 + "+" + "-" * 11 + "+" + "-" * 10 + "+" + "-" * 13)
    rates = {}
    for workers in sorted(set(args.workers)):
        try:  # a row that cannot run (no shared memory for workers, a CUDA renderer that fails) is named
            rates[workers] = rate = 1.0 / measure(cfg, model_cfg, body, device, workers, args.warmup, args.batches)
        except Exception as e:  # any failure: the other rows still tell the training what runs
            print(f"{workers:>7} | failed: {type(e).__name__}: {e}", flush=True)
            continue
        ratio = f"{rate / rates[0]:11.2f}x" if 0 in rates else f"{'n/a':>12}"
        print(f"{workers:>7} | {rate:9.2f} | {rate * cfg.batch_size:8.1f} | {ratio}", flush=True)
    if not rates:
        sys.exit("every row failed: nothing to choose from")
    if args.best_to:
        best = training_workers(rates)
        with atomic_write(args.best_to, "w") as f:
            f.write(f"{best}\n")
        print(f"\ntraining workers: {best} (0 only when {IN_PROCESS_MARGIN:g}x the fastest row with workers)")


if __name__ == "__main__":
    main()
