"""Command-line options shared by the subcommands that run the detector.

Building a parser imports no torch, numpy or model code (test_cli_startup): those load
in the functions that run a command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from mhr2_ros.config import DEFAULT_WEIGHTS, InferenceConfig, load_model_config, override
from mhr2_ros.errors import InputError

if TYPE_CHECKING:
    import numpy as np


def add_detector_options(p: argparse.ArgumentParser, camera: bool = True):
    """Model and detection options; `camera`: also --fov / --intrinsics, whose group is returned
    (for a command's own camera options), else None."""
    g = p.add_argument_group("model")
    g.add_argument(
        "--weights", type=Path, default=DEFAULT_WEIGHTS,
        help="checkpoint .safetensors with its .json model config beside it, or a .onnx file from mhr2 export "
        f"(run by ONNX Runtime) (default: {DEFAULT_WEIGHTS})",
    )  # fmt: skip
    g.add_argument(
        "--config", default=None,
        help="model preset (tiny, small, large) or YAML/JSON model config; by default the JSON "
        "beside --weights. Must match the weights, else the error names the differing tensors",
    )  # fmt: skip
    g.add_argument(
        "--random-init", action="store_true",
        help="run an untrained, randomly initialised network of --config (default tiny) instead of "
        "loading weights: for testing the pipeline only, its detections are meaningless",
    )  # fmt: skip
    g.add_argument("--device", default="auto",
                   help="torch device: auto (the GPU when there is one, else the CPU), cpu, cuda, cuda:1 (default: auto)")
    g.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), default=None,
        help="network compute dtype (default float32; bfloat16 is faster on recent GPUs)",
    )  # fmt: skip
    g.add_argument("--compile", action="store_true", help="torch.compile the network (GPU; slow first frame)")
    g = p.add_argument_group("detection")
    g.add_argument(
        "--threshold", type=float, default=None,
        help="keep people whose score is above this (default 0.4, the paper's)",
    )  # fmt: skip
    g.add_argument(
        "--nms", type=float, default=None, metavar="METERS",
        help="suppress detections whose 3D pelvis is within METERS of a better one (default 0: off)",
    )  # fmt: skip
    g.add_argument(
        "--merge", type=float, default=None, metavar="METERS",
        help="before the threshold, sum the scores of queries whose pelvises lie within METERS of "
        "a better one across the view into that one (not in the paper; for under-trained models "
        "that split a person over several weak queries). Default: the weights' own setting "
        "(the shipped model: 0.5; a checkpoint that names none: 0, off); 0 turns it off",
    )  # fmt: skip
    g.add_argument("--max-humans", type=int, default=None, help="keep at most this many people per frame (default 100)")
    pad = g.add_mutually_exclusive_group()
    pad.add_argument(
        "--no-pad", action="store_true",
        help="do not pad images to the nearest training aspect ratio before resizing (the shipped weights "
        "pad only at the sides, and leave an image wider than that ratio as it is)",
    )  # fmt: skip
    pad.add_argument(
        "--pad-rows", action="store_true",
        help="pad an image wider than its nearest training aspect ratio with rows above and below, as the "
        "paper does, also for weights whose JSON leaves them out (the shipped ones)",
    )  # fmt: skip
    if not camera:
        return None
    g = p.add_argument_group("camera (default: the network predicts the vertical FOV)")
    cam = g.add_mutually_exclusive_group()
    cam.add_argument("--fov", type=float, default=None, metavar="DEG", help="known vertical field of view in degrees")
    cam.add_argument(
        "--intrinsics", default=None, metavar="FX,FY,CX,CY",
        help="known pinhole intrinsics in pixels of the input image",
    )  # fmt: skip
    return g


def detector_options_given(args: argparse.Namespace) -> List[str]:
    """The detector options (as flags) set to something else than their default (the defaults
    of `add_detector_options` itself, read from a parser it fills)."""
    reference = argparse.ArgumentParser(add_help=False)
    add_detector_options(reference)
    defaults = reference.parse_args([])

    def same(name, value, default) -> bool:  # the default weights however the path is written
        return Path(value).resolve() == Path(default).resolve() if name == "weights" else value == default

    return ["--" + name.replace("_", "-") for name, default in defaults.__dict__.items()
            if hasattr(args, name) and not same(name, getattr(args, name), default)]  # fmt: skip


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    return override(
        InferenceConfig(),
        device=args.device,
        dtype=args.dtype,
        compile=args.compile or None,
        score_threshold=args.threshold,
        nms_distance=args.nms,
        merge_radius=args.merge,
        max_humans=args.max_humans,
        pad_to_train_aspect=False if args.no_pad else None,
        pad_rows=True if args.pad_rows else None,
        floor_angle_sigma=getattr(args, "floor_angle_sigma", None),  # the commands with a floor
        level_roll_deg=getattr(args, "level_roll", None),
    )


def build_detector(args: argparse.Namespace):
    """Detector from --weights/--config, or an explicit --random-init network."""
    from mhr2_ros.inference.detector import Detector

    cfg = inference_config(args)
    if args.random_init:
        return Detector.from_random_init(load_model_config(args.config or "tiny"), config=cfg)
    model_cfg = load_model_config(args.config) if args.config else None
    return Detector.from_checkpoint(args.weights, config=cfg, model_config=model_cfg)


def parse_intrinsics(text: str) -> np.ndarray:
    try:
        fx, fy, cx, cy = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--intrinsics {text!r}: expected four numbers FX,FY,CX,CY in pixels") from None
    if fx <= 0 or fy <= 0:
        raise InputError(f"--intrinsics {text!r}: focal lengths must be positive")
    from mhr2_ros.geometry import intrinsics_from_values

    return intrinsics_from_values(fx, fy, cx, cy)


def check_output_file(flag: str, path: Optional[Path]) -> None:
    """Refuse an output file that could not be written, before the work that fills it."""
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        raise InputError(f"{flag} {path}: expected a file name in an existing folder")


def check_camera_options(args: argparse.Namespace) -> None:
    """Refuse a bad --fov / --intrinsics before anything loads or is written (InputError)."""
    if getattr(args, "intrinsics", None):
        parse_intrinsics(args.intrinsics)
    fov = getattr(args, "fov", None)
    if fov is not None and not 1.0 <= fov <= 179.0:
        raise InputError(f"--fov {fov}: expected a vertical field of view in degrees in [1, 179]")


def camera_for(args: argparse.Namespace, height: int, width: int) -> Optional[np.ndarray]:
    """K for an image of this size from --fov / --intrinsics, or None (predicted)."""
    check_camera_options(args)
    if args.intrinsics:
        return parse_intrinsics(args.intrinsics)
    if args.fov is not None:
        import numpy as np

        from mhr2_ros.geometry import intrinsics_from_fov

        return intrinsics_from_fov(np.radians(args.fov), width, height)
    return None
