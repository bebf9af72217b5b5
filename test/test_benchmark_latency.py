"""benchmarks/latency.py: the table it prints, with the ONNX Runtime row beside PyTorch's."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ["preprocess", "encoder", "decoder", "heads", "network", "body", "postprocess", "total"]


def _rows(stdout: str) -> dict:
    """variant -> {column: cell} of the printed markdown table."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header, cells)) for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}  # fmt: skip


def test_latency_table_with_the_onnx_row():
    run = subprocess.run(
        [sys.executable, "benchmarks/latency.py", "--preset", "tiny", "--image-size", "96", "--size", "160x120",
         "--people", "2", "--warmup", "1", "--iters", "2", "--threads", "1", "--onnx"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("command: benchmarks/latency.py --preset tiny")
    assert "input 160x120, 2 people, median of 2 after 1 warm-up runs" in run.stdout
    rows = _rows(run.stdout)
    assert list(rows) == ["fp32", "onnxruntime fp32"]  # no bf16 / compile rows without CUDA
    torch_row, onnx_row = rows["fp32"], rows["onnxruntime fp32"]
    assert list(torch_row) == ["variant", *STAGES, "wall", "frames/s", "x fp32"]
    # PyTorch laps encoder, decoder and heads, whose sum is "network"; ONNX Runtime laps one graph
    parts = sum(float(torch_row[s]) for s in ("encoder", "decoder", "heads"))
    assert abs(float(torch_row["network"]) - parts) <= 0.15 + 0.05 * parts  # medians of sums vs sums of medians
    assert onnx_row["encoder"] == onnx_row["decoder"] == "-" and float(onnx_row["network"]) > 0
    assert torch_row["x fp32"] == "1.00"
    ratio = float(torch_row["total"]) / float(onnx_row["total"])
    assert abs(float(onnx_row["x fp32"]) - ratio) <= 0.01 + 0.01 * ratio
    for row in rows.values():
        assert abs(float(row["frames/s"]) - 1000 / float(row["wall"])) <= 0.01 * float(row["frames/s"]) + 0.01
