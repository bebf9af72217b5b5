"""benchmarks/synth.py: a row per size and a column per people count under aligned headers, each cell
1 / the median time of the frames after the warm-up ones, of a clip with that many people at that size."""

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import synth  # noqa: E402

ARGV = ["benchmarks/synth.py", "--device", "cpu", "--threads", "1", "--people", "1", "2", "--sizes", "48x32",
        "32x16", "--warmup", "0", "--iters", "1"]  # fmt: skip


class FakeClock:
    """perf_counter for the benchmark: time moves only when a fake frame renders."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fake_clip(clock: FakeClock, seconds_per_frame: list, made: list):
    """A SyntheticClip stand-in whose frame i takes seconds_per_frame[i]; records its config and seed."""

    class Clip:
        def __init__(self, cfg, seed, body=None) -> None:
            self.cfg = cfg
            made.append((cfg, seed))

        def __len__(self) -> int:
            return self.cfg.frames

        def frame(self, index: int) -> None:
            clock.now += seconds_per_frame[index]

    return Clip


def test_the_table_has_a_row_per_size_and_a_column_per_people_count():
    run = subprocess.run([sys.executable, *ARGV], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.startswith(f"command: {' '.join(ARGV)}\n")
    assert "seed 0, 0 warm-up + 1 timed frames per cell; frames/s = 1 / median frame time\n" in out
    assert re.search(r"^device: cpu \(.*, 1 torch threads\)$", out, re.M), out
    table = out[out.index("\ndevice: cpu") :].splitlines()[2:]
    header, rule, rows = table[0], table[1], table[2:]
    assert header.split("|")[1:] == ["   1 people ", "   2 people"]
    assert [row.split("|")[0].strip() for row in rows] == ["48x32", "32x16"]
    for row in rows:
        cells = row.split("|")[1:]
        assert len(cells) == 2 and all(re.fullmatch(r" +\d+\.\d /s ?", c) and float(c.split()[0]) > 0 for c in cells)
        # the columns line up: every row's separators under the header's and the rule's
        assert [m.start() for m in re.finditer(r"\|", row)] == [m.start() for m in re.finditer(r"\|", header)]
        assert [m.start() for m in re.finditer(r"\|", row)] == [m.start() for m in re.finditer(r"\+", rule)]


def test_a_cell_times_the_frames_after_the_warm_up_of_its_own_clip(monkeypatch):
    clock, made = FakeClock(), []
    monkeypatch.setattr(synth, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(synth, "SyntheticClip", _fake_clip(clock, [9.0, 7.0, 0.5, 0.25, 2.0], made))
    assert synth.measure(3, (64, 48), "cpu", warmup=2, iters=3, seed=7) == 0.5  # median of 0.5, 0.25, 2.0
    (cfg, seed), = made
    assert seed == 7 and cfg.frames == 5
    assert cfg.camera.size == (64, 48) and cfg.placement.people == (3, 3) and cfg.render.device == "cpu"


def test_a_cuda_cell_waits_for_each_frame_inside_its_time(monkeypatch):
    clock, made = FakeClock(), []
    monkeypatch.setattr(synth, "time", SimpleNamespace(perf_counter=clock))
    monkeypatch.setattr(synth, "SyntheticClip", _fake_clip(clock, [9.0, 0.5, 0.25, 2.0], made))

    def synchronize() -> None:  # the GPU finishing the frame queued: 1 s more
        clock.now += 1.0

    monkeypatch.setattr(synth.torch.cuda, "synchronize", synchronize)
    assert synth.measure(1, (32, 16), "cuda:1", warmup=1, iters=3, seed=0) == 1.5
    assert made[0][0].render.device == "cuda:1"


def test_a_cell_is_frames_per_second(monkeypatch, capsys):
    seconds = {(1, (48, 32)): 0.25, (4, (48, 32)): 0.5, (1, (32, 16)): 0.125, (4, (32, 16)): 2.0}
    monkeypatch.setattr(synth, "measure", lambda people, size, *_: seconds[(people, size)])
    monkeypatch.setattr(synth, "default_body", lambda: None)
    monkeypatch.setattr(sys, "argv", ["synth.py", "--device", "cpu", "--people", "1", "4", "--sizes", "48x32",
                                      "32x16"])  # fmt: skip
    synth.main()
    rows = capsys.readouterr().out.splitlines()[-2:]
    assert [[float(c.split()[0]) for c in row.split("|")[1:]] for row in rows] == [[4.0, 2.0], [8.0, 0.5]]
    assert [row.split("|")[0].strip() for row in rows] == ["48x32", "32x16"]

