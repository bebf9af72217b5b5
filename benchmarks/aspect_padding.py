#!/usr/bin/env python3
"""Images of other shapes than the training crops': the aspect padding's three settings. A
diagnosis, not a timing.

    python benchmarks/aspect_padding.py --image-seed 500                 # the tuning images
    python benchmarks/aspect_padding.py --image-seed 500 --gt-intrinsics
    python benchmarks/aspect_padding.py --sizes 432x288,576x288 --weights RUN/model.safetensors

The benchmark's independent images (its people, distances and vertical FOV range) rendered at
each of --sizes, run with the paper's padding (to the nearest training aspect ratio, rows above
and below a wide image included), with the sides only (`"inference": {"pad_rows": false}` in a
checkpoint's JSON) and with none (`--no-pad`). A setting that gives an image the same network input
as another is run once and shares its row ("same as ..."). Predicted FOV unless --gt-intrinsics.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from typing import Dict, List, Tuple

import numpy as np
import torch

from benchmark_set import add_set_options, fmt, image_set_and_detector, parse_list  # the script folder is on the path
from machine import describe
from mhr2_ros.evaluation.benchmark import Evaluator, ignored_people
from mhr2_ros.evaluation.runner import synthetic_sequences
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.preprocess import nearest_aspect, padded_canvas
from mhr2_ros.training.synthetic.truth import to_frame_result

# (row label, InferenceConfig.pad_to_train_aspect, InferenceConfig.pad_rows)
SETTINGS = (("nearest aspect (paper)", True, True), ("sides only", True, False), ("none", False, True))
DEFAULT_SIZES = "288x512,384x384,360x288,384x288,432x288,576x288,672x288"


def parse_size(item: str) -> Tuple[int, int]:
    """'WxH' -> (W, H); ValueError saying what is wrong."""
    try:
        w, h = (int(v) for v in item.lower().split("x"))
    except ValueError:
        raise ValueError("is not WIDTHxHEIGHT (e.g. 432x288)") from None
    if w < 32 or h < 32:
        raise ValueError("is too small (at least 32x32)")
    return w, h


def measure(detector: Detector, frames, gt_intrinsics: bool) -> Dict[str, Dict]:
    """Setting label -> Evaluator.summary(), or "same as LABEL" for a setting whose input repeats one."""
    hw = frames[0].image.shape[:2]
    out, seen = {}, {}
    for label, pad, rows in SETTINGS:
        detector.cfg = dataclasses.replace(detector.cfg, pad_to_train_aspect=pad, pad_rows=rows)
        geom = detector.input_geometry(*hw)
        if geom in seen:
            out[label] = f"same as {seen[geom]}"
            continue
        seen[geom] = label
        ev = Evaluator()
        with torch.inference_mode():
            for frame in frames:
                truth = to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX)
                K = np.asarray(frame.truth.K, np.float64) if gt_intrinsics else None
                ev.add(detector(frame.image, K=K), truth, ignored_people(frame.truth, truth))
        out[label] = ev.summary()
    return out


def table_rows(size: Tuple[int, int], ratios, results: Dict[str, Dict]) -> List[str]:
    w, h = size
    nearest, (canvas_w, canvas_h) = nearest_aspect(w, h, ratios), padded_canvas(w, h, ratios)
    side = "sides" if canvas_w > w else ("rows" if canvas_h > h else "nothing")
    rows = []
    for label, s in results.items():
        head = f"| {w}x{h} ({w / h:.2f}; nearest {nearest:g}, pads {side}) | {label} |"
        if isinstance(s, str):
            rows.append(f"{head} {s} | | | | |")
        else:
            rows.append(f"{head} {fmt(s['f1'], '.3f')} | {fmt(s['pa_mpjpe'], '.1f')} | {fmt(s['mrpe'], '.3f')} | "
                        f"{fmt(s['fov_error'], '.2f')} | {fmt(s['fov_bias'], '+.2f')} |")
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_set_options(parser)
    parser.add_argument("--sizes", default=DEFAULT_SIZES,
                        help="image sizes WxH, comma-separated (default: %(default)s)")
    parser.add_argument("--gt-intrinsics", action="store_true", help="give the detector the true K")
    args = parser.parse_args(argv)
    sizes = parse_list(parser, "--sizes", args.sizes, parse_size)
    spec, detector = image_set_and_detector(parser, args)
    ratios = detector.model_cfg.train_aspect_ratios
    print("command: python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"machine: {describe('cpu')}")
    print(f"config: {args.weights} (training aspects {', '.join(f'{r:g}' for r in ratios)}); {spec.images} images "
          f"(seed {spec.image_seed}) at each size, vertical FOV {spec.fov_deg[0]:g}-{spec.fov_deg[1]:g} deg; "
          f"{'true K' if args.gt_intrinsics else 'predicted FOV'}\n")
    print("| image (aspect) | padding | F1 | PA-MPJPE (mm) | MRPE (m) | FOV error (deg) | FOV bias (deg) |")
    print("|---|---|---|---|---|---|---|")
    for w, h in sizes:
        sized = dataclasses.replace(spec, size=(w, h))
        frames = [f for s in synthetic_sequences(sized, detector.body) for f in s.frames]
        for line in table_rows((w, h), ratios, measure(detector, frames, args.gt_intrinsics)):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
