"""Synthetic data generator: ground truth consistency, rendering, determinism, I/O.

Small images (160x120), few people and frames: the whole file runs in well under a
minute on two CPU cores with the real Anny body model.
"""

import dataclasses
import math
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from mhr2_ros.body import JOINT_NAMES, PELVIS, SHAPE_NAMES
from mhr2_ros.geometry import project, unproject
from mhr2_ros.training.synthetic import poses, rig
from mhr2_ros.training.synthetic.config import SynthConfig, config_from_dict, config_to_dict
from mhr2_ros.training.synthetic.dataset import load_clip, write_clip
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.motion import MotionConfig
from mhr2_ros.training.synthetic.phenotypes import Phenotype
from mhr2_ros.training.synthetic.scene import BEHAVIOURS, ROUTES
from mhr2_ros.training.synthetic.truth import to_frame_result

SIZE = (160, 120)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny images gain nothing from intra-op threads, and on a busy 2-core machine
    OpenMP's spinning workers make them several times slower: run this module on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**placement) -> SynthConfig:
    base = SynthConfig()
    place = dataclasses.replace(base.placement, **{"people": (4, 4), "distance_m": (2.0, 8.0), **placement})
    return dataclasses.replace(
        base, frames=4, vertices=True, placement=place,
        camera=dataclasses.replace(base.camera, size=SIZE),
    )  # fmt: skip


@pytest.fixture(scope="module")
def frames(body_model):
    """Frames of a clip and of independent scenes, with vertices."""
    clip = list(SyntheticClip(small_config(), seed=1, body=body_model))
    scenes = list(SyntheticClip(dataclasses.replace(small_config(), independent=True), seed=2, body=body_model))
    return clip + scenes


def test_joints_project_with_K_to_the_2d_joints(frames):
    for fr in frames:
        t = fr.truth
        np.testing.assert_allclose(project(t.joints_3d.astype(np.float64), t.K), t.joints_2d, atol=1e-2)
        np.testing.assert_allclose(project(t.position.astype(np.float64), t.K), t.pelvis_2d, atol=1e-2)
        np.testing.assert_allclose(t.joints_3d[:, PELVIS], t.position, atol=1e-5)
        np.testing.assert_allclose(t.depth, t.position[:, 2])
        assert t.joints_3d.shape == (len(t.ids), len(JOINT_NAMES), 3)


def test_pose_and_shape_reproduce_the_rendered_mesh(frames, body_model):
    """The GT pose already holds the camera tilt: BodyModel(pose, shape) + position is the mesh."""
    t = frames[0].truth
    with torch.no_grad():
        out = body_model(torch.as_tensor(t.pose_6d), torch.as_tensor(t.shape))
    np.testing.assert_allclose(out.vertices.numpy() + t.position[:, None], t.vertices, atol=1e-4)
    np.testing.assert_allclose(out.orientation.numpy(), t.orientation, atol=1e-5)
    np.testing.assert_allclose(out.height.numpy(), t.height, atol=1e-5)


def test_people_stand_on_the_floor(frames):
    for fr in frames:
        t = fr.truth
        n, d = t.floor_plane[:3], t.floor_plane[3]
        lowest = (t.vertices @ n).max(1)  # n points down: the largest signed height is the lowest point
        np.testing.assert_allclose(lowest, d, atol=1e-4)


def test_masks_cover_the_projected_visible_vertices(frames):
    checked = 0
    for fr in frames:
        t = fr.truth
        H, W = t.image_size
        for p, pid in enumerate(t.ids):
            uv = np.rint(project(t.vertices[p].astype(np.float64), t.K)).astype(int)
            inside = (uv[:, 0] >= 0) & (uv[:, 0] < W) & (uv[:, 1] >= 0) & (uv[:, 1] < H)
            u, v = uv[inside, 0], uv[inside, 1]
            visible = np.abs(fr.depth[v, u] - t.vertices[p, inside, 2]) < 0.01  # the vertex is the surface seen
            seen = unproject(np.stack([u, v], 1).astype(np.float64), fr.depth[v, u].astype(np.float64), t.K)
            visible &= t.floor_plane[3] - seen @ t.floor_plane[:3] > 0.02  # soles touch the floor: ambiguous
            if visible.sum() < 20:
                continue
            assert np.mean(fr.instance[v[visible], u[visible]] == pid) > 0.95
            checked += 1
    assert checked >= 4


def _ray_depth(vertices: np.ndarray, faces: np.ndarray, K: np.ndarray, pixel: np.ndarray) -> float:
    """z of the nearest mesh surface along the ray through `pixel` (Moller-Trumbore)."""
    d = np.linalg.solve(K.astype(np.float64), np.array([pixel[0], pixel[1], 1.0]))
    a, b, c = (vertices[faces[:, k]].astype(np.float64) for k in range(3))
    e1, e2 = b - a, c - a
    p = np.cross(d, e2)
    det = np.einsum("ij,ij->i", e1, p)
    ok = np.abs(det) > 1e-12
    inv = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    s = -a
    u = np.einsum("ij,ij->i", s, p) * inv
    q = np.cross(s, e1)
    v = (q @ d) * inv
    t = np.einsum("ij,ij->i", e2, q) * inv
    hit = ok & (u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0)
    return float(t[hit].min()) if hit.any() else float("nan")  # d has z = 1: t is the depth


def test_depth_image_matches_the_mesh_at_the_pelvis(frames, body_model):
    faces = body_model.faces.numpy()
    checked = 0
    for fr in frames:
        t = fr.truth
        for p, pid in enumerate(t.ids):
            col, row = np.rint(t.pelvis_2d[p]).astype(int)
            if not (0 <= row < t.image_size[0] and 0 <= col < t.image_size[1]) or fr.instance[row, col] != pid:
                continue  # pelvis out of view or occluded
            expected = _ray_depth(t.vertices[p], faces, t.K, np.array([col, row], dtype=np.float64))
            assert fr.depth[row, col] == pytest.approx(expected, abs=1e-3)
            checked += 1
    assert checked >= 3


def test_visibility_and_boxes_are_consistent(frames):
    for fr in frames:
        t = fr.truth
        for p, pid in enumerate(t.ids):
            mask = fr.instance == pid
            assert mask.sum() == t.visible_pixels[p] <= t.unoccluded_pixels[p]
            assert 0.0 <= t.visibility[p] <= 1.0
            if mask.any():
                rows, cols = np.nonzero(mask)
                np.testing.assert_array_equal(t.box_visible[p], [cols.min(), rows.min(), cols.max(), rows.max()])
                assert t.box[p][0] <= cols.min() + 1 and t.box[p][2] >= cols.max() - 1
            else:
                assert np.isnan(t.box_visible[p]).all()


def _standing_pair(body_model, shapes, ground, seed=0):
    """A clip of two people standing straight, facing the camera at chosen ground points."""
    cfg = small_config(people=(2, 2), behaviour_weights=(0, 1, 0, 0, 0), group_probability=0.0, obstacles=(0, 0))
    cfg = dataclasses.replace(
        cfg, frames=1, camera=dataclasses.replace(cfg.camera, fov_deg=(60, 60), height_m=(1.4, 1.4),
                                                  pitch_jitter_deg=0.0, pitch_deg=(0, 0), roll_deg=(0, 0)))  # fmt: skip
    clip = SyntheticClip(cfg, seed, body=body_model)
    plan = clip.plan_for(0)
    for person, shape in zip(plan.people, shapes):
        person.phenotype = Phenotype(np.asarray(shape, np.float32), 30.0, "adult")
        person.base_pose = poses.static_pose("stand")
    plan.trajectories.position[0] = ground
    plan.trajectories.yaw[0] = 0.0
    return clip.frame(0)


def test_child_covers_fewer_pixels_than_adult_at_equal_distance(body_model):
    adult = np.full(6, 0.5)
    child = adult.copy()
    child[SHAPE_NAMES.index("age")] = 0.25
    fr = _standing_pair(body_model, [adult, child], np.array([[-0.8, 5.0], [0.8, 5.0]]))
    px = fr.truth.unoccluded_pixels
    assert fr.truth.visibility.min() == 1.0  # side by side, nobody occluded
    assert 0 < px[1] < 0.7 * px[0]
    assert fr.truth.height[1] < fr.truth.height[0]


def test_nearer_person_occludes_the_farther_one(body_model):
    shape = np.full(6, 0.5)
    fr = _standing_pair(body_model, [shape, shape], np.array([[0.0, 6.0], [0.1, 3.0]]))
    t = fr.truth
    far, near = 0, 1
    assert t.visibility[near] == 1.0 and t.visible_pixels[near] == t.unoccluded_pixels[near]
    assert t.visibility[far] < 0.9
    # Where the near person is seen, the depth is the near person's; the far one shows only around it.
    np.testing.assert_array_less(fr.depth[fr.instance == t.ids[near]], t.vertices[far, :, 2].min())
    assert (fr.depth[fr.instance == t.ids[far]] > t.vertices[near, :, 2].max()).all()


def test_people_leave_and_reenter_with_stable_ids(body_model):
    cfg = small_config(people=(2, 2), behaviour_weights=(1, 0, 0, 0, 0), route_weights=(0, 0, 1),
                       group_probability=0.0, distance_m=(3.0, 5.0), obstacles=(0, 0))  # fmt: skip
    motion = MotionConfig(fps=4.0, pause_probability=0.0, view_overshoot_m=(0.8, 1.2))
    cfg = dataclasses.replace(cfg, frames=28, vertices=False, motion=motion)
    clip = SyntheticClip(cfg, seed=3, body=body_model)
    truths = [fr.truth for fr in clip]
    ids = [p["id"] for p in clip.info["people"]]
    for t in truths:
        np.testing.assert_array_equal(t.ids, ids)  # the same people, in the same order, every frame
    seen = np.array([t.visible_pixels > 0 for t in truths])  # (F, P)
    pattern = ["".join("1" if v else "0" for v in seen[:, p]) for p in range(len(ids))]
    assert any(re.search("10+1", s) for s in pattern), pattern  # visible, gone, visible again
    # Trajectories are smooth: no pelvis jumps between frames (walking speed < 2 m/s).
    steps = np.linalg.norm(np.diff(np.array([t.position for t in truths]), axis=0), axis=-1)
    assert steps.max() < 2.0 / cfg.motion.fps


def test_view_sides_bound_the_image(body_model):
    """Routes leave the view past Camera.side_x: a person's whole height projects outside there."""
    cfg = dataclasses.replace(small_config(), frames=1)
    for seed in range(3):
        cam = SyntheticClip(dataclasses.replace(cfg, camera=dataclasses.replace(cfg.camera, roll_deg=(-4, 4))),
                            seed, body=body_model).plan_for(0).camera  # fmt: skip
        for z in (2.0, 6.0):
            for side in (-1.0, 1.0):
                x = cam.side_x(z, side) + 0.05 * side
                pts = np.array([[x, cam.height_m - y, z] for y in np.linspace(0.0, 2.2, 12)])
                u = project(cam.to_camera(pts), cam.K)[:, 0]
                assert ((u > cam.width - 0.5) if side > 0 else (u < -0.5)).all()


def test_reader_round_trips_the_writer(tmp_path, body_model):
    clip = SyntheticClip(dataclasses.replace(small_config(), frames=2), seed=4, body=body_model)
    write_clip(tmp_path / "clip", clip)
    back = load_clip(tmp_path / "clip")
    assert len(back) == 2 and back.info["seed"] == 4 and back.info["joint_names"] == list(JOINT_NAMES)
    assert config_from_dict(back.info["config"]) == clip.config
    for original, loaded in zip(clip, back):
        np.testing.assert_array_equal(loaded.image, original.image)
        np.testing.assert_array_equal(loaded.instance, original.instance)
        stored = (original.depth > 0) & (original.depth <= 65.535)
        np.testing.assert_allclose(loaded.depth[stored], original.depth[stored], atol=5.1e-4)
        assert (loaded.depth[~stored] == 0).all()
        for name, value in original.truth.to_arrays().items():
            np.testing.assert_array_equal(getattr(loaded.truth, name), value, err_msg=name)
        assert loaded.time == original.time


def test_a_folder_of_clips_names_its_clips(tmp_path, body_model):
    from mhr2_ros.errors import InputError
    from mhr2_ros.training.data import ClipSource
    from mhr2_ros.training.synthetic.dataset import clip_folders

    cfg = dataclasses.replace(small_config(people=(1, 1)), frames=1, vertices=False)
    for name, frames in (("b", 2), ("a", 1)):
        write_clip(tmp_path / "set" / name, SyntheticClip(dataclasses.replace(cfg, frames=frames), 3, body_model))
    (tmp_path / "set" / "notes").mkdir()  # a subfolder without clip.json is no clip
    single = tmp_path / "set" / "b"
    assert clip_folders([tmp_path / "set", single]) == [tmp_path / "set" / "a", single, single]
    assert len(ClipSource([tmp_path / "set"])) == 3  # every frame of both clips
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "missing", tmp_path / "set" / "notes"):
        with pytest.raises(InputError, match=f"{bad.name} is not a synthetic clip"):
            clip_folders([bad])


def test_command_is_deterministic_and_validates(tmp_path, capsys):
    from mhr2_ros.cli import main

    args = ["synth", "--people", "3", "--frames", "2", "--seed", "7", "--size", "160x120", "--no-progress"]
    assert main(args[:1] + [str(tmp_path / "a")] + args[1:]) == 0
    # The second run is a separate process: nothing may depend on the process state.
    code = f"import sys; from mhr2_ros.cli import main; sys.exit(main({args[:1] + [str(tmp_path / 'b')] + args[1:]!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 1 + 4 * 2
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert main(args[:1] + [str(tmp_path / "a")] + args[1:]) == 2  # not empty, no --overwrite
    assert "not empty" in capsys.readouterr().err
    (tmp_path / "a" / "sam2_targets").mkdir()  # targets of the old frames (mhr2-sam2-targets)
    (tmp_path / "a" / "sam2_targets" / "000000.npz").write_bytes(b"old")
    assert main(args[:1] + [str(tmp_path / "a")] + args[1:] + ["--overwrite", "--frames", "1"]) == 0
    assert not (tmp_path / "a" / "sam2_targets").exists()  # derived data of the old clip removed
    assert sorted(p.name for p in (tmp_path / "a" / "gt").iterdir()) == ["000000.npz"]  # stale frames gone
    assert len(load_clip(tmp_path / "a")) == 1
    for bad in (["--size", "12x5"], ["--people", "30"], ["--frames", "0"], ["--fov", "100-20"]):
        with pytest.raises(SystemExit) as exc:
            main(args[:1] + [str(tmp_path / "c")] + args[1:] + bad)
        assert exc.value.code == 2


def test_frame_result_view_of_the_truth(frames):
    fr = frames[0]
    result = to_frame_result(fr.truth, id_prefix="p")
    assert len(result) == int(fr.truth.in_view.sum())
    assert result.image_size == fr.image.shape[:2] and result.K_source == "given"
    for human in result.humans:
        p = list(fr.truth.ids).index(int(human.track_id[1:]))
        np.testing.assert_array_equal(human.position, fr.truth.position[p])
        assert human.keypoints_2d.shape == (len(JOINT_NAMES), 2) and human.score == 1.0


def test_pose_vocabulary_within_limits_and_named_axes(body_model):
    """Every pose respects the joint limits, and the anatomical names move the right way."""
    for name in poses.STATIC_POSES:
        for mirrored in (False, True):
            pose = poses.static_pose(name, mirrored)
            assert (pose >= poses.LIMITS[:, 0]).all() and (pose <= poses.LIMITS[:, 1]).all(), name
    phase = np.linspace(0, 1, 9)
    walk = poses.gait(phase, np.ones(9), np.zeros((9, len(rig.DOF_NAMES))), np.ones(9, bool))
    assert (walk >= poses.LIMITS[:, 0]).all() and (walk <= poses.LIMITS[:, 1]).all()
    from mhr2_ros.training.synthetic.assets import assets_for

    axes = assets_for(body_model).rig
    tests = [({}, None), ({"hip.L.flex": 60}, None), ({"shoulder.R.abd": 90}, None), ({"spine.flex": 40}, None)]
    vecs = np.stack([rig.pose_vector(v) for v, _ in tests])
    r6 = torch.as_tensor(rig.rotations_to_6d(rig.pose_rotations(vecs, np.zeros(4), axes, 163)), dtype=torch.float32)
    with torch.no_grad():
        j = body_model(r6, torch.full((4, 6), 0.5)).joints.numpy()  # camera axes, body facing the camera
    J = JOINT_NAMES.index
    assert j[1, J("left_knee"), 2] < j[0, J("left_knee"), 2] - 0.15  # thigh forward: knee toward the camera
    assert j[2, J("right_wrist"), 1] < j[2, J("right_shoulder"), 1] + 0.1  # arm out sideways: wrist up
    assert j[2, J("right_wrist"), 0] < j[0, J("right_wrist"), 0] - 0.3  # ... on the body's right (image left)
    assert j[3, J("head"), 2] < j[0, J("head"), 2] - 0.1  # trunk flexion: head forward


def test_rig_measured_alike_whatever_the_torch_thread_count(body_model):
    """A data worker (one thread) and a training process (all cores) pose people with the
    same rig: on an AVX-512 Xeon the body model's rest bone heads differ by 2e-7 m between
    1 and 2 threads, which moved elbow-hinge rotations of training targets by one float32 ulp."""
    from mhr2_ros.training.synthetic.assets import build_assets

    threads = torch.get_num_threads()
    try:
        measured = []
        for n in (2, 1):
            torch.set_num_threads(n)
            measured.append(build_assets(body_model))
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    a, b = (m.rig for m in measured)
    for side in rig.SIDES:
        np.testing.assert_array_equal(a.shoulder_offset[side], b.shoulder_offset[side])
        np.testing.assert_array_equal(a.elbow_hinge[side], b.elbow_hinge[side])
        assert a.elbow_rest_deg[side] == b.elbow_rest_deg[side]
    np.testing.assert_array_equal(measured[0].regions.rest, measured[1].regions.rest)


def test_phenotypes_cover_ages_and_config_round_trips(body_model):
    cfg = dataclasses.replace(small_config(people=(20, 20)), frames=1)
    clip = SyntheticClip(cfg, seed=5, body=body_model)
    plan = clip.plan_for(0)
    assert {p.behaviour for p in plan.people} <= set(BEHAVIOURS)
    assert {p.route for p in plan.people} <= set(ROUTES) | {"static", "follow"}
    ages = np.array([p.phenotype.age_years for p in plan.people])
    assert ages.min() < 12 and ages.max() > 40
    assert all(p.behaviour == "sit_ground" for p in plan.people if p.phenotype.age_years < 1.5)
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_anny_calibration_constants_match_the_package():
    import anny

    from mhr2_ros.training.synthetic import phenotypes
    from pathlib import Path

    folder = Path(anny.__file__).parent / "data" / "shape_calibration"
    for label, name in (("male", "boys"), ("female", "girls")):
        data = torch.load(folder / f"{name}.pth", weights_only=True, map_location="cpu")
        mapping = data["morphological_age_mapping"]
        np.testing.assert_allclose(mapping["anny_age_anchors"], phenotypes.ANNY_AGE_ANCHORS, atol=1e-6)
        np.testing.assert_allclose(mapping["morphological_age_anchors"], phenotypes.AGE_YEARS_ANCHORS, atol=1e-6)
        height = data["conditional_height_distribution"]
        np.testing.assert_allclose(height["alpha_anchors"], phenotypes.HEIGHT_BETA[label][0], atol=1e-3)
        np.testing.assert_allclose(height["beta_anchors"], phenotypes.HEIGHT_BETA[label][1], atol=1e-3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_renders_like_the_cpu(body_model):
    cfg = dataclasses.replace(small_config(), frames=1)
    cpu = SyntheticClip(cfg, seed=6, body=body_model).frame(0)
    gpu_cfg = dataclasses.replace(cfg, render=dataclasses.replace(cfg.render, device="cuda"))
    gpu = SyntheticClip(gpu_cfg, seed=6, body=body_model).frame(0)
    assert np.mean(cpu.instance == gpu.instance) > 0.999
    assert np.mean(np.abs(cpu.image.astype(int) - gpu.image.astype(int)) <= 2) > 0.99
    np.testing.assert_allclose(cpu.truth.visibility, gpu.truth.visibility, atol=0.01)
    assert math.isclose(cpu.truth.fov_y, gpu.truth.fov_y)
