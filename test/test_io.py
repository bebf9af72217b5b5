"""Tests of mhr2_ros.io inputs and file writing on real files written here (PNG, JPEG, MP4);
the outputs of `mhr2 detect` (overlays, GLB, JSONL) are tested in test_outputs.py."""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np
import pytest

from mhr2_ros.errors import InputError
from mhr2_ros.io import sources as sources_mod
from mhr2_ros.io import video_writer as video_writer_mod
from mhr2_ros.io.atomic import atomic_path, atomic_write
from mhr2_ros.io.images import check_rgb8, load_image, to_rgb8
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


def test_atomic_outputs_get_the_permissions_open_would_give(tmp_path):
    """Written files get the umask's permissions, not an owner-only temporary file's 0o600 (atomic_write
    opens its file itself; atomic_path fixes the mode of what another writer created)."""
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "a.json", "w") as f:
            f.write("{}")
        with atomic_path(tmp_path / "b.glb") as tmp:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o600))  # a writer that makes owner-only files
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.glb").stat().st_mode & 0o777 == 0o644
    assert _leftovers(tmp_path) == []


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


def test_video_writer_keeps_fps_and_colours(tmp_path):
    """The video plays at the rate given and in the frames' colours (RGB in, converted for OpenCV)."""
    path = tmp_path / "red.mp4"
    with VideoWriter(path, 12.0, (W, H)) as writer:
        for _ in range(3):
            writer.write(np.full((H, W, 3), (220, 30, 30), np.uint8))  # RGB red
    cap = cv2.VideoCapture(str(path))
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    ok, bgr = cap.read()
    cap.release()
    assert ok and bgr[..., 2].mean() > 180 and bgr[..., 0].mean() < 70  # red in OpenCV's last channel
    assert _count_frames(path) == (3, (H, W))


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


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_of_png_is_applied_like_pillow(tmp_path, orientation):
    """OpenCV turns JPEGs by their EXIF orientation but not PNGs (IMREAD_UNCHANGED)."""
    from PIL import Image, ImageOps

    pixels = np.random.default_rng(orientation).integers(0, 255, (5, 7, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.png"
    Image.fromarray(pixels).save(path, exif=exif)
    with Image.open(path) as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    np.testing.assert_array_equal(load_image(path), upright)
