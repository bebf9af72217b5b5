"""benchmarks/principal_point.py: a crop moves the principal point and the 2D truth with it, and the
table has one row per camera and crop."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import principal_point as pp  # noqa: E402


def test_a_crop_from_the_left_moves_the_principal_point_and_the_2d_truth(body_model):
    from mhr2_ros.evaluation.benchmark import SyntheticBenchmark
    from mhr2_ros.evaluation.runner import synthetic_sequences

    from mhr2_ros.training.synthetic.truth import to_frame_result

    spec = SyntheticBenchmark(images=3, image_seed=500, clips=0)
    frames = next(iter(synthetic_sequences(spec, body_model))).frames
    frame = next(f for f in frames if to_frame_result(f.truth).humans)  # the third image: two people in view
    h, w = frame.image.shape[:2]  # 288 x 384: a cut of 0.25 is 96 columns
    image, ft, truth = pp.crop(frame.image, frame.truth, 0.25, pp.CROPS["cut from the left"])
    assert image.shape[:2] == (h, w - 96) and np.array_equal(image, frame.image[:, 96:])
    assert truth.K[0, 2] == pytest.approx(frame.truth.K[0, 2] - 96) and truth.K[1, 2] == frame.truth.K[1, 2]
    assert truth.image_size == ft.image_size == (h, w - 96)
    np.testing.assert_allclose(ft.pelvis_2d, frame.truth.pelvis_2d - [96, 0])
    person = truth.humans[0]
    np.testing.assert_allclose(person.keypoints_2d, frame.truth.joints_2d[0] - [96, 0], atol=1e-4)
    np.testing.assert_allclose(person.position, frame.truth.position[0])  # 3D stays
    assert 0 <= person.box[0] <= person.box[2] <= w - 96
    centred, _, truth_c = pp.crop(frame.image, frame.truth, 0.25, 0.5)  # 48 columns off each side
    assert np.array_equal(centred, frame.image[:, 48:-48])
    assert truth_c.K[0, 2] == pytest.approx((w - 96) / 2)  # the principal point stays at the centre


def test_the_table_has_a_row_per_camera_and_crop(capsys):
    assert pp.main(["--images", "2", "--image-seed", "500", "--cut", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "12.5% of their width off centre" in out
    rows = [line.split("|")[1:3] for line in out.splitlines() if line.startswith("| ") and "camera" not in line]
    assert [(c.strip(), k.strip()) for c, k in rows] == [(c, k) for c in pp.CAMERAS for k in pp.CROPS]
    true_k = [line for line in out.splitlines() if line.startswith("| true K")]
    assert all(line.rstrip("| ").endswith("0.00") for line in true_k)  # the true camera: no FOV error
    with pytest.raises(SystemExit):
        pp.main(["--cut", "0.95"])

