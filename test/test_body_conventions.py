"""Body-model conventions checked on the real Anny model: the root rotation's axes, the
kinematic chain, which bone drives each named joint, batching and dtypes."""

import math

import numpy as np
import pytest
import torch

from mhr2_ros.body import JOINT_NAMES, PELVIS, SHAPE_NAMES
from mhr2_ros.body.anny_body import ANNY_TO_CAMERA, BODY_TO_ANNY, COCO_NAMES, FOOT_NAMES
from mhr2_ros.body.joints import PART_BONES, PART_NAMES, part_origins
from mhr2_ros.geometry import IDENTITY_6D, matrix_to_rotation_6d, rotation_6d_to_matrix


def _identity(n, bones=163):
    return torch.tensor(IDENTITY_6D).repeat(n, bones, 1)


def _about_x(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[1.0, 0, 0], [0, c, -s], [0, s, c]])


def _random_rotation(seed):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed)))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


def _moved(body_model, bone, R, shape=None):
    """{joint name: displacement in meters} when `bone` alone is rotated by R."""
    shape = torch.full((1, 6), 0.5) if shape is None else shape
    r6 = _identity(1)
    r6[0, body_model.bone_names.index(bone)] = matrix_to_rotation_6d(R)
    rest, posed = body_model(_identity(1), shape).joints[0], body_model(r6, shape).joints[0]
    return {n: d for n, d in zip(JOINT_NAMES, (posed - rest).norm(dim=-1).tolist()) if d > 1e-4}


def test_root_rotation_is_in_anny_axes_and_turns_the_body_about_the_pelvis(body_model):
    R = _random_rotation(1)
    r6 = _identity(1)
    r6[0, 0] = matrix_to_rotation_6d(R)
    shape = torch.full((1, 6), 0.5)
    rest, posed = body_model(_identity(1), shape), body_model(r6, shape)
    in_camera = ANNY_TO_CAMERA @ R @ ANNY_TO_CAMERA.T
    torch.testing.assert_close(posed.vertices[0], rest.vertices[0] @ in_camera.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(posed.joints[0], rest.joints[0] @ in_camera.T, atol=1e-5, rtol=0)
    torch.testing.assert_close(posed.orientation[0], in_camera @ rest.orientation[0], atol=1e-6, rtol=0)
    assert posed.joints[0, PELVIS].abs().max() == 0


def test_parent_rotation_carries_the_child_bones(body_model):
    """Local-ref deltas: a child's world rotation is parent delta @ child delta (rest world axes)."""
    names = body_model.bone_names
    arm, forearm = names.index("upperarm01.L"), names.index("lowerarm01.L")
    D1, D2 = _random_rotation(2), _random_rotation(3)
    pose = torch.eye(4).repeat(1, 163, 1, 1)
    rest = body_model.anny(pose_parameters=pose, phenotype_kwargs=torch.full((1, 6), 0.5))["bone_poses"]
    pose[0, arm, :3, :3], pose[0, forearm, :3, :3] = D1, D2
    posed = body_model.anny(pose_parameters=pose, phenotype_kwargs=torch.full((1, 6), 0.5))["bone_poses"]
    torch.testing.assert_close(posed[0, forearm, :3, :3], D1 @ D2 @ rest[0, forearm, :3, :3], atol=1e-5, rtol=0)


def test_each_limb_bone_moves_its_own_sides_joints(body_model):
    flex = _about_x(90)
    assert set(_moved(body_model, "upperarm01.L", flex)) == {"left_shoulder", "left_elbow", "left_wrist"}
    assert set(_moved(body_model, "upperarm01.R", flex)) == {"right_shoulder", "right_elbow", "right_wrist"}
    assert set(_moved(body_model, "foot.L", flex)) == {"left_ankle", "left_big_toe", "left_small_toe", "left_heel"}
    assert set(_moved(body_model, "lowerleg01.R", flex)) == {
        "right_knee", "right_ankle", "right_big_toe", "right_small_toe", "right_heel"}  # fmt: skip
    face = {"nose", "left_eye", "right_eye", "left_ear", "right_ear"}
    assert face | {"head"} <= set(_moved(body_model, "neck01", flex))


def test_named_joints_sit_on_their_bones(body_model):
    """Regressed keypoints lie within a few centimetres of the bone heads they stand for,
    the .L bones being on the body's left (image right for a person facing the camera)."""
    shape = torch.full((1, 6), 0.5)
    out = body_model.anny(pose_parameters=torch.eye(4).repeat(1, 163, 1, 1), phenotype_kwargs=shape)
    heads = (out["bone_poses"][0, :, :3, 3] - out["bone_poses"][0, :1, :3, 3]) @ ANNY_TO_CAMERA.T
    joints = body_model(_identity(1), shape).joints[0]
    for joint, bone in [("left_wrist", "wrist.L"), ("right_wrist", "wrist.R"), ("left_knee", "lowerleg01.L"),
                        ("right_ankle", "foot.R"), ("left_eye", "eye.L"), ("right_elbow", "lowerarm01.R")]:  # fmt: skip
        head = heads[body_model.bone_names.index(bone)]
        assert (joints[JOINT_NAMES.index(joint)] - head).norm() < 0.03, (joint, bone)
        assert (head[0] > 0) == joint.startswith("left_"), (joint, bone)
    assert body_model.regressor.labels == list(COCO_NAMES + FOOT_NAMES)


def test_height_is_the_rest_height_whatever_the_pose(body_model):
    shape = torch.full((2, 6), 0.5)
    r6 = _identity(2)
    for bone in ("upperleg01.L", "upperleg01.R", "lowerleg01.L", "lowerleg01.R", "spine03"):
        r6[1, body_model.bone_names.index(bone)] = matrix_to_rotation_6d(_about_x(-60))  # crouch
    out = body_model(r6, shape)
    standing = out.vertices[0, :, 1].max() - out.vertices[0, :, 1].min()
    crouched = out.vertices[1, :, 1].max() - out.vertices[1, :, 1].min()
    assert crouched < standing - 0.1
    torch.testing.assert_close(out.height, standing.expand(2), atol=1e-5, rtol=0)


def test_rest_height_is_forwards_height_bit_for_bit(body_model):
    """The synthetic scenes size people with rest_height before posing them with forward:
    the two must agree exactly (a change of anny's internals would break it here)."""
    shape = torch.rand(7, 6, generator=torch.Generator().manual_seed(3))
    shape[0] = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the clamp's edges, an infant
    shape[1] = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    with torch.no_grad():
        heights = body_model.rest_height(shape)
        posed = body_model(_identity(7) + 0.2 * torch.randn(7, body_model.num_bones, 6), shape).height
    assert torch.equal(heights, posed)
    assert heights.min() > 0.4 and heights.max() < 2.4 and heights[0] < 1.0  # meters: infants to tall adults
    assert body_model.rest_height(torch.zeros(0, 6)).shape == (0,)
    with pytest.raises(ValueError, match="phenotypes"):
        body_model.rest_height(torch.zeros(3, 5))


def test_adult_heights_by_gender(body_model):
    shape = torch.full((2, 6), 0.5)
    shape[:, SHAPE_NAMES.index("age")] = 0.77  # 18 years (training/synthetic/phenotypes.py calibration)
    shape[:, SHAPE_NAMES.index("gender")] = torch.tensor([0.0, 1.0])  # Anny: 0 male, 1 female
    male, female = body_model(_identity(2), shape).height.tolist()
    assert 1.6 < female < male < 2.0


def test_outputs_do_not_depend_on_the_batch(body_model):
    gen = torch.Generator().manual_seed(0)
    r6 = _identity(4) + 0.3 * torch.randn(4, 163, 6, generator=gen)
    shape = torch.rand(4, 6, generator=gen)
    batched = body_model(r6, shape)
    for i in range(4):
        single = body_model(r6[i : i + 1], shape[i : i + 1])
        for name in ("vertices", "joints", "orientation", "height"):
            torch.testing.assert_close(getattr(single, name)[0], getattr(batched, name)[i], atol=1e-4, rtol=0)


def test_float64_in_float64_out(body_model):
    r6, shape = _identity(2).double(), torch.full((2, 6), 0.5, dtype=torch.float64)
    out, empty = body_model(r6, shape), body_model(r6[:0], shape[:0])
    for name in ("vertices", "joints", "orientation", "height"):
        assert getattr(out, name).dtype == getattr(empty, name).dtype == torch.float64
    np.testing.assert_allclose(out.joints[:, PELVIS].numpy(), 0.0, atol=0)


@pytest.mark.parametrize("shape_rows, cols", [(1, 6), (3, 6), (2, 5)])
def test_shape_batch_must_match_rot6d(body_model, shape_rows, cols):
    with pytest.raises(ValueError, match=r"shape must be \(B, 6\)"):
        body_model(_identity(2), torch.full((shape_rows, cols), 0.5))


def _about_z(deg):
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0, 0, 1.0]])


def test_body_parts_turn_with_their_bones_and_the_ones_above(body_model):
    """A part's rotation is the body axes turned by its bone's delta and those of the bones above it
    (local-ref deltas in Anny's rest axes, seen in camera axes): at the rest pose every part has the
    pelvis orientation; bending the left elbow turns the left elbow and wrist, not the shoulder."""
    shape = torch.full((2, 6), 0.5)
    r6 = _identity(2)
    r6[:, 0] = matrix_to_rotation_6d(_random_rotation(4))  # any root: the parts turn with it
    bend = _about_x(70)
    r6[1, body_model.bone_names.index("lowerarm01.L")] = matrix_to_rotation_6d(bend)
    out = body_model(r6, shape)
    assert out.part_rotations.shape == (2, len(PART_NAMES), 3, 3)
    rest, bent = out.part_rotations
    torch.testing.assert_close(rest, out.orientation[0].expand(len(PART_NAMES), 3, 3), atol=1e-5, rtol=0)
    root = ANNY_TO_CAMERA @ _random_rotation(4) @ ANNY_TO_CAMERA.T  # the root turn, camera axes
    elbow_turn = root @ ANNY_TO_CAMERA @ bend @ ANNY_TO_CAMERA.T @ root.T  # the bend, after the root's
    for name, part in zip(PART_NAMES, bent):
        expected = elbow_turn @ out.orientation[1] if name in ("l_elbow", "l_wrist") else out.orientation[1]
        torch.testing.assert_close(part, expected, atol=1e-5, rtol=0, msg=name)
    # the forearm's joints turn with it: wrist - elbow rotated by the bend (keypoints regressed from the skin)
    j = {n: out.joints[:, JOINT_NAMES.index(n)] for n in ("left_elbow", "left_wrist")}
    forearm = j["left_wrist"] - j["left_elbow"]  # (2, 3)
    assert torch.linalg.norm(elbow_turn @ forearm[0] - forearm[1]) < 0.02


@pytest.mark.parametrize("yaw", [0.0, 40.0, -60.0])
def test_head_part_x_axis_is_where_the_face_looks(body_model, yaw):
    """REP-155's head frame: x out of the face. The face's direction, from between the ears to the
    nose, has the head part's x axis within a few degrees (the nose sits a little low)."""
    r6 = _identity(1)
    r6[0, body_model.bone_names.index("head")] = matrix_to_rotation_6d(_about_z(yaw))
    out = body_model(r6, torch.full((1, 6), 0.5))
    joints = out.joints[0].numpy()
    ears = (joints[JOINT_NAMES.index("left_ear")] + joints[JOINT_NAMES.index("right_ear")]) / 2
    face = joints[JOINT_NAMES.index("nose")] - ears
    x_axis = out.part_rotations[0, PART_NAMES.index("head"), :, 0].numpy()
    angle = math.degrees(math.acos(float(x_axis @ face) / float(np.linalg.norm(face))))
    assert angle < 10.0, angle
    up = out.orientation[0, :, 2].numpy()  # the head turned about the body's up axis: z stays up
    z_axis = out.part_rotations[0, PART_NAMES.index("head"), :, 2].numpy()
    assert float(z_axis @ up) > math.cos(math.radians(1.0))


def test_part_origins_are_their_joints(body_model):
    out = body_model(_identity(1), torch.full((1, 6), 0.5))
    joints = out.joints[0].numpy()
    origins = part_origins(joints)
    assert origins.shape == (len(PART_NAMES), 3)
    np.testing.assert_allclose(origins[PART_NAMES.index("l_knee")], joints[JOINT_NAMES.index("left_knee")])
    eyes = (joints[JOINT_NAMES.index("left_eye")] + joints[JOINT_NAMES.index("right_eye")]) / 2
    np.testing.assert_allclose(origins[PART_NAMES.index("head")], eyes)  # REP-155's sellion
    assert origins[PART_NAMES.index("l_wrist")][0] > 0 > origins[PART_NAMES.index("r_wrist")][0]  # left: image right


def test_part_rotations_are_annys_skinning_turns_of_the_part_bones(body_model):
    """The chain product of the deltas (BodyModel.part_rotations, no skinning) against Anny's own
    posed and rest bone poses: posed @ rest^T is the turn a bone gives the rest-pose skin."""
    r6 = matrix_to_rotation_6d(torch.stack([_random_rotation(100 + i) for i in range(2 * 163)])).reshape(2, 163, 6)
    shape = torch.rand(2, 6, generator=torch.Generator().manual_seed(5))
    pose = torch.eye(4).repeat(2, 163, 1, 1)
    pose[..., :3, :3] = rotation_6d_to_matrix(r6)
    out = body_model.anny(pose_parameters=pose, phenotype_kwargs=shape, pose_parameterization="local-ref")
    ids = [body_model.bone_names.index(bone) for bone in PART_BONES]
    turns = out["bone_poses"][:, ids, :3, :3] @ out["rest_bone_poses"][:, ids, :3, :3].transpose(-1, -2)
    expected = ANNY_TO_CAMERA @ turns @ BODY_TO_ANNY
    torch.testing.assert_close(body_model.part_rotations(r6), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(body_model(r6, shape).part_rotations, expected, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="rot6d must be"):
        body_model.part_rotations(r6[:, :10])
