"""benchmarks/matching.py on tiny settings: both modes on the same batch, the Anny bodies each mode
runs for the batch and queries given, the ratio rows the quotients of the cells above them and the
paper's ratio (0.48 / 0.35 s, 27 / 7 GB)."""

import argparse
import math
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import matching  # noqa: E402

BATCH, QUERIES, PEOPLE, IMAGE_SIZE = 2, 4, 2, 96  # at 64 px the synthetic people are too small to be targets
ARGV = ["benchmarks/matching.py", "--preset", "tiny", "--image-size", str(IMAGE_SIZE), "--batch-size",
        str(BATCH), "--queries", str(QUERIES), "--people", str(PEOPLE), "--steps", "2", "--warmup", "1",
        "--threads", "1"]  # fmt: skip
HEADER = ["matching", "step (s)", "matching (ms)", "peak memory (MB)", "Anny bodies per step", "batch checksum"]


def _table(stdout: str) -> dict:
    """first cell -> {column: cell} of the printed markdown table."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == HEADER
    return {cells[0]: dict(zip(header, cells)) for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}  # fmt: skip


def _half_unit(cell: str) -> float:
    """Half the last printed digit: how far a rounded cell may be from its value."""
    return 0.5 * 10.0 ** -(len(cell.split(".")[1]) if "." in cell else 0)


def _is_quotient(ratio: str, numerator: str, denominator: str) -> bool:
    """The ratio cell is numerator / denominator, up to the rounding of the three printed cells."""
    n, d, r = float(numerator), float(denominator), float(ratio)
    hn, hd, hr = _half_unit(numerator), _half_unit(denominator), _half_unit(ratio)
    low = (n - hn) / (d + hd) - hr
    high = (n + hn) / (d - hd) + hr if d > hd else math.inf
    return low - 1e-9 <= r <= high + 1e-9


def test_the_table_compares_both_modes_on_the_same_batch():
    run = subprocess.run([sys.executable, *ARGV], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith(f"command: {' '.join(ARGV)}\n")
    assert "(the timed processes: 1 torch threads)" in out  # --threads reaches the workers
    config = re.search(r"^config: tiny \(.*, (\d+) queries, .*\), input (\d+)x\d+, batch (\d+), (\d+) people per "
                       r"image placed \((\d+) matched per step\), float32; median of 2 steps after 1 warm-up$",
                       out, re.M)  # fmt: skip
    assert config, out
    queries, width, batch, placed, matched = map(int, config.groups())
    assert (queries, width, batch, placed) == (QUERIES, IMAGE_SIZE, BATCH, PEOPLE)
    assert 0 < matched <= BATCH * PEOPLE
    rows = _table(out)
    assert list(rows) == ["loc2d", "joints3d", "ratio joints3d / loc2d", "paper ratio (0.48/0.35 s, 27/7 GB)"]
    loc2d, joints3d, ratio = rows["loc2d"], rows["joints3d"], rows["ratio joints3d / loc2d"]
    assert re.fullmatch(r"[0-9a-f]{10}", loc2d["batch checksum"])
    assert loc2d["batch checksum"] == joints3d["batch checksum"]  # one batch for both modes
    # loc2d: matched predictions + their targets; joints3d also every query and every target before matching
    assert int(loc2d["Anny bodies per step"]) == 2 * matched
    assert int(joints3d["Anny bodies per step"]) == 2 * matched + BATCH * QUERIES + matched
    for column in ("step (s)", "matching (ms)", "peak memory (MB)"):
        assert float(joints3d[column]) > 0, column  # loc2d's matching may round to 0.0 ms on a fast machine
        assert _is_quotient(ratio[column], joints3d[column], loc2d[column]), (column, rows)
    paper = rows["paper ratio (0.48/0.35 s, 27/7 GB)"]
    assert (paper["step (s)"], paper["peak memory (MB)"]) == ("1.37", "3.86")


def test_each_worker_trains_with_its_own_matching_mode():
    args = argparse.Namespace(preset="tiny", image_size=IMAGE_SIZE, batch_size=BATCH, queries=QUERIES,
                              device="cpu", seed=3)  # fmt: skip
    for mode in matching.MODES:
        cfg = matching.train_config(args, mode)
        assert cfg.matcher.mode == mode
        assert (cfg.batch_size, cfg.seed, cfg.model) == (BATCH, 3, "tiny")
        assert cfg.model_overrides["num_queries"] == QUERIES
        assert cfg.model_overrides["image_size"] == IMAGE_SIZE
