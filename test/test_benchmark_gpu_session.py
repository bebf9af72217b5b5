"""benchmarks/gpu_session.sh runs once, unattended, on a machine lent for minutes: it must
parse, and every file it names must exist (a rename here would cost a GPU session)."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_session.sh"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_gpu_session_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_every_file_the_gpu_session_names_exists():
    text = SCRIPT.read_text()
    named = set(re.findall(r"\b((?:test|benchmarks|config)/[\w./-]+\.(?:py|yaml|sh))", text))
    assert {"config/train_gpu_finetune.yaml", "benchmarks/synth.py", "benchmarks/data_loading.py",
            "benchmarks/latency.py", "benchmarks/gpu_kit.py"} <= named  # fmt: skip
    assert [name for name in sorted(named) if not (REPO / name).is_file()] == []
    for test in re.findall(r"(test/\w+\.py)::(\w+)", text):
        assert f"def {test[1]}(" in (REPO / test[0]).read_text(), test
