#!/usr/bin/env python3
"""A camera rolled about its optical axis: what it costs. A diagnosis, not a timing.

    python benchmarks/camera_roll.py --image-seed 560 --rolls 0,10,20,30

The benchmark's independent images (its people, distances, size and vertical FOV range; one seed)
rendered with the camera rolled by each of --rolls degrees (the training scenes roll it by at
most `CameraConfig.roll_deg`, +-4 degrees), run with the predicted FOV and with the true K, with
the true K and the true floor (a robot that knows its camera mount) as the image is and levelled by
the floor's gravity first (inference/level.py), and levelled by gravity alone (a robot that knows
which way is down, from its odometry frame or an IMU, but not its floor) with the predicted FOV and
with the true K. People are placed in each rolled view, so the scenes of one seed differ a little
from roll to roll.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import shlex
import sys
from typing import Dict

import numpy as np
import torch

from benchmark_set import add_set_options, fmt, image_set_and_detector, parse_list  # the script folder is on the path
from machine import describe
from mhr2_ros.config import override
from mhr2_ros.evaluation.benchmark import Evaluator, ignored_people
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.inference.detector import Detector
from mhr2_ros.training.synthetic.config import CameraConfig
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result

NEVER = -1.0  # InferenceConfig.level_roll_deg: no levelling
CAMERAS = ("predicted FOV", "true K", "true K + floor, as it is", "true K + floor, levelled",
           "predicted FOV + gravity, levelled", "true K + gravity, levelled")


def parse_roll(item: str) -> float:
    """'10' -> 10.0 degrees; ValueError saying what is wrong."""
    try:
        roll = float(item)
    except ValueError:
        raise ValueError("is not a number of degrees") from None
    if not -89.0 <= roll <= 89.0:
        raise ValueError("must be within +-89 degrees")
    return roll


def measure(detector: Detector, clip: SyntheticClip) -> Dict[str, Dict]:
    """Camera -> Evaluator.summary() over the clip's frames."""
    evals = {c: Evaluator() for c in CAMERAS}
    as_it_is = copy.copy(detector)
    as_it_is.cfg = override(detector.cfg, level_roll_deg=NEVER)
    with torch.inference_mode():
        for frame in clip:
            truth = to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX)
            ignore = ignored_people(frame.truth, truth)
            K, floor = np.asarray(frame.truth.K, np.float64), np.asarray(frame.truth.floor_plane, np.float64)
            evals[CAMERAS[0]].add(detector(frame.image), truth, ignore)
            evals[CAMERAS[1]].add(detector(frame.image, K=K), truth, ignore)
            evals[CAMERAS[2]].add(as_it_is(frame.image, K=K, floor=floor), truth, ignore)
            evals[CAMERAS[3]].add(detector(frame.image, K=K, floor=floor), truth, ignore)
            evals[CAMERAS[4]].add(detector(frame.image, gravity=floor[:3]), truth, ignore)
            evals[CAMERAS[5]].add(detector(frame.image, K=K, gravity=floor[:3]), truth, ignore)
    return {c: ev.summary() for c, ev in evals.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--rolls", default="0,10,20,30", help="camera rolls, degrees (default: %(default)s)")
    args = parser.parse_args(argv)
    rolls = parse_list(parser, "--rolls", args.rolls, parse_roll)
    spec, detector = image_set_and_detector(parser, args)
    trained = CameraConfig().roll_deg
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}) at each roll, "
          f"{spec.size[0]}x{spec.size[1]}; training scenes roll {trained[0]:g} to {trained[1]:g} deg\n")
    print("| roll (deg) | camera | F1 | PA-MPJPE (mm) | MRPE (m) | FOV error (deg) |")
    print("|---|---|---|---|---|---|")
    for roll in rolls:
        cfg = spec.synth_config(independent=True)
        cfg = dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, roll_deg=(roll, roll)))
        for camera, s in measure(detector, SyntheticClip(cfg, spec.image_seed, detector.body)).items():
            print(f"| {roll:g} | {camera} | {fmt(s['f1'], '.3f')} | {fmt(s['pa_mpjpe'], '.1f')} | "
                  f"{fmt(s['mrpe'], '.3f')} | {fmt(s['fov_error'], '.2f')} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
