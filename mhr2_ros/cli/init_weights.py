"""`mhr2 init-weights OUT`: write a randomly initialised checkpoint of a preset.

A starting point for `mhr2-train --config ... ` (`init:`), optionally with a DINO
encoder, and a test fixture: the file has the exact layout of a trained checkpoint
(tensors + JSON config), so every loading path runs, but its detections are meaningless.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from mhr2_ros.cli.formatting import HelpFormatter

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "init-weights",
        help="write an untrained (random or DINO-initialised) checkpoint of a model preset",
        description="Write OUT (.safetensors) and its .json model config: a randomly initialised "
        "network of --config, optionally with the encoder initialised from a local DINOv2/DINOv3 "
        "backbone file. The starting point of training; its detections are meaningless.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("output", type=Path, help="checkpoint path, ending in .safetensors")
    p.add_argument("--config", default="tiny", help="model preset (tiny, small, large) or config file")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initialisation")
    p.add_argument(
        "--dino", type=Path, default=None,
        help="local DINOv2/DINOv3 backbone (.safetensors, or .pth read with weights_only) for the encoder",
    )  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch  # loaded when the command runs, not when the parser is built

    from mhr2_ros.checkpoint import save_checkpoint
    from mhr2_ros.config import load_model_config
    from mhr2_ros.model import build_model, load_dino_backbone

    cfg = load_model_config(args.config)
    torch.manual_seed(args.seed)
    model = build_model(cfg)
    backbone = "random"
    if args.dino is not None:
        load_dino_backbone(model.encoder, args.dino)
        backbone = f"DINO backbone {args.dino.name}"
    meta = {
        "trained": False,
        "description": f"untrained {args.config} network (seed {args.seed}, encoder: {backbone}); "
        "detections are meaningless",
        "command": f"mhr2 init-weights {args.output} --config {args.config} --seed {args.seed}"
                   + (f" --dino {args.dino}" if args.dino is not None else ""),
    }
    path = save_checkpoint(model, cfg, args.output, metadata=meta)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0
