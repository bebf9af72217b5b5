"""`mhr2 synth OUT`: render a procedural synthetic clip with exact ground truth.

The same arguments always write byte-identical files (same device and --threads): every
random choice comes from --seed, and the writer is deterministic (docs/dataset_format.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import Tuple

from mhr2_ros import __version__
from mhr2_ros.cli.formatting import HelpFormatter

# training.synthetic.scene.MAX_PEOPLE, repeated because that module loads torch and the
# parser must not (test_cli checks they agree).
MAX_PEOPLE = 20

log = logging.getLogger(__name__)


def _size(text: str):
    """'WxH' -> (W, H); 'random' -> None (sizes and aspect ratios drawn per clip)."""
    if text.lower() == "random":
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH in pixels (e.g. 640x480) or 'random', got {text!r}") from None
    if not (16 <= w <= 8192 and 16 <= h <= 8192):
        raise argparse.ArgumentTypeError(f"width and height must be 16..8192 pixels, got {w}x{h}")
    return w, h


def _range(kind, lo: float, hi: float, unit: str):
    """Parser of 'N' or 'MIN-MAX' / 'MIN,MAX' within [lo, hi]."""

    def parse(text: str) -> Tuple:
        parts = text.replace(",", "-").split("-")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number or MIN-MAX, got {text!r}") from None
        if len(values) == 1:
            values = values * 2
        if len(values) != 2 or not (lo <= values[0] <= values[1] <= hi):
            raise argparse.ArgumentTypeError(
                f"expected N or MIN-MAX with {lo} <= MIN <= MAX <= {hi} {unit}, got {text!r}"
            )
        return values

    return parse


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value

    return parse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="render a synthetic clip (Anny people, exact ground truth) into a folder",
        description="Render a procedural synthetic clip: Anny people of every age walking, standing, sitting "
        "and gesturing on a textured floor, seen by a random camera, with RGB, depth, visible instance masks "
        "and per-person ground truth (pose, shape, joints, boxes, visibility). Format: docs/dataset_format.md. "
        "The same arguments write byte-identical files.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("output", type=Path, metavar="OUT", help="output folder (created; must be empty unless --overwrite)")
    p.add_argument("--people", type=_range(int, 1, MAX_PEOPLE, "people"), default="3", metavar="N|MIN-MAX",
                   help=f"people in the clip (1..{MAX_PEOPLE}), or a range drawn from per clip (per frame with "
                   "--independent)")  # fmt: skip
    p.add_argument("--frames", type=_positive(int), default=30, metavar="F", help="frames to render")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed: the same seed gives the same clip. Seeds below 1000 are mhr2 eval's "
                   "(benchmark 0-3, tuning sets): use 1000 or more for training data")
    p.add_argument("--size", type=_size, default="640x480", metavar="WxH",
                   help="image size in pixels, or 'random' (landscape, portrait and square sizes)")
    p.add_argument("--fps", type=_positive(float), default=10.0, help="frames per second of the motion")
    p.add_argument("--fov", type=_range(float, 1.0, 170.0, "degrees"), default="30-100", metavar="DEG|MIN-MAX",
                   help="vertical field of view in degrees, fixed or a range drawn from")
    p.add_argument("--distance", type=_range(float, 1.0, 200.0, "meters"), default="1-20", metavar="MIN-MAX",
                   help="distance of the people from the camera, meters")
    p.add_argument("--independent", action="store_true",
                   help="every frame is a new scene (people, camera, background): a training image set, not a clip")
    p.add_argument("--vertices", action="store_true", help="also store mesh vertices (13718 x 3 floats per person)")
    p.add_argument("--device", default="cpu", help="torch device that renders: cpu, cuda, cuda:1")
    p.add_argument("--threads", type=_positive(int), default=1,
                   help="torch CPU threads. Float reductions depend on the thread count, so byte-identical "
                   "output needs the same count; more threads are faster on a large idle machine")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty OUT, replacing a previous clip")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def build_config(args: argparse.Namespace):
    """SynthConfig from the command-line options (validated)."""
    from mhr2_ros.training.synthetic.config import SynthConfig, validate

    base = SynthConfig()
    return validate(dataclasses.replace(
        base, frames=args.frames, independent=args.independent, vertices=args.vertices,
        camera=dataclasses.replace(base.camera, size=args.size, fov_deg=tuple(args.fov)),
        placement=dataclasses.replace(base.placement, people=tuple(args.people), distance_m=tuple(args.distance)),
        motion=dataclasses.replace(base.motion, fps=args.fps),
        render=dataclasses.replace(base.render, device=args.device),
    ))  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from mhr2_ros.training.synthetic.dataset import write_clip
    from mhr2_ros.training.synthetic.generator import SyntheticClip

    config = build_config(args)
    from mhr2_ros.devices import resolve_device

    resolve_device(args.device)
    torch.set_num_threads(args.threads)
    clip = SyntheticClip(config, args.seed)
    quiet = args.no_progress or getattr(args, "quiet", False)
    with tqdm(total=len(clip), unit="frame", desc="synth", disable=quiet) as bar:
        write_clip(args.output, clip, overwrite=args.overwrite, progress=lambda i: bar.update(1),
                   extra={"generator": f"mhr2 synth (mhr2_ros {__version__})"})  # fmt: skip
    if not config.independent:
        size = "{1}x{0}".format(*clip.info["image_size"])
    else:
        size = "a size per frame" if config.camera.size is None else "{}x{}".format(*config.camera.size)
    print(f"wrote {len(clip)} frames ({size}) to {args.output}")
    return 0
