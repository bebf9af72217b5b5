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

import math
import sys
from dataclasses import replace

import torch

from depth_sensors import NEAR_M, NO_DEPTH, measure, print_header, print_table, setup  # benchmarks/, on the path
from mhr2_ros.cli.floor_options import MountError
from mhr2_ros.evaluation.depth_sensor import STEREO

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
    args, spec, detector, frames = setup(__doc__.split("\n\n")[0], argv, "the floor")
    default = detector.cfg
    table = {}
    with torch.inference_mode():
        for name, (mount, sigma, sensor) in rows(default.floor_angle_sigma).items():
            detector.cfg = replace(default, floor_angle_sigma=sigma)
            table[name] = measure(detector, frames, not args.predicted_camera, sensor, floor=mount)
    print_header(args, spec, f"MRPE split at {NEAR_M:g} m")
    print_table(table, first_column="floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
