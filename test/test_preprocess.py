import numpy as np
import pytest
import torch

from mhr2_ros.inference.preprocess import (
    PAD_COLOR,
    compute_geometry,
    nearest_aspect,
    padded_canvas,
    resize_and_pad,
    to_tensor,
)

RATIOS = (0.5625, 0.75, 1.0, 1.333, 1.7778)


@pytest.mark.parametrize("hw", [(480, 640), (1080, 1920), (640, 480), (300, 301), (100, 1000)])
def test_largest_side_and_patch_multiple(hw):
    for ratios in (None, RATIOS):
        g = compute_geometry(*hw, image_size=448, patch=16, ratios=ratios)
        assert max(g.input_hw) == 448
        assert all(s % 16 == 0 for s in g.input_hw)


def test_padding_only_never_crops_and_is_centred():
    w, h = padded_canvas(1000, 100, RATIOS)  # 10:1 -> nearest 16:9, pad the height
    assert (w, h) == (1000, round(1000 / 1.7778))
    g = compute_geometry(100, 1000, 448, 16, RATIOS)
    # the original image centre maps to the input centre: principal point stays centred
    centre = g.to_original(np.array([g.input_hw[1] / 2, g.input_hw[0] / 2]))
    np.testing.assert_allclose(centre, [500, 50], atol=1.0)


@pytest.mark.parametrize("wh, with_rows, without_rows", [
    ((1000, 100), (1000, 562), (1000, 100)),  # wider than 16:9: only the rows above and below go
    ((432, 288), (432, 324), (432, 288)),  # 3:2 is nearest 4:3 and wider than it
    ((384, 384), (512, 384), (512, 384)),  # narrower than its nearest (4:3 here): sides padded either way
    ((288, 512), (682, 512), (682, 512)),
])
def test_padding_without_rows_keeps_wide_images_and_pads_narrow_ones_at_the_sides(wh, with_rows, without_rows):
    """Kills: `rows` ignored (wide images still letterboxed), or applied to the sides too."""
    ratios = (1.333, 1.7778)  # the shipped model's
    assert padded_canvas(*wh, ratios) == with_rows
    assert padded_canvas(*wh, ratios, rows=False) == without_rows
    w, h = wh
    g = compute_geometry(h, w, 256, 16, ratios, pad_rows=False)
    assert g.to_original(np.array([g.input_hw[1] / 2, g.input_hw[0] / 2])) == pytest.approx([w / 2, h / 2], abs=1.0)
    if without_rows == wh:  # unpadded but for the patch multiple: the input is the image's own shape
        assert g.input_hw == compute_geometry(h, w, 256, 16, None).input_hw


def test_nearest_aspect_in_log_space():
    assert nearest_aspect(640, 480, RATIOS) == 1.333
    assert nearest_aspect(480, 640, RATIOS) == 0.75
    assert nearest_aspect(100, 100, RATIOS) == 1.0


def test_pixel_mapping_round_trip_through_resize():
    g = compute_geometry(480, 640, 448, 16, RATIOS)
    img = np.zeros((480, 640, 3), np.uint8)
    img[200:210, 300:310] = 255  # a white square at known pixels
    out = resize_and_pad(img, g)
    assert out.shape[:2] == g.input_hw
    ys, xs = np.nonzero(out[..., 0] > 128)
    centre_in = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    np.testing.assert_allclose(g.to_original(centre_in), [305, 205], atol=1.5)


@pytest.mark.parametrize("hw", [(479, 641), (1001, 301), (289, 385), (100, 1000)])
@pytest.mark.parametrize("ratios", [None, RATIOS])
def test_one_scale_and_exact_placement_for_odd_sizes(hw, ratios):
    """Square pixels stay square (up to one pixel of rounding) and a known square comes
    back where it was, within half an original pixel, padded or not."""
    h, w = hw
    g = compute_geometry(h, w, 256, 16, ratios)
    (sx, sy), (in_h, in_w) = g.scale, g.input_hw
    assert abs(sx - sy) <= 1.0 / min(h, w) + 1e-9 and in_h % 16 == 0 and in_w % 16 == 0
    img = np.zeros((h, w, 3), np.uint8)
    y, x, side = h // 3, w // 3, max(12, min(h, w) // 5)
    img[y : y + side, x : x + side] = 255
    out = resize_and_pad(img, g).astype(np.float64)[..., 0]
    x0, y0 = int(g.offset[0]), int(g.offset[1])
    mass = np.zeros_like(out)
    mass[y0 : y0 + round(h * sy), x0 : x0 + round(w * sx)] = 1.0  # the image, not its padding
    mass *= out
    ys, xs = np.mgrid[: out.shape[0], : out.shape[1]] + 0.5  # pixel centres
    centroid = [(xs * mass).sum() / mass.sum(), (ys * mass).sum() / mass.sum()]
    expected = [(x + side / 2) * sx + g.offset[0], (y + side / 2) * sy + g.offset[1]]
    np.testing.assert_allclose(centroid, expected, atol=0.1)  # input pixels
    middle = g.to_original(np.array([in_w / 2, in_h / 2]))
    np.testing.assert_allclose(middle, [w / 2, h / 2], atol=1e-6)  # the principal point stays centred


@pytest.mark.parametrize("hw,ratios,expected", [
    ((100, 1000), RATIOS, (256, 448)),  # 10:1 padded to a 1000 x 562 canvas: 251.8 rows -> 256
    ((100, 1000), None, (48, 448)),  # no padding: 44.8 rows -> 48
    ((1000, 100), RATIOS, (448, 256)),
    ((480, 640), RATIOS, (336, 448)),  # already 4:3
])
def test_aspect_padding_sets_the_input_size(hw, ratios, expected):
    """Kills: compute_geometry ignoring `ratios` (the padding is never applied)."""
    assert compute_geometry(*hw, 448, 16, ratios).input_hw == expected


def test_nearest_aspect_is_nearest_in_log_space_not_linearly():
    """r = 1.16: |log(1.333/1.16)| = 0.139 < |log(1/1.16)| = 0.148, but linearly 1.0 is nearer.
    Kills: key=abs(a - r)."""
    assert nearest_aspect(116, 100, RATIOS) == 1.333


def test_padding_is_the_mean_colour_and_normalises_to_zero_in_rgb_order():
    """Kills: PAD_COLOR = (0, 0, 0); to_tensor without (x - mean) / std; BGR channel order."""
    g = compute_geometry(100, 1000, 448, 16, RATIOS)  # rows 0..105 of the input are padding
    img = np.zeros((100, 1000, 3), np.uint8)
    img[..., 0] = 255  # pure red
    out = resize_and_pad(img, g)
    assert out[0, 0].tolist() == [124, 116, 104]  # round(255 * (0.485, 0.456, 0.406))
    x = to_tensor(out, torch.device("cpu"), torch.float32)[0]
    assert x[:, :50].abs().max() < 0.01  # padding: ~0 after normalisation
    centre = x[:, 128, 224]
    expected = [(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225]
    torch.testing.assert_close(centre, torch.tensor(expected), atol=1e-4, rtol=0)
    assert tuple(PAD_COLOR) == (124, 116, 104)
