"""Anny body model wrapper (pose/shape -> vertices, joints, pelvis).

Names are imported on first use (PEP 562): the joint names and skeleton (joints.py) come
without torch or anny, which only `BodyModel` / `BodyOutput` (anny_body.py) load.
"""

from mhr2_ros.lazy import lazy_exports

_EXPORTS = {
    "BodyModel": "anny_body",
    "BodyOutput": "anny_body",
    "JOINT_NAMES": "joints",
    "PELVIS": "joints",
    "SKELETON_EDGES": "joints",
    "COCO17_INDICES": "joints",
    "SHAPE_NAMES": "mhr2_ros.inference.results",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
