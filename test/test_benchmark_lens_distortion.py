"""benchmarks/lens_distortion.py: the raw truth is the lens's projection of the 3D truth, and the table has
its three rows."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import lens_distortion as ld  # noqa: E402


def test_the_raw_truth_goes_through_the_lens(body_model):
    from mhr2_ros.evaluation.benchmark import SyntheticBenchmark
    from mhr2_ros.evaluation.runner import synthetic_sequences
    from mhr2_ros.inference.rectify import Rectifier
    from mhr2_ros.training.synthetic.truth import to_frame_result

    frames = next(iter(synthetic_sequences(SyntheticBenchmark(images=3, image_seed=500, clips=0), body_model))).frames
    frame = next(f for f in frames if to_frame_result(f.truth).humans)
    K = np.asarray(frame.truth.K, np.float64)
    lens = Rectifier(K, [-0.2, 0.05, 0, 0, 0], "plumb_bob", frame.image.shape[:2])
    ft, truth = ld.raw_truth(frame.truth, lens)
    pinhole = to_frame_result(frame.truth)
    for raw, pin in zip(truth.humans, pinhole.humans):
        np.testing.assert_allclose(raw.position, pin.position)  # 3D stays
        np.testing.assert_allclose(lens.to_raw_pixels(pin.keypoints_2d), raw.keypoints_2d, atol=1e-2)
        assert np.abs(raw.keypoints_2d - pin.keypoints_2d).max() > 0.5  # the lens moved them
    np.testing.assert_allclose(ft.pelvis_2d, lens.to_raw_pixels(frame.truth.pelvis_2d), atol=1e-2)
    raw = ld.raw_image(frame.image, lens)
    assert raw.shape == frame.image.shape and not np.array_equal(raw, frame.image)


def test_the_table_has_its_three_rows(capsys):
    assert ld.main(["--images", "2", "--image-seed", "500"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "k1 -0.2, k2 0.05" in out
    rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "F1" not in line]
    assert rows == list(ld.ROWS)
