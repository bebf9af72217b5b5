#!/usr/bin/env python3
"""Tracker latency per frame against the number of people, on CPU (and tracking quality).

    python benchmarks/tracker.py                      # latency table, 1 5 10 20 50 people
    python benchmarks/tracker.py --people 10 --threads 1
    python benchmarks/tracker.py --quality            # IDF1 / MOTA / HOTA on simulated streams
    python benchmarks/tracker.py --camera-motion      # ... from a camera turning its head, with/without poses

Streams come from mhr2_ros.tracking.simulate (people walking, 4096-d features). Timing
starts once the feature bank is full (after `bank_frames` frames), so each frame
compares N detections against N x 50 bank rows. "knn" is the feature-bank part
(L1 distances, top-K, softmax, per-ID sums) inside the total.

Threads: the L1 kernel is many small torch ops. On a machine whose cores are busy with
other processes, torch's OpenMP threads wait for each other at every op and a frame can
take 10x longer with 2 threads than with 1 (measured: 53 ms vs 9 ms at 10 people); run
with --threads 1 (or OMP_WAIT_POLICY=PASSIVE) to see the difference on a shared CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import shlex
import statistics
import sys
import time

import numpy as np
import torch

from mhr2_ros.tracking import Tracker, TrackerConfig, load_tracker_config
from mhr2_ros.tracking import simulate as sim
from machine import describe  # benchmarks/machine.py (the script's folder is on the path)


def time_tracker(people: int, cfg: TrackerConfig, frames: int, seed: int = 0) -> dict:
    """Median / p90 milliseconds per update with `people` detections per frame."""
    warmup = cfg.bank_frames + 5
    stream = sim.generate(sim.crowd(people, warmup + frames, seed=seed), np.arange(warmup + frames) / 30.0,
                          sim.SimConfig(), seed=seed)
    tracker = Tracker(cfg)
    knn_times = []
    id_scores = tracker.bank.id_scores

    def timed(*args, **kw):  # measure the feature-bank share of each update
        t0 = time.perf_counter()
        out = id_scores(*args, **kw)
        knn_times.append(time.perf_counter() - t0)
        return out

    total = []
    for i, f in enumerate(stream):
        if i == warmup:
            knn_times.clear()
            tracker.bank.id_scores = timed
        t0 = time.perf_counter()
        tracks = tracker.update(f.frame, f.stamp)
        if i >= warmup:
            total.append(time.perf_counter() - t0)
    ms = 1000 * np.array(total)
    return {"people": people, "tracks": len(tracks), "bank_rows": len(tracker.bank),
            "median": float(np.median(ms)), "p90": float(np.percentile(ms, 90)),
            "knn": 1000 * statistics.median(knn_times) if knn_times else 0.0}


def print_latency(rows) -> None:
    print(f"{'people':>6} {'tracks':>6} {'bank rows':>9} {'median ms':>10} {'p90 ms':>8} "
          f"{'knn ms':>8} {'rest ms':>8}")
    for r in rows:
        print(f"{r['people']:>6} {r['tracks']:>6} {r['bank_rows']:>9} {r['median']:>10.2f} {r['p90']:>8.2f} "
              f"{r['knn']:>8.2f} {r['median'] - r['knn']:>8.2f}")


QUALITY_FRAMES = 300  # frames per simulated stream of --quality (not --frames, the timed frames)


def quality(cfg: TrackerConfig, frames: int) -> None:
    """IDF1 / MOTA / HOTA on crowds with crossings, occlusions (10-40 frames), misses, false
    positives, for `cfg` with each orientation unit (the comparison this table makes)."""
    from mhr2_ros.evaluation import mot

    results = {}
    for noise in (3.0, 6.0):
        for unit in ("rad", "deg"):
            scores = []
            for seed in range(3):
                scores.append(run_stream(dataclasses.replace(cfg, angle_unit=unit), noise, frames, seed))
            results[f"angle_unit={unit} orient.noise={noise:g}deg"] = {
                k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    print(f"\n8 people, {frames} frames at 30 Hz, 4 occluded 10-40 frames, 5% misses, 0.3 false positives/frame,"
          " mean of 3 seeds; match radius 0.5 m")
    mot.print_table(results)


# (row name, head-turn amplitude deg, period s, whether the tracker gets the poses) of --camera-motion
CAMERA_MOTIONS = (("static camera", 0.0, 4.0, False), ("pan 30deg/4s, no poses", 30.0, 4.0, False),
                  ("pan 30deg/4s, poses", 30.0, 4.0, True), ("pan 45deg/3s, no poses", 45.0, 3.0, False),
                  ("pan 45deg/3s, poses", 45.0, 3.0, True))  # fmt: skip


def camera_motion(cfg: TrackerConfig, frames: int) -> None:
    """IDF1 / MOTA / HOTA of the --quality crowds seen by a camera turning its head left and right
    (yaw = amplitude sin(2 pi t / period)), with and without its poses given to the tracker."""
    from mhr2_ros.evaluation import mot

    results = {}
    for name, amplitude, period, given in CAMERA_MOTIONS:
        poses = sim.panning_camera(np.arange(frames) / 30.0, amplitude, period)
        scores = [run_stream(cfg, 3.0, frames, seed, poses, given) for seed in range(3)]
        results[name] = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    print(f"\nthe --quality crowds (orient.noise=3deg) from a camera turning its head, {frames} frames, "
          "mean of 3 seeds; match radius 0.5 m in each frame's camera")
    mot.print_table(results)


def run_stream(cfg: TrackerConfig, orientation_noise: float, frames: int, seed: int, camera_poses=None,
               give_poses: bool = False) -> dict:
    from mhr2_ros.evaluation import mot

    walkers = sim.crowd(8, frames, seed=seed)
    rng = np.random.default_rng(seed)
    for w in walkers[:4]:
        start = int(rng.integers(20, frames - 60))
        w.hidden = [(start, start + int(rng.integers(10, 41)))]
    scfg = sim.SimConfig(miss_rate=0.05, false_positive_rate=0.3, orientation_noise_deg=orientation_noise)
    tracker, gt, pred = Tracker(cfg), [], []
    stream = sim.generate(walkers, np.arange(frames) / 30.0, scfg, seed=seed, camera_poses=camera_poses)
    for k, f in enumerate(stream):
        tracks = tracker.update(f.frame, f.stamp, camera_pose=camera_poses[k] if give_poses else None)
        gt.append([(i, p) for i, p, _ in f.gt])
        pred.append([(t.id, t.human.position) for t in tracks if t.is_visible])
    return mot.evaluate(gt, pred, threshold=0.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, nargs="+", default=[1, 5, 10, 20, 50])
    p.add_argument("--frames", type=int, default=100, help="timed frames per count, after the bank is full")
    p.add_argument("--config", default=None, help="tracker YAML (default: config/tracker.yaml)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quality", action="store_true", help="also print MOT metrics on simulated streams")
    p.add_argument("--camera-motion", action="store_true",
                   help="also print MOT metrics from a camera turning its head, with and without its poses")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_tracker_config(args.config)
    print("command:", " ".join(shlex.quote(a) for a in [sys.executable] + sys.argv))
    print(f"machine: {describe(cfg.device)}, {platform.system()} {platform.release()}, numpy {np.__version__}")
    print("config:", dataclasses.asdict(cfg))
    print()
    print_latency([time_tracker(n, cfg, args.frames) for n in args.people])
    if args.quality:
        quality(cfg, QUALITY_FRAMES)
    if args.camera_motion:
        camera_motion(cfg, QUALITY_FRAMES)


if __name__ == "__main__":
    main()
