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


def test_the_stages_leave_the_training_a_minute_within_the_device_call():
    """The training gets what the other stages leave of SESSION_S: their time limits must leave it
    at least the one minute it is floored at, and SESSION_S must end before the device call does."""
    text = SCRIPT.read_text()
    session_s = int(re.search(r"SESSION_S=\$\{SESSION_S:-(\d+)\}", text).group(1))
    reserve_s = int(re.search(r"^TRAIN_RESERVE_S=(\d+)", text, re.M).group(1))
    call_s = int(re.search(r"timeout_s (\d+)", text).group(1))
    before_training = text.split("\ntrain() {")[0]
    stage_limits = [int(s) for s in re.findall(r"^[^#\n]*\bstage \S+ timeout (\d+) ", before_training, re.M)]
    assert len(stage_limits) == 4  # cuda-tests, render, loading, latency (once per preset)
    presets = re.search(r'LATENCY_PRESETS=\$\{LATENCY_PRESETS-([^}]*)\}', text).group(1).split()
    stage_limits[-1] *= len(presets)  # the default's presets; more of them take from the training
    unbounded_s = 30  # the kit's install and the facts, which have no limit of their own (3-5 s rehearsed)
    assert sum(stage_limits) + unbounded_s + 60 + reserve_s <= session_s < call_s
    assert 'timeout "$limit_s"' in text and "--time-limit \"$minutes\"" in text
