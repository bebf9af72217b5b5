"""Anny body model wrapper (pose/shape -> vertices, joints, pelvis)."""

from mhr2_ros.body.anny_body import (
    COCO17_INDICES,
    JOINT_NAMES,
    PELVIS,
    SHAPE_NAMES,
    SKELETON_EDGES,
    BodyModel,
    BodyOutput,
)

__all__ = [
    "BodyModel",
    "BodyOutput",
    "JOINT_NAMES",
    "SHAPE_NAMES",
    "SKELETON_EDGES",
    "PELVIS",
    "COCO17_INDICES",
]
