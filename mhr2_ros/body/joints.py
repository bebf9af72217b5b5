"""Joint names, their order and the skeleton of the body model's joints (no torch).

`BodyModel` (anny_body.py) returns joints in JOINT_NAMES order; overlays, RViz markers,
ROS4HRI skeletons and the evaluation read these names without loading the body model.
"""

from __future__ import annotations

from typing import Tuple

# Joints: bone heads of the rig, then Anny's COCO-WholeBody body keypoints regressed
# from the vertices (COCO-17 order followed by the 6 foot points).
BONE_JOINTS = (("pelvis", "root"), ("spine", "spine03"), ("neck", "neck01"), ("head", "head"))
COCO_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
FOOT_NAMES = (
    "left_big_toe", "right_big_toe", "left_small_toe", "right_small_toe",
    "left_heel", "right_heel",
)  # fmt: skip
JOINT_NAMES = tuple(name for name, _ in BONE_JOINTS) + COCO_NAMES + FOOT_NAMES
PELVIS = JOINT_NAMES.index("pelvis")
COCO17_INDICES = tuple(JOINT_NAMES.index(n) for n in COCO_NAMES)


def _edges(*pairs: Tuple[str, str]) -> Tuple[Tuple[int, int], ...]:
    return tuple((JOINT_NAMES.index(a), JOINT_NAMES.index(b)) for a, b in pairs)


# Skeleton drawn in overlays and RViz markers.
SKELETON_EDGES = _edges(
    ("pelvis", "spine"), ("spine", "neck"), ("neck", "head"), ("head", "nose"),
    ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
    ("neck", "left_shoulder"), ("neck", "right_shoulder"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("pelvis", "left_hip"), ("pelvis", "right_hip"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_ankle", "left_heel"), ("left_ankle", "left_big_toe"), ("left_big_toe", "left_small_toe"),
    ("right_ankle", "right_heel"), ("right_ankle", "right_big_toe"), ("right_big_toe", "right_small_toe"),
)  # fmt: skip
