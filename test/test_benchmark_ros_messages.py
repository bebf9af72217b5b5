"""benchmarks/ros_messages.py on tiny settings: five messages per people count, in order, whose bytes
grow by the same amount per person, the vertices adding the 13,718 float32 xyz of each Anny body and the
full mesh marker its 27,420 triangles (three float64 points each), the 2 cm mesh in between."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COUNTS = (1, 2, 4)  # 4: more people than the demo scene's three, so some bodies are repeated
ARGV = ["benchmarks/ros_messages.py", "--people", *map(str, COUNTS), "--iters", "1"]
CASES = [("HumanArray", "no"), ("HumanArray", "vertices"), ("MarkerArray", "no mesh"),
         ("MarkerArray", "mesh 2 cm"), ("MarkerArray", "mesh full")]  # fmt: skip
HEADER = ["message", "meshes", "people", "build ms", "serialize ms", "bytes"]
VERTICES, FACES = 13_718, 27_420  # of the Anny (makehuman) mesh
VERTEX_BYTES = 3 * 4  # float32 x, y, z in Human.vertices
TRIANGLE_BYTES = 3 * 3 * 8  # three geometry_msgs/Point (float64 x, y, z) per triangle of a TRIANGLE_LIST


@pytest.fixture(scope="module")
def output() -> str:
    """What the benchmark prints, run once for the module."""
    run = subprocess.run([sys.executable, *ARGV], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    return run.stdout


def _rows(stdout: str) -> list:
    """The table's rows as dicts of the header's columns (numbers parsed)."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    assert [c.strip() for c in lines[0].strip("|").split("|")] == HEADER
    rows = []
    for line in lines[2:]:  # after the header and its |---| line
        name, mesh, people, build, serialize, size = (c.strip() for c in line.strip("|").split("|"))
        rows.append({"message": name, "meshes": mesh, "people": int(people), "build ms": float(build),
                     "serialize ms": float(serialize), "bytes": int(size.replace(",", ""))})  # fmt: skip
    return rows


def test_the_table_has_every_message_for_every_people_count(output):
    assert output.startswith(f"command: {' '.join(ARGV)}\n")
    assert "; rosbags CDR, jazzy definitions; medians of 1\n" in output
    rows = _rows(output)
    assert [(r["message"], r["meshes"], r["people"]) for r in rows] == [(*c, n) for n in COUNTS for c in CASES]
    assert all(r["build ms"] > 0 and r["serialize ms"] > 0 for r in rows)


def test_the_bytes_grow_by_one_body_per_person(output):
    size = {(r["message"], r["meshes"], r["people"]): r["bytes"] for r in _rows(output)}
    for case in CASES:
        if case[1] == "mesh 2 cm":
            continue  # each demo body decimates to its own triangle count
        per_person = size[(*case, 2)] - size[(*case, 1)]
        assert per_person > 0, case
        assert size[(*case, 4)] - size[(*case, 2)] == 2 * per_person, case  # repeated bodies are published too
    for n in COUNTS:
        no_vertices, with_vertices = size[("HumanArray", "no", n)], size[("HumanArray", "vertices", n)]
        assert with_vertices - no_vertices == n * VERTICES * VERTEX_BYTES
        no_mesh, full = size[("MarkerArray", "no mesh", n)], size[("MarkerArray", "mesh full", n)]
        assert n * FACES * TRIANGLE_BYTES < full - no_mesh < n * (FACES * TRIANGLE_BYTES + 1024)  # + a marker's fields
        assert no_mesh < size[("MarkerArray", "mesh 2 cm", n)] < full / 2
