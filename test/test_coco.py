"""COCO keypoint annotations as 2D-only training samples, on a small file written here."""

import json
import math

import cv2
import numpy as np
import pytest

from mhr2_ros.body import JOINT_NAMES
from mhr2_ros.errors import InputError
from mhr2_ros.training.coco import coco_sample, read_coco_keypoints


def _keypoints(points):
    """COCO's flat 17 x (x, y, v) from {coco index: (x, y)} (v = 2: labelled and visible)."""
    kp = np.zeros((17, 3))
    for index, (x, y) in points.items():
        kp[index] = (x, y, 2)
    return kp.reshape(-1).tolist()


@pytest.fixture
def coco(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        cv2.imwrite(str(images / name), np.full((60, 80, 3), 90, np.uint8))
    person = {"image_id": 1, "iscrowd": 0, "num_keypoints": 3, "bbox": [10, 5, 20, 40],
              "keypoints": _keypoints({0: (20, 8), 11: (18, 30), 12: (24, 30)})}  # nose, left and right hip
    far = {"image_id": 1, "iscrowd": 0, "num_keypoints": 0, "bbox": [60, 20, 6, 12], "keypoints": [0] * 51}
    crowd = {"image_id": 2, "iscrowd": 1, "num_keypoints": 0, "bbox": [0, 0, 40, 30], "keypoints": [0] * 51}
    other = {"image_id": 2, "iscrowd": 0, "num_keypoints": 1, "bbox": [50, 10, 10, 30],
             "keypoints": _keypoints({0: (55, 12)})}
    only_crowd = {**crowd, "image_id": 3}
    data = {
        "images": [{"id": i, "file_name": n, "width": 80, "height": 60} for i, n in ((1, "a.jpg"), (2, "b.jpg"),
                                                                                 (3, "c.jpg"))],
        "annotations": [person, far, crowd, other, only_crowd],
    }  # fmt: skip
    path = tmp_path / "person_keypoints.json"
    path.write_text(json.dumps(data))
    return path, images


def test_people_without_keypoints_are_targets_and_crowds_switch_off_the_score(coco):
    path, images = coco
    entries = read_coco_keypoints(path)
    assert [e["file_name"] for e in entries] == ["a.jpg", "b.jpg"]  # c.jpg has only a crowd region
    a, b = (coco_sample(e, images) for e in entries)
    assert len(a.loc) == 2 and a.loc[0].tolist() == [21.0, 30.0]  # the hips' midpoint
    assert a.loc[1].tolist() == [63.0, 26.0] and a.keypoints_vis[1].sum() == 0  # the far person: box centre
    nose = JOINT_NAMES.index("nose")
    assert a.keypoints_2d[0, nose].tolist() == [20.0, 8.0] and a.keypoints_vis[0].sum() == 3
    assert a.supervision()["score"] and a.supervision()["reproj"] and not a.supervision()["depth"]
    assert len(b.loc) == 1 and not b.supervision()["score"]  # people in the crowd box are not annotated
    assert b.supervision()["loc"] and b.supervision()["reproj"]


def test_a_file_that_is_not_coco_is_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text('{"images": []}')
    with pytest.raises(InputError, match="x.json: not a COCO keypoints JSON"):
        read_coco_keypoints(bad)


# Kills: the hip midpoint taken with ONE hip labelled, occluded (v = 1) labels dropped, K with
# width and height swapped.
def test_one_hip_falls_back_to_the_box_and_occluded_labels_count(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((60, 80, 3), 90, np.uint8))
    kp = np.zeros((17, 3))
    kp[11] = (18, 30, 2)  # left hip only, labelled and visible
    kp[0] = (20, 8, 1)  # nose labelled but occluded (COCO v = 1): still an annotated keypoint
    person = {"image_id": 1, "iscrowd": 0, "bbox": [10, 5, 20, 40], "keypoints": kp.reshape(-1).tolist()}
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 80, "height": 60}], "annotations": [person]}
    (tmp_path / "k.json").write_text(json.dumps(data))
    [entry] = read_coco_keypoints(tmp_path / "k.json")
    s = coco_sample(entry, tmp_path)
    assert s.loc[0].tolist() == [20.0, 25.0]  # box centre: 10 + 20/2, 5 + 40/2 (one hip is no pelvis)
    nose, lhip, rhip = (JOINT_NAMES.index(n) for n in ("nose", "left_hip", "right_hip"))
    assert s.keypoints_vis[0, nose] == 1 and s.keypoints_vis[0, lhip] == 1 and s.keypoints_vis[0, rhip] == 0
    assert s.keypoints_vis[0].sum() == 2
    assert s.keypoints_2d[0, lhip].tolist() == [18.0, 30.0]
    assert s.K[0, 2] == 40.0 and s.K[1, 2] == 30.0  # principal point at (W/2, H/2) of the 80x60 image
    assert s.fov == pytest.approx(math.radians(60.0), abs=1e-6)  # the documented 60-degree guess
