"""benchmarks/camera_roll.py: the images are rendered by a camera rolled as asked, and the table has one row
per roll and camera."""

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import camera_roll as cr  # noqa: E402
from printed_tables import body_rows  # noqa: E402


def test_the_rendered_camera_is_rolled_by_the_asked_angle(body_model):
    """Gravity (the floor's normal, camera frame) leans off the image's down axis by the roll."""
    from mhr2_ros.evaluation.benchmark import SyntheticBenchmark
    from mhr2_ros.training.synthetic.generator import SyntheticClip

    cfg = SyntheticBenchmark(images=1, image_seed=560, clips=0).synth_config(independent=True)
    for roll in (0.0, 20.0):
        camera = dataclasses.replace(cfg.camera, roll_deg=(roll, roll))
        truth = SyntheticClip(dataclasses.replace(cfg, camera=camera), 560, body_model).frame(0).truth
        n = np.asarray(truth.floor_plane[:3], np.float64)  # gravity: x right, y down
        assert abs(np.degrees(np.arctan2(n[0], n[1]))) == pytest.approx(roll, abs=0.01)


def test_the_table_has_a_row_per_roll_and_camera(capsys):
    assert cr.main(["--images", "2", "--image-seed", "560", "--rolls", "0,15"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "training scenes roll -4 to 4 deg" in out
    rows = body_rows(out, "camera", 2)
    assert rows == [[r, c] for r in ("0", "15") for c in cr.CAMERAS]
    cells = {(r[0], r[1]): r[2:4] for r in body_rows(out, "camera", 4)}  # (roll, camera) -> F1, PA-MPJPE
    for roll in ("0", "15"):  # the floor only scales people: the same detections and poses as gravity alone
        assert cells[(roll, "true K + floor, levelled")] == cells[(roll, "true K + gravity, levelled")]
    with pytest.raises(SystemExit):
        cr.main(["--rolls", "0,95"])
    assert "--rolls: '95' must be within +-89 degrees" in capsys.readouterr().err
