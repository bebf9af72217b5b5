"""The options of the benchmark scripts that run a synthetic image-and-clip set with a checkpoint:
which weights, which images and clips (the benchmark's by default; the tuning set with
`--image-seed 500 --clip-seed 600 --clips 10`), and how many torch threads."""

from __future__ import annotations

import argparse

import torch

from mhr2_ros.checkpoint import DEFAULT_WEIGHTS
from mhr2_ros.evaluation.benchmark import SyntheticBenchmark


def add_set_options(parser: argparse.ArgumentParser) -> None:
    spec = SyntheticBenchmark()
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS), help="checkpoint (default: the shipped one)")
    parser.add_argument("--images", type=int, default=spec.images, help="independent images (default: %(default)s)")
    parser.add_argument("--image-seed", type=int, default=spec.image_seed,
                        help="seed of the image set (default: %(default)s, the benchmark's; 500: the tuning set)")
    parser.add_argument("--clips", type=int, default=spec.clips, help="clips (default: %(default)s)")
    parser.add_argument("--clip-seed", type=int, default=spec.clip_seed,
                        help="seed of the first clip (default: %(default)s; 600: the tuning set)")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")


def set_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> SyntheticBenchmark:
    """The set the options name (parser.error on bad sizes or a training seed); sets the threads."""
    if args.images < 0 or args.clips < 0 or args.images + args.clips == 0:
        parser.error(f"--images and --clips must be >= 0 and not both 0, got {args.images} and {args.clips}")
    try:
        spec = SyntheticBenchmark(images=args.images, image_seed=args.image_seed, clips=args.clips,
                                  clip_seed=args.clip_seed)  # fmt: skip
    except ValueError as e:  # a seed among the training seeds
        parser.error(str(e))
    torch.set_num_threads(args.threads)
    return spec


def image_set_and_detector(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """(the set of independent images the options name, without clips; the --weights detector on the CPU)."""
    from mhr2_ros.inference.detector import Detector

    args.clips = 0
    return set_from_args(parser, args), Detector.from_checkpoint(args.weights, device="cpu")


def parse_list(parser: argparse.ArgumentParser, flag: str, text: str, convert) -> list:
    """The comma-separated values of option `flag`, each through `convert`, whose ValueError becomes
    parser.error naming the item."""
    values = []
    for item in text.split(","):
        try:
            values.append(convert(item.strip()))
        except ValueError as e:
            parser.error(f"{flag}: {item!r} {e}")
    return values


def fmt(value, spec: str) -> str:
    """A table cell: `value` formatted by `spec`, or n/a when it was not measured (None)."""
    return "n/a" if value is None else format(value, spec)
