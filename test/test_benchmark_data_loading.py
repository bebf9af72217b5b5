"""benchmarks/data_loading.py on tiny settings: a row per worker count, 0 workers added as
the reference of the ratios, the recipe's data and the machine named."""

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import data_loading  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_benchmark_prints_batches_per_second_per_worker_count(monkeypatch, capsys):
    argv = ["data_loading.py", "--workers", "1", "--size", "64x48", "--people", "1", "1", "--batch-size", "2",
            "--warmup", "1", "--batches", "2", "--device", "cpu"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    data_loading.main()
    out = capsys.readouterr().out
    assert out.startswith(f"command: {' '.join(argv)}\n")
    assert "machine: " in out and "train_synthetic_tiny.yaml: synthetic" in out and "'size': [64, 48]" in out
    assert "batch 2, network input 448 px" in out
    rows = re.findall(r"^ +(\d+) \| +([\d.]+) \| +([\d.]+) \| +([\d.]+)x$", out, re.M)
    assert [r[0] for r in rows] == ["0", "1"], out  # 0 workers measured first, as the reference
    assert rows[0][3] == "1.00" and all(float(r[1]) > 0 for r in rows)
    assert float(rows[1][3]) == pytest.approx(float(rows[1][1]) / float(rows[0][1]), rel=0.02, abs=0.02)
    for workers, rate, images, _ in rows:
        assert float(images) == pytest.approx(2 * float(rate), abs=0.06)  # batch 2


def test_training_workers_prefers_workers_unless_the_process_renders_much_faster():
    assert data_loading.training_workers({0: 1.0, 7: 2.0, 14: 3.0}) == 14
    assert data_loading.training_workers({0: 5.0, 14: 3.0}) == 14  # faster, but it renders between the steps
    assert data_loading.training_workers({0: 6.0, 14: 3.0}) == 0  # IN_PROCESS_MARGIN (2) times faster
    assert data_loading.training_workers({0: 1.0}) == 0
    assert data_loading.training_workers({14: 3.0}) == 14  # the in-process row failed


def test_a_row_that_fails_is_named_and_the_others_choose(monkeypatch, capsys, tmp_path):
    """Workers that cannot start (no shared memory on a sandboxed machine) must not cost the GPU
    session its training: the row says why, and the choice is made among the rows that ran."""
    measure = data_loading.measure

    def workers_fail(cfg, model_cfg, body, device, workers, warmup, batches):
        if workers:
            raise OSError("[Errno 28] No space left on device: '/dev/shm'")
        return measure(cfg, model_cfg, body, device, workers, warmup, batches)

    monkeypatch.setattr(data_loading, "measure", workers_fail)
    best = tmp_path / "workers"
    monkeypatch.setattr(sys, "argv", ["data_loading.py", "--workers", "0", "2", "--size", "64x48", "--people", "1",
                                      "1", "--batch-size", "2", "--warmup", "1", "--batches", "2", "--device", "cpu",
                                      "--best-to", str(best)])  # fmt: skip
    data_loading.main()
    out = capsys.readouterr().out
    assert "      2 | failed: OSError: [Errno 28] No space left on device: '/dev/shm'" in out
    assert int(best.read_text()) == 0 and "training workers: 0" in out


def test_best_to_writes_the_training_workers(monkeypatch, capsys, tmp_path):
    best = tmp_path / "workers"
    argv = ["data_loading.py", "--workers", "1", "--size", "64x48", "--people", "1", "1", "--batch-size", "2",
            "--warmup", "1", "--batches", "2", "--device", "cpu", "--best-to", str(best)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    data_loading.main()
    out = capsys.readouterr().out
    rates = {int(w): float(r) for w, r in re.findall(r"^ +(\d+) \| +([\d.]+) \|", out, re.M)}
    assert sorted(rates) == [0, 1]
    chosen = int(best.read_text())
    assert chosen == data_loading.training_workers(rates)
    assert f"training workers: {chosen}" in out
