"""`mhr2 eval`'s depth camera: --depth and the simulated sensor's --depth-* options."""

from __future__ import annotations

import argparse
import math
from typing import Tuple

from mhr2_ros.errors import InputError

# option dest -> the DepthSensorConfig field it replaces
SENSOR_FIELDS = {"depth_noise": "noise", "depth_range": "max_range", "depth_correlation": "correlation",
                 "depth_edges": "edge_width", "depth_fattening": "fattening",
                 "depth_shift": "shift", "depth_dropout": "dropout"}  # fmt: skip


def add_depth_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--depth", action="store_true",
                   help="also give the detector each frame's depth image, as from an RGB-D camera registered to "
                   "the colour one (the rendered depth, or the clips' depth/ PNGs): people are scaled to it "
                   "(inference/depth_fusion.py; not the paper's RGB-only protocol)")
    p.add_argument("--depth-sensor", choices=("exact", "stereo"), default=None,
                   help="with --depth: the simulated camera (evaluation/depth_sensor.py): 'exact' the rendered "
                   "depth (default); 'stereo' a consumer active-stereo camera (noise 0.0025 x z^2 m, correlated over "
                   "2 px, flying pixels 2 px at edges, misregistered by (2, 1) px, 2%% dropout, range 6 m); the "
                   "options below replace single values of it")  # a test holds this to STEREO.describe()
    p.add_argument("--depth-noise", type=float, default=None, metavar="K",
                   help="with --depth: Gaussian depth noise of std K x z^2 meters (0.002: 2 mm at 1 m, "
                   "3 cm at 4 m; stereo depth error grows with the squared distance)")
    p.add_argument("--depth-correlation", type=float, default=None, metavar="PX",
                   help="with --depth: the noise of pixels this close (std of a Gaussian, pixels) is alike, as a "
                   "stereo matcher's windows make it (0: independent pixels)")
    p.add_argument("--depth-edges", type=int, default=None, metavar="PX",
                   help="with --depth: flying pixels (a depth between the near and the far side) this many pixels "
                   "either side of a depth discontinuity (0: none)")
    p.add_argument("--depth-fattening", type=int, default=None, metavar="PX",
                   help="with --depth: a surface this many pixels from a nearer one takes the nearer one's depth, "
                   "as a stereo matcher's windows grow near objects (0: none; not in the stereo preset)")
    p.add_argument("--depth-shift", type=_pixel_pair, default=None, metavar="DX,DY",
                   help="with --depth: misregistration: the depth image lies DX pixels right and DY down of "
                   "the colour image (e.g. 2,1)")
    p.add_argument("--depth-dropout", type=float, default=None, metavar="F",
                   help="with --depth: this fraction of pixels, at random, has no measurement")
    p.add_argument("--depth-range", type=float, default=None, metavar="M",
                   help="with --depth: no depth measurement beyond M meters (a sensor's range)")


def _pixel_pair(text: str) -> Tuple[int, int]:
    try:
        dx, dy = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two whole pixel counts DX,DY such as 2,1, got {text!r}") from None
    return dx, dy


def depth_sensor_from_args(args: argparse.Namespace):
    """The DepthSensor --depth asks for, or None; InputError names a bad --depth-* value."""
    from mhr2_ros.evaluation.depth_sensor import DepthSensor, preset

    given = [dest for dest in ("depth_sensor", *SENSOR_FIELDS) if getattr(args, dest) is not None]
    if not args.depth:
        if given:
            names = ", ".join("--" + d.replace("_", "-") for d in given)
            raise InputError(f"{names}: these describe the depth camera of --depth, which is not set")
        return None
    _check(args)
    overrides = {field: getattr(args, dest) for dest, field in SENSOR_FIELDS.items()}
    return DepthSensor(preset(args.depth_sensor or "exact", **overrides))


def _check(args: argparse.Namespace) -> None:
    def finite_at_least(dest: str, low: float, unit: str) -> None:
        value = getattr(args, dest)
        if value is not None and not (math.isfinite(value) and value >= low):
            raise InputError(f"--{dest.replace('_', '-')} must be a finite number >= {low:g} ({unit}), got {value}")

    finite_at_least("depth_noise", 0.0, "meters per squared meter")
    finite_at_least("depth_correlation", 0.0, "pixels")
    finite_at_least("depth_edges", 0, "pixels")
    finite_at_least("depth_fattening", 0, "pixels")
    if args.depth_dropout is not None and not 0.0 <= args.depth_dropout < 1.0:
        raise InputError(f"--depth-dropout must be a fraction in [0, 1), got {args.depth_dropout}")
    if args.depth_range is not None and not (math.isfinite(args.depth_range) and args.depth_range > 0):
        raise InputError(f"--depth-range must be meters > 0, got {args.depth_range}")


def depth_description(args: argparse.Namespace, sensor) -> str:
    images = "the clips' depth images" if args.data else "rendered depth"
    return f"{images}, {sensor.cfg.describe()}"


__all__ = ["add_depth_options", "depth_sensor_from_args", "depth_description"]
