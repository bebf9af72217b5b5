#!/usr/bin/env python3
"""Where a model's MRPE comes from: a diagnosis, not a timing.

    python benchmarks/depth_errors.py                          # shipped weights, the benchmark
    python benchmarks/depth_errors.py --image-seed 500 --clip-seed 600 --clips 10   # the tuning set
    python benchmarks/depth_errors.py --weights RUN/model.safetensors --flip

MRPE is the mean 3D distance between a found person's predicted and true pelvis. This script
runs the detector twice over the synthetic images and clips (no tracker), with its predicted
camera and with the true one, takes the people found by the paper's protocol (2D-joint boxes
at IoU 0.1, as `mhr2 eval`) and splits their error:

- along the true ray (the depth) and across it (the pixel and the focal length: a wrong
  focal turns the ray of every off-centre pixel);
- the predicted / true depth and height (medians, 10th-90th percentiles) and the spread
  (standard deviation) of their logarithms; their correlation, and the spread of
  log(height / depth), which is the error of the person's projected size: a network whose
  size in pixels were right would err on depth only as much as on height;
- counterfactual MRPEs: the true depth put back along the predicted pixel's ray; the
  predicted position scaled by true / predicted height (what knowing each person's height
  would give a network that keeps its projected size);
- by true distance: MRPE, along / across the ray, median depth ratio.

`--flip` also runs the mirrored image with the predicted camera: the correlation of the
depth errors of a person in the image and in its mirror (near 1: the error belongs to the
person, not to the view), and the MRPE of their average (test-time flip augmentation:
geometric mean of depths and focals, mean of pelvis pixels).
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np

from benchmark_set import add_set_options, set_from_args  # benchmarks/ (the script's folder is on the path)
from machine import describe
from mhr2_ros.evaluation.benchmark import SyntheticBenchmark, distance_bin, distance_labels
from mhr2_ros.evaluation.benchmark import fill_bodies, ignored_people, match_frame
from mhr2_ros.evaluation.errors import LOCATE_FRACTION
from mhr2_ros.evaluation.benchmark_spec import MATCH_IOU
from mhr2_ros.evaluation.runner import synthetic_sequences
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.inference.detector import Detector
from mhr2_ros.training.synthetic.truth import to_frame_result

U, V = 0, 1  # pixel axes of a (2,) pixel


def mirrored(pixel, width: int) -> np.ndarray:
    """(2,) pixel of the horizontally mirrored image (either way: mirroring twice is the identity)."""
    return np.array([width - 1 - pixel[U], pixel[V]], np.float64)


def flip_partner(mirror, pixel: np.ndarray, width: int, radius_px: float):
    """The detection of the mirrored image whose pelvis, mirrored back, lies nearest `pixel`
    (within `radius_px`), or None."""
    if mirror is None or len(mirror) == 0:
        return None
    back = np.array([mirrored(h.pelvis_2d, width) for h in mirror.humans])
    dist = np.linalg.norm(back - pixel, axis=1)
    best = int(dist.argmin())
    return mirror.humans[best] if dist[best] <= radius_px else None


def flip_average(pred, partner, K: np.ndarray, partner_K: np.ndarray, width: int) -> np.ndarray:
    """(3,) pelvis from a detection and its mirror partner: mean pixel, geometric-mean focal and depth."""
    pixel = (np.asarray(pred.pelvis_2d) + mirrored(partner.pelvis_2d, width)) / 2
    focal = np.sqrt(K[1, 1] * partner_K[1, 1])
    depth = np.sqrt(pred.depth * partner.depth)
    return np.array([(pixel[U] - K[0, 2]) / focal * depth, (pixel[V] - K[1, 2]) / focal * depth, depth])


def pair_row(pred, true) -> dict:
    """Error terms of one found person (positions in meters, camera frame)."""
    p, t = np.asarray(pred.position, np.float64), np.asarray(true.position, np.float64)
    ray = t / np.linalg.norm(t)
    err = p - t
    along = float(err @ ray)
    return {
        "distance": float(true.depth), "mrpe": float(np.linalg.norm(err)), "along": abs(along),
        "across": float(np.linalg.norm(err - along * ray)),
        "log_depth": float(np.log(pred.depth / true.depth)), "log_height": float(np.log(pred.height / true.height)),
        "mrpe_true_depth": float(np.linalg.norm(p * (true.depth / pred.depth) - t)),
        "mrpe_true_height": float(np.linalg.norm(p * (true.height / pred.height) - t)),
    }  # fmt: skip


def collect(detector: Detector, spec: SyntheticBenchmark, gt_intrinsics: bool, flip: bool) -> list:
    """One row per person found (paper's protocol) over every frame of `spec`."""
    rows = []
    for seq in synthetic_sequences(spec, detector.body):
        for frame in seq.frames:
            truth = fill_bodies(to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX), detector.body)
            ignore = ignored_people(frame.truth, truth)
            width = frame.image.shape[1]
            result = detector(frame.image, K=truth.K if gt_intrinsics else None)
            mirror = detector(np.ascontiguousarray(frame.image[:, ::-1])) if flip else None
            rows_p, cols, _ = match_frame(result, truth, ignore, threshold=MATCH_IOU)
            for r, c in zip(rows_p, cols):
                pred, true = result.humans[r], truth.humans[c]
                row = pair_row(pred, true)
                diagonal = float(np.linalg.norm(true.box[2:] - true.box[:2]))
                partner = flip_partner(mirror, np.asarray(pred.pelvis_2d), width, LOCATE_FRACTION * diagonal)
                if partner is not None:
                    row["log_depth_mirror"] = float(np.log(partner.depth / true.depth))
                    average = flip_average(pred, partner, result.K, mirror.K, width)
                    row["mrpe_flip"] = float(np.linalg.norm(average - np.asarray(true.position)))
                rows.append(row)
    return rows


def spread(values) -> str:
    """Median (10th-90th percentile) of a ratio given as logarithms."""
    v = np.exp(np.asarray(values))
    return f"{np.median(v):.3f} ({np.percentile(v, 10):.2f}-{np.percentile(v, 90):.2f})"


def summary(rows: list) -> dict:
    col = lambda key: np.array([r[key] for r in rows])  # noqa: E731
    ld, lh = col("log_depth"), col("log_height")
    out = {
        "people found": f"{len(rows)}",
        "MRPE (m)": f"{col('mrpe').mean():.3f}",
        "  along the ray, mean |error| (m)": f"{col('along').mean():.3f}",
        "  across the ray, mean (m)": f"{col('across').mean():.3f}",
        "depth / true": spread(ld),
        "height / true": spread(lh),
        "spread of log depth ratio (std)": f"{ld.std():.3f}",
        "spread of log height ratio (std)": f"{lh.std():.3f}",
        "correlation of the two": f"{np.corrcoef(ld, lh)[0, 1]:.2f}",
        "spread of log(height / depth) ratio: projected size (std)": f"{(lh - ld).std():.3f}",
        "MRPE with the true depth (pixel kept)": f"{col('mrpe_true_depth').mean():.3f}",
        "MRPE with the position scaled by true / predicted height": f"{col('mrpe_true_height').mean():.3f}",
    }
    paired = [r for r in rows if "mrpe_flip" in r]
    if paired:
        a, b = np.array([r["log_depth"] for r in paired]), np.array([r["log_depth_mirror"] for r in paired])
        out["people with a mirror partner"] = f"{len(paired)}"
        out["correlation of their depth errors"] = f"{np.corrcoef(a, b)[0, 1]:.2f}"
        out["MRPE of them / with flip averaging"] = (f"{np.mean([r['mrpe'] for r in paired]):.3f} / "
                                                     f"{np.mean([r['mrpe_flip'] for r in paired]):.3f}")  # fmt: skip
    return out


def by_distance(rows: list) -> list:
    """(label, people, MRPE, along, across, median depth ratio) per true-distance bin."""
    out = []
    for label in distance_labels():
        sel = [r for r in rows if distance_bin(r["distance"]) == label]
        if sel:
            mean = lambda key: np.mean([r[key] for r in sel])  # noqa: E731
            ratio = np.exp(np.median([r["log_depth"] for r in sel]))
            out.append((label, len(sel), mean("mrpe"), mean("along"), mean("across"), ratio))
    return out


def print_tables(predicted: list, true_camera: list) -> None:
    a, b = summary(predicted), summary(true_camera)
    print("| measure | predicted camera | true camera |")
    print("|---|---|---|")
    for key in a:
        print(f"| {key} | {a[key]} | {b.get(key, '-')} |")
    for name, rows in (("predicted camera", predicted), ("true camera", true_camera)):
        print(f"\nby true distance, {name}:\n")
        print("| true distance | people | MRPE (m) | along (m) | across (m) | depth / true |")
        print("|---|---|---|---|---|---|")
        for label, n, mrpe, along, across, ratio in by_distance(rows):
            print(f"| {label} | {n} | {mrpe:.2f} | {along:.2f} | {across:.2f} | {ratio:.3f} |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--flip", action="store_true", help="also run the mirrored images (predicted camera)")
    args = parser.parse_args(argv)
    spec = set_from_args(parser, args)
    detector = Detector.from_checkpoint(args.weights, device="cpu")
    predicted = collect(detector, spec, gt_intrinsics=False, flip=args.flip)
    true_camera = collect(detector, spec, gt_intrinsics=True, flip=False)
    if not predicted or not true_camera:
        print("no person was found: nothing to diagnose", file=sys.stderr)
        return 1
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}), {spec.clips} clips of "
          f"{spec.clip_frames} frames (seeds from {spec.clip_seed}); people found at 2D-joint-box IoU >= "
          f"{MATCH_IOU:g}\n")  # fmt: skip
    print_tables(predicted, true_camera)
    return 0


if __name__ == "__main__":
    sys.exit(main())
