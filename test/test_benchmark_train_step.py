"""benchmarks/train_step.py on one CPU step of the GPU recipe (batch 1): a row per phase of the
step with its host time, the recipe and the machine named, and bad counts refused."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import train_step  # noqa: E402

from mhr2_ros.training.step import PHASES  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_benchmark_times_every_phase_of_a_step(capsys):
    args = ["--batch-size", "1", "--steps", "1", "--warmup", "0"]
    assert train_step.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"command: benchmarks/train_step.py {' '.join(args)}\n")
    assert "machine: " in out and re.search(r"train_gpu_root\.yaml: tiny .*batch 1 \(\d+ people\)", out), out
    rows = dict(re.findall(r"^\| (\w+) \| ([\d.]+) \| - \|$", out, re.M))
    assert list(rows) == list(PHASES), out  # every named range of the step was recorded, in order
    for phase in ("forward", "body", "backward", "optimizer"):
        assert float(rows[phase]) > 0, (phase, out)
    step_ms = float(re.search(r"whole step \(synchronised, outside the profiler\): ([\d.]+) ms", out).group(1))
    assert step_ms > 0


def test_bad_counts_are_refused():
    with pytest.raises(SystemExit):
        train_step.main(["--steps", "0"])
