import subprocess
import sys

import numpy as np
import torch

from mhr2_ros.body import JOINT_NAMES, PELVIS, SHAPE_NAMES
from mhr2_ros.geometry import IDENTITY_6D

AGE = SHAPE_NAMES.index("age")


def _identity(n, bones=163):
    return torch.tensor(IDENTITY_6D).expand(n, bones, 6).clone()


def _shape(n, **values):
    s = torch.full((n, len(SHAPE_NAMES)), 0.5)
    for name, v in values.items():
        s[:, SHAPE_NAMES.index(name)] = torch.as_tensor(v)
    return s


def test_rig_has_the_papers_163_bones(body_model):
    assert body_model.num_bones == 163
    assert body_model.faces.shape[1] == 3 and body_model.faces.max() < body_model.num_vertices


def test_child_is_shorter_than_adult(body_model):
    out = body_model(_identity(3), _shape(3, age=[0.0, 0.25, 0.6]))
    infant, child, adult = out.height.tolist()
    assert infant < child < adult
    assert 1.5 < adult < 2.0 and infant < 0.9  # meters


def test_identity_pose_pelvis_orientation_upright_facing_camera(body_model):
    out = body_model(_identity(1), _shape(1))
    # REP-103 body frame (forward, left, up) -> camera (x right, y down, z forward):
    expected = np.array([[0.0, 1, 0], [0, 0, -1], [-1, 0, 0]])
    np.testing.assert_allclose(out.orientation[0].numpy(), expected, atol=1e-6)
    j = out.joints[0].numpy()
    head, nose = j[JOINT_NAMES.index("head")], j[JOINT_NAMES.index("nose")]
    ankle = j[JOINT_NAMES.index("left_ankle")]
    assert head[1] < -0.4 < 0.5 < ankle[1]  # head above (y down), feet below
    assert nose[2] < head[2] - 0.05  # the face points at the camera (-z)
    assert j[JOINT_NAMES.index("left_shoulder")][0] > 0  # the body's left is image right


def test_vertices_in_meters_and_pelvis_centred(body_model):
    out = body_model(_identity(1), _shape(1, age=0.7))
    v = out.vertices[0].numpy()
    extent = v.max(0) - v.min(0)
    assert 1.5 < extent[1] < 2.0  # vertical extent of an adult, meters
    np.testing.assert_allclose(out.joints[0, PELVIS].numpy(), 0.0, atol=1e-6)
    assert np.abs(v.mean(0)).max() < 0.5


def test_root_rotation_turns_the_body(body_model):
    r6 = _identity(1)
    up = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])  # 90 deg about Anny's up (Z)
    r6[0, 0] = torch.cat([up[:, 0], up[:, 1]])
    out = body_model(r6, _shape(1))
    body_forward = out.orientation[0, :, 0].numpy()
    # turned by 90 degrees about the vertical: forward is now horizontal, along camera x
    assert abs(body_forward[1]) < 1e-5 and abs(abs(body_forward[0]) - 1) < 1e-5


def test_empty_batch(body_model):
    out = body_model(_identity(0), _shape(0))
    assert out.vertices.shape == (0, body_model.num_vertices, 3)


def test_autocast_does_not_reach_the_body_model(body_model):
    rot6d, shape = _identity(2), _shape(2)
    full = body_model(rot6d, shape)
    with torch.autocast("cpu", torch.bfloat16):
        mixed = body_model(rot6d, shape)
    assert mixed.vertices.dtype == torch.float32
    assert torch.allclose(mixed.vertices, full.vertices, atol=1e-6)  # bf16 skinning was ~2 mm off


def test_empty_batch_has_every_field_shaped(body_model):
    out = body_model(torch.tensor(IDENTITY_6D).expand(0, 163, 6), torch.zeros(0, 6))
    assert out.vertices.shape == (0, body_model.num_vertices, 3)
    assert out.joints.shape == (0, len(JOINT_NAMES), 3)
    assert out.orientation.shape == (0, 3, 3) and out.height.shape == (0,)


def test_without_warp_the_body_builds_and_anny_does_not_warn_in_each_process():
    """Where NVIDIA Warp cannot be imported (the lent GPU machine had none) Anny skins in torch and
    warns in every process that builds it: 14 times in a GPU training log, one per data worker. The
    wrapper says it once at DEBUG instead; the body still builds and skins. A fresh process, since
    the build is cached per process and Warp is importable here."""
    code = (
        "import sys, warnings; sys.modules['warp'] = None\n"  # import warp -> ImportError
        "warnings.simplefilter('error')\n"  # any warning of the build fails the run
        "import torch; from mhr2_ros.body import BodyModel; from mhr2_ros.geometry import IDENTITY_6D\n"
        "body = BodyModel('makehuman')\n"
        "out = body(torch.tensor(IDENTITY_6D).expand(1, body.num_bones, 6).clone(), torch.full((1, 6), 0.5))\n"
        "print('height', round(float(out.height[0]), 2))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Fallback to lbs" not in run.stderr and run.stdout.startswith("height 1.")
