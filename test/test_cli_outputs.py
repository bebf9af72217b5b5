"""What `mhr2 detect` writes, by value: every JSON line field against the README's schema and
its relations, the camera used without camera options, overlay colours, GLB meshes, and what
a run cut short (by --max-frames or by an error) leaves behind."""

import math

import cv2
import numpy as np
import pytest

from test_cli import _lines, _run, media, weights  # noqa: F401  (fixtures: tiny224 weights, test images and clip)
from test_io import _count_frames

FRAME_KEYS = {"frame", "name", "timestamp", "image_size", "K", "K_source", "fov_y_deg", "timings", "joint_names",
              "humans", "level_roll_deg"}  # fmt: skip
HUMAN_KEYS = {"id", "index", "score", "pelvis_2d", "depth", "position", "orientation", "quaternion_xyzw", "shape",
              "height", "box", "joints_3d", "keypoints_2d", "depth_source", "sigma", "track", "head_direction"}  # fmt: skip
STAGES = {"preprocess", "encoder", "decoder", "heads", "body", "postprocess", "total"}


def _fps(path):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    return fps


def test_detect_json_follows_the_readme_schema_and_meshes_load(weights, media, tmp_path, body_model):
    """The README's key sets and relations: K as given, depth = z, row 0 the pelvis, keypoints the joints
    projected with K, quaternion = orientation (x, y, z, w; w >= 0), box inside the image, best score first,
    indices in order; one GLB mesh per person with every vertex of the body model, in glTF's y-up frame."""
    from scipy.spatial.transform import Rotation
    import trimesh

    from mhr2_ros.body import JOINT_NAMES

    out = tmp_path / "out"
    assert _run("detect", media / "a.png", "--weights", weights, "-o", out, "--threshold", "0", "--max-humans", "3",
                "--save-meshes", "--intrinsics", "110,90,60,50") == 0  # fmt: skip
    (rec,) = _lines(out / "frames.jsonl")
    assert set(rec) == FRAME_KEYS and rec["frame"] == 0 and rec["timestamp"] is None
    assert rec["K"] == [[110.0, 0.0, 60.0], [0.0, 90.0, 50.0], [0.0, 0.0, 1.0]]  # as given, row-major
    assert rec["fov_y_deg"] == pytest.approx(math.degrees(2 * math.atan(48 / 90)), abs=1e-3)
    assert set(rec["timings"]) == STAGES and min(rec["timings"].values()) >= 0
    stages = sum(v for k, v in rec["timings"].items() if k != "total")
    assert rec["timings"]["total"] == pytest.approx(stages, abs=1e-5)
    assert rec["joint_names"] == list(JOINT_NAMES) and rec["joint_names"][0] == "pelvis"
    humans = rec["humans"]
    assert len(humans) == 3 and [h["index"] for h in humans] == [0, 1, 2]
    scores = [h["score"] for h in humans]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    fx, fy, cx, cy = 110.0, 90.0, 60.0, 50.0
    for h in humans:
        assert set(h) == HUMAN_KEYS and h["id"] is None and h["track"] is None
        assert h["depth"] == pytest.approx(h["position"][2], abs=1e-4)
        distance = float(np.linalg.norm(h["position"]))  # the prior at the given K (fy 90 px), network depth
        assert h["sigma"]["along_ray"] == pytest.approx(0.13 * distance, abs=1e-4)
        assert h["sigma"]["across_ray"] == pytest.approx(4.0 / fy * distance, abs=1e-4)
        assert np.allclose(h["joints_3d"][0], h["position"], atol=2e-4)  # row 0 is the pelvis
        j = np.array(h["joints_3d"])
        uv = np.stack([fx * j[:, 0] / j[:, 2] + cx, fy * j[:, 1] / j[:, 2] + cy], 1)  # by hand, with the given K
        assert np.allclose(h["keypoints_2d"], uv, atol=0.02 + 1e-4 * fx / j[:, 2].min())
        R = np.array(h["orientation"])
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-5) and np.linalg.det(R) == pytest.approx(1, abs=1e-5)
        q = np.array(h["quaternion_xyzw"])
        assert q[3] >= 0 and np.linalg.norm(q) == pytest.approx(1, abs=1e-5)
        assert np.allclose(Rotation.from_quat(q).as_matrix(), R, atol=1e-5)  # scipy: x, y, z, w
        assert np.linalg.norm(h["head_direction"]) == pytest.approx(1, abs=1e-5)  # a unit vector
        assert set(h["shape"]) == {"gender", "age", "muscle", "weight", "height", "proportions"}
        assert all(0 <= v <= 1 for v in h["shape"].values()) and h["height"] > 0
        x0, y0, x1, y1 = h["box"]
        assert 0 <= x0 <= x1 <= 128 and 0 <= y0 <= y1 <= 96
    scene = trimesh.load(out / "meshes" / "a.glb", process=False)
    assert sorted(scene.geometry) == ["human_0", "human_1", "human_2"]
    for i, h in enumerate(humans):
        mesh = scene.geometry[f"human_{i}"]
        assert len(mesh.vertices) == body_model.num_vertices  # every vertex of the body model, none merged
        assert len(mesh.faces) == len(body_model.faces)
        # glTF y-up: (x, -y, -z) of the camera frame, so the person stands at z = -depth
        assert np.median(mesh.vertices[:, 2]) == pytest.approx(-h["depth"], abs=0.5 + 0.2 * h["depth"])


def test_without_camera_options_the_predicted_fov_is_used(weights, media, tmp_path):
    """K_source is "predicted", with square pixels and the principal point at the image centre."""
    out = tmp_path / "out"
    assert _run("detect", media / "a.png", "--weights", weights, "-o", out, "--no-overlay") == 0
    (rec,) = _lines(out / "frames.jsonl")
    K = rec["K"]
    assert rec["K_source"] == "predicted"
    assert K[0][0] == K[1][1] and K[0][2] == 64 and K[1][2] == 48
    assert rec["fov_y_deg"] == pytest.approx(math.degrees(2 * math.atan(48 / K[1][1])), abs=2e-3)


def test_max_frames_stops_a_video_and_its_overlay(weights, media, tmp_path, capsys):
    """--max-frames N: N JSON lines and an N-frame overlay video at the input's rate; 0 is refused."""
    out = tmp_path / "out"
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", out, "--max-frames", "2") == 0
    assert [r["frame"] for r in _lines(out / "frames.jsonl")] == [0, 1]
    assert _count_frames(out / "overlay.mp4") == (2, (96, 128))
    assert _fps(out / "overlay.mp4") == pytest.approx(10.0)  # the input's rate
    capsys.readouterr()
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", tmp_path / "zero", "--max-frames", "0") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: --max-frames 0: expected a positive count" in err
    assert not (tmp_path / "zero").exists()


def test_overlay_image_keeps_the_input_colours(weights, tmp_path):
    """The overlay JPEG is written in the input's colours (RGB converted back to BGR)."""
    image = np.zeros((96, 128, 3), np.uint8)
    image[:, :64] = (40, 60, 220)  # BGR on disk: red on the left
    image[:, 64:] = (30, 200, 30)  # green on the right
    cv2.imwrite(str(tmp_path / "c.png"), image)
    out = tmp_path / "out"
    # threshold 1: no score is above it, so nothing is drawn and the overlay is the input
    assert _run("detect", tmp_path / "c.png", "--weights", weights, "-o", out, "--threshold", "1") == 0
    assert _lines(out / "frames.jsonl")[0]["humans"] == []
    overlay = cv2.imread(str(out / "overlays" / "c.jpg"))
    assert np.abs(overlay.astype(int) - image).mean() < 4


def test_a_run_stopped_by_an_error_keeps_its_finished_frames(weights, media, tmp_path, capsys):
    """README: a run stopped by an error keeps the frames it finished, each file complete or not at all.
    Here the meshes folder is a file, so the first GLB cannot be written: the JSON line and overlay frame
    written before stay, and no temporary file is left."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "meshes").write_text("a file where the meshes folder goes")
    assert _run("detect", media / "clip.mp4", "--weights", weights, "-o", out, "--threshold", "0",
                "--max-humans", "1", "--save-meshes") == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "meshes" in err
    assert [r["frame"] for r in _lines(out / "frames.jsonl")] == [0]
    assert _count_frames(out / "overlay.mp4") == (1, (96, 128))
    assert sorted(p.name for p in out.iterdir()) == ["frames.jsonl", "meshes", "overlay.mp4"]


def test_detect_with_depth_images_scales_people_and_says_so(weights, media, tmp_path, caplog, capsys):
    """--depth: a 16-bit PNG (mm) for one image, a folder of them for a folder (a missing one is
    named and its image keeps the network's depths), refused for a video and for 8-bit PNGs."""
    wall = np.full((96, 128), 4000, np.uint16)  # 4 m everywhere
    cv2.imwrite(str(tmp_path / "a_depth.png"), wall)
    common = ["--weights", weights, "--threshold", "0", "--max-humans", "2", "--intrinsics", "110,90,60,50"]
    assert _run("detect", media / "a.png", "-o", tmp_path / "one", "--depth", tmp_path / "a_depth.png", *common) == 0
    (rec,) = _lines(tmp_path / "one" / "frames.jsonl")
    assert "depth" in rec["timings"] and len(rec["humans"]) == 2
    for h in rec["humans"]:
        assert h["depth_source"] == "depth image" and 4.0 < h["depth"] < 4.4  # the body's front on the wall
    depth_dir = tmp_path / "depths"
    depth_dir.mkdir()
    np.save(depth_dir / "01.npy", np.full((96, 128), 4.0, np.float32))  # 02.png has none
    assert _run("detect", media / "folder", "-o", tmp_path / "many", "--depth", depth_dir, *common) == 1  # 03.png
    by_name = {r["name"]: r for r in _lines(tmp_path / "many" / "frames.jsonl")}
    assert {h["depth_source"] for h in by_name["01.jpg"]["humans"]} == {"depth image"}
    assert {h["depth_source"] for h in by_name["02.png"]["humans"]} == {"network"}
    assert "no depth image for 02.png" in caplog.text
    capsys.readouterr()
    assert _run("detect", media / "clip.mp4", "-o", tmp_path / "v", "--depth", depth_dir, *common) == 2
    assert "--depth needs image files as input (a depth image per image), not a video" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "8bit.png"), np.zeros((96, 128), np.uint8))
    assert _run("detect", media / "a.png", "-o", tmp_path / "b", "--depth", tmp_path / "8bit.png", *common) == 2
    assert "expected a 16-bit single-channel PNG of millimetres, got uint8" in capsys.readouterr().err
