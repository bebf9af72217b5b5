"""Training under torchrun's environment: two CPU processes (gloo, loopback only).

Each rank is a real process running `training.train.train` on the small test network:
DDP must survive steps where some parameters get no gradient (the track head without
track targets), every rank's data stream is saved, and a resumed run continues them.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

import pytest

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
WORLD = 2
SCRIPT = textwrap.dedent("""
    import os
    import sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {here!r})
    from test_training import small_config
    from mhr2_ros.training.train import train
    resume = sys.argv[3] if len(sys.argv) > 3 else None
    limit = float(os.environ.get("TEST_TIME_LIMIT_MIN", "0"))
    train(small_config(sys.argv[1], steps=int(sys.argv[2]), checkpoint_every=2, time_limit_min=limit), resume=resume)
    torch.distributed.barrier()  # both ranks are done before either tears down its connections
    torch.distributed.destroy_process_group()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(tmp_path: Path, *args: str, extra_env: Optional[dict] = None, ok: bool = True) -> list:
    """Runs SCRIPT on WORLD ranks; their outputs. `ok`: every rank must succeed."""
    script = tmp_path / "rank.py"
    script.write_text(SCRIPT.format(here=str(HERE)))
    port = str(_free_port())
    procs = []
    for rank in range(WORLD):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "WORLD_SIZE": str(WORLD),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1",
               **(extra_env or {})}  # fmt: skip
        procs.append(subprocess.Popen([sys.executable, str(script), *args], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))  # fmt: skip
    outputs = []
    for rank, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=300)
        assert (proc.returncode == 0) == ok, f"rank {rank} exit {proc.returncode}:\n{out[-3000:]}"
        outputs.append(out)
    return outputs


def test_two_ranks_train_save_every_stream_and_resume(tmp_path):
    out = tmp_path / "run"
    _torchrun(tmp_path, str(out), "4")
    state = json.loads((out / "last.json").read_text())
    assert state["step"] == 4 and len(state["ranks"]) == WORLD
    streams = [r["stream"] for r in state["ranks"]]
    assert streams[0] != streams[1] and state["stream"] == streams[0]  # each rank its own data
    _torchrun(tmp_path, str(out), "6", str(out))
    resumed = json.loads((out / "last.json").read_text())
    assert resumed["step"] == 6 and (out / "model.safetensors").is_file()
    _torchrun(tmp_path, str(tmp_path / "straight"), "6")  # the same 6 steps without a stop
    straight = json.loads((tmp_path / "straight" / "last.json").read_text())
    assert [r["stream"] for r in resumed["ranks"]] == [r["stream"] for r in straight["ranks"]]  # each its own


def test_a_time_limit_is_refused_under_torchrun(tmp_path):
    """Ranks would plan their ends from their own clocks and stop at different steps (a hang
    at the next all-reduce): refused before any step, on every rank."""
    outputs = _torchrun(tmp_path, str(tmp_path / "run"), "4", extra_env={"TEST_TIME_LIMIT_MIN": "1"}, ok=False)
    assert all("time_limit_min is not supported under torchrun" in out for out in outputs)
    assert not (tmp_path / "run" / "last.json").exists()
