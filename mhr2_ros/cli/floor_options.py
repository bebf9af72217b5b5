"""The floor people stand on (inference/floor_contact.py), as command-line options.

`mhr2 detect` and `mhr2 bag` take a fixed camera mount (--camera-height, --camera-pitch,
--camera-roll; the angles alone give gravity, which levels a rolled camera without a floor);
`mhr2 eval` and `mhr2 demo` take the synthetic scenes' true floor (--floor), optionally as a robot
whose mount calibration is off (--floor-height-error, --floor-pitch-error).
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional, Tuple

import numpy as np

from mhr2_ros.errors import InputError


def add_mount_options(p: argparse.ArgumentParser, tf_frames: bool = False):
    """--camera-height/-pitch/-roll, --floor-angle-sigma and --level-roll; returns their argument group.
    `tf_frames`: the command also takes --floor-frame, --fixed-frame and --imu-topic (`mhr2 bag`), which the
    help names."""
    g = p.add_argument_group("floor (default: none; the network's depth)")
    g.add_argument("--camera-height", type=float, default=None, metavar="M",
                   help="the camera's optical centre is M meters above the floor people stand on: each person is "
                   "scaled about the camera until their lowest point is on it (README, The floor)")
    g.add_argument("--camera-pitch", type=float, default=None, metavar="DEG",
                   help="the camera looks DEG degrees below the horizon (negative: above; default 0): the floor's "
                   "tilt with --camera-height, else gravity's, as --camera-roll")
    g.add_argument("--camera-roll", type=float, default=None, metavar="DEG",
                   help="the camera is turned DEG degrees about its optical axis (default 0): with --camera-height "
                   "the floor's; without it gravity's alone, which levels the image before the network (--level-roll) "
                   "and places nobody")
    if tf_frames:
        _add_angle_sigma(g, "--camera-height or --floor-frame", "--camera-height, --camera-roll, --floor-frame, "
                         "--fixed-frame or --imu-topic")  # fmt: skip
    else:
        _add_angle_sigma(g, "--camera-height", "--camera-height or --camera-roll")
    return g


def _add_angle_sigma(group, needs: str, needs_gravity: str = "") -> None:
    """--floor-angle-sigma and --level-roll, the settings of any floor (the latter of any gravity)."""
    group.add_argument("--floor-angle-sigma", type=float, default=None, metavar="RAD",
                       help=f"with {needs}: how far the ray to a person's lowest point may be off, radians (the "
                       "mesh's foot, the mount's pitch): the floor's depth is weighed with the network's by it "
                       "(default 0.015; 0: the floor alone)")
    group.add_argument("--level-roll", type=float, default=None, metavar="DEG",
                       help=f"with {needs_gravity or needs}: a camera rolled about its optical axis by at least DEG "
                       "degrees has its image levelled by gravity before the network, the outputs turned back "
                       "(default 4, the training scenes' roll; negative: never)")


def floor_from_mount(args: argparse.Namespace, floor_frame: Optional[bool] = None,
                     fixed_frame: bool = False) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:  # fmt: skip
    """(floor, gravity) of the mount options: the (4,) floor plane of --camera-height with its pitch and
    roll, or without a height the (3,) gravity of --camera-pitch/--camera-roll alone, or None. InputError
    names a bad value, a floor setting without a floor, or --level-roll with nothing to level by;
    `floor_frame` / `fixed_frame`: whether --floor-frame / --fixed-frame is set (`mhr2 bag`: None for
    a command without them), which give the floor / gravity per image."""
    from mhr2_ros.inference.floor_contact import floor_plane_from_mount, gravity_from_mount

    check_angle_sigma(args)
    if args.camera_height is not None:
        return floor_plane_from_mount(args.camera_height, args.camera_pitch or 0.0, args.camera_roll or 0.0), None
    if args.floor_angle_sigma is not None and not floor_frame:
        sources = "--camera-height" if floor_frame is None else "--camera-height or --floor-frame"
        raise InputError(f"--floor-angle-sigma: it describes the floor of {sources}, which is not set")
    angles = args.camera_pitch is not None or args.camera_roll is not None
    gravity = gravity_from_mount(args.camera_pitch or 0.0, args.camera_roll or 0.0) if angles else None
    if args.level_roll is not None and gravity is None and not (floor_frame or fixed_frame):
        raise InputError("--level-roll: nothing tells this camera's roll; give --camera-roll (with or without "
                         "--camera-height)")
    return None, gravity


def check_angle_sigma(args: argparse.Namespace) -> None:
    from mhr2_ros.config import MAX_FLOOR_ANGLE_SIGMA

    value = args.floor_angle_sigma
    if value is not None and not 0.0 <= value <= MAX_FLOOR_ANGLE_SIGMA:  # NaN fails too
        raise InputError(f"--floor-angle-sigma must be in [0, {MAX_FLOOR_ANGLE_SIGMA}] radians, got {value}")


def add_true_floor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--floor", action="store_true",
                   help="also give the detector each frame's floor plane, as a robot knows it from its camera's "
                   "mount (TF): people are scaled until their lowest point is on it "
                   "(inference/floor_contact.py; not the paper's RGB-only protocol)")
    p.add_argument("--floor-height-error", type=float, default=None, metavar="M",
                   help="with --floor: the robot believes its camera M meters higher than it is (a mount error)")
    p.add_argument("--floor-pitch-error", type=float, default=None, metavar="DEG",
                   help="with --floor: the robot believes its camera pitched DEG degrees further down than it is "
                   "(a calibration error, or the robot's own sway)")
    _add_angle_sigma(p, "--floor")


def true_floor_from_args(args: argparse.Namespace) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """floor(true plane) -> the plane the detector gets, for --floor (None without it);
    InputError names a bad --floor-* value."""
    errors = {"floor_height_error": args.floor_height_error, "floor_pitch_error": args.floor_pitch_error,
              "floor_angle_sigma": args.floor_angle_sigma, "level_roll": args.level_roll}
    if not args.floor:
        given = ["--" + k.replace("_", "-") for k, v in errors.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(given)}: these describe the floor of --floor, which is not set")
        return None
    for key, value in errors.items():
        if value is not None and not math.isfinite(value):
            raise InputError(f"--{key.replace('_', '-')} must be a finite number, got {value}")
    check_angle_sigma(args)
    pitch = math.radians(args.floor_pitch_error or 0.0)
    if abs(pitch) >= math.pi / 4:
        raise InputError(f"--floor-pitch-error must be within 45 degrees, got {args.floor_pitch_error}")
    return MountError(args.floor_height_error or 0.0, pitch)


class MountError:
    """A believed floor plane off by a constant camera height and pitch error."""

    def __init__(self, height_m: float, pitch_rad: float) -> None:
        self.height_m, self.pitch_rad = height_m, pitch_rad

    def __call__(self, plane: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.pitch_rad), math.sin(self.pitch_rad)
        # Pitching the camera further down by e turns gravity, seen from the camera, about its x
        # axis towards the optical axis (+z): (y, z) -> (c y - s z, s y + c z).
        n = np.asarray(plane[:3], dtype=np.float64)
        turned = np.array([n[0], c * n[1] - s * n[2], s * n[1] + c * n[2]])
        return np.array([*turned, float(plane[3]) + self.height_m])

    def describe(self) -> str:
        if self.height_m == 0 and self.pitch_rad == 0:
            return "the true floor"
        return (f"the floor believed {self.height_m:+g} m in camera height and {math.degrees(self.pitch_rad):+g} deg "
                "in pitch off the truth")
