#!/usr/bin/env python3
"""The floor as a robot knows it: how well people are placed when the camera's mount is known,
and how much a wrong mount costs. A diagnosis, not a timing.

    python benchmarks/floor_mounts.py                        # shipped weights, the benchmark, true camera
    python benchmarks/floor_mounts.py --image-seed 500 --clip-seed 600 --clips 10   # the tuning set
    python benchmarks/floor_mounts.py --predicted-camera --weights RUN/model.safetensors

`mhr2 eval --floor` measures one mount per run. This script renders the synthetic frames once
and runs the detector over them with no floor (RGB), the true floor weighed with the network's
depth (the default floor_angle_sigma) and alone (floor_angle_sigma 0), the floor believed with
a pitch or a camera-height error (`mhr2 eval --floor-pitch-error / --floor-height-error`), and
the stereo depth camera with and without the floor for the people beyond its range, and prints
one table: MRPE (95% bootstrap interval), MRPE nearer and farther than NEAR_M, the range of the
per-distance depth-ratio medians, and F1. Detection is the same in every row (the floor moves
people along their rays only). No tracker runs.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from dataclasses import replace

import torch

from benchmark_set import add_set_options, set_from_args  # benchmarks/ (the script's folder is on the path)
from depth_sensors import NEAR_M, NO_DEPTH, measure, print_table
from machine import describe
from mhr2_ros.cli.floor_options import MountError
from mhr2_ros.evaluation.depth_sensor import STEREO
from mhr2_ros.evaluation.runner import Sequence, synthetic_sequences
from mhr2_ros.inference.detector import Detector

PITCH_ERRORS_DEG = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)  # believed pitch - true pitch
HEIGHT_ERRORS_M = (-0.1, -0.05, 0.05, 0.1)  # believed camera height - true height


def rows(default_sigma: float) -> dict:
    """Row name -> (floor mount error or None, floor_angle_sigma, depth camera or NO_DEPTH)."""
    exact = MountError(0.0, 0.0)
    out = {"RGB (no floor)": (None, default_sigma, NO_DEPTH),
           f"floor, weighed (floor_angle_sigma {default_sigma:g})": (exact, default_sigma, NO_DEPTH),
           "floor alone (floor_angle_sigma 0)": (exact, 0.0, NO_DEPTH)}  # fmt: skip
    for e in PITCH_ERRORS_DEG:
        out[f"floor, pitch believed {e:+g} deg"] = (MountError(0.0, math.radians(e)), default_sigma, NO_DEPTH)
    for e in PITCH_ERRORS_DEG[1:2] + PITCH_ERRORS_DEG[4:5]:  # +-1 deg without the weighing
        out[f"floor alone, pitch believed {e:+g} deg"] = (MountError(0.0, math.radians(e)), 0.0, NO_DEPTH)
    for e in HEIGHT_ERRORS_M:
        out[f"floor, height believed {100 * e:+g} cm"] = (MountError(e, 0.0), default_sigma, NO_DEPTH)
    out["stereo depth camera (6 m range)"] = (None, default_sigma, STEREO)
    out["stereo depth camera, the floor beyond its range"] = (exact, default_sigma, STEREO)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--predicted-camera", action="store_true",
                        help="the detector predicts the FOV (default: it gets the true intrinsics, as a robot's "
                        "calibrated camera)")
    args = parser.parse_args(argv)
    spec = set_from_args(parser, args)
    detector = Detector.from_checkpoint(args.weights, device="cpu")
    frames = [Sequence(s.name, list(s.frames), s.length, tracked=False) for s in synthetic_sequences(spec, detector.body)]
    default = detector.cfg
    table = {}
    with torch.inference_mode():
        for name, (mount, sigma, sensor) in rows(default.floor_angle_sigma).items():
            detector.cfg = replace(default, floor_angle_sigma=sigma)
            table[name] = measure(detector, frames, not args.predicted_camera, sensor, floor=mount)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}), {spec.clips} clips of "
          f"{spec.clip_frames} frames (seeds from {spec.clip_seed}); "
          f"{'predicted' if args.predicted_camera else 'true'} camera; MRPE split at {NEAR_M:g} m\n")  # fmt: skip
    print_table(table, first_column="floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
