"""The simulated depth camera of `mhr2 eval --depth` (evaluation/depth_sensor.py): each
artefact measured on depth images whose true values are known, and its command-line options."""

import numpy as np
import pytest

from mhr2_ros.cli import main
from mhr2_ros.evaluation.depth_sensor import EDGE_JUMP, STEREO, DepthSensor, DepthSensorConfig, preset, shift_image


def step_scene(near=2.0, far=6.0):
    """(120, 200) depth: a far wall with a near box (rows 40-79, columns 80-119) and sky (rows 0-9)."""
    z = np.full((120, 200), far, np.float32)
    z[40:80, 80:120] = near
    z[:10] = 0.0
    return z


def lag_correlation(field: np.ndarray, lag: int) -> float:
    a, b = field[:, :-lag].ravel(), field[:, lag:].ravel()
    return float(np.corrcoef(a, b)[0, 1])


def test_noise_grows_with_the_squared_distance_and_no_surface_stays_unmeasured():
    truth = np.concatenate([np.full((100, 100), 2.0), np.full((100, 100), 8.0), np.zeros((100, 100))])
    truth = truth.astype(np.float32)
    seen = DepthSensor(DepthSensorConfig(noise=0.002), seed=3)(truth)
    assert np.std(seen[:100] - 2.0) == pytest.approx(0.002 * 4, rel=0.05)
    assert np.std(seen[100:200] - 8.0) == pytest.approx(0.002 * 64, rel=0.05)
    assert (seen[200:] == 0).all()
    np.testing.assert_array_equal(seen, DepthSensor(DepthSensorConfig(noise=0.002), seed=3)(truth))
    cut = DepthSensor(DepthSensorConfig(max_range=5.0))(truth)
    assert (cut[:100] == 2.0).all() and (cut[100:] == 0).all()


def test_correlated_noise_keeps_its_std_and_does_not_average_out():
    truth = np.full((300, 300), 2.0, np.float32)
    white = DepthSensor(DepthSensorConfig(noise=0.01), seed=1)(truth) - 2.0
    smooth = DepthSensor(DepthSensorConfig(noise=0.01, correlation=3.0), seed=1)(truth) - 2.0
    assert np.std(white) == pytest.approx(0.04, rel=0.03) and np.std(smooth) == pytest.approx(0.04, rel=0.03)
    assert abs(lag_correlation(white, 1)) < 0.03 and lag_correlation(smooth, 1) > 0.9
    # the mean over a 20 x 20 patch: white noise averages down 20x, correlated noise much less
    patches = lambda e: e[:280, :280].reshape(14, 20, 14, 20).mean(axis=(1, 3))  # noqa: E731
    assert np.std(patches(white)) < 0.004 and np.std(patches(smooth)) > 0.008


def test_flying_pixels_lie_between_the_surfaces_near_edges_only():
    truth = step_scene()
    seen = DepthSensor(DepthSensorConfig(edge_width=2), seed=0)(truth)
    inside, wall = seen[50:70, 84:116], seen[20:35, 10:70]
    assert (inside == 2.0).all() and (wall == 6.0).all()  # farther than 2 px from any edge: exact
    band = seen[45:75, 78:82]  # columns 78-81: 2 px either side of the box's left edge
    assert ((band >= 2.0) & (band <= 6.0)).all() and np.mean((band > 2.0) & (band < 6.0)) > 0.9
    assert (seen[10:12] == 0).all() and (seen[13, 50] == 6.0)  # beside the sky: no measurement
    ramp = np.tile(np.linspace(2.0, 3.0, 200, dtype=np.float32), (50, 1))  # steps far below EDGE_JUMP
    assert 1.0 / 199 < EDGE_JUMP
    np.testing.assert_array_equal(DepthSensor(DepthSensorConfig(edge_width=2))(ramp), ramp)


def test_fattening_grows_the_near_surface_into_the_far_one_only():
    truth = step_scene()
    seen = DepthSensor(DepthSensorConfig(fattening=3), seed=0)(truth)
    np.testing.assert_array_equal(seen[37:83, 77:123], 2.0)  # the box, 3 px larger on every side
    assert (seen[36, 80:120] == 6.0).all() and (seen[40:80, 76] == 6.0).all()  # 4 px away: the wall
    np.testing.assert_array_equal(seen[:10], 0.0)  # no surface stays no measurement
    changed = seen != truth
    assert changed.sum() == 46 * 46 - 40 * 40  # only the ring around the box moved
    ramp = np.tile(np.linspace(2.0, 3.0, 200, dtype=np.float32), (50, 1))
    np.testing.assert_array_equal(DepthSensor(DepthSensorConfig(fattening=3))(ramp), ramp)


def test_misregistration_dropout_and_presets():
    image = np.arange(12, dtype=np.float32).reshape(3, 4) + 1
    np.testing.assert_array_equal(shift_image(image, 1, 1), [[0, 0, 0, 0], [0, 1, 2, 3], [0, 5, 6, 7]])
    np.testing.assert_array_equal(shift_image(image, -1, 0), [[2, 3, 4, 0], [6, 7, 8, 0], [10, 11, 12, 0]])
    seen = DepthSensor(DepthSensorConfig(shift=(3, -2)))(step_scene())
    np.testing.assert_array_equal(seen[38:78, 83:123], 2.0)  # the box, 3 px right and 2 px up
    assert seen[60, 82] == 6.0 and seen[78, 100] == 6.0
    holes = DepthSensor(DepthSensorConfig(dropout=0.1), seed=2)(np.full((200, 200), 3.0, np.float32))
    assert np.mean(holes == 0) == pytest.approx(0.1, abs=0.01) and set(np.unique(holes)) == {0.0, 3.0}
    assert preset("stereo", noise=0.01, shift=None).noise == 0.01 and preset("stereo").shift == STEREO.shift
    assert STEREO.describe() == ("noise 0.0025 x z^2 m, correlated over 2 px, flying pixels 2 px at edges, "
                                 "misregistered by (2, 1) px, 2% dropout, range 6 m")  # fmt: skip
    assert DepthSensorConfig().describe() == "exact"
    assert preset("exact", fattening=2).describe() == "exact, near surfaces fattened by 2 px"


@pytest.mark.parametrize("argv, message", [
    (["--depth-noise", "0.01"], "--depth-noise: these describe the depth camera of --depth, which is not set"),
    (["--depth-sensor", "stereo", "--depth-edges", "1"],
     "--depth-sensor, --depth-edges: these describe the depth camera of --depth"),
    (["--depth", "--depth-range", "-1"], "--depth-range must be meters > 0, got -1.0"),
    (["--depth", "--depth-dropout", "1"], "--depth-dropout must be a fraction in [0, 1), got 1.0"),
    (["--depth", "--depth-correlation", "nan"], "--depth-correlation must be a finite number >= 0 (pixels), got nan"),
    (["--depth", "--depth-edges", "-2"], "--depth-edges must be a finite number >= 0 (pixels), got -2"),
    (["--depth", "--depth-fattening", "-1"], "--depth-fattening must be a finite number >= 0 (pixels), got -1"),
])  # fmt: skip
def test_eval_depth_options_name_the_bad_value(argv, message, capsys):
    assert main(["eval", "--random-init", "--images", "1", "--clips", "0", *argv]) == 2
    assert message in capsys.readouterr().err


def test_eval_depth_shift_must_be_two_pixel_counts(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--random-init", "--images", "1", "--clips", "0", "--depth", "--depth-shift", "2"])
    assert "expected two whole pixel counts DX,DY such as 2,1, got '2'" in capsys.readouterr().err


def test_eval_help_states_the_stereo_preset_as_it_is(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert STEREO.describe() in " ".join(capsys.readouterr().out.split())
