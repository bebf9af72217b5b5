"""Joint names, their order and the skeleton of the body model's joints (no torch).

`BodyModel` (anny_body.py) returns joints in JOINT_NAMES order; overlays, RViz markers,
ROS4HRI skeletons and the evaluation read these names without loading the body model.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

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


# REP-155's kinematic model of the human ("Kinematic Model and Coordinate Frames"): its links
# other than `body` (the pelvis, our body_<id> frame), each turned by one bone of the rig and
# placed on one joint, or halfway between two. The TF frames `<link>_<id>` (ros/tf.py) of a
# person are these. REP-155 puts the head frame at the sellion, which it approximates by the
# point between the eyes; its torso link carries the shoulders; the wrist turns with the hand
# and the ankle with the foot.
BODY_PARTS: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    ("waist", "spine05", ("pelvis",)),
    ("torso", "spine01", ("left_shoulder", "right_shoulder")),
    ("head", "head", ("left_eye", "right_eye")),
    ("l_shoulder", "upperarm01.L", ("left_shoulder",)),
    ("l_elbow", "lowerarm01.L", ("left_elbow",)),
    ("l_wrist", "wrist.L", ("left_wrist",)),
    ("r_shoulder", "upperarm01.R", ("right_shoulder",)),
    ("r_elbow", "lowerarm01.R", ("right_elbow",)),
    ("r_wrist", "wrist.R", ("right_wrist",)),
    ("l_hip", "upperleg01.L", ("left_hip",)),
    ("l_knee", "lowerleg01.L", ("left_knee",)),
    ("l_ankle", "foot.L", ("left_ankle",)),
    ("r_hip", "upperleg01.R", ("right_hip",)),
    ("r_knee", "lowerleg01.R", ("right_knee",)),
    ("r_ankle", "foot.R", ("right_ankle",)),
)  # fmt: skip
PART_NAMES = tuple(name for name, _, _ in BODY_PARTS)
PART_BONES = tuple(bone for _, bone, _ in BODY_PARTS)
PART_ORIGIN_JOINTS = tuple(tuple(JOINT_NAMES.index(j) for j in joints) for _, _, joints in BODY_PARTS)


def part_origins(joints: np.ndarray) -> np.ndarray:
    """(J, 3) joints in JOINT_NAMES order -> (P, 3) the BODY_PARTS' origins (same frame and units)."""
    joints = np.asarray(joints, np.float64)
    return np.stack([joints[list(ids)].mean(axis=0) for ids in PART_ORIGIN_JOINTS])
