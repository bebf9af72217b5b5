#!/usr/bin/env python3
"""Each training loss term of one or more checkpoints on one or more data folders: a diagnosis.

    python benchmarks/loss_terms.py --data seen=data/train_f10000,data/train_f11000 \\
        --data new=data/train_g13000 --weights weights/mhr2_tiny.safetensors --weights RUN/model.safetensors

A training log shows one model's loss on the batches it is trained on, each drawn once, while
its learning rate moves. This script asks two other questions, on batches no optimiser touches:

- is there a gap between the scenes a model was trained on and new ones (memorised scenes)?
- which terms did a fine-tune move (a term it weighted up, one it was meant to leave alone)?

Every (checkpoint, data) cell draws the same batches (`--seed`): the data set's stream is
seeded alike for every checkpoint, so two checkpoints differ by their weights alone. The network
runs in eval mode without gradients; the matcher, the token supervision and the loss settings
come from `--config` (a training config, default: the recipe of the shipped model's last stage).
The terms are unweighted, as `Criterion` returns them; "total" is weighted by `--config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from machine import describe  # benchmarks/machine.py (the script's folder is on the path)
from mhr2_ros.checkpoint import DEFAULT_WEIGHTS
from mhr2_ros.config import CONFIG_DIR
from mhr2_ros.training.config import DataSourceConfig, load_train_config
from mhr2_ros.training.step import compute_losses
from mhr2_ros.training.train import setup

DEFAULT_CONFIG = CONFIG_DIR / "train_demo_cpu_decoder.yaml"  # stage 6 of the shipped model (weights/README.md)
TOTAL = "total"  # the weighted sum, beside the unweighted terms


def parse_data(spec: str) -> tuple:
    """'NAME=PATH[,PATH...]' -> (NAME, [PATH, ...]); each path must exist."""
    name, sep, paths = spec.partition("=")
    if not sep or not name or not paths:
        raise argparse.ArgumentTypeError(f"--data {spec!r}: expected NAME=PATH[,PATH...], e.g. new=data/train_g13000")
    folders = [p for p in paths.split(",") if p]
    missing = [p for p in folders if not Path(p).exists()]
    if missing:
        raise argparse.ArgumentTypeError(f"--data {spec!r}: no such folder: {', '.join(missing)}")
    return name, folders


def measure(config, weights: str, folders: list, batches: int, seed: int, label: str = "") -> dict:
    """Mean unweighted loss terms (and the weighted total) of `weights` over `batches` batches of `folders`;
    a progress bar (stderr) named `label` when one is given."""
    data = [DataSourceConfig(kind="clips", paths=[str(Path(f).resolve()) for f in folders])]
    cfg = dataclasses.replace(config, init=str(Path(weights).resolve()), data=data, seed=seed, data_workers=0,
                              teacher=None)  # fmt: skip
    run = setup(cfg)
    run.model.eval()
    sums = defaultdict(float)
    with torch.no_grad():
        for _ in tqdm(range(batches), desc=label, unit="batch", leave=False, disable=not label):
            total, terms, _ = compute_losses(run.model, run.body, run.matcher, run.criterion, run.stream.next(),
                                             None, cfg.token_supervision)  # fmt: skip
            for key, value in terms.items():
                sums[key] += float(value)
            sums[TOTAL] += float(total)
    return {key: value / batches for key, value in sums.items()}


def table(results: dict) -> str:
    """Markdown table: one row per term, one column per (checkpoint, data) cell."""
    cells = list(results)
    terms = [t for t in next(iter(results.values())) if t != TOTAL] + [TOTAL]
    lines = ["| term | " + " | ".join(f"{w} @ {d}" for w, d in cells) + " |", "|---" * (len(cells) + 1) + "|"]
    for term in terms:
        lines.append(f"| {term} | " + " | ".join(f"{results[c].get(term, float('nan')):.4f}" for c in cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", action="append",
                        help="checkpoint (repeat for several; default: the shipped one)")  # fmt: skip
    parser.add_argument("--data", action="append", type=parse_data, required=True,
                        help="NAME=FOLDER[,FOLDER...] of clips or folders of clips (repeat for several)")  # fmt: skip
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="training config giving the matcher, token supervision and loss settings "
                             "(default: %(default)s)")  # fmt: skip
    parser.add_argument("--batches", type=int, default=60, help="batches per cell (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, help="images per batch (default: the config's)")
    parser.add_argument("--seed", type=int, default=123, help="seed of the draws, the same for every cell")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches must be >= 1, got {args.batches}")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    weights = args.weights or [str(DEFAULT_WEIGHTS)]
    for w in weights:
        if not Path(w).exists():
            parser.error(f"--weights {w}: no such file")
    config = load_train_config(args.config)
    config = dataclasses.replace(config, device="cpu", batch_size=args.batch_size or config.batch_size)
    torch.set_num_threads(args.threads)
    results = {}
    for w in weights:
        for name, folders in args.data:
            results[(w, name)] = measure(config, w, folders, args.batches, args.seed, label=f"{w} @ {name}")
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.config.name}; {args.batches} batches of {config.batch_size} per cell, seed {args.seed}; "
          "eval mode, unweighted terms (total weighted by the config)\n")  # fmt: skip
    for name, folders in args.data:
        print(f"{name}: {', '.join(folders)}")
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
