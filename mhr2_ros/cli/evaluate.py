"""`mhr2 eval`: measure a model the way the paper does, on the fixed synthetic
benchmark (default) or on clips in the documented on-disk format (--data).

Prints one table (detection P/R/F1, MPJPE, PA-MPJPE, PVE, Abs-PVE, TA-PVE,
Pair-PA-MPJPE, MRPE, vertical-FOV error, and IDF1 / MOTA / HOTA on tracked clips)
with the demo model's targets, and writes the numbers as JSON (--json). Detection and
tracking are measured by the paper's protocols (2D-joint boxes at IoU 0.1; tracks on 2D
boxes at IoU 0.5) and by stricter tests beside them (boxes at IoU 0.5; tracks in 3D).
Headline metrics carry 95% bootstrap intervals (evaluation/uncertainty.py); the JSON keeps
the per-unit sums they come from, which `mhr2 compare` pairs between two runs, and every
found person's errors, which it pairs person by person.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Optional

from mhr2_ros.cli.depth_options import add_depth_options, depth_description, depth_sensor_from_args
from mhr2_ros.cli.floor_options import add_true_floor_options, true_floor_from_args
from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.cli.options import add_detector_options, build_detector, check_output_file
from mhr2_ros.evaluation.benchmark_spec import MATCH_IOU, TRAINING_SEED_MIN, SyntheticBenchmark
from mhr2_ros.io.atomic import atomic_write

if TYPE_CHECKING:  # the runner imports torch; the CLI's --help does not need it
    from mhr2_ros.evaluation.runner import Report

# (key, label, unit, format, target, "min" or "max"): the shipped model's targets (issue 7).
# Labels are formatted with the run's match IoU ({iou}).
ROWS = (
    ("precision", "detection precision", "", "{:.3f}", None, None),
    ("recall", "detection recall", "", "{:.3f}", None, None),
    ("f1", "detection F1 (2D-joint boxes overlap, IoU >= {iou:g})", "", "{:.3f}", 0.9, "min"),
    ("f1_box", "detection F1, stricter: boxes IoU >= 0.5", "", "{:.3f}", None, None),
    ("f1_joints", "detection F1, strictest: IoU >= 0.5 and 2D pose within 10%", "", "{:.3f}", None, None),
    ("mpjpe", "MPJPE", "mm", "{:.1f}", None, None),
    ("pa_mpjpe", "PA-MPJPE", "mm", "{:.1f}", 80.0, "max"),
    ("pve", "PVE", "mm", "{:.1f}", None, None),
    ("abs_pve", "Abs-PVE", "mm", "{:.1f}", None, None),
    ("ta_pve", "TA-PVE", "mm", "{:.1f}", None, None),
    ("pair_pa_mpjpe", "Pair-PA-MPJPE", "mm", "{:.1f}", None, None),
    ("orientation_error", "pelvis orientation error (mostly heading; MPJPE holds it, PA-MPJPE not)", "deg", "{:.1f}",
     None, None),
    ("heading_error", "heading error: the turn about the body's up axis alone (which way a person faces)", "deg",
     "{:.1f}", None, None),
    ("turned_away", "share of people found whose heading is off by more than 90 deg", "", "{:.3f}", None, None),
    ("back_to_camera", "share of people found with their back to the camera (facing > 120 deg from it)", "",
     "{:.3f}", None, None),
    ("back_to_camera_pred", "... predicted with their back to the camera (the network's share, to compare)", "",
     "{:.3f}", None, None),
    ("head_orientation_error", "head orientation error (head_<id>'s axes: where the face looks)", "deg", "{:.1f}",
     None, None),
    ("part_orientation_error", "body part orientation error, mean of the 15 REP-155 parts", "deg", "{:.1f}", None,
     None),
    ("mrpe", "MRPE", "m", "{:.3f}", 0.5, "max"),
    ("fov_error", "vertical FOV error", "deg", "{:.2f}", 8.0, "max"),
    ("fov_bias", "vertical FOV bias, predicted - true (< 0: too narrow, people placed too far)", "deg", "{:+.2f}",
     None, None),
    ("idf1_2d", "IDF1, tracked clips, 2D boxes IoU >= 0.5 (the paper's protocol)", "", "{:.3f}", 0.8, "min"),
    ("mota_2d", "MOTA, 2D boxes", "", "{:.3f}", None, None),
    ("idf1", "IDF1, tracked clips, 3D pelvis within 0.5 m (stricter)", "", "{:.3f}", 0.8, "min"),
    ("mota", "MOTA, 3D", "", "{:.3f}", None, None),
    ("hota", "HOTA, 3D", "", "{:.3f}", None, None),
    ("num_switches", "ID switches, 3D", "", "{:.0f}", None, None),
    ("idf1_2d_true_ids", "IDF1, 2D boxes, every found person given their true identity (a perfect "
     "association of these detections; the tracker's gap to it is what association can gain)", "", "{:.3f}",
     None, None),
    ("idf1_true_ids", "... 3D", "", "{:.3f}", None, None),
    ("track_orientation_error", "orientation error of the tracked people, the tracker's (walkers face their "
     "velocity)", "deg", "{:.1f}", None, None),
    ("track_orientation_error_network", "... the network's, same people", "deg", "{:.1f}", None, None),
    ("velocity_heading_share", "share of tracked people facing their velocity", "", "{:.2f}", None, None),
    ("velocity_heading_orientation_error", "orientation error of those, the tracker's", "deg", "{:.1f}", None,
     None),
    ("velocity_heading_orientation_error_network", "... the network's, same people", "deg", "{:.1f}", None, None),
    ("track_velocity_error", "velocity error of the tracked people (what navigation predicts with)", "m/s",
     "{:.3f}", None, None),
    ("track_velocity_error_median", "... median", "m/s", "{:.3f}", None, None),
    ("track_true_speed", "... their true speed (the error of reporting everyone standing still)", "m/s", "{:.3f}",
     None, None),
    ("velocity_heading_mpjpe", "MPJPE of those, the published body (turned whole)", "mm", "{:.1f}", None, None),
    ("velocity_heading_mpjpe_network", "... the network's, same people", "mm", "{:.1f}", None, None),
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a model on the synthetic benchmark or on a dataset",
        description="Run the detector (and the tracker on clips) over frames with ground truth and "
        "report detection precision/recall/F1 (2D-joint matching, the paper's protocol, and stricter "
        "counts), MPJPE, PA-MPJPE, PVE, Abs-PVE, TA-PVE, Pair-PA-MPJPE (mm), MRPE (m), vertical-FOV "
        "error (deg) and IDF1/MOTA/HOTA (on person boxes, as the paper, and in 3D), then "
        "recall, MRPE and predicted/true depth by distance from the camera, the pelvis orientation "
        "error (deg; on clips also the tracker's, whose walkers face their velocity), and how well the "
        "published pose covariance prior covers the errors (with the "
        "prior that would cover 68%, for config/detector.yaml). "
        "Without --data: the fixed synthetic benchmark (seeds below 1000; training uses >= 1000).",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--data", type=Path, nargs="+", default=None, metavar="DIR",
                   help="clips in the on-disk format (docs/dataset_format.md), or folders of clips; "
                   "clips written without --independent are also tracked")  # fmt: skip
    spec = SyntheticBenchmark()
    p.add_argument("--images", type=int, default=spec.images, help="synthetic benchmark: independent images")
    p.add_argument("--clips", type=int, default=spec.clips, help="synthetic benchmark: tracked clips")
    p.add_argument("--clip-frames", type=int, default=spec.clip_frames, help="synthetic benchmark: frames per clip")
    p.add_argument("--image-seed", type=int, default=spec.image_seed,
                   help="synthetic benchmark: seed of the image set; another seed below "
                   f"{TRAINING_SEED_MIN} gives a tuning set disjoint from the benchmark and from training "
                   "data (weights/README.md chooses settings on --image-seed 500 --clip-seed 600 --clips 10)")
    p.add_argument("--clip-seed", type=int, default=spec.clip_seed,
                   help="synthetic benchmark: seed of the first clip (clip i uses it + i)")
    p.add_argument("--gt-intrinsics", action="store_true",
                   help="give the detector the true camera intrinsics (default: it predicts the FOV)")
    add_depth_options(p)
    add_true_floor_options(p)
    p.add_argument("--no-track", action="store_true", help="skip the tracking metrics")
    p.add_argument("--tracker-config", type=Path, default=None, metavar="YAML",
                   help="tracker settings (YAML/JSON with fields of config/tracker.yaml); unset: config/tracker.yaml")
    p.add_argument("--match-iou", type=float, default=MATCH_IOU, metavar="IOU",
                   help="a detection is a true positive when the boxes around its 2D joints and the person's "
                   "overlap at least this much (the paper's protocol, AGORA's evaluation: 0.1); the stricter "
                   "counts at 0.5 are reported as well, and 0.5 here measures every metric on those pairs")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the numbers to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_detector_options(p, camera=False)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from mhr2_ros.errors import InputError
    from mhr2_ros.evaluation.runner import disk_sequences, evaluate, synthetic_sequences
    from mhr2_ros.tracking import Tracker, load_tracker_config

    spec = benchmark_from_args(args)
    if args.no_track and args.tracker_config is not None:
        raise InputError(f"--tracker-config {args.tracker_config} has no use with --no-track; drop one of them")
    tracker_config = None if args.no_track else load_tracker_config(args.tracker_config)
    sensor = depth_sensor_from_args(args)
    floor = true_floor_from_args(args)
    check_output_file("--json", args.json)  # before the evaluation, not after it
    detector = build_detector(args)
    if args.data:
        sequences, source = disk_sequences(args.data), "datasets: " + ", ".join(map(str, args.data))
    else:
        sequences, source = synthetic_sequences(spec, detector.body), f"synthetic benchmark {spec}"
    factory = None if tracker_config is None else (lambda: Tracker(tracker_config))
    start = time.perf_counter()
    with torch.inference_mode(), tqdm(total=sum(s.length for s in sequences), unit="frame", desc="eval",
                                      disable=args.no_progress or getattr(args, "quiet", False)) as bar:  # fmt: skip
        report = evaluate(detector, sequences, args.gt_intrinsics, factory, progress=bar.update,
                          match_iou=args.match_iou, depth_sensor=sensor, floor=floor)  # fmt: skip
    seconds = time.perf_counter() - start
    metrics, bounds = {**report.overall, **report.tracking}, report.intervals()  # bounds: a bootstrap, once
    weights = "random init" if args.random_init else str(args.weights)
    selection = {"score_threshold": detector.cfg.score_threshold, "nms_distance": detector.cfg.nms_distance,
                 "merge_radius": detector.merge_radius}  # fmt: skip
    print(f"weights: {weights}")
    print(f"runtime: {detector.runtime}")
    print(f"data: {source}")
    print(f"camera: {'true intrinsics' if args.gt_intrinsics else 'predicted FOV'}; {seconds:.0f} s")
    if sensor is not None:
        print(f"depth camera: {depth_description(args, sensor)} (people scaled to it; not the paper's RGB-only protocol)")
    if floor is not None:
        print(f"floor: {floor.describe()} (people stood on it; not the paper's RGB-only protocol)")
    print("selection: " + ", ".join(f"{k} {v:g}" for k, v in selection.items()))
    print(f"padding: {detector.padding}")
    print_report(report, metrics, bounds)
    if args.json:
        payload = {"weights": weights, "runtime": detector.runtime, "data": source, "gt_intrinsics": args.gt_intrinsics,
                   "depth_camera": depth_description(args, sensor) if sensor is not None else None,
                   "floor": floor.describe() if floor is not None else None,
                   "selection": selection,
                   "padding": detector.padding,
                   "tracker": None if tracker_config is None else dataclasses.asdict(tracker_config),
                   "metrics": metrics, "intervals": bounds,
                   "per_sequence": report.per_sequence, "by_distance": report.by_distance,
                   "units": [u.to_json() for u in report.units],  # what `mhr2 compare` resamples
                   "people": [p.to_json() for p in report.people],  # what it pairs person by person
                   # provenance; not the checkpoint's own recorded evaluation, which this run may replace
                   "model_metadata": {k: v for k, v in detector.metadata.items() if k != "evaluation"}}  # fmt: skip
        with atomic_write(args.json, "w") as f:
            json.dump(payload, f, indent=1, default=str)
        print(f"wrote {args.json}")
    return 0


def benchmark_from_args(args: argparse.Namespace) -> SyntheticBenchmark:
    """The synthetic benchmark the flags ask for, after checking every flag; InputError names the bad one."""
    from mhr2_ros.errors import InputError

    for name in ("images", "clips", "clip_frames", "image_seed", "clip_seed"):
        if getattr(args, name) < 0:
            raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(args, name)}")
    spec = SyntheticBenchmark()
    sizes = {"images": spec.images, "clips": spec.clips, "clip_frames": spec.clip_frames,
             "image_seed": spec.image_seed, "clip_seed": spec.clip_seed}
    changed = ["--" + k.replace("_", "-") for k, v in sizes.items() if getattr(args, k) != v]
    if args.data and changed:
        raise InputError(f"{', '.join(changed)}: only for the synthetic benchmark, not with --data")
    if not args.data and args.images == 0 and args.clips * args.clip_frames == 0:
        raise InputError("nothing to evaluate: --images, and --clips with --clip-frames, are all 0")
    if not 0.0 < args.match_iou <= 1.0:
        raise InputError(f"--match-iou must be in (0, 1], got {args.match_iou}")
    for path in args.data or ():
        if not path.exists():
            raise InputError(f"--data {path}: no such file or folder")
    try:
        return dataclasses.replace(spec, images=args.images, clips=args.clips, clip_frames=args.clip_frames,
                                   image_seed=args.image_seed, clip_seed=args.clip_seed)  # fmt: skip
    except ValueError as e:  # a seed reaching into the training seeds
        raise InputError(f"--image-seed / --clip-seed: {e}") from None


def print_report(report: Report, metrics: Dict[str, Optional[float]], bounds: Dict) -> None:
    """The metric table with its intervals, the error types and the by-distance table of `report`."""
    from mhr2_ros.evaluation.uncertainty import clip_count, thin_note

    print(format_table(metrics, bounds))
    print(f"interval: 95% bootstrap over {len(report.units)} units (images; clips whole, "
          f"{clip_count(report.units)} behind the IDF1 intervals); `mhr2 compare` tells two runs apart")
    caution = thin_note(report.units)
    if caution:
        print(caution)
    print("\nDetection errors (TIDE-style types, mhr2_ros/evaluation/errors.py):")
    print(format_error_table(metrics))
    print("\nBy distance from the camera (true pelvis depth; MRPE and depth ratio over the people found):")
    print(format_distance_table(report.by_distance))
    print("\nPose covariance prior (Human.pose; mhr2_ros/inference/covariance.py) against these errors:")
    print(format_covariance_table(metrics))


def format_table(metrics: Dict[str, Optional[float]], bounds: Optional[Dict] = None) -> str:
    """Markdown table: metric, value, its 95% interval where `bounds` has one, target, met
    ("within noise" when the interval holds the target)."""
    lines = ["| metric | value | 95% interval | target | met |", "|---|---|---|---|---|"]
    iou = metrics.get("match_iou", MATCH_IOU)
    for key, label, unit, fmt, target, sense in ROWS:
        label = label.format(iou=iou)
        value = metrics.get(key)
        suffix = f" {unit}" if unit else ""
        shown = "n/a" if value is None else fmt.format(value) + suffix
        low_high = (bounds or {}).get(key)
        interval = "" if low_high is None else f"{fmt.format(low_high[0])} to {fmt.format(low_high[1])}"
        goal = "" if target is None else ("≥ " if sense == "min" else "≤ ") + fmt.format(target) + suffix
        met = ""
        if target is not None and value is not None:
            met = "yes" if (value >= target if sense == "min" else value <= target) else "no"
            if low_high is not None and low_high[0] <= target <= low_high[1]:
                met += " (within noise)"  # the interval holds the target: another sample could flip it
        lines.append(f"| {label} | {shown} | {interval} | {goal} | {met} |")
    return "\n".join(lines)


ERROR_ROWS = (
    ("errors_wrong_body", "wrong body: found at the person's pelvis, joint box fails (1 FP + 1 FN)"),
    ("errors_duplicate", "duplicate: a second detection on a person (FP)"),
    ("errors_background", "background: on no counted person (FP)"),
    ("errors_not_found", "not found: nothing on the person (FN)"),
)


def format_error_table(metrics: Dict[str, Optional[float]]) -> str:
    """Markdown table of the error types, and the F1 with every wrong body right."""
    lines = ["| error | count |", "|---|---|"]
    lines += [f"| {label} | {metrics[key]:.0f} |" for key, label in ERROR_ROWS]
    lines.append(f"F1 if every wrong body were right: {metrics['f1_bodies_fixed']:.3f} (now {metrics['f1']:.3f})")
    return "\n".join(lines)


def format_distance_table(by_distance: Dict[str, Dict[str, Optional[float]]]) -> str:
    """Markdown table: distance bin, counted people, recall, MRPE, median predicted / true depth,
    median heading error."""
    lines = ["| distance | people | recall | MRPE | depth ratio (pred / true, median) | heading error (median) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for label, row in by_distance.items():
        mrpe = "n/a" if row["mrpe"] is None else f"{row['mrpe']:.3f} m"
        ratio = "n/a" if row["depth_ratio"] is None else f"{row['depth_ratio']:.2f}"
        heading = "n/a" if row.get("heading_error") is None else f"{row['heading_error']:.1f} deg"
        lines.append(f"| {label} | {row['gt_people']} | {row['recall']:.3f} | {mrpe} | {ratio} | {heading} |")
    return "\n".join(lines)


# (what the sigma is of, CovariancePrior field): rows of the covariance table
COVARIANCE_ROWS = (
    ("along the ray, network depth", "depth_sigma_ratio"),
    ("along the ray, depth image", "measured_depth_sigma_ratio"),
    ("along the ray, floor", "floor_depth_sigma_ratio"),
    ("along the ray, K predicted (factor)", "predicted_fov_depth_factor"),
    ("across the ray, px", "pixel_sigma"),
    ("across the ray, K predicted, px", "predicted_fov_pixel_sigma"),
    ("heading (about the body's up axis), rad", "heading_sigma"),
    ("heading of a walking track (its velocity's), rad", "velocity_heading_sigma"),
    ("tilt, rad per horizontal axis", "tilt_sigma"),
)


def format_covariance_table(metrics: Dict[str, Optional[float]]) -> str:
    """Markdown table: each prior field these frames measured, its value, the value that would cover
    68% of them (config/detector.yaml takes it), and the coverage of the prior's region."""
    from mhr2_ros.inference.covariance import CovariancePrior

    prior = CovariancePrior()
    lines = ["| sigma | parameter | now | calibrated (68%) |", "|---|---|---|---|"]
    for label, name in COVARIANCE_ROWS:
        calibrated = metrics.get(f"calibrated_{name}")
        if calibrated is not None:
            lines.append(f"| {label} | `{name}` | {getattr(prior, name):g} | {calibrated:.3g} |")
    kinds = ("along", "across", "heading", "tilt", "velocity_heading")
    coverage = [(kind, metrics.get(f"covariance_{kind}_coverage")) for kind in kinds]
    shown = ", ".join(f"{kind} {value:.2f}" for kind, value in coverage if value is not None)
    lines.append("people inside the prior's 68% region (0.68 when calibrated): " + (shown or "none found"))
    return "\n".join(lines)
