"""SIGTERM / SIGINT during `mhr2-train` (training/stop.py): the run finishes its step, saves
its state, exits with the signal's code and a message naming the way on, and `--resume`
continues from that step. Real process, real signal."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from mhr2_ros.training.stop import GracefulStop
from test_training import SMALL_MODEL, SMALL_SCENES

REPO = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_S = 240  # the body model and the first steps on a slow, busy machine


def write_config(tmp_path: Path, steps: int) -> Path:
    config = {
        "model": "tiny", "model_overrides": SMALL_MODEL, "output": str(tmp_path / "run"), "device": "cpu",
        "steps": steps, "batch_size": 2, "lr": 1e-3, "warmup_steps": 1, "checkpoint_every": 100_000,
        "eval_every": 0, "data": [{"kind": "synthetic", "seed": 1000, "synth": SMALL_SCENES}],
    }  # fmt: skip
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(args, stderr_lines: list) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "mhr2_ros.cli.train", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, env=env, text=True, cwd=REPO)  # fmt: skip

    def read() -> None:  # tqdm ends its updates with \r: read characters, not lines
        for chunk in iter(lambda: proc.stderr.read(64), ""):
            stderr_lines.append(chunk)

    proc.reader = threading.Thread(target=read, daemon=True)  # joined once the process ended: all its output
    proc.reader.start()
    return proc


def wait_for_steps(proc: subprocess.Popen, stderr: list, steps: int) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        done = [int(n) for n in re.findall(r"\b(\d+)/1000000\b", "".join(stderr))]
        if done and max(done) >= steps:
            return
        time.sleep(0.2)
    raise AssertionError(f"no step {steps} within {STARTUP_TIMEOUT_S} s: {''.join(stderr)[-2000:]}")


@pytest.mark.slow
def test_sigterm_saves_the_step_in_progress_and_resume_goes_on(tmp_path):
    config = write_config(tmp_path, steps=1_000_000)
    stderr: list = []
    proc = start(["--config", str(config)], stderr)
    wait_for_steps(proc, stderr, 2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    proc.reader.join(10.0)  # the reader thread drains the pipe to its end
    message = "".join(stderr)
    run = tmp_path / "run"
    assert "stopped by SIGTERM after step" in message and f"--resume {run}" in message
    saved = json.loads((run / "last.json").read_text())["step"]
    assert saved >= 2  # not the last checkpoint_every multiple (none was reached): the step it stood at
    assert not (run / "model.safetensors").exists()  # a stop is not a finished run
    resumed = subprocess.run([sys.executable, "-m", "mhr2_ros.cli.train", "--config", str(config), "--resume",
                              str(run), "--steps", str(saved + 2)], cwd=REPO, capture_output=True, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    meta = json.loads((run / "model.json").read_text())
    assert meta["steps"] == saved + 2


def test_graceful_stop_flags_the_first_signal_and_raises_on_the_second():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with GracefulStop() as stop:
        assert stop.requested() == 0
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler runs in the main thread between bytecodes
        assert stop.requested() == signal.SIGINT  # flagged, not interrupted
        with pytest.raises(KeyboardInterrupt) as at_once:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        assert at_once.value.signum == signal.SIGTERM  # mhr2-train exits 128 + 15 = 143, not 130
    assert {s: signal.getsignal(s) for s in before} == before  # handlers restored


def _signal_at(step: int):
    """An eval hook (run every step) that sends this process SIGTERM after `step`."""
    calls = []

    def hook(model, model_cfg):
        calls.append(1)
        if len(calls) == step:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs in the main thread between bytecodes
        return {}

    return hook


@pytest.mark.usefixtures("one_torch_thread")
def test_a_signal_in_the_last_step_finishes_the_run_and_one_before_stops_it(tmp_path):
    from mhr2_ros.training.stop import TrainingStopped
    from mhr2_ros.training.train import train
    from test_training import small_config

    cfg = small_config(tmp_path / "last", steps=3, eval_every=1)
    final = train(cfg, eval_hook=_signal_at(3))  # nothing left to save for: the model is written
    assert final.is_file()
    early = small_config(tmp_path / "early", steps=3, eval_every=1)
    with pytest.raises(TrainingStopped) as stopped:
        train(early, eval_hook=_signal_at(2))
    assert stopped.value.step == 2 and not (tmp_path / "early" / "model.safetensors").exists()
    assert json.loads((tmp_path / "early" / "last.json").read_text())["step"] == 2
