#!/usr/bin/env python3
"""An off-centre principal point: what it costs with the camera's K given and with the FOV predicted.
A diagnosis, not a timing.

    python benchmarks/principal_point.py --image-seed 500 --clips 0       # the tuning images
    python benchmarks/principal_point.py --cut 0.1 --weights RUN/model.safetensors

The synthetic scenes are rendered with the principal point at the image centre, as the predicted
camera assumes. Cropping an image moves its principal point: this script cuts `--cut` of each
image's width, half from either side (the principal point stays centred) or all from the left or
all from the right (it moves --cut / 2 of the original width off centre), and runs the detector
on each crop with the true K of the crop (the network gets the rays of the off-centre camera) and
with the predicted FOV (it assumes the centre). Rows of one camera see crops of the same size, so
what differs between them is where the principal point is, and which strip of the scene was cut.
Independent images only (the clips option is ignored: crops are not tracked).
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys

import numpy as np
import torch

from benchmark_set import add_set_options, fmt, set_from_args  # benchmarks/ (the script's folder is on the path)
from machine import describe
from mhr2_ros.evaluation.benchmark import Evaluator, ignored_people
from mhr2_ros.evaluation.runner import synthetic_sequences
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.inference.detector import Detector
from mhr2_ros.training.synthetic.truth import to_frame_result

CROPS = {"centred": 0.5, "cut from the left": 1.0, "cut from the right": 0.0}  # share of the cut taken on the left
CAMERAS = ("true K", "predicted FOV")


def crop(image: np.ndarray, frame_truth, cut: float, left_share: float):
    """(image, frame truth, truth FrameResult) of the crop that removes `cut` of the width, `left_share`
    of it on the left: pixels, the principal point and the 2D truth move with it; 3D stays."""
    h, w = image.shape[:2]
    total = int(round(cut * w))
    x0 = int(round(total * left_share))
    x1 = w - (total - x0)
    ft = copy.copy(frame_truth)
    ft.pelvis_2d, ft.image_size = frame_truth.pelvis_2d - [x0, 0], (h, x1 - x0)
    truth = to_frame_result(frame_truth, id_prefix=GT_ID_PREFIX)
    K = np.array(truth.K, np.float64)
    K[0, 2] -= x0
    truth.K, truth.image_size = K.astype(np.float32), (h, x1 - x0)
    for person in truth.humans:
        person.pelvis_2d = person.pelvis_2d - [x0, 0]
        person.keypoints_2d = person.keypoints_2d - [x0, 0]
        person.box = np.clip(person.box - [x0, 0, x0, 0], 0, [x1 - x0, h, x1 - x0, h]).astype(np.float32)
    return np.ascontiguousarray(image[:, x0:x1]), ft, truth


def measure(detector: Detector, frames, cut: float) -> dict:
    """(crop, camera) -> Evaluator.summary() over the frames."""
    evaluators = {(c, k): Evaluator() for c in CROPS for k in CAMERAS}
    with torch.inference_mode():
        for frame in frames:
            for name, left_share in CROPS.items():
                image, ft, truth = crop(frame.image, frame.truth, cut, left_share)
                ignore = ignored_people(ft, truth)
                for camera in CAMERAS:
                    result = detector(image, K=np.asarray(truth.K, np.float64) if camera == "true K" else None)
                    evaluators[(name, camera)].add(result, truth, ignore)
    return {key: ev.summary() for key, ev in evaluators.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--cut", type=float, default=0.2, help="share of the width cut (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 0.0 < args.cut < 0.9:
        parser.error(f"--cut {args.cut}: expected a share of the width in (0, 0.9)")
    args.clips = 0
    spec = set_from_args(parser, args)
    detector = Detector.from_checkpoint(args.weights, device="cpu")
    frames = [f for s in synthetic_sequences(spec, detector.body) for f in s.frames]
    table = measure(detector, frames, args.cut)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}); {args.cut:g} of the width cut: "
          f"the one-sided crops' principal point {50 * args.cut / (1 - args.cut):.1f}% of their width off centre\n")
    print("| camera | crop | F1 | PA-MPJPE (mm) | MRPE (m) | FOV error (deg) |")
    print("|---|---|---|---|---|---|")
    for camera in CAMERAS:
        for name in CROPS:
            s = table[(name, camera)]
            print(f"| {camera} | {name} | {fmt(s['f1'], '.3f')} | {fmt(s['pa_mpjpe'], '.1f')} | "
                  f"{fmt(s['mrpe'], '.3f')} | {fmt(s['fov_error'], '.2f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
