"""Tests of mhr2_ros.io on real files written here (PNG, JPEG, MP4, GLB, JSONL)."""

from __future__ import annotations

import json
import logging
import math
import os

import cv2
import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.io import sources as sources_mod
from mhr2_ros.io import video_writer as video_writer_mod
from mhr2_ros.io.atomic import atomic_path, atomic_write
from mhr2_ros.io.images import check_rgb8, load_image, to_rgb8
from mhr2_ros.io.jsonl import JsonlWriter, frame_to_dict
from mhr2_ros.io.mesh_export import export_glb
from mhr2_ros.io.overlay import color_for, draw_overlay, rasterize
from mhr2_ros.io.sources import open_source
from mhr2_ros.io.video_writer import VideoWriter

W, H, FPS, NFRAMES = 64, 48, 10.0, 12


def _rgb(h=H, w=W, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _count_frames(path):
    """(frames decoded, (height, width) of the last) of a video file."""
    cap, n, size = cv2.VideoCapture(str(path)), 0, None
    while (got := cap.read())[0]:
        n, size = n + 1, got[1].shape[:2]
    cap.release()
    return n, size


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.fixture(scope="module")
def video_file(tmp_path_factory):
    """NFRAMES flat frames, red ramp, written with OpenCV's own writer (not ours)."""
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for i in range(NFRAMES):
        writer.write(np.full((H, W, 3), (0, 0, 20 * i + 10), np.uint8))  # BGR
    writer.release()
    return path


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


BAD_ARRAYS = [
    (np.zeros((H, W), np.uint8), "grayscale"), (np.zeros((H, W, 1), np.uint8), "grayscale"),
    (np.zeros((H, W, 4), np.uint8), "RGBA"), (np.zeros((H, W, 3), np.uint16), "16-bit"),
    (np.zeros((H, W, 3), np.float32), "floating-point"), (np.zeros((0, W, 3), np.uint8), "zero-size"),
    (np.zeros((3, H, W), np.uint8), "channels-first"),
]


@pytest.mark.parametrize("array,words", BAD_ARRAYS, ids=[w + str(a.shape) for a, w in BAD_ARRAYS])
def test_check_rgb8_names_what_was_received(array, words):
    with pytest.raises(InputError) as err:
        check_rgb8(array, name="camera image")
    msg = str(err.value)
    assert msg.startswith("camera image:") and "HxWx3 uint8" in msg and "to_rgb8" in msg
    assert words in msg and str(tuple(array.shape)) in msg and str(array.dtype) in msg


def test_check_rgb8_accepts_and_to_rgb8_converts():
    view = _rgb(H, 2 * W)[:, ::2]
    out = check_rgb8(view)
    assert out.flags.c_contiguous and np.array_equal(out, view)
    with pytest.raises(InputError, match=r"list.*HxWx3 uint8"):
        check_rgb8([[1, 2, 3]])
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(to_rgb8(gray), np.repeat(gray[:, :, None], 3, 2))
    rgba = _rgb(3, 4, 1).repeat(2, axis=2)[:, :, :4]
    assert np.array_equal(to_rgb8(rgba), rgba[:, :, :3])
    deep = np.full((2, 2, 3), 0xABCD, np.uint16)
    assert (to_rgb8(deep) == 0xAB).all()
    assert (to_rgb8(np.full((2, 2, 3), 0.5, np.float32)) == 128).all()
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        to_rgb8(np.full((2, 2, 3), 200.0))
    with pytest.raises(InputError, match="no pixels"):
        to_rgb8(np.zeros((0, 0, 3), np.uint8), name="x")


@pytest.fixture
def image_files(tmp_path):
    rgb = _rgb()
    cv2.imwrite(str(tmp_path / "color.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "photo.jpg"), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "gray.png"), rgb[:, :, 0])
    cv2.imwrite(str(tmp_path / "rgba.png"), np.dstack([rgb[:, :, ::-1], np.full((H, W), 7, np.uint8)]))
    cv2.imwrite(str(tmp_path / "deep.png"), np.full((H, W, 3), 0x1234, np.uint16))
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not a JPEG\n")
    return tmp_path, rgb


def test_load_image_converts_with_warning(image_files, caplog):
    folder, rgb = image_files
    assert np.array_equal(load_image(folder / "color.png"), rgb)  # BGR on disk -> RGB
    jpg = load_image(folder / "photo.jpg")
    assert jpg.shape == (H, W, 3) and jpg.dtype == np.uint8
    with caplog.at_level(logging.WARNING, logger="mhr2_ros.io.images"):
        gray = load_image(folder / "gray.png")
        rgba = load_image(folder / "rgba.png")
        deep = load_image(folder / "deep.png")
    assert np.array_equal(gray, np.repeat(rgb[:, :, :1], 3, 2))
    assert np.array_equal(rgba, rgb)
    assert deep.dtype == np.uint8 and (deep == 0x12).all()
    text = caplog.text
    assert "gray.png: 1-channel 8-bit image converted to 3-channel RGB" in text
    assert "rgba.png: 4-channel 8-bit image converted to 3-channel RGB (alpha dropped)" in text
    assert "deep.png: 3-channel 16-bit image converted to 3-channel 8-bit RGB" in text


@pytest.mark.parametrize("name,words", [("empty.png", "empty (0 bytes)"), ("text.jpg", "cannot be decoded"),
                                        ("missing.png", "no such file")])
def test_load_image_errors(image_files, name, words):
    folder, _ = image_files
    with pytest.raises(InputError) as err:
        load_image(folder / name)
    msg = str(err.value)
    assert str(folder / name) in msg and words in msg and "a readable PNG/JPEG/BMP/TIFF/WebP image" in msg


def test_load_image_applies_jpeg_exif_orientation(tmp_path):
    image_mod = pytest.importorskip("PIL.Image")
    img = image_mod.fromarray(np.zeros((20, 40, 3), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").shape == (40, 20, 3)


def test_folder_yields_bad_files_as_errors_and_continues(image_files):
    folder, rgb = image_files
    (folder / "notes.txt").write_text("ignored")
    cv2.imwrite(str(folder / "z10.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(folder / "z9.png"), rgb[:, :, ::-1])
    with open_source(str(folder)) as source:
        assert source.kind == "folder" and len(source) == 9 and source.fps is None
        frames = list(source)
    names = [f.name for f in frames]
    assert names == ["color.png", "deep.png", "empty.png", "gray.png", "photo.jpg", "rgba.png",
                     "text.jpg", "z9.png", "z10.png"]
    bad = {f.name: f for f in frames if not f.ok}
    assert set(bad) == {"empty.png", "text.jpg"}
    assert all(isinstance(f.error, InputError) and f.image is None for f in bad.values())
    assert [f.index for f in frames] == list(range(9)) and all(f.timestamp is None for f in frames)
    assert frames[-1].ok and np.array_equal(frames[-1].image, rgb)  # iteration went on
    single = open_source(folder / "color.png")
    assert single.kind == "image" and len(single) == 1 and [f.name for f in single] == ["color.png"]
    with pytest.raises(InputError, match="text.jpg"):
        open_source(folder / "text.jpg")  # a single bad image fails at open


def test_empty_folder_and_bad_specs(tmp_path):
    (tmp_path / "readme.txt").write_text("no images")
    with pytest.raises(InputError, match="no image files"):
        open_source(str(tmp_path))
    with pytest.raises(InputError, match="camera index"):
        open_source(str(tmp_path / "nope.mp4"))
    (tmp_path / "data.xyz").write_text("?")
    with pytest.raises(InputError, match="unknown file extension"):
        open_source(str(tmp_path / "data.xyz"))


def test_video_source(video_file):
    with open_source(str(video_file)) as source:
        assert source.kind == "video" and len(source) == NFRAMES and source.fps == pytest.approx(FPS)
        frames = list(source)
        assert len(list(source)) == NFRAMES  # a second pass re-opens the file
    assert [f.index for f in frames] == list(range(NFRAMES))
    assert [f.timestamp for f in frames] == pytest.approx([i / FPS for i in range(NFRAMES)])
    assert frames[3].name == "frame_000003" and frames[3].image.shape == (H, W, 3)
    assert frames[-1].image[..., 0].mean() > 200 > 30 > frames[-1].image[..., 2].mean()  # BGR -> RGB


def test_corrupt_videos(tmp_path, video_file):
    (tmp_path / "text.mp4").write_text("not a video at all\n")
    data = video_file.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    for name in ("text.mp4", "cut.mp4"):
        with pytest.raises(InputError) as err:
            open_source(str(tmp_path / name))
        assert name in str(err.value) and "video" in str(err.value)


class _FakeCapture:
    """Stands in for cv2.VideoCapture: camera 0 gives three frames then goes away, 1 is absent."""

    def __init__(self, index):
        self.left = 3 if index == 0 else -1

    def isOpened(self):
        return self.left >= 0

    def read(self):
        self.left -= 1
        return self.left >= 0, np.zeros((4, 6, 3), np.uint8)

    get = staticmethod(lambda prop: 30.0)
    release = staticmethod(lambda: None)


def test_camera_source(monkeypatch):
    monkeypatch.setattr(sources_mod.cv2, "VideoCapture", _FakeCapture)
    with open_source("0") as cam:
        assert cam.kind == "camera" and cam.length is None and cam.fps == 30.0
        with pytest.raises(TypeError):
            len(cam)
        frames = list(cam)
    assert len(frames) == 3 and frames[2].name == "frame_000002" and frames[2].timestamp >= 0
    with pytest.raises(InputError, match="camera 1"):
        open_source("1")


def test_atomic_write_and_path_leave_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(KeyError), atomic_write(target, "w") as f:
        f.write("half")
        raise KeyError("boom")
    assert list(tmp_path.iterdir()) == []
    target.write_text("old")
    with pytest.raises(KeyError), atomic_write(target) as f:
        f.write(b"new")
        raise KeyError("boom")
    assert target.read_text() == "old" and _leftovers(tmp_path) == []
    with atomic_write(target, "w") as f:
        f.write("new")
    assert target.read_text() == "new" and _leftovers(tmp_path) == []
    target = tmp_path / "sub" / "mesh.glb"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".glb" and tmp.parent == target.parent
        tmp.write_bytes(b"x")
    assert target.read_bytes() == b"x"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.glb") as tmp:
        tmp.write_bytes(b"x")
        raise RuntimeError("crash")
    with pytest.raises(RuntimeError, match="no file"), atomic_path(tmp_path / "c.glb"):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "sub"]


def test_video_writer_round_trip(tmp_path):
    path = tmp_path / "out.mp4"
    with VideoWriter(path, 12.0, (W, H)) as writer:
        for i in range(7):
            writer.write(_rgb(seed=i))
            assert not path.exists()  # only under a hidden name until closed
    assert _count_frames(path) == (7, (H, W)) and _leftovers(tmp_path) == []
    odd = tmp_path / "odd.mp4"
    with VideoWriter(odd, 5, (W + 1, H + 1)) as writer:
        writer.write(_rgb(H + 1, W + 1))
    assert _count_frames(odd) == (1, (H + 2, W + 2))  # padded to even, never cropped


def test_video_writer_errors(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="expected 64x48"), VideoWriter(tmp_path / "a.mp4", 10, (W, H)) as writer:
        writer.write(_rgb(H, W))
        writer.write(_rgb(H, W + 2))
    assert _count_frames(tmp_path / "a.mp4") == (1, (H, W))  # the frame before the error is kept
    with pytest.raises(InputError, match="HxWx3 uint8"), VideoWriter(tmp_path / "b.mp4", 10, (W, H)) as writer:
        writer.write(np.zeros((H, W), np.uint8))
    with VideoWriter(tmp_path / "c.mp4", 10, (W, H)):
        pass  # no frame: no file
    with pytest.raises(InputError, match=".mp4"):
        VideoWriter(tmp_path / "d.gif", 10, (W, H))
    with pytest.raises(InputError, match="fps"):
        VideoWriter(tmp_path / "e.mp4", 0, (W, H))
    monkeypatch.setattr(video_writer_mod, "FOURCC", "ZZZZ")  # no such encoder
    with pytest.raises(RuntimeError, match="could not open"):
        VideoWriter(tmp_path / "x.mp4", 10, (W, H))
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temporary or empty file


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


def test_overlay_without_vertices_and_behind_camera():
    flat = _human(None, box=(10, 10, 20, 20))
    behind = _human(_square(0, 0, -2.0, 0.2), box=(10, 10, 20, 20))
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
    trimesh = pytest.importorskip("trimesh")
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
