"""Synthetic ground truth against its definitions (docs/dataset_format.md), value by value:
joints_3d and vertices are the body model's placed at the position, boxes / visibility /
truncation from the projected vertices and pixel counts, walkers face where they walk, and the
FrameResult view carries every truth row of its person, nearest first."""

import dataclasses

import numpy as np
import pytest
import torch

from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.motion import MotionConfig
from mhr2_ros.training.synthetic.truth import to_frame_result
from test_synthetic import _one_thread, frames, small_config  # noqa: F401  (fixtures: one thread, 4 rendered frames)


def test_joints_3d_are_the_body_models_joints_placed(frames, body_model):
    for fr in frames:
        t = fr.truth
        with torch.no_grad():
            out = body_model(torch.as_tensor(t.pose_6d), torch.as_tensor(t.shape))
        np.testing.assert_allclose(out.joints.numpy() + t.position[:, None], t.joints_3d, atol=1e-4)
        np.testing.assert_allclose(out.vertices.numpy() + t.position[:, None], t.vertices, atol=1e-4)


def test_box_visibility_and_truncation_follow_their_definitions(frames):
    bottom_cut = 0
    for fr in frames:
        t = fr.truth
        H, W = t.image_size
        with np.errstate(invalid="ignore", divide="ignore"):
            expected_vis = np.where(t.unoccluded_pixels > 0, t.visible_pixels / t.unoccluded_pixels, 0.0)
        np.testing.assert_allclose(t.visibility, expected_vis, rtol=1e-6)
        v = t.vertices.astype(np.float64)
        K = t.K.astype(np.float64)
        u = K[0, 0] * v[..., 0] / v[..., 2] + K[0, 2]
        w = K[1, 1] * v[..., 1] / v[..., 2] + K[1, 2]
        lo = np.stack([u.min(1), w.min(1)], 1)
        hi = np.stack([u.max(1), w.max(1)], 1)
        box = np.concatenate([np.clip(lo, 0, [W - 1, H - 1]), np.clip(hi, 0, [W - 1, H - 1])], 1)
        np.testing.assert_allclose(t.box, box, atol=1e-2)
        crosses = (lo < -0.5).any(1) | (hi > [W - 0.5, H - 0.5]).any(1)
        np.testing.assert_array_equal(t.truncated, crosses & (t.visible_pixels > 0))
        bottom_cut += int(((hi[:, 1] > H - 0.5) & (t.visible_pixels > 0)).sum())
    assert bottom_cut > 0  # the frames hold someone cut by the bottom border: the y clipping is exercised


def test_walkers_face_the_way_they_walk(body_model):
    cfg = small_config(people=(3, 3), behaviour_weights=(1, 0, 0, 0, 0), route_weights=(1, 0, 0),
                       group_probability=0.0, obstacles=(0, 0))
    cfg = dataclasses.replace(cfg, frames=4, vertices=False, motion=MotionConfig(fps=4.0, pause_probability=0.0))
    truths = [fr.truth for fr in SyntheticClip(cfg, seed=3, body=body_model)]
    checked = 0
    for before, t in zip(truths, truths[1:]):
        R = t.camera_rotation.astype(np.float64)  # level -> camera
        step = (t.position - before.position) @ R  # level frame (x right, y down, z forward)
        forward = np.einsum("ij,pj->pi", R.T, t.orientation[:, :, 0])  # REP-103 x axis, level frame
        for p in range(len(t.ids)):
            ground_step, ground_fwd = step[p, [0, 2]], forward[p, [0, 2]]
            if np.linalg.norm(ground_step) < 0.1:
                continue
            cos = ground_step @ ground_fwd / np.linalg.norm(ground_step) / np.linalg.norm(ground_fwd)
            assert cos > 0.8, (p, cos)
            checked += 1
    assert checked >= 4


def test_frame_result_rows_are_the_truth_rows(frames):
    fr = next(f for f in frames if 0 < f.truth.in_view.sum() < len(f.truth.ids))  # someone in view, someone not
    t = fr.truth
    for hidden in (False, True):
        result = to_frame_result(t, include_hidden=hidden, id_prefix="p")
        assert len(result) == (len(t.ids) if hidden else int(t.in_view.sum()))
        depths = [h.depth for h in result.humans]
        assert depths == sorted(depths)  # nearest first
        for human in result.humans:
            p = list(t.ids).index(int(human.track_id[1:]))
            for field, row in (("keypoints_2d", t.joints_2d), ("joints_3d", t.joints_3d), ("box", t.box),
                               ("orientation", t.orientation), ("shape", t.shape), ("pose_6d", t.pose_6d),
                               ("pelvis_2d", t.pelvis_2d), ("vertices", t.vertices)):
                np.testing.assert_array_equal(getattr(human, field), row[p], err_msg=field)
            assert human.depth == pytest.approx(t.position[p, 2]) and human.height == pytest.approx(t.height[p])
