"""`--help` of every command loads neither torch nor anny nor OpenCV, and describes every argument
(test_cli.py checks the `mhr2` subcommands' parsers; this also covers `mhr2-train` and `mhr2-sam2-targets`).

Each case runs in a fresh interpreter (the test process has torch loaded already): it
builds the parser through the console script's own entry point with `--help`, then
reports the exit code and which heavy modules got imported. Building a parser must stay
fast (torch alone takes seconds to import) and must work with a broken torch install.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "anny", "cv2")
SUBCOMMANDS = ("detect", "demo", "eval", "compare", "init-weights", "export", "bag", "synth", "track-eval")
# (console script, module:function it runs, arguments)
CASES = [("mhr2", "mhr2_ros.cli:main", [])]
CASES += [(f"mhr2 {name}", "mhr2_ros.cli:main", [name]) for name in SUBCOMMANDS]
CASES += [("mhr2-train", "mhr2_ros.cli.train:main", []), ("mhr2-sam2-targets", "mhr2_ros.cli.sam2_targets:main", [])]

PROBE = """
import importlib, io, json, sys
from contextlib import redirect_stdout
module, func = sys.argv[1].split(":")
out = io.StringIO()
with redirect_stdout(out):
    try:
        code = getattr(importlib.import_module(module), func)(sys.argv[2:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "help": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _probe(target: str, args, extra_path=()) -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, extra_path), str(REPO)]))
    proc = subprocess.run([sys.executable, "-c", PROBE, target, *args, "--help"], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _undocumented(help_text: str) -> list:
    """Argument entries of an argparse help text with no description: none on the same line, and the
    next line not indented deeper (where a long entry's help, or a subcommand list, goes)."""
    lines = help_text.splitlines() + [""]
    bad = []
    for line, after in zip(lines, lines[1:]):
        entry = re.match(r"^  (\S.*?)(?: {2,}(\S.*))?$", line)
        if entry and not entry.group(2) and not re.match(r"^ {3,}\S", after):
            bad.append(entry.group(1))
    return bad


@pytest.mark.parametrize("name,target,args", CASES, ids=[c[0] for c in CASES])
def test_help_loads_no_heavy_module(name, target, args):
    result = _probe(target, args)
    assert result["code"] == 0
    assert result["help"].startswith(f"usage: {name} ")
    assert _undocumented(result["help"]) == []
    loaded = [m for m in HEAVY if m in result["modules"]]
    ours = [m for m in result["modules"] if m.startswith("mhr2_ros")]
    assert not loaded, f"`{name} --help` imported {loaded}; mhr2_ros modules loaded: {ours}"


def test_help_works_with_a_broken_torch(tmp_path):
    """A torch (or anny, cv2) that fails to import does not stop `mhr2 ... --help`."""
    for name in HEAVY:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('broken {name} install')\n")
    for name, target, args in CASES:
        result = _probe(target, args, extra_path=[tmp_path])
        assert result["code"] == 0, name
        assert "--help" in result["help"], name
