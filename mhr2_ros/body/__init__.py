"""Anny body model wrapper (pose/shape -> vertices, joints, pelvis).

Names are imported on first use (PEP 562): the joint names and skeleton (joints.py) come
without torch or anny, which only `BodyModel` / `BodyOutput` (anny_body.py) load.
"""

import importlib

_EXPORTS = {
    "BodyModel": "mhr2_ros.body.anny_body",
    "BodyOutput": "mhr2_ros.body.anny_body",
    "JOINT_NAMES": "mhr2_ros.body.joints",
    "PELVIS": "mhr2_ros.body.joints",
    "SKELETON_EDGES": "mhr2_ros.body.joints",
    "COCO17_INDICES": "mhr2_ros.body.joints",
    "SHAPE_NAMES": "mhr2_ros.inference.results",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
