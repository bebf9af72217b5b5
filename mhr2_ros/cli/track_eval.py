"""`mhr2 track-eval`: MOT metrics of the tracker (IDF1, MOTA, HOTA, ...) on simulated
detection streams (`--simulate`) or on synthetic clips written by `mhr2 synth`.

    mhr2 track-eval --simulate --scenario all          # crossing, occlusion, crowd streams
    mhr2 track-eval clips/a clips/b                    # detector (default weights) + tracker
    mhr2 track-eval clips/a --gt-detections            # ground-truth detections: tracker errors alone
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Dict, List, Optional

from mhr2_ros.cli.options import add_detector_options, check_output_file, detector_options_given
from mhr2_ros.errors import InputError

log = logging.getLogger(__name__)
SIM_ONLY = ("scenario", "people", "frames", "seed", "miss_rate", "false_positive_rate", "feature_noise", "occlusion")
CLIP_ONLY = ("gt_detections", "gt_intrinsics")
SIM_DEFAULTS = {"scenario": "all", "frames": 300, "seed": 0, "miss_rate": 0.05, "false_positive_rate": 0.3,
                "feature_noise": 0.3, "occlusion": 40}  # --people: per scenario (tracking.scenarios.DEFAULT_PEOPLE)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "track-eval",
        help="measure the tracker (IDF1, MOTA, HOTA, ID switches) on simulated streams or synthetic clips",
        description="Run the tracker over sequences with ground truth and print one row of MOT metrics per "
        "sequence and an overall row (IDF1, MOTA, HOTA, DetA, AssA, ID switches, false positives, misses, "
        "frames). A tracked pelvis matches a ground-truth person within --match-radius meters; on clips a "
        "second table matches person boxes at IoU >= 0.5, the paper's protocol. "
        "Either --simulate (generated detection streams: crossing paths, occlusions, appearance noise, false "
        "positives, misses) or CLIP folders written by `mhr2 synth` (detector then tracker, or the ground-truth "
        "detections with --gt-detections).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument("clips", nargs="*", type=Path, metavar="CLIP_DIR", help="clip folders written by `mhr2 synth`")
    p.add_argument("--tracker-config", type=Path, default=None, metavar="YAML",
                   help="tracker constants (TrackerConfig fields; default: config/tracker.yaml)")
    p.add_argument("--match-radius", type=float, default=None, metavar="METERS",
                   help="max distance between a tracked and a ground-truth pelvis to match (default 0.5)")
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the numbers to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default 1: the tracker's feature kernel is many small ops, which extra "
                   "threads slow down on a busy CPU; more can speed up the detector on an idle machine)")
    g = p.add_argument_group("simulated streams (--simulate)")
    g.add_argument("--simulate", action="store_true", help="evaluate on generated detection streams, not clips")
    g.add_argument("--scenario", choices=("crossing", "occlusion", "crowd", "all"), default=None,
                   help="crossing: pairs crossing paths (at equal depths, or the farther one hidden while "
                   "passed); occlusion: everyone hidden once; crowd: 12 people, half hidden once (default all)")
    g.add_argument("--people", type=int, default=None, help="people per stream (default: crossing 6, occlusion 6, "
                   "crowd 12)")
    g.add_argument("--frames", type=int, default=None, help="frames per stream at 30 Hz (default 300)")
    g.add_argument("--seed", type=int, default=None, help="seed of paths, occlusions and noise (default 0)")
    g.add_argument("--miss-rate", type=float, default=None, help="probability that a visible person is not "
                   "detected in a frame (default 0.05)")
    g.add_argument("--false-positive-rate", type=float, default=None,
                   help="false detections per frame, Poisson mean (default 0.3)")
    g.add_argument("--feature-noise", type=float, default=None, help="std of the appearance-feature noise; "
                   "identity features have std 1 (default 0.3)")
    g.add_argument("--occlusion", type=int, default=None, metavar="MAX_FRAMES",
                   help="longest hidden interval in frames (default 40; the tracker forgets after 50)")
    g = p.add_argument_group("synthetic clips (CLIP_DIR...)")
    g.add_argument("--gt-detections", action="store_true",
                   help="feed the ground-truth people in view (exact pelvis, no appearance feature) instead of the "
                   "detector's output: separates tracker errors from detector errors")
    g.add_argument("--gt-intrinsics", action="store_true",
                   help="give the detector the clip's true intrinsics (default: --fov/--intrinsics, else predicted)")
    add_detector_options(p)
    p.set_defaults(run=run)


def _check_mode(args: argparse.Namespace) -> None:
    """One mode at a time, and no option of the other mode."""
    if args.simulate == bool(args.clips):
        raise InputError("give either --simulate or one or more clip folders written by `mhr2 synth`"
                         if not args.simulate else "--simulate takes no clip folders; give one or the other")
    wrong = CLIP_ONLY if args.simulate else SIM_ONLY
    given = [n for n in wrong if getattr(args, n) not in (None, False)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise InputError(f"{flags}: only for {'clip folders' if args.simulate else '--simulate'}")
    if args.simulate or args.gt_detections:  # no detector runs: its options would be ignored
        given = detector_options_given(args)
        if given:
            raise InputError(f"{', '.join(given)}: no detector runs with "
                             f"{'--simulate' if args.simulate else '--gt-detections'}")  # fmt: skip
    if args.gt_intrinsics and (args.fov is not None or args.intrinsics):
        raise InputError("--gt-intrinsics gives the detector the true camera: drop --fov / --intrinsics")
    if args.match_radius is not None and not args.match_radius > 0:
        raise InputError(f"--match-radius must be > 0 meters, got {args.match_radius}")
    check_output_file("--json", args.json)  # before the run


def run(args: argparse.Namespace) -> int:
    from mhr2_ros.evaluation.mot import print_table
    from mhr2_ros.evaluation.track_eval import TRACK_MATCH_IOU, TRACK_MATCH_M, evaluate_sequences
    from mhr2_ros.tracking import load_tracker_config

    _check_mode(args)
    if args.threads < 1:
        raise InputError(f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    tracker_cfg = load_tracker_config(args.tracker_config)
    radius = args.match_radius if args.match_radius is not None else TRACK_MATCH_M
    if args.simulate:
        sequences, info = _run_simulated(args, tracker_cfg)
    else:
        sequences, info = _run_clips(args, tracker_cfg)
    rows = evaluate_sequences(sequences, radius)
    print(info["summary"] + f"; a tracked pelvis matches within {radius:g} m")
    print_table(rows)
    box_rows = None
    if not args.simulate:  # clips have person boxes: also the paper's protocol
        box_rows = evaluate_sequences(sequences, boxes=True)
        print(f"\nperson boxes (the paper's protocol): a tracked box matches at IoU >= {TRACK_MATCH_IOU:g}")
        print_table(box_rows)
    if args.json is not None:
        _write_json(args.json, rows, box_rows, info, tracker_cfg, radius)
        print(f"wrote {args.json}")
    return 0


def _progress(args: argparse.Namespace, total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="track-eval", disable=args.no_progress or getattr(args, "quiet", False))


def _run_simulated(args: argparse.Namespace, tracker_cfg):
    from mhr2_ros.evaluation.track_eval import track_simulated
    from mhr2_ros.tracking import Tracker
    from mhr2_ros.tracking import simulate as sim
    from mhr2_ros.tracking.scenarios import SCENARIOS, ScenarioConfig, scenario_stream

    opt = {k: (getattr(args, k) if getattr(args, k) is not None else v) for k, v in SIM_DEFAULTS.items()}
    _check_simulation_values(opt, args.people)
    names = SCENARIOS if opt["scenario"] == "all" else (opt["scenario"],)
    shortest = min(ScenarioConfig.min_occlusion_frames, opt["occlusion"])
    scen = ScenarioConfig(people=args.people, frames=opt["frames"], seed=opt["seed"],
                          min_occlusion_frames=shortest, max_occlusion_frames=opt["occlusion"])
    sim_cfg = sim.SimConfig(miss_rate=opt["miss_rate"], false_positive_rate=opt["false_positive_rate"],
                            feature_noise=opt["feature_noise"])
    sequences = []
    with _progress(args, len(names) * scen.frames) as bar:
        for name in names:
            frames = scenario_stream(name, scen, sim_cfg)
            sequences.append(track_simulated(name, frames, Tracker(tracker_cfg), bar.update))
    summary = (f"simulated streams: {scen.frames} frames at {scen.fps:g} Hz, seed {scen.seed}, occlusions up to "
               f"{scen.max_occlusion_frames} frames, miss rate {sim_cfg.miss_rate:g}, "
               f"{sim_cfg.false_positive_rate:g} false positives/frame, feature noise {sim_cfg.feature_noise:g}")
    info = {"mode": "simulate", "summary": summary, "scenario": dataclasses.asdict(scen),
            "simulation": dataclasses.asdict(sim_cfg)}
    return sequences, info


def _check_simulation_values(opt: Dict, people) -> None:
    if people is not None and people < 1:
        raise InputError(f"--people must be >= 1, got {people}")
    if opt["frames"] < 2:
        raise InputError(f"--frames must be >= 2, got {opt['frames']}")
    if not 0.0 <= opt["miss_rate"] <= 1.0:
        raise InputError(f"--miss-rate is a probability in [0, 1], got {opt['miss_rate']}")
    if not opt["false_positive_rate"] >= 0.0:
        raise InputError(f"--false-positive-rate must be >= 0 per frame, got {opt['false_positive_rate']}")
    if not opt["feature_noise"] >= 0.0:
        raise InputError(f"--feature-noise must be >= 0, got {opt['feature_noise']}")
    if opt["occlusion"] < 1:
        raise InputError(f"--occlusion must be >= 1 frame, got {opt['occlusion']}")


def _open_clips(paths: List[Path]):
    """(row name, ClipReader) per folder, with errors that say what a clip folder is."""
    from mhr2_ros.training.synthetic.dataset import load_clip

    readers = []
    for path in paths:
        if not path.is_dir():
            raise InputError(f"{path}: not a folder; expected a clip folder written by `mhr2 synth` (with clip.json)")
        reader = load_clip(path)
        if reader.info.get("independent"):
            raise InputError(f"{path}: written with --independent (every frame a new scene), not a clip to track")
        readers.append(reader)
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        names = [str(p) for p in paths]
    if len(set(names)) != len(names):
        raise InputError(f"a clip folder is given twice: {[str(p) for p in paths]}")
    return list(zip(names, readers))


def _run_clips(args: argparse.Namespace, tracker_cfg):
    from mhr2_ros.evaluation.track_eval import track_clip
    from mhr2_ros.tracking import Tracker

    clips = _open_clips(args.clips)
    detect, source = None, "ground-truth detections (pelvis term only: no appearance features)"
    if not args.gt_detections:
        detect = _detect_fn(args)
        source = "random-init detector" if args.random_init else f"detector {args.weights}"
    sequences = []
    with _progress(args, sum(len(r) for _, r in clips)) as bar:
        for name, reader in clips:
            sequences.append(track_clip(name, reader, Tracker(tracker_cfg), detect, bar.update))
    summary = f"{len(clips)} clip(s), {sum(len(s) for s in sequences)} frames, {source}"
    info = {"mode": "clips", "summary": summary, "clips": [str(p) for p in args.clips],
            "detections": "ground truth" if args.gt_detections else "detector",
            "weights": None if (args.gt_detections or args.random_init) else str(args.weights)}
    return sequences, info


def _detect_fn(args: argparse.Namespace):
    """frame -> FrameResult with the detector of the --weights/--config options."""
    from mhr2_ros.cli.options import build_detector, camera_for, check_camera_options

    check_camera_options(args)
    detector = build_detector(args)

    def detect(frame):
        h, w = frame.image.shape[:2]
        K = frame.truth.K if args.gt_intrinsics else camera_for(args, h, w)
        return detector(frame.image, K=K)

    return detect


def _write_json(path: Path, rows: Dict, box_rows: Optional[Dict], info: Dict, tracker_cfg, radius: float) -> None:
    """The 3D rows at the top level; for clips the person-box rows under "boxes"."""
    from mhr2_ros.evaluation.track_eval import OVERALL, TRACK_MATCH_IOU, json_metrics
    from mhr2_ros.io.atomic import atomic_write

    def table(r: Dict) -> Dict:
        return {"sequences": {k: json_metrics(v) for k, v in r.items() if k != OVERALL},
                OVERALL: json_metrics(r[OVERALL])}

    data = {k: v for k, v in info.items() if k != "summary"}
    data.update({"match_radius_m": radius, "tracker_config": dataclasses.asdict(tracker_cfg), **table(rows)})
    if box_rows is not None:
        data["boxes"] = {"match_iou": TRACK_MATCH_IOU, **table(box_rows)}
    with atomic_write(path, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True, allow_nan=False)
        f.write("\n")
