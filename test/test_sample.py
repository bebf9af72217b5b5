"""crop_resize by hand: the centred crop's pixels, K, 2D locations and keypoints, visibility of
keypoints that leave the crop, and the per-person arrays of the people it drops, in order."""

import numpy as np

from mhr2_ros.training.sample import Sample, crop_resize


def test_crop_resize_moves_image_keypoints_and_per_person_arrays_together():
    h, w = 120, 160
    cols, rows = np.meshgrid(np.arange(w), np.arange(h))
    image = np.stack([cols, rows, np.zeros_like(cols)], -1).astype(np.uint8)  # R = column, G = row
    K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]], np.float32)
    loc = np.array([[80, 60], [150, 60], [30, 100]], np.float32)  # the middle one leaves the crop (x >= 140)
    kp = np.array([[[25, 10], [10, 50], [80, 30]],  # inside; left of the crop; inside but unlabelled
                   [[150, 60], [150, 60], [150, 60]],
                   [[139, 119], [140, 5], [100, 100]]], np.float32)  # last column/row inside; first column right of it
    vis = np.array([[1, 1, 0], [1, 1, 1], [1, 1, 1]], np.float32)
    people = np.arange(3, dtype=np.float32)
    sample = Sample(image=image, K=K, loc=loc, keypoints_2d=kp, keypoints_vis=vis, data_type="synthetic",
                    position=np.c_[people, people, people + 3], rot6d=np.repeat(people[:, None, None], 6, 2),
                    shape=np.repeat(people[:, None], 6, 1), track=np.repeat(people[:, None], 4, 1),
                    track_valid=np.array([True, False, False]))
    out = crop_resize(sample, aspect=1.0, image_size=60, patch=4)
    assert out.image.shape == (60, 60, 3)
    # the centred crop: output column j averages input columns 20 + 2j and 21 + 2j (INTER_AREA)
    np.testing.assert_allclose(out.image[30, :, 0], 20.5 + 2 * np.arange(60), atol=1)
    np.testing.assert_allclose(out.image[:, 30, 1], 0.5 + 2 * np.arange(60), atol=1)
    np.testing.assert_allclose(out.K, [[50, 0, 30], [0, 50, 30], [0, 0, 1]], atol=1e-5)
    np.testing.assert_allclose(out.loc, [[30, 30], [5, 50]], atol=1e-5)
    np.testing.assert_allclose(out.keypoints_2d, [[[2.5, 5], [-5, 25], [30, 15]], [[59.5, 59.5], [60, 2.5], [40, 50]]],
                               atol=1e-5)
    np.testing.assert_array_equal(out.keypoints_vis, [[1, 0, 0], [1, 0, 1]])
    for name in ("position", "rot6d", "shape", "track"):
        assert getattr(out, name).reshape(2, -1)[:, 0].tolist() == [0.0, 2.0], name  # the kept people's rows, in order
    assert out.track_valid.tolist() == [True, False]
