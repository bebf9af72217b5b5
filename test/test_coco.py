"""COCO keypoint annotations as 2D-only training samples, on a small file written here."""

import json

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
