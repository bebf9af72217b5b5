"""COCO keypoint annotations (person_keypoints_*.json) as 2D-only training samples.

Each image gives a `Sample` of data type "keypoints2d": the detection heads and
the 2D reprojection are supervised, nothing in 3D. The pelvis location is the
midpoint of the two hips when both are labelled, else the box centre. COCO has
no intrinsics: K is a 60-degree vertical-FOV guess used only to turn keypoints
into rays for the angular loss (its focal cancels in the pixel reprojection).
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from pathlib import Path
from typing import Dict, List

import numpy as np

from mhr2_ros.body import COCO17_INDICES, JOINT_NAMES
from mhr2_ros.errors import InputError
from mhr2_ros.geometry import intrinsics_from_fov
from mhr2_ros.io.images import load_image
from mhr2_ros.training.sample import Sample

log = logging.getLogger(__name__)

COCO_FOV_GUESS = math.radians(60.0)
LEFT_HIP, RIGHT_HIP = 11, 12  # indices in COCO's 17-keypoint order


def read_coco_keypoints(annotation_file: Path) -> List[dict]:
    """[{file_name, width, height, people: [(17, 3) keypoints, (4,) box xywh], crowd}]
    for images with at least one non-crowd person annotation. People without labelled
    keypoints (mostly small, far ones) stay: they are people, not background; `crowd`
    says the image also has crowd regions (unannotated people)."""
    try:
        data = json.loads(Path(annotation_file).read_text())
        images = {im["id"]: im for im in data["images"]}
        annotations = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{annotation_file}: not a COCO keypoints JSON ({exc})") from exc
    people: Dict[int, list] = defaultdict(list)
    crowded = set()
    for ann in annotations:
        if ann.get("iscrowd", 0):
            crowded.add(ann["image_id"])
            continue
        kp = np.asarray(ann.get("keypoints") or np.zeros(51), dtype=np.float32).reshape(17, 3)
        people[ann["image_id"]].append((kp, np.asarray(ann["bbox"], dtype=np.float32)))
    return [
        {"file_name": images[i]["file_name"], "width": images[i]["width"], "height": images[i]["height"],
         "people": p, "crowd": i in crowded}  # fmt: skip
        for i, p in sorted(people.items())
        if i in images
    ]


def coco_sample(entry: dict, image_dir: Path) -> Sample:
    """A 2D-only Sample for one entry of `read_coco_keypoints`."""
    image = load_image(Path(image_dir) / entry["file_name"])
    h, w = image.shape[:2]
    m, J = len(entry["people"]), len(JOINT_NAMES)
    keypoints = np.zeros((m, J, 2), np.float32)
    visible = np.zeros((m, J), np.float32)
    loc = np.zeros((m, 2), np.float32)
    for i, (kp, box) in enumerate(entry["people"]):
        keypoints[i, list(COCO17_INDICES)] = kp[:, :2]
        visible[i, list(COCO17_INDICES)] = kp[:, 2] > 0
        if kp[LEFT_HIP, 2] > 0 and kp[RIGHT_HIP, 2] > 0:
            loc[i] = (kp[LEFT_HIP, :2] + kp[RIGHT_HIP, :2]) / 2
        else:
            loc[i] = box[:2] + box[2:] / 2
    return Sample(
        image=image, K=intrinsics_from_fov(COCO_FOV_GUESS, w, h), loc=loc,
        keypoints_2d=keypoints, keypoints_vis=visible, data_type="keypoints2d",
        unlabelled_people=bool(entry.get("crowd", False)),
    )  # fmt: skip
