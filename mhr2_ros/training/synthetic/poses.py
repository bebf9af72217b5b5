"""Pose vocabulary: named static poses, a walking gait and animated gestures.

Poses are vectors of anatomical angles in degrees over rig.DOF_NAMES (0 everywhere is
a person standing straight with the arms hanging and the elbows straight). Every
pose that leaves this module is clipped to the joint limits of rig.JOINTS.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import numpy as np

from mhr2_ros.training.synthetic.rig import DOF_NAMES, dof_limits, mirror_pose, pose_vector

# Relaxed standing: arms slightly away from the body, elbows slightly bent.
_RELAXED = {"shoulder.L.abd": 8, "shoulder.R.abd": 8, "elbow.L.flex": 12, "elbow.R.flex": 12}
_SEATED = {"hip.L.flex": 90, "hip.R.flex": 90, "knee.L.flex": 90, "knee.R.flex": 90,
           "hip.L.abd": 6, "hip.R.abd": 6, "spine.flex": 8}  # fmt: skip

# Static poses (degrees). Asymmetric ones are defined for the right side; the
# sampler mirrors them half of the time.
STATIC_POSES: Dict[str, Dict[str, float]] = {
    "stand": dict(_RELAXED),
    "stand_contrapposto": {**_RELAXED, "hip.L.flex": 8, "knee.L.flex": 14, "hip.R.abd": 4,
                           "spine.bend": -4, "neck.bend": 3},
    "hands_on_hips": {**_RELAXED, "shoulder.L.abd": 45, "shoulder.R.abd": 45, "shoulder.L.rot": 50,
                      "shoulder.R.rot": 50, "elbow.L.flex": 100, "elbow.R.flex": 100},
    "arms_crossed": {"shoulder.L.flex": 30, "shoulder.R.flex": 30, "shoulder.L.abd": 12,
                     "shoulder.R.abd": 12, "shoulder.L.rot": 75, "shoulder.R.rot": 75,
                     "elbow.L.flex": 110, "elbow.R.flex": 110},
    "point": {**_RELAXED, "shoulder.R.flex": 80, "shoulder.R.abd": 15, "elbow.R.flex": 5, "neck.twist": -10},
    "phone_call": {**_RELAXED, "shoulder.R.flex": 45, "shoulder.R.abd": 20, "shoulder.R.rot": 10,
                   "elbow.R.flex": 145, "neck.bend": -8},
    "texting": {**_RELAXED, "shoulder.L.flex": 20, "shoulder.R.flex": 20, "shoulder.L.rot": 30,
                "shoulder.R.rot": 30, "elbow.L.flex": 95, "elbow.R.flex": 95, "neck.flex": 30},
    "hands_up": {"shoulder.L.abd": 160, "shoulder.R.abd": 160, "elbow.L.flex": 15, "elbow.R.flex": 15},
    "reach_forward": {**_RELAXED, "shoulder.L.flex": 85, "shoulder.R.flex": 85, "elbow.L.flex": 10,
                      "elbow.R.flex": 10, "spine.flex": 10},
    "bend_over": {**_RELAXED, "pelvis.tilt": 45, "spine.flex": 35, "hip.L.flex": 50, "hip.R.flex": 50,
                  "knee.L.flex": 15, "knee.R.flex": 15, "shoulder.L.flex": 70, "shoulder.R.flex": 70,
                  "neck.flex": -25},
    "squat": {"pelvis.tilt": 30, "hip.L.flex": 115, "hip.R.flex": 115, "knee.L.flex": 125, "knee.R.flex": 125,
              "ankle.L.flex": 25, "ankle.R.flex": 25, "hip.L.abd": 15, "hip.R.abd": 15, "spine.flex": 10,
              "neck.flex": -20, "shoulder.L.flex": 60, "shoulder.R.flex": 60, "elbow.L.flex": 40, "elbow.R.flex": 40},
    "sit_chair": {**_SEATED, "shoulder.L.flex": 25, "shoulder.R.flex": 25, "elbow.L.flex": 55,
                  "elbow.R.flex": 55, "shoulder.L.abd": 10, "shoulder.R.abd": 10},
    "sit_chair_cross_legs": {**_SEATED, "hip.R.flex": 100, "hip.R.abd": -12, "knee.R.flex": 80,
                             "shoulder.L.flex": 25, "shoulder.R.flex": 25, "elbow.L.flex": 60,
                             "elbow.R.flex": 60},
    "sit_ground": {"hip.L.flex": 90, "hip.R.flex": 90, "knee.L.flex": 20, "knee.R.flex": 25,
                   "hip.L.abd": 12, "hip.R.abd": 12, "spine.flex": 10, "shoulder.L.flex": 30,
                   "shoulder.R.flex": 30, "elbow.L.flex": 30, "elbow.R.flex": 30, "shoulder.L.abd": 15,
                   "shoulder.R.abd": 15},
    "sit_cross_legged": {"hip.L.flex": 85, "hip.R.flex": 85, "hip.L.abd": 50, "hip.R.abd": 50,
                         "hip.L.rot": -55, "hip.R.rot": -55, "knee.L.flex": 130, "knee.R.flex": 130,
                         "spine.flex": 12, "shoulder.L.flex": 30, "shoulder.R.flex": 30,
                         "elbow.L.flex": 50, "elbow.R.flex": 50},
}  # fmt: skip

# Pose families the scene sampler chooses from, and which static poses they hold.
STANDING = ("stand", "stand_contrapposto", "hands_on_hips", "arms_crossed", "point", "phone_call",
            "texting", "hands_up", "reach_forward", "bend_over", "squat")  # fmt: skip
SEATED_ON_STOOL = ("sit_chair", "sit_chair_cross_legs")
SEATED_ON_GROUND = ("sit_ground", "sit_cross_legged")
# Gestures animated over time (see `gesture`): name -> period in seconds.
GESTURES = {"wave": 1.2, "talk": 2.5, "look_around": 6.0}
LIMITS = dof_limits()  # (D, 2) degrees


def clip_to_limits(pose: np.ndarray) -> np.ndarray:
    """Clip (..., D) poses to the anatomical limits."""
    return np.clip(pose, LIMITS[:, 0], LIMITS[:, 1])


def static_pose(name: str, mirrored: bool = False) -> np.ndarray:
    """(D,) degrees of a named static pose (mirrored = left and right swapped)."""
    if name not in STATIC_POSES:
        raise KeyError(f"unknown pose {name!r}; known: {', '.join(STATIC_POSES)}")
    vec = pose_vector(STATIC_POSES[name])
    return clip_to_limits(mirror_pose(vec) if mirrored else vec)


def jitter(pose: np.ndarray, rng: np.random.Generator, std_deg: float) -> np.ndarray:
    """Per-DOF Gaussian variation (degrees), clipped to the joint limits."""
    return clip_to_limits(pose + rng.normal(0.0, std_deg, size=np.shape(pose)))


def _bump(phase: np.ndarray, centre: float, width: float) -> np.ndarray:
    """Periodic Gaussian bump of the gait phase (cycles), peak 1 at `centre`."""
    d = (phase - centre + 0.5) % 1.0 - 0.5
    return np.exp(-0.5 * (d / width) ** 2)


def _leg(phase: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hip flexion, knee flexion, ankle dorsiflexion (degrees) of one leg over the
    gait cycle; phase 0 = heel strike, ~0.6 = toe off (normal walking curves)."""
    hip = 10.0 + 20.0 * np.cos(2 * math.pi * phase)
    knee = 5.0 + 12.0 * _bump(phase, 0.12, 0.06) + 55.0 * _bump(phase, 0.72, 0.1)
    ankle = 8.0 * _bump(phase, 0.45, 0.1) - 15.0 * _bump(phase, 0.62, 0.06) + 3.0 * _bump(phase, 0.85, 0.1)
    return hip, knee, ankle


def gait(phase: np.ndarray, amplitude: np.ndarray, base: np.ndarray, swing_arms: np.ndarray) -> np.ndarray:
    """(N, D) walking poses: the legs of the gait at (N,) phases (cycles, left heel
    strike at 0) scaled by (N,) amplitudes in [0, 1] (0 = standing still, 1 = a full
    stride), blended with the (N, D) `base` pose. Arms swing where (N,) `swing_arms`,
    else keep the base pose's arms (walking while texting or on the phone)."""
    phase = np.asarray(phase, dtype=np.float64)
    amp = np.asarray(amplitude, dtype=np.float64)[:, None]
    walk = np.zeros_like(base)
    for side, offset in (("L", 0.0), ("R", 0.5)):
        hip, knee, ankle = _leg((phase + offset) % 1.0)
        walk[:, DOF_NAMES.index(f"hip.{side}.flex")] = hip
        walk[:, DOF_NAMES.index(f"knee.{side}.flex")] = knee
        walk[:, DOF_NAMES.index(f"ankle.{side}.flex")] = ankle
        # The arm swings with the opposite leg: forward when the same-side hip extends.
        swing = -np.cos(2 * math.pi * (phase + offset))
        walk[:, DOF_NAMES.index(f"shoulder.{side}.flex")] = 5.0 + 18.0 * swing
        walk[:, DOF_NAMES.index(f"elbow.{side}.flex")] = 18.0 + 12.0 * np.maximum(swing, 0.0)
        walk[:, DOF_NAMES.index(f"shoulder.{side}.abd")] = 8.0
    walk[:, DOF_NAMES.index("spine.twist")] = 5.0 * np.cos(2 * math.pi * phase)
    walk[:, DOF_NAMES.index("spine.flex")] = 4.0
    legs = _joint_mask(("hip", "knee", "ankle"))
    arms = _joint_mask(("shoulder", "elbow")) & np.asarray(swing_arms, dtype=bool)[:, None]
    out = base + walk * amp * ~(legs | _joint_mask(("shoulder", "elbow")))  # trunk: added
    blend = legs | arms
    out = np.where(blend, base * (1 - amp) + walk * amp, out)
    return clip_to_limits(out)


def _joint_mask(joints: Tuple[str, ...]) -> np.ndarray:
    """(D,) True for the DOFs of the named joints."""
    return np.array([n.split(".")[0] in joints for n in DOF_NAMES])


def gesture(name: str, t: np.ndarray, base: np.ndarray, mirrored: bool) -> np.ndarray:
    """(N, D) poses of an animated gesture at (N,) times in seconds over (N, D) base poses."""
    phase = 2 * math.pi * np.asarray(t, dtype=np.float64) / GESTURES[name]
    delta: Dict[str, np.ndarray] = {}
    if name == "wave":  # right hand raised beside the head, the forearm swinging
        values = {"shoulder.R.abd": 95.0, "shoulder.R.rot": -80.0, "elbow.R.flex": 80.0 + 25.0 * np.sin(phase)}
    elif name == "talk":  # both forearms moving in front of the body, head nodding
        values = {"shoulder.L.flex": 20 + 10 * np.sin(phase), "shoulder.R.flex": 20 + 10 * np.sin(phase + 1.3),
                  "elbow.L.flex": 80 + 20 * np.sin(phase + 0.5), "elbow.R.flex": 80 + 20 * np.sin(phase + 2.0),
                  "shoulder.L.rot": 20.0, "shoulder.R.rot": 20.0}  # fmt: skip
        delta = {"neck.flex": 6 * np.sin(2 * phase), "neck.twist": 10 * np.sin(0.5 * phase)}
    elif name == "look_around":  # head and chest scanning left and right
        values = {}
        delta = {"neck.twist": 55 * np.sin(phase), "spine.twist": 15 * np.sin(phase), "neck.flex": -5.0}
    else:
        raise KeyError(f"unknown gesture {name!r}; known: {', '.join(GESTURES)}")
    out = np.array(base, dtype=np.float64, copy=True)
    for dof, value in values.items():
        out[:, DOF_NAMES.index(dof)] = value
    for dof, value in delta.items():
        out[:, DOF_NAMES.index(dof)] += value
    if mirrored:
        out = np.stack([mirror_pose(p) for p in out])
    return clip_to_limits(out)
