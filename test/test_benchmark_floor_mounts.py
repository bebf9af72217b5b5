"""benchmarks/floor_mounts.py: one row per mount, each mount error the plane it names."""

import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import floor_mounts as fm  # noqa: E402

from mhr2_ros.inference.floor_contact import floor_plane_from_mount  # noqa: E402


def test_each_row_names_its_mount_and_the_floor_helps(body_model, capsys):
    assert fm.main(["--images", "2", "--clips", "0"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "true camera" in out and "| floor |" in out
    table = {line.split("|")[1].strip(): line.split("|")[2:] for line in out.splitlines() if line.startswith("| ")}
    rows = fm.rows(0.015)
    assert set(rows) <= set(table)
    mrpe = {name: float(table[name][0].split()[0]) for name in rows}
    assert mrpe["floor, weighed (floor_angle_sigma 0.015)"] < mrpe["RGB (no floor)"]
    assert len({table[name][-2].strip() for name in rows}) == 1  # F1: the same people in every row
    # each error row hands the detector the plane of the mount it names
    mount, sigma, _ = rows["floor, pitch believed +1 deg"]
    np.testing.assert_allclose(mount(floor_plane_from_mount(1.5, 10.0)), floor_plane_from_mount(1.5, 11.0), atol=1e-12)
    mount, sigma, _ = rows["floor alone, pitch believed -1 deg"]
    assert sigma == 0.0 and mount.pitch_rad == math.radians(-1.0)
    mount, _, _ = rows["floor, height believed -5 cm"]
    assert mount(floor_plane_from_mount(1.5))[3] == 1.45
