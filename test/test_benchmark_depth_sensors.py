"""benchmarks/depth_sensors.py: one row per depth camera, the MRPE split computed as named."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import depth_sensors as ds  # noqa: E402


def test_split_mrpe_weights_bins_by_the_people_they_found():
    """By hand: < 3 m finds 2 of 2 at 0.1 m, 3-5 m 1 of 4 at 0.4 m -> near (0.2 + 0.4) / 3 = 0.2;
    5-7 m finds 3 at 1.0 m and >= 9 m none with an MRPE -> far 1.0."""
    rows = {"< 3 m": {"gt_people": 2, "recall": 1.0, "mrpe": 0.1},
            "3-5 m": {"gt_people": 4, "recall": 0.25, "mrpe": 0.4},
            "5-7 m": {"gt_people": 3, "recall": 1.0, "mrpe": 1.0},
            ">= 9 m": {"gt_people": 1, "recall": 0.0, "mrpe": None}}  # fmt: skip
    near, far = ds.split_mrpe(rows)
    assert near == pytest.approx(0.2) and far == pytest.approx(1.0)
    assert ds.split_mrpe({}) == (None, None)


def test_every_artefact_is_one_row_and_depth_helps(body_model, capsys):
    assert ds.main(["--images", "2", "--clips", "0"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "true camera" in out
    table = {line.split("|")[1].strip(): line.split("|")[2:] for line in out.splitlines() if line.startswith("| ")}
    assert set(ds.sensors()) <= set(table)
    mrpe = {name: float(cells[0].split()[0]) for name, cells in table.items() if name in ds.sensors()}
    assert mrpe["exact"] < 0.5 * mrpe["RGB (no depth)"]
    assert len({cells[-2].strip() for name, cells in table.items() if name in ds.sensors()}) == 1  # F1: same people


def test_bad_sizes_are_refused(capsys):
    with pytest.raises(SystemExit):
        ds.main(["--images", "0", "--clips", "0"])
    assert "--images and --clips must be >= 0 and not both 0" in capsys.readouterr().err
