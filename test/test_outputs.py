"""Tests of the outputs of `mhr2 detect` (mhr2_ros.io): overlays, GLB meshes and JSON lines,
written to real files here."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import trimesh

from mhr2_ros.errors import InputError
from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.io.jsonl import JsonlWriter, frame_to_dict
from mhr2_ros.io.mesh_export import export_glb
from mhr2_ros.io.overlay import color_for, draw_overlay, place_label, rasterize


REPO = Path(__file__).resolve().parent.parent
K = np.array([[100.0, 0, 64], [0, 100.0, 48], [0, 0, 1]], np.float32)  # 128x96 image
SQUARE_FACES = np.array([[0, 1, 2], [0, 2, 3]])
SHAPE = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


def _square(cx, cy, z, half):
    """Two triangles forming a square facing the camera, centred on (cx, cy, z)."""
    corners = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    return (corners * half + [cx, cy, z]).astype(np.float32)


def _human(vertices=None, track_id=None, depth=2.0, joints=None, box=(0, 0, 1, 1), score=0.9):
    joints = np.array([[0, 0, depth], [0, 0.3, depth]], np.float32) if joints is None else joints
    return Human(
        score=score, pelvis_2d=np.array([64.0, 48.0], np.float32), depth=depth, nearness=0.0,
        position=np.array([0.0, 0.0, depth], np.float32), orientation=np.eye(3, dtype=np.float32),
        shape=np.array(SHAPE, np.float32), pose_6d=np.zeros((3, 6), np.float32),
        height=1.75, joints_3d=joints, keypoints_2d=(joints[:, :2] / joints[:, 2:] * 100 + [64, 48]).astype(np.float32),
        box=np.array(box, np.float32), vertices=vertices, track_id=track_id,
    )


def _frame(humans):
    return FrameResult(humans=humans, K=K, K_source="given", fov_y=2 * math.atan(48 / 100),
                       image_size=(96, 128), timings={"model": 0.0123456789})


BACKGROUND = np.full((96, 128, 3), 40, np.uint8)  # draw_overlay must never modify its input


def test_overlay_changes_mesh_area_only():
    human = _human(_square(0, 0, 2.0, 0.2), track_id="a1", box=(54, 38, 74, 58))  # square: u, v in [54, 74]x[38, 58]
    out = draw_overlay(BACKGROUND, _frame([human]), SQUARE_FACES, alpha=0.5)
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    inside = out[42:55, 58:71].reshape(-1, 3)
    assert (inside != 40).any(1).all()
    expected = np.rint(0.5 * 40 + 0.5 * np.array(color_for("a1", 0)))
    assert np.abs(out[44, 58].astype(float) - expected).max() <= 2  # head-on face: full shade
    far = np.ones((96, 128), bool)
    far[15:70, 30:] = False  # box, skeleton, and the label above the box (wider than it)
    far[40:70, 80:] = True  # right of the square, below the label
    assert (out[far] == 40).all() and (BACKGROUND == 40).all()


def test_overlay_nearer_person_covers_farther_whatever_the_order():
    near = _human(_square(0, 0, 2.0, 0.2), track_id="near", depth=2.0)
    far = _human(_square(0.05, 0, 4.0, 0.6), track_id="far", depth=4.0)
    for humans in ([near, far], [far, near]):
        out = draw_overlay(BACKGROUND, _frame(humans), SQUARE_FACES, alpha=1.0)
        assert np.abs(out[42, 58].astype(int) - color_for("near", 0)).max() <= 2  # off the joints
        assert np.abs(out[42, 78].astype(int) - color_for("far", 0)).max() <= 2


def test_labels_never_cover_each_other_and_stay_on_screen():
    size, image = (40, 10), (100, 120)  # label w, h; image h, w
    taken = [place_label((50, 30, 70, 60), size, image, [])]
    assert taken[0] == (50, 20, 90, 30)  # above its box
    taken.append(place_label((60, 32, 80, 60), size, image, taken))  # a neighbour's label would overlap
    assert taken[1] == (60, 32, 100, 42)  # inside the top of its box instead
    taken.append(place_label((55, 31, 75, 60), size, image, taken))
    assert taken[2] == (55, 60, 95, 70)  # below its box
    corner = place_label((110, 0, 119, 5), size, image, [])
    assert corner == (80, 0, 120, 10)  # no room above: inside, pulled left onto the screen
    crowded = [(0, y, 120, y + 10) for y in range(0, 100, 10)]
    assert place_label((50, 30, 70, 60), size, image, crowded) == (50, 20, 90, 30)  # no free spot: above


def test_overlay_without_vertices_and_behind_camera():
    flat = _human(None, box=(10, 10, 20, 20))
    behind = _human(_square(0, 0, -2.0, 0.2), box=(10, 80, 20, 90))  # its label: rows ~60-80
    out = draw_overlay(BACKGROUND, _frame([flat, behind]), SQUARE_FACES, edges=[(0, 1)])
    assert (out[48, 64] != 40).any()  # skeleton joint at the principal point
    assert (out[45:52, 75:90] == 40).all()  # no mesh anywhere near
    with pytest.raises(InputError, match="128x96"):
        draw_overlay(np.zeros((10, 10, 3), np.uint8), _frame([flat]), None)


def test_rasterize_has_no_cracks():
    xs = np.array([[-0.5, -0.5], [127.5, 127.5], [127.5, -0.5]])  # two triangles sharing a diagonal
    ys = np.array([[-0.5, -0.5], [-0.5, 95.5], [95.5, 95.5]])
    owner = rasterize(xs, ys, np.ones((3, 2)), 96, 128)
    assert (owner >= 0).all() and set(np.unique(owner)) == {0, 1}


def test_export_glb_round_trip(tmp_path):
    sq = _square(0, 0, 2.0, 0.2)
    frame = _frame([_human(sq, track_id="a1"), _human(None), _human(_square(1, 0, 3.0, 0.5))])
    assert export_glb(tmp_path / "scene.glb", frame, SQUARE_FACES) == 2
    scene = trimesh.load(tmp_path / "scene.glb", process=False)
    geoms = {name: g for name, g in scene.geometry.items()}
    assert sorted(geoms) == ["human_2", "human_a1"]
    assert [len(g.vertices) for g in geoms.values()] == [4, 4]
    assert np.allclose(geoms["human_a1"].vertices, sq * [1, -1, -1], atol=1e-6)  # y up, -z forward
    with pytest.raises(ValueError, match="nothing to export"):
        export_glb(tmp_path / "none.glb", _frame([_human(None)]), SQUARE_FACES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.glb"]


def test_frame_to_dict_round_trip():
    human = _human(_square(0, 0, 2.0, 0.2), track_id="a1")
    human.keypoints_2d[1, 0] = np.nan
    frame = _frame([human, _human(None, score=0.5)])
    record = json.loads(json.dumps(frame_to_dict(frame, 7, "frame_000007", 0.7, ["pelvis", "neck"]), allow_nan=False))
    assert record["frame"] == 7 and record["name"] == "frame_000007" and record["timestamp"] == 0.7
    assert record["image_size"] == {"width": 128, "height": 96} and record["K_source"] == "given"
    assert record["K"][0] == [100.0, 0.0, 64.0] and record["fov_y_deg"] == pytest.approx(51.28, abs=0.01)
    assert record["timings"] == {"model": 0.012346} and record["joint_names"] == ["pelvis", "neck"]
    first, second = record["humans"]
    assert first["id"] == "a1" and second["id"] is None and second["score"] == 0.5
    assert first["quaternion_xyzw"] == [0.0, 0.0, 0.0, 1.0] and first["orientation"][2] == [0.0, 0.0, 1.0]
    assert first["shape"] == dict(zip(["gender", "age", "muscle", "weight", "height", "proportions"], SHAPE))
    assert first["position"] == [0.0, 0.0, 2.0] and first["joints_3d"][1] == [0.0, 0.3, 2.0]
    assert first["keypoints_2d"] == [[64.0, 48.0], [None, 63.0]]  # NaN -> null
    assert "vertices" not in first and "track_feature" not in first
    assert first["head_direction"] is None  # no body part rotations on this detection
    turned = np.repeat(np.eye(3)[None], 15, axis=0)
    turned[2] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # the head part (third) turned 90 deg
    human.part_rotations = turned
    assert frame_to_dict(frame, 7, "frame_000007", 0.7, ["pelvis", "neck"])["humans"][0]["head_direction"] == [
        0.0, 1.0, 0.0]  # its x axis  # fmt: skip
    with pytest.raises(ValueError, match="joint names"):
        frame_to_dict(frame, 0, "x", None, ["only_one"])


def test_jsonl_writer(tmp_path):
    path = tmp_path / "out.jsonl"
    with JsonlWriter(path) as writer:
        for i in range(3):
            writer.write_frame(_frame([_human()]), i, f"frame_{i:06d}", i / 10)
        assert not path.exists()
    assert [json.loads(line)["frame"] for line in path.read_text().splitlines()] == [0, 1, 2]
    with pytest.raises(ZeroDivisionError), JsonlWriter(tmp_path / "crash.jsonl") as writer:
        writer.write({"a": 1})
        1 / 0
    # a run that stops keeps its complete lines, and no temporary file is left
    assert sorted(os.listdir(tmp_path)) == ["crash.jsonl", "out.jsonl"]
    assert json.loads((tmp_path / "crash.jsonl").read_text()) == {"a": 1}


def test_frame_to_dict_writes_every_human_field_by_value():
    """Each field from its own attribute, in order, rounded as documented; orientation row-major and its
    quaternion (x, y, z, w) for a turn that is not symmetric."""
    c, s = math.cos(math.radians(30)), math.sin(math.radians(30))
    turn = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32)  # 30 deg about z
    first = _human(_square(0, 0, 2.0, 0.2), score=0.87654321)
    second = _human(None, track_id="b7", depth=2.3456789, box=(10.111, 20.222, 30.333, 40.444), score=0.5)
    second.orientation = turn
    second.position = np.array([0.123456, -0.654321, 2.3456789], np.float32)
    second.pelvis_2d = np.array([64.123, 48.987], np.float32)
    second.height = 1.7512345
    record = frame_to_dict(_frame([first, second]), 0, "x.png", None)
    a, b = record["humans"]
    assert a["index"] == 0 and b["index"] == 1 and a["score"] == 0.8765
    assert b["id"] == "b7" and b["depth"] == 2.3457 and b["height"] == 1.7512
    assert b["position"] == [0.1235, -0.6543, 2.3457]
    assert b["pelvis_2d"] == [64.12, 48.99] and b["box"] == [10.11, 20.22, 30.33, 40.44]
    assert b["orientation"] == [[0.866025, -0.5, 0.0], [0.5, 0.866025, 0.0], [0.0, 0.0, 1.0]]
    assert b["quaternion_xyzw"] == [0.0, 0.0, 0.258819, 0.965926]  # sin 15, cos 15 about +z
    assert record["timestamp"] is None and "joint_names" not in record
    # the default prior at 2.438 m, network depth, K given (focal 100 px): 13% along the ray, 4 px across
    distance = float(np.linalg.norm([0.123456, -0.654321, 2.3456789]))
    assert b["sigma"] == {"along_ray": round(0.13 * distance, 4), "across_ray": round(4.0 / 100.0 * distance, 4),
                          "heading": 1.5, "tilt": 0.17}  # fmt: skip
    predicted = _frame([second])
    predicted.K_source = "predicted"  # the network's K: the wider prior (x1.4 along, 7.8 px across)
    sigma = frame_to_dict(predicted, 0, "x.png", None)["humans"][0]["sigma"]
    assert sigma["along_ray"] == round(0.13 * 1.4 * distance, 4) and sigma["across_ray"] == round(0.078 * distance, 4)


def test_export_glb_keeps_every_vertex_in_order(tmp_path):
    """Meshes are written unprocessed: a duplicated vertex is not merged, nothing is renumbered."""
    verts = np.vstack([_square(0, 0, 2.0, 0.2), _square(0, 0, 2.0, 0.2)[:1]])  # vertex 4 duplicates vertex 0
    faces = np.array([[0, 1, 2], [4, 2, 3]])
    assert export_glb(tmp_path / "d.glb", _frame([_human(verts)]), faces) == 1
    (mesh,) = trimesh.load(tmp_path / "d.glb", process=False).geometry.values()
    assert len(mesh.vertices) == 5 and np.allclose(mesh.vertices, verts * [1, -1, -1], atol=1e-6)
    assert mesh.faces.tolist() == faces.tolist()


def test_jsonl_lines_are_flushed_and_a_killed_run_publishes_nothing(tmp_path):
    """Each line is flushed as written (it can be followed in the hidden file), and a process killed
    mid-way (a real SIGKILL) leaves no file at the path."""
    script = textwrap.dedent(f"""
        import os, signal
        from mhr2_ros.io.jsonl import JsonlWriter
        writer = JsonlWriter({str(tmp_path / "run.jsonl")!r})
        writer.write({{"frame": 0}})
        writer.write({{"frame": 1}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert not (tmp_path / "run.jsonl").exists()
    (hidden,) = [p for p in tmp_path.iterdir() if p.name.startswith(".run.tmp-")]
    assert [json.loads(line) for line in hidden.read_text().splitlines()] == [{"frame": 0}, {"frame": 1}]
