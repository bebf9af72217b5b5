#!/usr/bin/env python3
"""Depth fusion through each artefact of a depth camera: a diagnosis, not a timing.

    python benchmarks/depth_sensors.py                        # shipped weights, the benchmark, true camera
    python benchmarks/depth_sensors.py --image-seed 500 --clip-seed 600 --clips 10   # the tuning set
    python benchmarks/depth_sensors.py --predicted-camera --weights RUN/model.safetensors

`mhr2 eval --depth` measures one depth camera per run. This script renders the synthetic
frames once and runs the detector over them with no depth (RGB), the exact rendered depth,
each artefact of evaluation/depth_sensor.py alone at the stereo preset's value (fattening,
which the preset lacks, at FATTENING_PX), and the whole stereo preset (with its 6 m range,
with 10 m, and with fattening at 10 m), and prints one table: MRPE (95%
bootstrap interval), MRPE of people nearer and farther than NEAR_M, the range of the
per-distance medians of predicted / true depth, and the F1. Detection is the same in every row (fusion moves people along
their rays only), so the rows compare the same people. No tracker runs.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

import torch

from benchmark_set import add_set_options, set_from_args  # benchmarks/ (the script's folder is on the path)
from machine import describe
from mhr2_ros.evaluation.benchmark import DISTANCE_BINS_M, distance_labels
from mhr2_ros.evaluation.depth_sensor import STEREO, DepthSensor, DepthSensorConfig
from mhr2_ros.evaluation.runner import Sequence, evaluate, synthetic_sequences
from mhr2_ros.inference.detector import Detector

NEAR_M = DISTANCE_BINS_M[1]  # the table splits the MRPE at this true distance, meters (5: a bin edge)
FATTENING_PX = 2  # not in the stereo preset: its own rows, alone and added to the preset
NO_DEPTH = None  # the RGB row: the detector gets no depth image


def sensors() -> dict:
    """Row name -> DepthSensorConfig (NO_DEPTH for RGB): each artefact alone at STEREO's value."""
    one = DepthSensorConfig()
    return {
        "RGB (no depth)": NO_DEPTH,
        "exact": one,
        f"noise {STEREO.noise:g} z^2 m": replace(one, noise=STEREO.noise),
        f"noise correlated over {STEREO.correlation:g} px": replace(one, noise=STEREO.noise,
                                                                    correlation=STEREO.correlation),
        f"flying pixels {STEREO.edge_width} px": replace(one, edge_width=STEREO.edge_width),
        f"misregistered {STEREO.shift}": replace(one, shift=STEREO.shift),
        f"near surfaces fattened {FATTENING_PX} px": replace(one, fattening=FATTENING_PX),
        f"dropout {100 * STEREO.dropout:g}%": replace(one, dropout=STEREO.dropout),
        f"range {STEREO.max_range:g} m": replace(one, max_range=STEREO.max_range),
        "stereo preset, 10 m range": replace(STEREO, max_range=10.0),
        "stereo preset": STEREO,
        f"stereo preset fattened {FATTENING_PX} px, 10 m range": replace(STEREO, max_range=10.0,
                                                                          fattening=FATTENING_PX),
    }  # fmt: skip


def split_mrpe(by_distance: dict) -> tuple:
    """(MRPE nearer than NEAR_M, MRPE from NEAR_M on) from `Evaluator.by_distance`'s bins, each
    bin weighted by the people it found."""
    near_labels = set(distance_labels()[: DISTANCE_BINS_M.index(NEAR_M) + 1])
    sums = {True: [0.0, 0.0], False: [0.0, 0.0]}  # near? -> [sum of MRPE x found, found]
    for label, row in by_distance.items():
        if row["mrpe"] is None:
            continue
        found = row["gt_people"] * row["recall"]
        side = sums[label in near_labels]
        side[0] += row["mrpe"] * found
        side[1] += found
    return tuple(total / found if found else None for total, found in (sums[True], sums[False]))


def measure(detector, frames, gt_intrinsics: bool, config, floor=None) -> dict:
    """One row: the detector over `frames` with the depth camera `config` (NO_DEPTH: none) and
    `floor` (runner.evaluate's; None: no floor)."""
    sensor = None if config is NO_DEPTH else DepthSensor(config)
    report = evaluate(detector, frames, gt_intrinsics, None, depth_sensor=sensor, floor=floor)
    near, far = split_mrpe(report.by_distance)
    ratios = [r["depth_ratio"] for r in report.by_distance.values() if r["depth_ratio"] is not None]
    return {"mrpe": report.overall["mrpe"], "interval": report.intervals().get("mrpe"), "near": near, "far": far,
            "f1": report.overall["f1"], "ratio_range": (min(ratios), max(ratios)) if ratios else None}  # fmt: skip


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def print_table(rows: dict, first_column: str = "depth camera") -> None:
    print(f"| {first_column} | MRPE (95% interval) | MRPE < {NEAR_M:g} m | MRPE >= {NEAR_M:g} m "
          "| depth ratio, per-distance medians | F1 |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        interval = "" if r["interval"] is None else f" ({r['interval'][0]:.3f}-{r['interval'][1]:.3f})"
        spread = "n/a" if r["ratio_range"] is None else f"{r['ratio_range'][0]:.2f}-{r['ratio_range'][1]:.2f}"
        print(f"| {name} | {fmt(r['mrpe'])} m{interval} | {fmt(r['near'])} | {fmt(r['far'])} | {spread} "
              f"| {fmt(r['f1'])} |")  # fmt: skip


def setup(description: str, argv, rows_differ_by: str):
    """Parse the set options and --predicted-camera, load the weights and render the frames once:
    (args, spec, detector, frames)."""
    parser = argparse.ArgumentParser(description=description)
    add_set_options(parser)
    parser.add_argument("--predicted-camera", action="store_true",
                        help=f"the detector predicts the FOV (default: it gets the true intrinsics, so the rows "
                        f"differ by {rows_differ_by} alone)")  # fmt: skip
    args = parser.parse_args(argv)
    spec = set_from_args(parser, args)
    detector = Detector.from_checkpoint(args.weights, device="cpu")
    frames = [Sequence(s.name, list(s.frames), s.length, tracked=False) for s in synthetic_sequences(spec, detector.body)]
    return args, spec, detector, frames


def print_header(args, spec, note: str) -> None:
    """The command, the machine and the set the table was measured on."""
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights}; {spec.images} images (seed {spec.image_seed}), {spec.clips} clips of "
          f"{spec.clip_frames} frames (seeds from {spec.clip_seed}); "
          f"{'predicted' if args.predicted_camera else 'true'} camera; {note}\n")  # fmt: skip


def main(argv=None) -> int:
    args, spec, detector, frames = setup(__doc__.split("\n\n")[0], argv, "depth")
    with torch.inference_mode():
        rows = {name: measure(detector, frames, not args.predicted_camera, config) for name, config in sensors().items()}
    print_header(args, spec, "sensor seed 0 in every row")
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
