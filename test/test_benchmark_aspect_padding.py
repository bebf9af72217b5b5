"""benchmarks/aspect_padding.py: each size gets one row per padding setting, a setting that gives the network
the same input as an earlier one shares its row, and bad sizes are refused by name."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import aspect_padding as ap  # noqa: E402
from printed_tables import body_rows  # noqa: E402


def test_the_table_has_a_row_per_size_and_setting_and_shares_equal_inputs(capsys):
    assert ap.main(["--images", "2", "--image-seed", "500", "--sizes", "384x288,432x288,384x384"]) == 0
    out = capsys.readouterr().out
    assert "machine:" in out and "training aspects" in out
    rows = body_rows(out, "padding", 3)
    labels = [label for label, _, _ in ap.SETTINGS]
    assert [r[1] for r in rows] == labels * 3
    first = labels[0]
    # 4:3 is a training aspect: all three give one input; 3:2 (wider): no rows = none; 1:1 (narrower): sides = paper
    assert [r[2] for r in rows[1:3]] == [f"same as {first}"] * 2 and "pads nothing" in rows[0][0]
    assert rows[5][2] == f"same as {labels[1]}" and "pads rows" in rows[3][0] and not rows[4][2].startswith("same")
    assert rows[7][2] == f"same as {first}" and "pads sides" in rows[6][0] and not rows[8][2].startswith("same")


@pytest.mark.parametrize("sizes, message", [("384x", "is not WIDTHxHEIGHT"), ("20x300", "is too small")])
def test_bad_sizes_are_refused_by_name(sizes, message, capsys):
    with pytest.raises(SystemExit):
        ap.main(["--sizes", f"384x288,{sizes}"])
    assert f"--sizes: '{sizes}' {message}" in capsys.readouterr().err
