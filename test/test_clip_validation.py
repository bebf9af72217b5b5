"""The clip reader refuses converted data that would otherwise train or evaluate silently
on wrong ground truth (docs/dataset_format.md), naming the file, the array and what is right.

One real 2-frame clip (real Anny body, camera with pitch and roll) is written once; each
test copies it, breaks one thing the way a hand-written converter would, and reads it back.
"""

import dataclasses
import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import matrix_to_rotation_6d, rotation_6d_to_matrix
from mhr2_ros.training.data import ClipSource
from mhr2_ros.training.synthetic.config import SynthConfig
from mhr2_ros.training.synthetic.dataset import load_clip, write_clip
from mhr2_ros.training.synthetic.generator import SyntheticClip


@pytest.fixture(scope="module")
def written(tmp_path_factory, body_model):
    torch.set_num_threads(1)
    base = SynthConfig()
    cfg = dataclasses.replace(
        base, frames=2, vertices=True,
        placement=dataclasses.replace(base.placement, people=(2, 2), distance_m=(2.0, 6.0)),
        camera=dataclasses.replace(base.camera, size=(160, 120)),
    )  # fmt: skip
    return write_clip(tmp_path_factory.mktemp("valid") / "clip", SyntheticClip(cfg, seed=11, body=body_model))


def copy(written, tmp_path):
    return shutil.copytree(written, tmp_path / "clip")


def edit_gt(clip, fn):
    for path in sorted((clip / "gt").glob("*.npz")):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        fn(arrays)
        np.savez(path, **arrays)


def read_all(clip):
    reader = load_clip(clip)
    for i in range(len(reader)):
        reader[i]
    ClipSource([clip]).sample(np.random.default_rng(0))


def test_a_written_clip_passes_and_its_camera_is_tilted(written):
    read_all(written)  # what `mhr2 synth` writes stays readable
    R = load_clip(written).truth(0).camera_rotation
    assert abs(R[1, 2]) > 1e-3 or abs(R[0, 1]) > 1e-3  # pitch or roll: a transposed R differs


def test_converted_clip_without_the_generators_extras_reads(written, tmp_path):
    clip = copy(written, tmp_path)
    extras = ("box_visible", "unoccluded_pixels", "visibility", "truncated", "age_years", "label", "vertices")
    edit_gt(clip, lambda a: [a.pop(k) for k in extras])
    info = json.loads((clip / "clip.json").read_text())
    for key in ("seed", "config", "people", "bone_names", "dof_names", "generator"):
        info.pop(key, None)
    info["files"]["rgb"] = "rgb/{:06d}.png"  # the same files, another format spelling
    (clip / "clip.json").write_text(json.dumps(info))
    read_all(clip)
    assert np.isnan(load_clip(clip).truth(0).visibility).all()


def _mm(a):
    for key in ("joints_3d", "position", "depth", "vertices"):
        a[key] = a[key] * 1000


def _K_of_double_size(a):
    a["K"] = a["K"] * np.array([[2], [2], [1]], np.float32)


def _transpose(key):
    return lambda a: a.__setitem__(key, np.swapaxes(a[key], -1, -2).copy())


def _rows_6d(a):
    R = rotation_6d_to_matrix(torch.from_numpy(a["pose_6d"]))
    a["pose_6d"] = matrix_to_rotation_6d(R.transpose(-1, -2)).numpy()


def _root_in_camera_axes(a):  # the root written as the body's camera-frame rotation
    R = torch.from_numpy(a["orientation"]).double()
    a["pose_6d"][:, 0] = matrix_to_rotation_6d(R).float().numpy()


def _set(key, fn):
    return lambda a: a.__setitem__(key, fn(a))


def _principal_point_at_corner(a):
    a["K"] = a["K"].copy()
    a["K"][0, 2] = 0.0  # K of an uncropped image kept for a crop: fy (and fov_y) still right


@pytest.mark.parametrize("mutate, message", [
    (_mm, "'joints_3d' of a person spans"),
    (_K_of_double_size, "K for another image size"),
    (_transpose("camera_rotation"), "camera_rotation transposed"),
    (_transpose("orientation"), "'orientation' disagrees with the root of 'pose_6d'"),
    (_rows_6d, "first two *columns*"),
    (_root_in_camera_axes, "expressed in Anny axes"),
    (lambda a: a.__setitem__("fov_y", np.rad2deg(a["fov_y"])), "degrees given"),
    (lambda a: a.__setitem__("joints_2d", a["joints_2d"] / 100), "'joints_2d' is not project(joints_3d, K)"),
    (lambda a: a.__setitem__("shape", np.zeros((len(a["ids"]), 10), np.float32)), "not SMPL betas"),
    (lambda a: a.__setitem__("label", np.array(["walk"] * len(a["ids"]), object)), "dtype=str"),
    (lambda a: a.pop("pose_6d"), "missing arrays ['pose_6d']"),
    (_set("depth", lambda a: a["depth"] * 1000), "'depth' differs from position[:, 2]"),
    (_set("position", lambda a: a["position"] + np.float32([0, 0.05, 0])), "'joints_3d[:, PELVIS]' differs from position"),
    (_set("pelvis_2d", lambda a: a["pelvis_2d"][:, ::-1].copy()), "'pelvis_2d' is not project(position, K)"),
    (_set("height", lambda a: a["height"] * 100), "'height'"),
    (_set("ids", lambda a: np.zeros_like(a["ids"])), "must be distinct"),
    (_set("K", lambda a: np.eye(4, dtype=np.float32)), "'K' has shape (4, 4), expected (3, 3)"),
    (_principal_point_at_corner, "principal point"),
    (_set("shape", lambda a: np.zeros((len(a["ids"]), 10), np.float32)), "'shape' has shape (2, 10), expected (2, 6)"),
], ids=["mm", "K", "camera_rotation_T", "orientation_T", "6d_rows", "root_axes", "fov_deg", "joints_2d",
        "betas", "object_label", "missing", "depth_mm", "pelvis_joint", "pelvis_2d_vu", "height_cm", "duplicate_ids",
        "K_4x4", "principal_point", "betas_expected_shape"])  # fmt: skip
def test_wrong_ground_truth_is_refused_by_name(written, tmp_path, mutate, message):
    clip = copy(written, tmp_path)
    edit_gt(clip, mutate)
    with pytest.raises(InputError, match="gt/000000.npz") as err:
        read_all(clip)
    assert message in str(err.value)


def test_image_of_another_size_is_refused(written, tmp_path):
    clip = copy(written, tmp_path)
    path = clip / "rgb" / "000001.png"
    cv2.imwrite(str(path), cv2.resize(cv2.imread(str(path)), (320, 240)))
    with pytest.raises(InputError, match=r"rgb/000001.png: the rgb image is 240x320 .* image_size is \[120, 160\]"):
        load_clip(clip).image(1)


def test_instance_ids_must_be_gt_ids(written, tmp_path):
    clip = copy(written, tmp_path)
    edit_gt(clip, lambda a: a.__setitem__("ids", a["ids"] + 5))
    with pytest.raises(InputError, match=r"instance/000000.png: holds person ids \[0, 1\] that are not in"):
        load_clip(clip)[0]


def test_clip_json_depth_scale_is_honoured(written, tmp_path):
    clip = copy(written, tmp_path)
    info = json.loads((clip / "clip.json").read_text())
    before = load_clip(clip).depth(0)
    info["depth_scale"] = 100.0  # centimetres
    (clip / "clip.json").write_text(json.dumps(info))
    np.testing.assert_allclose(load_clip(clip).depth(0), before * 10, rtol=1e-6)
    info["files"]["rgb"] = "rgb/{frame:06d}.jpg"
    (clip / "clip.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match=r"files.rgb is 'rgb/\{frame:06d\}.jpg'; this reader reads only"):
        load_clip(clip)


def test_clip_json_of_another_joint_order_is_refused(written, tmp_path):
    clip = copy(written, tmp_path)
    info = json.loads((clip / "clip.json").read_text())
    info["joint_names"] = info["joint_names"][::-1]
    (clip / "clip.json").write_text(json.dumps(info))
    with pytest.raises(InputError, match=r"clip.json: clip.json 'joint_names' .* differs from this reader's order"):
        load_clip(clip)
