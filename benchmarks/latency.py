#!/usr/bin/env python3
"""Per-stage latency of the Detector: preprocess, encoder, decoder, heads, body, postprocess.

    python benchmarks/latency.py --preset tiny --people 5
    python benchmarks/latency.py --preset large --people 5 --device cuda   # + bf16, + compile
    python benchmarks/latency.py --onnx     # + the same network exported, run by ONNX Runtime

The network is randomly initialised (latency does not depend on the weights);
exactly --people queries are selected so that the body model and the
post-processing see that many people. Prints a table of medians in ms; "network" is
encoder + decoder + heads (ONNX Runtime runs them as one graph), "x fp32" the first row's
total over this row's (> 1: faster), measured in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from machine import describe  # benchmarks/machine.py (the script's folder is on the path)
from mhr2_ros.config import InferenceConfig, load_model_config
from mhr2_ros.inference.detector import Detector

STAGES = ("preprocess", "encoder", "decoder", "heads", "network", "body", "postprocess", "total")
NETWORK_PARTS = ("encoder", "decoder", "heads", "network")  # what "network" sums, as each runtime laps it


class FixedCountDetector(Detector):
    """Keeps the `people` best queries whatever their score."""

    people = 5

    def select(self, cam) -> np.ndarray:
        return np.argsort(-cam.scores)[: self.people]


def measure(det: Detector, image: np.ndarray, warmup: int, iters: int) -> dict:
    for _ in range(warmup):
        det(image)
    runs = {s: [] for s in STAGES}
    runs["wall"] = []
    for _ in range(iters):
        t0 = time.perf_counter()
        res = det(image)
        runs["wall"].append(time.perf_counter() - t0)
        timings = dict(res.timings, network=sum(res.timings.get(s, 0.0) for s in NETWORK_PARTS))
        for s in STAGES:
            runs[s].append(timings.get(s, float("nan")))  # nan: a stage this runtime does not lap
        assert len(res) == det.people
    return {k: 1000 * statistics.median(v) for k, v in runs.items()}


def variants(device: str, onnx: bool):
    """(name, InferenceConfig, run through ONNX Runtime)."""
    yield "fp32", InferenceConfig(device=device), False
    if device.startswith("cuda"):
        yield "bf16", InferenceConfig(device=device, dtype="bfloat16"), False
        yield "bf16+compile", InferenceConfig(device=device, dtype="bfloat16", compile=True), False
    if onnx:
        yield "onnxruntime fp32", InferenceConfig(device=device), True


def build(cfg, icfg: InferenceConfig, onnx: bool, folder: Path) -> FixedCountDetector:
    """The seed-0 random network, as PyTorch or exported (once) and run by ONNX Runtime."""
    det = FixedCountDetector.from_random_init(cfg, config=icfg)
    if not onnx:
        return det
    from mhr2_ros.inference.onnx_network import OnnxNetwork
    from mhr2_ros.model.onnx_export import export_onnx

    path = folder / "network.onnx"
    if not path.exists():
        export_onnx(det.model, path)
    return FixedCountDetector(None, cfg, icfg, {}, onnx=OnnxNetwork(path, det.device, icfg.device != "auto"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny", help="model preset (tiny, small, large) or config file")
    p.add_argument("--people", type=int, default=5, help="people selected per frame")
    p.add_argument("--size", default="640x480", help="input image WxH")
    p.add_argument("--image-size", type=int, default=None, help="override the preset's network input size")
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--onnx", action="store_true", help="add a row: the network exported (mhr2 export) and run by "
                   "ONNX Runtime on the providers of --device (needs pip install '.[onnx]')")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_model_config(args.preset)
    if args.image_size:
        cfg = dataclasses.replace(cfg, image_size=args.image_size)
    w, h = (int(v) for v in args.size.split("x"))
    image = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    if not 1 <= args.people <= cfg.num_queries:
        p.error(f"--people {args.people}: expected 1 to {cfg.num_queries} (the preset's queries)")
    FixedCountDetector.people = args.people
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {describe(args.device)}")
    print(f"config: {args.preset} (image_size {cfg.image_size}, ViT {cfg.encoder_dim}x{cfg.encoder_depth}, "
          f"decoder {cfg.decoder_dim}x{cfg.decoder_depth}, {cfg.num_queries} queries), input {w}x{h}, "
          f"{args.people} people, median of {args.iters} after {args.warmup} warm-up runs")
    header = f"| variant | {' | '.join(STAGES)} | wall | frames/s | x fp32 |"
    print(header)
    print("|" + "---|" * (len(STAGES) + 4))
    baseline = None
    with tempfile.TemporaryDirectory() as folder:
        for name, icfg, onnx in variants(args.device, args.onnx):
            m = measure(build(cfg, icfg, onnx, Path(folder)), image, args.warmup, args.iters)
            baseline = baseline or m["total"]
            cells = " | ".join("-" if m[s] != m[s] else f"{m[s]:.1f}" for s in STAGES)
            print(f"| {name} | {cells} | {m['wall']:.1f} | {1000 / m['wall']:.2f} | {baseline / m['total']:.2f} |")


if __name__ == "__main__":
    main()
