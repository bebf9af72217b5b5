"""inference/rectify.py: raw images of a distorted lens <-> the pinhole images of the same K, with OpenCV's
own undistortion as the reference."""

import cv2
import numpy as np
import pytest

from mhr2_ros.inference.rectify import Rectifier

K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
HW = (120, 160)
LENSES = [("plumb_bob", [-0.2, 0.05, 0.001, -0.001, 0.0]), ("rational_polynomial", [-0.2, 0.05, 0, 0, 0, 0.01, 0, 0]),
          ("equidistant", [0.05, 0.01, 0.0, 0.0])]  # fmt: skip


def _undistort(points, model, D, K=K):
    """OpenCV: the pinhole pixels of raw pixels (N, 2)."""
    pts = np.asarray(points, np.float64).reshape(-1, 1, 2)
    if model == "equidistant":
        return cv2.fisheye.undistortPoints(pts, K, np.asarray(D, np.float64), P=K).reshape(-1, 2)
    return cv2.undistortPoints(pts, K, np.asarray(D, np.float64), P=K).reshape(-1, 2)


def _raw_of(pinhole, model, D):
    """The raw image a distorted lens makes of a scene whose pinhole image is `pinhole`."""
    h, w = pinhole.shape[:2]
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 2)
    where = _undistort(grid, model, D).reshape(h, w, 2).astype(np.float32)
    return cv2.remap(pinhole, where[..., 0], where[..., 1], cv2.INTER_LINEAR)


@pytest.mark.parametrize("model, D", LENSES)
def test_pixels_go_to_the_raw_image_and_back(model, D):
    rect = Rectifier(K, D, model, HW)
    uv = np.random.default_rng(0).uniform([20, 15], [140, 105], (50, 2))
    raw = rect.to_raw_pixels(uv)
    assert np.abs(raw - uv).max() > 1.0  # the lens moves them
    np.testing.assert_allclose(_undistort(raw, model, D), uv, atol=1e-3)
    points = np.concatenate([(uv - K[:2, 2]) / 150.0, np.ones((50, 1))], 1) * 3.0  # 3 m away on those rays
    np.testing.assert_allclose(rect.project(points), raw, atol=1e-9)


@pytest.mark.parametrize("model, D", LENSES)
def test_the_raw_image_is_resampled_into_the_pinhole_one(model, D):
    yy, xx = np.mgrid[0 : HW[0], 0 : HW[1]].astype(np.float64)
    smooth = 127.5 + 100.0 * np.sin(xx / 5.0) * np.cos(yy / 4.0)  # 27-228, no edges: two resamplings keep it
    pinhole = np.repeat(smooth[..., None], 3, axis=2).round().astype(np.uint8)
    raw = _raw_of(pinhole, model, D)
    rect = Rectifier(K, D, model, HW).image(raw)
    seen = (rect[..., 0] > 0) & (raw[..., 0] > 0)  # black: outside what the other image holds
    seen[:3], seen[-3:], seen[:, :3], seen[:, -3:] = False, False, False, False
    assert seen.mean() > 0.8
    assert np.abs(rect[seen].astype(int) - pinhole[seen]).mean() < 1.5  # measured 0.7
    assert np.abs(raw[seen].astype(int) - pinhole[seen]).mean() > 10.0  # measured 16-21
    with pytest.raises(ValueError, match="image of 80x60 pixels, but the rectifier was built for 160x120"):
        Rectifier(K, D, model, HW).image(raw[::2, ::2])


def test_depth_is_taken_across_without_blending_at_any_resolution():
    model, D = LENSES[0]
    rect = Rectifier(K, D, model, HW)
    depth = np.where(np.arange(HW[1])[None, :] < 80, 2.0, 5.0).astype(np.float32) * np.ones((HW[0], 1), np.float32)
    out = rect.depth(depth)
    assert set(np.unique(out)) <= {0.0, 2.0, 5.0}  # nearest: no 3.5 m between a person and the wall
    half = rect.depth(depth[::2, ::2])  # a depth camera at half the resolution, same aspect
    assert half.shape == (60, 80) and set(np.unique(half)) <= {0.0, 2.0, 5.0}
    assert np.mean(half == out[::2, ::2]) > 0.97
    assert rect.depth(None) is None


def test_a_frames_2d_outputs_go_to_the_raw_image(tiny_detector, body_model):
    """pelvis_2d and keypoints_2d become the lens's projections of the 3D outputs; the box is the
    mesh's projection's (with vertices) or the box's outline taken across (without: the same within a
    pixel, but for the sides the pinhole image cut)."""
    import copy

    from mhr2_ros.cli.demo_scene import render_demo_scene
    from mhr2_ros.config import override

    image, _ = render_demo_scene(body_model, width=HW[1], height=HW[0])
    det = copy.copy(tiny_detector)
    det.cfg = override(tiny_detector.cfg, score_threshold=0.0, max_humans=3)
    model, D = LENSES[0]
    rect = Rectifier(K, D, model, HW)
    frame = det(image, K=K)
    pinhole_boxes = [h.box.copy() for h in frame.humans]
    rect.to_raw(frame)
    bare = det(image, K=K)
    for h in bare.humans:
        h.vertices = None
    rect.to_raw(bare)
    checked = 0  # box sides the pinhole image did not cut
    for h, b, before in zip(frame.humans, bare.humans, pinhole_boxes):
        np.testing.assert_allclose(h.pelvis_2d, rect.project(h.position)[0], atol=1e-3)
        np.testing.assert_allclose(h.keypoints_2d, rect.project(h.joints_3d), atol=1e-3)
        mesh = rect.project(h.vertices)
        lo, hi = np.clip(mesh.min(0), 0, [HW[1], HW[0]]), np.clip(mesh.max(0), 0, [HW[1], HW[0]])
        np.testing.assert_allclose(h.box, [*lo, *hi], atol=1e-3)
        assert np.abs(h.box - before).max() > 0.5  # the lens moved it
        cut = np.array([before[0] <= 0, before[1] <= 0, before[2] >= HW[1], before[3] >= HW[0]])
        assert np.all(np.abs(b.box - h.box)[~cut] < 1.0)  # the outline: within a pixel of the mesh's box
        checked += int((~cut).sum())
    assert checked >= 4
    assert frame.K is not None and np.array_equal(frame.K, K)


def test_lenses_opencv_cannot_undo_are_refused_and_short_fisheye_coefficients_padded():
    from mhr2_ros.inference.rectify import lens_coefficients

    with pytest.raises(ValueError, match="distortion model 'double_sphere' with 1 coefficients is not one OpenCV"):
        Rectifier(K, [0.1], "double_sphere", HW)
    with pytest.raises(ValueError, match="'plumb_bob' with 3 coefficients is not one OpenCV undoes: plumb_bob and "
                                         "rational_polynomial take 4, 5, 8, 12, 14, equidistant up to 4"):
        Rectifier(K, [0.1, 0.0, 0.0], "plumb_bob", HW)
    np.testing.assert_array_equal(lens_coefficients([0.1, 0.2], "equidistant"), [0.1, 0.2, 0.0, 0.0])  # not repeated
    np.testing.assert_array_equal(lens_coefficients([], "plumb_bob"), np.zeros(5))
    assert lens_coefficients([0.1] * 5, "equidistant") is None
