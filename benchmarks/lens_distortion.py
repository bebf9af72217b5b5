#!/usr/bin/env python3
"""A distorted lens: what ignoring it costs and what rectifying recovers. A diagnosis, not a timing.

    python benchmarks/lens_distortion.py --image-seed 500 --clips 0     # the tuning images
    python benchmarks/lens_distortion.py --k1 -0.1 --weights RUN/model.safetensors

Each synthetic image (a pinhole camera) is resampled into the raw image a radial lens with
coefficients (--k1, --k2) would have made of the scene, with the same K, and its 2D truth is
projected through that lens. Rows: the pinhole image (the reference), the raw image with the lens
ignored (the detector assumes a pinhole, as a node fed image_raw without rectify would), and the
raw image rectified first and its 2D outputs taken back (inference/rectify.py, the node's rectify).
All with the true K. MRPE is also given for the people whose pelvis lies in the outer half of
the image (by normalised radius), where the lens bends most. Independent images only.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys

import cv2
import numpy as np
import torch

from benchmark_set import add_set_options, fmt, set_from_args  # benchmarks/ (the script's folder is on the path)
from machine import describe
from mhr2_ros.evaluation.benchmark import Evaluator, ignored_people
from mhr2_ros.evaluation.runner import synthetic_sequences
from mhr2_ros.geometry import project
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.rectify import Rectifier
from mhr2_ros.training.synthetic.truth import to_frame_result

ROWS = ("pinhole image (reference)", "raw image, lens ignored", "raw image, rectified first")
OUTER = 0.5  # a pelvis beyond this share of the half-diagonal from the centre counts as "outer"


def raw_image(pinhole: np.ndarray, lens: Rectifier) -> np.ndarray:
    """The raw image the lens makes of the scene whose pinhole image (same K) is `pinhole`."""
    h, w = pinhole.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64)
    where = cv2.undistortPoints(grid, lens.K, lens.D, P=lens.K).reshape(h, w, 2).astype(np.float32)
    return cv2.remap(pinhole, where[..., 0], where[..., 1], cv2.INTER_LINEAR)


def raw_truth(frame_truth, lens: Rectifier):
    """(frame truth, truth FrameResult) with the 2D truth projected through the lens (the box: the 2D joints',
    which is what the protocol's detection match compares); 3D unchanged."""
    truth = to_frame_result(frame_truth, id_prefix=GT_ID_PREFIX)
    h, w = truth.image_size
    for person in truth.humans:
        person.pelvis_2d = lens.project(person.position)[0].astype(np.float32)
        person.keypoints_2d = lens.project(person.joints_3d).astype(np.float32)
        lo, hi = person.keypoints_2d.min(0), person.keypoints_2d.max(0)
        person.box = np.clip([*lo, *hi], 0, [w, h, w, h]).astype(np.float32)
    ft = copy.copy(frame_truth)  # what ignored_people reads: the pelvis pixels, through the lens too
    ft.pelvis_2d = lens.project(frame_truth.position).astype(np.float32)
    return ft, truth


def outer(truth, K: np.ndarray) -> np.ndarray:
    """(len(truth.humans),) bool: the pelvis in the outer part of the image (pinhole pixels)."""
    h, w = truth.image_size
    pix = project(np.array([p.position for p in truth.humans], np.float64).reshape(-1, 3), K)
    return np.linalg.norm(pix - [w / 2, h / 2], axis=1) > OUTER * 0.5 * np.hypot(w, h)


def measure(detector: Detector, frames, k1: float, k2: float) -> dict:
    """row -> (Evaluator.summary(), MRPE of the outer people or None)."""
    evals, errors = {r: Evaluator() for r in ROWS}, {r: [] for r in ROWS}
    with torch.inference_mode():
        for frame in frames:
            K = np.asarray(frame.truth.K, np.float64)
            lens = Rectifier(K, [k1, k2, 0.0, 0.0, 0.0], "plumb_bob", frame.image.shape[:2])
            raw = raw_image(frame.image, lens)
            pin_truth = to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX)
            ft, truth = raw_truth(frame.truth, lens)
            results = {ROWS[0]: detector(frame.image, K=K), ROWS[1]: detector(raw, K=K),
                       ROWS[2]: lens.to_raw(detector(lens.image(raw), K=K))}
            for row, result in results.items():
                reference = pin_truth if row == ROWS[0] else truth
                ev = evals[row]
                ev.add(result, reference, ignored_people(frame.truth if row == ROWS[0] else ft, reference))
                far = outer(reference, K)
                for r, c in ev.last_pairs:
                    if far[c]:
                        errors[row].append(float(np.linalg.norm(result.humans[r].position - reference.humans[c].position)))
    return {r: (evals[r].summary(), float(np.mean(errors[r])) if errors[r] else None) for r in ROWS}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--k1", type=float, default=-0.2, help="radial coefficient k1 (default: %(default)s, barrel)")
    parser.add_argument("--k2", type=float, default=0.05, help="radial coefficient k2 (default: %(default)s)")
    args = parser.parse_args(argv)
    args.clips = 0
    spec = set_from_args(parser, args)
    detector = Detector.from_checkpoint(args.weights, device="cpu")
    frames = [f for s in synthetic_sequences(spec, detector.body) for f in s.frames]
    table = measure(detector, frames, args.k1, args.k2)
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}); plumb_bob lens k1 {args.k1:g}, "
          f"k2 {args.k2:g}; true K; outer: pelvis beyond {OUTER:g} of the half-diagonal\n")
    print("| image | F1 | PA-MPJPE (mm) | MRPE (m) | MRPE, outer people (m) |")
    print("|---|---|---|---|---|")
    for row, (s, far) in table.items():
        print(f"| {row} | {fmt(s['f1'], '.3f')} | {fmt(s['pa_mpjpe'], '.1f')} | {fmt(s['mrpe'], '.3f')} | "
              f"{fmt(far, '.3f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
