"""`mhr2 demo`: what `make demo` runs. Renders the embedded default scene, runs the
detector with the shipped weights, writes the input, an overlay and JSON, and prints
a summary against the exact ground truth."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from mhr2_ros.body import JOINT_NAMES, SKELETON_EDGES
from mhr2_ros.cli.options import add_detector_options, build_detector, camera_for
from mhr2_ros.io.atomic import atomic_path, atomic_write
from mhr2_ros.io.jsonl import frame_to_dict
from mhr2_ros.io.overlay import draw_overlay

log = logging.getLogger(__name__)
MATCH_RADIUS_PX = 50.0  # a detection within this many pixels of a GT pelvis counts as found


def add_parser(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="run the detector on the embedded default scene and compare with its ground truth",
        description="Render the embedded default scene (three Anny people of different ages on a floor, "
        "exact ground truth), run the detector with the shipped weights, write input.png, overlay.png, "
        "detections.json and ground_truth.json into --output and print a summary.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-o", "--output", type=Path, default=Path("demo_output"), help="output folder")
    add_detector_options(p)
    p.set_defaults(run=run)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _summary(result, truth) -> str:
    """Detections matched to ground truth on the 2D pelvis (Hungarian, radius in px)."""
    lines = [f"ground truth: {len(truth)} people; detected: {len(result)}"]
    if len(result) and len(truth):
        cost = np.linalg.norm(
            np.array([h.pelvis_2d for h in result.humans])[:, None] - np.array([t.pelvis_2d for t in truth.humans])[None],
            axis=-1,
        )
        rows, cols = linear_sum_assignment(cost)
        for r, c in zip(rows, cols):
            if cost[r, c] > MATCH_RADIUS_PX:
                continue
            t, h = truth.humans[c], result.humans[r]
            err = np.linalg.norm(h.position - t.position)
            lines.append(
                f"  {t.track_id}: age {t.shape[1]:.2f}, height {t.height:.2f} m (predicted {h.height:.2f} m), "
                f"depth {t.depth:.2f} m (predicted {h.depth:.2f} m), 3D pelvis error {err:.2f} m"
            )
    fov_err = abs(np.degrees(result.fov_y - truth.fov_y))
    lines.append(f"vertical FOV: true {np.degrees(truth.fov_y):.1f} deg, used {np.degrees(result.fov_y):.1f} deg "
                 f"({result.K_source}; error {fov_err:.1f} deg)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from mhr2_ros.cli.demo_scene import render_demo_scene

    detector = build_detector(args)
    image, truth = render_demo_scene(detector.body)
    h, w = image.shape[:2]
    result = detector(image, K=camera_for(args, h, w))
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    _write_png(out / "input.png", image)
    _write_png(out / "overlay.png", draw_overlay(image, result, detector.faces, SKELETON_EDGES))
    with atomic_write(out / "detections.json", "w") as f:
        json.dump(frame_to_dict(result, 0, "demo", None, JOINT_NAMES), f, indent=1)
    with atomic_write(out / "ground_truth.json", "w") as f:
        json.dump(frame_to_dict(truth, 0, "demo", None, JOINT_NAMES), f, indent=1)
    print(_summary(result, truth))
    print(f"outputs in {out}/: input.png, overlay.png, detections.json, ground_truth.json")
    if detector.metadata.get("trained") is False:
        print("note: these weights are untrained (" + detector.metadata.get("description", "placeholder")
              + "); see weights/README.md")
    return 0
