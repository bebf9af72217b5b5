"""rosbag2 in and out without ROS: `mhr2 bag` on MCAP and sqlite3 bags written here,
camera_info intrinsics, a tracker plug-in, and damaged inputs (image decoding:
test_ros_image.py)."""

import copy
import dataclasses
import logging
import re

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.checkpoint import save_checkpoint
from mhr2_ros.cli import main
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.config import override
from mhr2_ros.errors import InputError
from mhr2_ros.io.rosbag import BagImageReader, BagWriter
from mhr2_ros.model import build_model
from mhr2_ros.ros.camera import intrinsics_from_camera_info
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.offline import BagOptions, process_bag
from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
from mhr2_ros.ros.typestore import make_typestore

TOPIC, INFO_TOPIC, FRAME = "/cam/image_raw", "/cam/camera_info", "cam_optical_frame"
STORE = make_typestore("humble")
T0 = 1_700_000_000_000_000_000
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"


def _header(stamp_ns, frame_id=FRAME):
    t = STORE.types["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9)
    return STORE.types["std_msgs/msg/Header"](t, frame_id)


def image_msg(rgb, stamp_ns, encoding="rgb8", frame_id=FRAME):
    h, w = rgb.shape[:2]
    data = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": rgb[..., 0]}[encoding]
    data = np.ascontiguousarray(data)
    return STORE.types[IMAGE](_header(stamp_ns, frame_id), h, w, encoding, 0, data.strides[0], data.reshape(-1))


def camera_info_msg(K, width, height, stamp_ns, P=None, D=(), model="plumb_bob"):
    """K as given; P = [K|0] (an unrectified camera) unless given; D the lens distortion of `model`."""
    f = RosbagsFactory(STORE)
    P = np.hstack([K, np.zeros((3, 1))]) if P is None else np.asarray(P, np.float64)
    return f.new("sensor_msgs/msg/CameraInfo", header=_header(stamp_ns), width=width, height=height,
                 k=np.asarray(K, np.float64).reshape(-1), p=P.reshape(-1), d=np.asarray(D, np.float64),
                 distortion_model=model)  # fmt: skip


def write_bag(path, storage, images, compressed=False, info=None, frame_id=FRAME):
    """images: list of (stamp_ns, rgb). Bag time = stamp + 5 ms (the receipt)."""
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    msgtype = COMPRESSED_IMAGE if compressed else IMAGE
    with Writer(path, version=8, storage_plugin=plugin) as w:
        conn = w.add_connection(TOPIC + ("/compressed" if compressed else ""), msgtype, typestore=STORE)
        info_conn = w.add_connection(INFO_TOPIC, "sensor_msgs/msg/CameraInfo", typestore=STORE) if info else None
        for stamp, rgb in images:
            if info_conn:
                w.write(info_conn, stamp + 1, STORE.serialize_cdr(info(stamp), "sensor_msgs/msg/CameraInfo"))
            if compressed:
                ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
                msg = STORE.types[msgtype](_header(stamp, frame_id), "rgb8; jpeg compressed bgr8", jpg.reshape(-1))
            else:
                msg = image_msg(rgb, stamp, frame_id=frame_id)
            w.write(conn, stamp + 5_000_000, STORE.serialize_cdr(msg, msgtype))
    return path


def read_topics(path):
    out = {}
    with Reader(path) as reader:
        for conn, t, data in reader.messages():
            out.setdefault(conn.topic, []).append((t, STORE.deserialize_cdr(data, conn.msgtype)))
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    return out, qos


@pytest.fixture(scope="module")
def scene_images(body_model):
    image, _ = render_demo_scene(body_model, width=160, height=120)
    return [(T0 + i * 100_000_000, np.roll(image, 3 * i, axis=1)) for i in range(3)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory, tiny_config):
    path = tmp_path_factory.mktemp("w") / "tiny224.safetensors"
    return save_checkpoint(build_model(tiny_config), tiny_config, path)


@pytest.fixture
def detector(tiny_detector):
    """A private copy of the tiny detector that keeps two people whatever their score."""
    d = copy.copy(tiny_detector)
    d.cfg = override(tiny_detector.cfg, score_threshold=0.0, max_humans=2)
    return d


# ------------------------------------------------------------------------------ camera_info
def test_camera_info_intrinsics_are_rescaled_per_axis_and_p_is_read_when_asked():
    """K for raw images, P's left 3x3 for rectified ones (another focal length here, as
    rectification gives), each scaled by the image's own x and y factors."""
    K = np.array([[500.0, 0, 330], [0, 520.0, 250], [0, 0, 1]])
    P = np.array([[400.0, 0, 310, 0], [0, 410.0, 235, 0], [0, 0, 1, 0]])
    info = camera_info_msg(K, 640, 480, 0, P)
    info = STORE.deserialize_cdr(STORE.serialize_cdr(info, info.__msgtype__), info.__msgtype__)  # as received
    assert np.allclose(intrinsics_from_camera_info(info, 480, 640), K)
    assert np.allclose(intrinsics_from_camera_info(info, 480, 640, "k"), K)
    assert np.allclose(intrinsics_from_camera_info(info, 480, 640, "p"), P[:, :3])
    # 640x480 -> 320x120: x by 1/2, y by 1/4 (fx, cx: 500/2, 330/2; fy, cy: 520/4, 250/4)
    assert np.allclose(intrinsics_from_camera_info(info, 120, 320), [[250, 0, 165], [0, 130, 62.5], [0, 0, 1]])
    assert np.allclose(intrinsics_from_camera_info(info, 120, 320, "p"), [[200, 0, 155], [0, 102.5, 58.75], [0, 0, 1]])
    assert intrinsics_from_camera_info(camera_info_msg(np.zeros((3, 3)), 640, 480, 0), 480, 640) is None
    assert intrinsics_from_camera_info(None, 480, 640) is None


def test_lens_distortion_is_measured_at_the_border_and_undone_or_warned_once_per_calibration(caplog):
    """A 640x480 camera, f 500 px, centred: its corner is 400 px (0.8 in normalised units) from the
    centre. Barrel distortion k1 = -0.01 puts there the ray r with r (1 - 0.01 r^2) = 0.8; a fisheye
    (equidistant) lens, even with D = 0, the ray at angle 0.8 rad, which a pinhole images at 500 tan 0.8."""
    from mhr2_ros.inference.rectify import Rectifier
    from mhr2_ros.ros.camera import LensDistortion, distortion_shift

    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])

    def info(D, model="plumb_bob", K=K):
        msg = camera_info_msg(K, 640, 480, 0, D=D, model=model)
        return STORE.deserialize_cdr(STORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)  # as received

    r = 0.8
    for _ in range(50):  # fixed point of r = 0.8 / (1 - 0.01 r^2)
        r = 0.8 / (1.0 - 0.01 * r * r)
    assert distortion_shift(info([-0.01, 0, 0, 0, 0]), 480, 640) == pytest.approx(500.0 * (r - 0.8), rel=1e-4)
    assert distortion_shift(info([-0.01, 0, 0, 0, 0]), 240, 320) == pytest.approx(250.0 * (r - 0.8), rel=1e-4)
    fisheye = 500.0 * np.tan(0.8) - 400.0
    assert distortion_shift(info([0, 0, 0, 0], "equidistant"), 480, 640) == pytest.approx(fisheye, rel=1e-4)
    assert distortion_shift(info([]), 480, 640) == 0.0 and distortion_shift(info([0] * 5), 480, 640) == 0.0
    assert distortion_shift(info([-0.01] + [0] * 4, K=np.zeros((3, 3))), 480, 640) == 0.0  # uncalibrated
    assert distortion_shift(info([0.1], "double_sphere"), 480, 640) is None
    lens = LensDistortion()
    barrel = info([-0.01, 0, 0, 0, 0])
    with caplog.at_level("INFO", logger="mhr2_ros.ros.camera"):
        rect = lens.rectifier(barrel, "k", 480, 640)
        assert isinstance(rect, Rectifier) and lens.shift == pytest.approx(500.0 * (r - 0.8), rel=1e-4)
        assert lens.rectifier(barrel, "k", 480, 640) is rect  # built once per calibration
        assert lens.rectifier(barrel, "p", 480, 640) is None  # rectified images: a pinhole
        assert lens.rectifier(info([-0.001, 0, 0, 0, 0]), "k", 480, 640) is None  # 0.26 px: nothing to undo
        for _ in range(2):
            assert lens.rectifier(barrel, "k", 480, 640, rectify=False) is None  # warned, once
            assert lens.rectifier(info([0.1], "double_sphere"), "k", 480, 640) is None
    assert caplog.text.count("rectifying the 640x480 raw images (plumb_bob, D=[-0.01, 0, 0, 0, 0]: up to 3 px") == 1
    assert caplog.text.count("WARNING") == 2
    assert "640x480 images are distorted (plumb_bob, D=[-0.01, 0, 0, 0, 0]): up to 3 px at the border, but they " \
           "are not rectified" in caplog.text
    assert "camera_info: distortion model 'double_sphere' with 1 coefficients is not one OpenCV undoes" in caplog.text
    assert distortion_shift(info([0.1, 0.0, 0.0]), 480, 640) is None  # plumb_bob takes 4, 5, 8, 12 or 14


# ------------------------------------------------------------------------------ mhr2 bag
@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_bag_command_writes_one_human_array_per_image(tmp_path, weights, scene_images, storage, capsys):
    src = write_bag(tmp_path / "in", storage, scene_images)
    out = tmp_path / "out"
    fast = ["--no-mesh-markers", "--no-body-parts"] if storage == "sqlite3" else []  # tested once is enough
    fast.append("--no-track")  # per-image ids (tracking: test_bag_command_tracks_by_default_...)
    code = main(["-q", "bag", str(src), str(out), "--image-topic", TOPIC, "--weights", str(weights), "--threshold",
                 "0", "--max-humans", "1", "--storage", storage, "--distro", "humble", *fast])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    topics, qos = read_topics(out)
    humans = topics["/humans"]
    assert len(humans) == len(scene_images)
    for (t, msg), (stamp, _) in zip(humans, scene_images):
        assert t == stamp + 5_000_000  # recorded at the image's receipt time
        assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == stamp
        assert msg.header.frame_id == FRAME and msg.intrinsics_source == "predicted"
        assert (msg.image_height, msg.image_width) == (120, 160) and len(msg.humans) == 1
    assert [m.transforms[0].child_frame_id for _, m in topics["/tf"]] == ["body_p0"] * len(scene_images)
    for topic in ("/tf", "/markers"):  # like /humans: recorded when the image was received
        assert [t for t, _ in topics[topic]] == [stamp + 5_000_000 for stamp, _ in scene_images], topic
    parts = [f"{part}_p0" for part in PART_NAMES] if storage == "mcap" else []  # the REP-155 part frames
    for (_, tf), (stamp, _) in zip(topics["/tf"], scene_images):  # stamped with the image's header
        assert [t.child_frame_id for t in tf.transforms] == ["body_p0", *parts]
        for transform in tf.transforms:
            assert transform.header.stamp.sec * 10**9 + transform.header.stamp.nanosec == stamp
        assert [t.header.frame_id for t in tf.transforms] == [FRAME] + ["body_p0"] * len(parts)
    (_, topology), = topics["/mesh_topology"]
    assert topology.faces.size % 3 == 0 and topology.faces.max() < topology.num_vertices
    assert qos["/mesh_topology"][0].durability.name == "TRANSIENT_LOCAL"
    assert qos["/humans"][0].durability.name == "VOLATILE"


def test_bag_command_tracks_by_default_with_the_given_settings(tmp_path, weights, scene_images, caplog):
    src = write_bag(tmp_path / "in", "mcap", scene_images)
    settings = tmp_path / "tracker.yaml"
    settings.write_text("id_prefix: bag\n")
    caplog.set_level(logging.INFO, logger="mhr2_ros.cli.bag")
    code = main(["bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--weights", str(weights),
                 "--threshold", "0", "--max-humans", "2", "--no-mesh-markers", "--tracker-config", str(settings)])
    assert code == 0
    topics, _ = read_topics(tmp_path / "out")
    ids = set()
    for (_, humans), (_, tf) in zip(topics["/humans"], topics["/tf"]):
        assert all(re.fullmatch(r"bag\d+", h.id) and h.tracking_state in (1, 2, 3, 4) for h in humans.humans)
        visible = sorted(f"body_{h.id}" for h in humans.humans if h.tracking_state in (1, 2))
        assert sorted(t.child_frame_id for t in tf.transforms if t.header.frame_id == FRAME) == visible
        ids.update(h.id for h in humans.humans)
    assert f"{len(scene_images)} image(s)" in caplog.text and f"{len(ids)} distinct track id(s)" in caplog.text


def test_bag_command_levels_a_rolled_mount_and_says_so(tmp_path, weights, scene_images, caplog):
    """--camera-roll without --camera-height: every image levelled by that gravity, counted in the log."""
    src = write_bag(tmp_path / "in", "mcap", scene_images[:2])
    caplog.set_level(logging.INFO, logger="mhr2_ros.cli.bag")
    code = main(["bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--weights", str(weights),
                 "--no-track", "--no-mesh-markers", "--camera-roll", "20"])  # fmt: skip
    assert code == 0 and "2 of 2 image(s) levelled by gravity before the network (roll 20.0 to 20.0 deg)" in caplog.text


@pytest.mark.parametrize("args, message", [
    (["--tracker-config", "missing.yaml"], "config file not found: missing.yaml"),
    (["--no-track", "--tracker-config", "t.yaml"], "no use with --no-track"),
])  # fmt: skip
def test_bad_tracking_options_fail_before_the_model_loads(tmp_path, scene_images, args, message, capsys):
    src = write_bag(tmp_path / "in", "mcap", scene_images[:1])
    code = main(["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--weights", "nope.safetensors",
                 *args])  # fmt: skip
    assert code == 2 and message in capsys.readouterr().err and not (tmp_path / "out").exists()


INFO_K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]])  # for our 160x120 images
INFO_P = np.array([[84.0, 0, 77, 0], [0, 86.0, 58, 0], [0, 0, 1, 0]])  # rectified: another focal length
INFO_D = (-0.1, 0.0, 0.0, 0.0, 0.0)  # barrel distortion: 15 px at the corners of the raw 160x120 image


def _info(stamp):
    return camera_info_msg(INFO_K, 160, 120, stamp, INFO_P, D=INFO_D)


def _k(msg):
    return msg.k.reshape(3, 3)


@pytest.mark.parametrize("matrix, expected", [("k", INFO_K), ("p", INFO_P[:, :3])])
def test_bag_command_reads_the_camera_info_matrix_it_is_told(tmp_path, weights, scene_images, matrix, expected,
                                                              caplog):
    """--intrinsics-matrix k (raw images) or p (rectified ones) picks which camera_info matrix
    the HumanArray's K comes from; raw images from the distorted lens are rectified first (once
    said), and with --no-rectify warned about once."""
    src = write_bag(tmp_path / "in", "mcap", scene_images[:2], info=_info)
    args = ["bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--camera-info-topic", INFO_TOPIC,
            "--intrinsics-matrix", matrix, "--weights", str(weights), "--threshold", "0", "--max-humans", "1",
            "--no-track", "--no-markers"]  # fmt: skip
    with caplog.at_level("INFO", logger="mhr2_ros.ros.camera"):
        code = main(args)
    assert code == 0
    topics, _ = read_topics(tmp_path / "out")
    assert len(topics["/humans"]) == 2
    for _, msg in topics["/humans"]:
        assert msg.intrinsics_source == "camera_info" and np.allclose(_k(msg), expected)
    assert caplog.text.count("rectifying the 160x120 raw images (plumb_bob") == (matrix == "k")
    assert "images are distorted" not in caplog.text
    if matrix == "k":
        args[2] = str(tmp_path / "out_raw")
        assert main([*args, "--no-rectify"]) == 0
        assert caplog.text.count("160x120 images are distorted (plumb_bob, D=[-0.1, 0, 0, 0, 0]): up to 15 px") == 1


def test_bag_command_given_intrinsics_beat_camera_info_and_camera_frame_names_frameless_images(
    tmp_path, weights, scene_images
):  # fmt: skip
    """--intrinsics (BagOptions.camera) wins over a camera_info topic (intrinsics_source
    "given"); images recorded without a frame_id get --camera-frame on every output."""
    src = write_bag(tmp_path / "in", "mcap", scene_images[:2], info=_info, frame_id="")
    code = main(["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--camera-info-topic",
                 INFO_TOPIC, "--intrinsics", "90,95,81,59", "--camera-frame", "fallback_optical_frame",
                 "--weights", str(weights), "--threshold", "0", "--max-humans", "1", "--no-track",
                 "--no-mesh-markers"])  # fmt: skip
    assert code == 0
    topics, _ = read_topics(tmp_path / "out")
    assert len(topics["/humans"]) == len(topics["/tf"]) == len(topics["/markers"]) == 2
    for _, msg in topics["/humans"]:
        assert msg.intrinsics_source == "given" and np.allclose(_k(msg), [[90, 0, 81], [0, 95, 59], [0, 0, 1]])
        assert msg.header.frame_id == "fallback_optical_frame"
    for _, tf in topics["/tf"]:
        assert tf.transforms[0].header.frame_id == "fallback_optical_frame"
        assert {t.header.frame_id for t in tf.transforms[1:]} == {tf.transforms[0].child_frame_id}  # its parts
    for _, markers in topics["/markers"]:
        assert markers.markers and {m.header.frame_id for m in markers.markers} == {"fallback_optical_frame"}


def _run(reader, out, detector, options=OutputOptions(), bag_options=BagOptions(progress=False), tracker=None):
    builder = OutputBuilder(RosbagsFactory(STORE), detector.faces, options)
    with BagWriter(out, STORE) as writer:
        return process_bag(reader, writer, detector, builder, bag_options, tracker)


def test_compressed_images_camera_info_and_people(tmp_path, scene_images, detector):
    K = np.array([[200.0, 0, 160], [0, 200.0, 120], [0, 0, 1]])  # for 320x240: halved for our 160x120
    info = lambda stamp: camera_info_msg(K, 320, 240, stamp)  # noqa: E731
    src = write_bag(tmp_path / "in", "mcap", scene_images, compressed=True, info=info)
    reader = BagImageReader(src, TOPIC + "/compressed", INFO_TOPIC, STORE)
    summary = _run(reader, tmp_path / "out", detector, OutputOptions(publish_people=True, marker_mesh=False),
                   BagOptions(namespace="robot/mhr2", copy_input=True, progress=False))  # fmt: skip
    assert summary.frames == len(scene_images) and not summary.failures
    topics, _ = read_topics(tmp_path / "out")
    msg = topics["/robot/mhr2/humans"][0][1]
    assert msg.intrinsics_source == "camera_info" and np.allclose(msg.k.reshape(3, 3), K * [[0.5], [0.5], [1]])
    assert len(topics["/robot/mhr2/people"]) == len(scene_images)
    assert len(topics[TOPIC + "/compressed"]) == len(topics[INFO_TOPIC]) == len(scene_images)


DEPTH_TOPIC = "/cam/aligned_depth/image_raw"


def write_rgbd_bag(path, images, depth_stamps, wall_m=3.0, depth_topic=DEPTH_TOPIC, encode=None):
    """Images with a depth image each (16UC1 mm, a wall `wall_m` ahead) stamped depth_stamps[i]
    (another stamp than the image's: out of sync), recorded 4 ms before the image for the first
    and 3 ms after it for the others (as drivers publish the aligned depth after the colour).
    `encode` (mm array, header) -> (message, type): another depth message (compressedDepth)."""
    with Writer(path, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(TOPIC, IMAGE, typestore=STORE)
        depth_type = IMAGE if encode is None else COMPRESSED_IMAGE
        depth_conn = w.add_connection(depth_topic, depth_type, typestore=STORE)
        for (stamp, rgb), depth_stamp in zip(images, depth_stamps):
            h, w_ = rgb.shape[:2]
            mm = np.full((h, w_), round(wall_m * 1000), "<u2")
            if encode is None:
                depth = STORE.types[IMAGE](_header(depth_stamp), h, w_, "16UC1", 0, 2 * w_,
                                           mm.view(np.uint8).reshape(-1))  # fmt: skip
            else:
                depth = encode(mm, _header(depth_stamp))
            after = stamp != images[0][0]
            w.write(depth_conn, stamp + (8_000_000 if after else 1_000_000), STORE.serialize_cdr(depth, depth_type))
            w.write(conn, stamp + 5_000_000, STORE.serialize_cdr(image_msg(rgb, stamp), IMAGE))
    return path


def test_depth_images_in_sync_set_the_depths(tmp_path, scene_images, detector):
    """--depth-topic: the first two images have a depth image of their moment (recorded before the
    first, after the second), the third one 200 ms old; without the depth topic, the network's depths."""
    stamps = [stamp for stamp, _ in scene_images]
    src = write_rgbd_bag(tmp_path / "in", scene_images, stamps[:2] + [stamps[2] - 200_000_000])
    with_depth = BagOptions(progress=False, depth_sync_tolerance=0.05)
    _run(BagImageReader(src, TOPIC, None, STORE, depth_topic=DEPTH_TOPIC), tmp_path / "rgbd", detector,
         bag_options=with_depth)  # fmt: skip
    _run(BagImageReader(src, TOPIC, None, STORE), tmp_path / "rgb", detector)
    rgbd = [m for _, m in read_topics(tmp_path / "rgbd")[0]["/humans"]]
    rgb = [m for _, m in read_topics(tmp_path / "rgb")[0]["/humans"]]
    depth = lambda msg: [h.pelvis.pose.position.z for h in msg.humans]  # noqa: E731
    for frame in (0, 1):
        assert all(3.0 < z < 3.4 for z in depth(rgbd[frame])) and depth(rgbd[frame]) != depth(rgb[frame])
    assert depth(rgbd[2]) == depth(rgb[2])  # its depth image is of another moment
    listed = f"no topic '/nope'; depth image topics in the bag: {sorted([DEPTH_TOPIC, TOPIC])}"
    with pytest.raises(InputError, match=re.escape(listed)):
        BagImageReader(src, TOPIC, None, STORE, depth_topic="/nope")


@pytest.mark.parametrize("codec", ["png", "rvl"])
def test_a_compressed_depth_topic_sets_the_same_depths(tmp_path, scene_images, detector, codec):
    """A bag recorded with image_transport's compressedDepth (a CompressedImage topic, 16-bit PNG
    of millimetres after its 12-byte header, or their RVL code), as depth cameras are: the same
    depths as the raw one."""
    import struct

    from test_compressed_depth import rvl_encode

    def compressed_depth(mm, header):
        if codec == "rvl":
            payload = struct.pack("<II", mm.shape[1], mm.shape[0]) + rvl_encode(mm)
        else:
            payload = cv2.imencode(".png", mm)[1].tobytes()
        data = np.frombuffer(struct.pack("<iff", 0, 0.0, 0.0) + payload, np.uint8)
        return STORE.types[COMPRESSED_IMAGE](header, f"16UC1; compressedDepth {codec}", data)

    stamps = [stamp for stamp, _ in scene_images]
    packed = DEPTH_TOPIC + "/compressedDepth"
    src = write_rgbd_bag(tmp_path / "in", scene_images, stamps, depth_topic=packed, encode=compressed_depth)
    raw = write_rgbd_bag(tmp_path / "raw", scene_images, stamps)
    with_depth = BagOptions(progress=False, depth_sync_tolerance=0.05)
    _run(BagImageReader(src, TOPIC, None, STORE, depth_topic=packed), tmp_path / "out", detector,
         bag_options=with_depth)  # fmt: skip
    _run(BagImageReader(raw, TOPIC, None, STORE, depth_topic=DEPTH_TOPIC), tmp_path / "out_raw", detector,
         bag_options=with_depth)  # fmt: skip
    got = [[h.pelvis.pose.position.z for h in m.humans] for _, m in read_topics(tmp_path / "out")[0]["/humans"]]
    want = [[h.pelvis.pose.position.z for h in m.humans] for _, m in read_topics(tmp_path / "out_raw")[0]["/humans"]]
    assert got == want and all(3.0 < z < 3.4 for frame in got for z in frame)


@dataclasses.dataclass
class _Track:
    id: str
    state: str
    human: object
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.array([0.2, 0.0, 0.0]))
    velocity_cov: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3) * 0.04)
    age: float = 0.0
    time_since_seen: float = 0.0


class _FakeTracker:
    """Gives every detection a stable id; records the stamps it was given."""

    def __init__(self):
        self.stamps = []

    def update(self, frame, stamp, camera_pose=None):
        self.stamps.append(stamp)
        state = "new" if len(self.stamps) == 1 else "tracked"
        return [_Track(f"person{i}", state, h) for i, h in enumerate(frame.humans)]


def test_a_tracker_plugs_in_and_ros4hri_topics_are_recorded(tmp_path, scene_images, detector):
    src = write_bag(tmp_path / "in", "mcap", scene_images)
    tracker = _FakeTracker()
    _run(BagImageReader(src, TOPIC, typestore=STORE), tmp_path / "out", detector,
         OutputOptions(publish_hri=True, hri_namespace="/robot/humans"), tracker=tracker)  # fmt: skip
    assert tracker.stamps == pytest.approx([s / 1e9 for s, _ in scene_images])
    topics, _ = read_topics(tmp_path / "out")
    states = [[h.tracking_state for h in m.humans] for _, m in topics["/humans"]]
    assert states[0] == [1, 1] and states[-1] == [2, 2]
    last = topics["/humans"][-1][1].humans[0]
    assert last.id == "person0" and last.velocity.twist.linear.x == pytest.approx(0.2)
    tracked = topics["/robot/humans/bodies/tracked"]
    assert [list(m.ids) for _, m in tracked] == [["person0", "person1"]] * len(scene_images)
    body = "/robot/humans/bodies/person0/"
    for leaf in ("roi", "cropped", "skeleton2d", "position", "velocity"):
        assert len(topics[body + leaf]) == len(scene_images), leaf
    crop, roi = topics[body + "cropped"][0][1], topics[body + "roi"][0][1]
    assert crop.encoding == "rgb8" and crop.data.size == crop.height * crop.width * 3 > 0
    assert crop.width == pytest.approx((roi.xmax - roi.xmin) * 160, abs=2)  # the roi in whole pixels
    assert topics[body + "position"][-1][1].point.z == pytest.approx(last.pelvis.pose.position.z)
    assert topics[body + "velocity"][-1][1].twist.linear.x == pytest.approx(0.2)
    assert len(topics[body + "skeleton2d"][0][1].skeleton) == 18


def test_missing_topics_and_existing_output_are_clear_errors(tmp_path, scene_images, weights, capsys):
    src = write_bag(tmp_path / "in", "sqlite3", scene_images[:1])
    with pytest.raises(InputError, match=r"no topic '/nope'.*\['/cam/image_raw'\]"):
        BagImageReader(src, "/nope", typestore=STORE)
    with pytest.raises(InputError, match="no topic '/info'"):
        BagImageReader(src, TOPIC, "/info", typestore=STORE)
    with pytest.raises(InputError, match=r"topic '/cam/camera_info' holds sensor_msgs/msg/CameraInfo, not"):
        BagImageReader(write_bag(tmp_path / "with_info", "sqlite3", scene_images[:1], info=_info), INFO_TOPIC,
                       typestore=STORE)  # fmt: skip
    with pytest.raises(InputError, match="not found"):
        BagImageReader(tmp_path / "missing", TOPIC, typestore=STORE)
    (tmp_path / "taken").mkdir()
    code = main(["-q", "bag", str(src), str(tmp_path / "taken"), "--image-topic", TOPIC, "--weights", str(weights)])
    assert code == 2 and "exists already" in capsys.readouterr().err
    code = main(["-q", "bag", str(src), str(tmp_path / "o"), "--image-topic", TOPIC, "--weights", str(weights),
                 "--fov", "500"])  # fmt: skip
    assert code == 2 and "--fov 500" in capsys.readouterr().err and not (tmp_path / "o").exists()
    code = main(["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--hri-namespace", "humans/"])
    assert code == 2 and "--hri-namespace 'humans/' must be an absolute ROS namespace" in capsys.readouterr().err
    code = main(["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--namespace", "bad ns"])
    assert code == 2 and "--namespace 'bad ns'" in capsys.readouterr().err and not (tmp_path / "out").exists()
    base = ["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC]
    code = main([*base, "--floor-frame", "base_footprint", "--camera-height", "1.2"])
    assert code == 2 and "--floor-frame and --camera-height both give the camera's mount" in capsys.readouterr().err
    code = main([*base, "--floor-frame", "base_footprint", "--camera-roll", "10"])
    assert code == 2 and "--floor-frame and --camera-roll / --camera-pitch both give" in capsys.readouterr().err
    code = main([*base, "--level-roll", "5"])
    assert code == 2 and "--level-roll: nothing tells this camera's roll" in capsys.readouterr().err
    code = main([*base, "--floor-frame", "/base_footprint"])
    assert code == 2 and "--floor-frame '/base_footprint' starts with '/'" in capsys.readouterr().err
    code = main([*base, "--fixed-frame", "odom/"])
    assert code == 2 and "--fixed-frame 'odom/' may only hold" in capsys.readouterr().err
    code = main([*base, "--fixed-frame", "odom", "--floor-angle-sigma", "0.01"])
    assert code == 2 and "--floor-angle-sigma: it describes the floor of --camera-height or --floor-frame, which is " \
        "not set" in capsys.readouterr().err  # fmt: skip
    code = main([*base, "--fixed-frame", "odom", "--no-track", "--level-roll", "5"])
    err = capsys.readouterr().err  # its gravity levels a rolled camera: accepted, until the bag has no /tf
    assert code == 2 and "no /tf or /tf_static topic to find the floor, fixed or IMU frame in" in err, err
    code = main([*base, "--floor-frame", "base_footprint", "--floor-angle-sigma", "0.01", "--level-roll", "5"])
    err = capsys.readouterr().err  # settings of the floor frame's floor: accepted (they were refused)
    assert code == 2 and "no /tf or /tf_static topic to find the floor, fixed or IMU frame in" in err, err
    code = main([*base, "--tf-timeout", "0.1"])
    err = capsys.readouterr().err
    assert code == 2 and "--tf-timeout 0.1 is for --floor-frame, --fixed-frame or --imu-topic" in err
    for bad in ("-0.1", "nan", "inf"):
        code = main([*base, "--fixed-frame", "odom", "--tf-timeout", bad])
        assert code == 2 and f"--tf-timeout {float(bad)}: expected seconds >= 0" in capsys.readouterr().err
    with pytest.raises(InputError, match="tf_wait -1: expected seconds >= 0"):
        BagImageReader(src, TOPIC, typestore=STORE, tf_wait=-1)
    with pytest.raises(InputError, match=r"no /tf or /tf_static topic to find the floor, fixed or IMU frame in.*"
                                         r"\['/cam/image_raw'\]"):
        BagImageReader(src, TOPIC, typestore=STORE, tf_tree=object())
    (tmp_path / "a_file").write_text("")
    code = main(["-q", "bag", str(src), str(tmp_path / "a_file" / "out"), "--image-topic", TOPIC])
    assert code == 2 and "a_file" in capsys.readouterr().err  # an unusable output path: one line, no traceback


@pytest.mark.parametrize("keep_metadata", [True, False])
def test_truncated_mcap_keeps_what_came_before_and_names_the_file(tmp_path, tiny_detector, rng, keep_metadata):
    # 320x240 frames: ~5 per 1 MiB chunk, so the cut below leaves whole chunks before it.
    frames = [(T0 + i * 10**8, rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) for i in range(9)]
    src = write_bag(tmp_path / "in", "mcap", frames)
    mcap = next(src.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * 0.8)])
    if not keep_metadata:  # a killed recorder leaves no metadata.yaml
        (src / "metadata.yaml").unlink()
    reader = BagImageReader(src, TOPIC, typestore=STORE)
    with pytest.raises(InputError, match="truncated") as info:
        _run(reader, tmp_path / "out", tiny_detector, OutputOptions(publish_markers=False))
    assert str(mcap) in str(info.value) or str(src) in str(info.value)
    topics, _ = read_topics(tmp_path / "out")  # closed properly: a valid bag
    kept = topics["/humans"]
    assert 0 < len(kept) < len(frames) and len(kept) == reader.count
    assert [t for t, _ in kept] == [s + 5_000_000 for s, _ in frames[: len(kept)]]
    if not keep_metadata:  # scanned, not indexed: a wrong topic is named, not taken for damage
        with pytest.raises(InputError, match=r"no topic '/cam/image' in the part .*\['/cam/image_raw'\]"):
            list(BagImageReader(src, "/cam/image", typestore=STORE))
        mcap.write_bytes(data[:100])  # cut before any channel: damage, whatever the topic
        with pytest.raises(InputError, match="corrupt or truncated"):
            list(BagImageReader(src, TOPIC, typestore=STORE))


def test_sqlite3_bag_without_metadata_is_read_from_its_db3(tmp_path, scene_images, detector):
    src = write_bag(tmp_path / "in", "sqlite3", scene_images)
    (src / "metadata.yaml").unlink()  # as a killed recorder leaves it
    summary = _run(BagImageReader(src, TOPIC, typestore=STORE), tmp_path / "out", detector)
    assert summary.frames == len(scene_images) and not summary.failures


def test_corrupt_sqlite_bag_keeps_what_came_before_and_names_the_file(tmp_path, scene_images, weights, capsys):
    """README: a damaged recording is read up to the damage, the command stops with an error
    naming the file, and the output bag keeps every frame processed before it. The last 4
    pages (16 KiB) of the .db3 are overwritten: they hold the tail of the last image's data
    (57.6 kB, in overflow pages allocated as the rows are written), so earlier images read."""
    src = write_bag(tmp_path / "in", "sqlite3", scene_images)
    db = next(src.glob("*.db3"))
    data = bytearray(db.read_bytes())
    assert len(data) % 4096 == 0 and len(data) > 3 * 57_600
    data[-4 * 4096 :] = b"\x5a" * (4 * 4096)  # overflow page pointers now point past the file
    db.write_bytes(bytes(data))
    code = main(["-q", "bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--weights", str(weights),
                 "--no-mesh-markers"])  # fmt: skip
    err = capsys.readouterr().err
    kept = len(scene_images) - 1
    assert code == 2 and str(src) in err and f"corrupt or truncated bag after {kept} image(s)" in err, err
    topics, _ = read_topics(tmp_path / "out")  # closed properly: a valid bag
    assert [t for t, _ in topics["/humans"]] == [stamp + 5_000_000 for stamp, _ in scene_images[:kept]]


def test_undecodable_images_are_skipped_and_reported(tmp_path, scene_images, detector):
    src = tmp_path / "in"
    with Writer(src, version=8) as w:
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        for i, (stamp, rgb) in enumerate(scene_images[:3]):
            msg = image_msg(rgb, stamp)
            if i == 1:
                msg.encoding = "32FC1"
            w.write(conn, stamp, STORE.serialize_cdr(msg, "sensor_msgs/msg/Image"))
    summary = _run(BagImageReader(src, TOPIC, typestore=STORE), tmp_path / "out", detector)
    assert summary.frames == 2 and summary.failures[0][0] == 1 and "32FC1" in summary.failures[0][1]
