"""ros/tf_tree.py: a bag's TF tree, chained by hand, and `mhr2 bag --floor-frame` on a bag with /tf_static."""

import math

import numpy as np
import pytest

from mhr2_ros.cli import main
from mhr2_ros.errors import InputError
from mhr2_ros.geometry import matrix_to_quaternion_xyzw
from mhr2_ros.inference.floor_contact import floor_plane_from_mount, floor_plane_in_camera
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.tf_tree import TfExtrapolation, TfTree
from mhr2_ros.ros.typestore import make_typestore
from mhr2_ros.training.synthetic.camera import level_to_camera

from test_rosbag import weights  # noqa: F401 - a fixture: random tiny weights on disk

STORE = make_typestore("humble")
F = RosbagsFactory(STORE)
# REP-103 body axes (x forward, y left, z up) -> the level optical axes (x right, y down, z forward)
BODY_TO_LEVEL = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])


def transform(parent: str, child: str, R, t, stamp_ns: int = 0):
    """geometry_msgs/TransformStamped: p_parent = R @ p_child + t."""
    qx, qy, qz, qw = matrix_to_quaternion_xyzw(np.asarray(R, np.float64))
    return F.new("geometry_msgs/msg/TransformStamped", header=F.header(stamp_ns, parent), child_frame_id=child,
                 transform=F.new("geometry_msgs/msg/Transform",
                                 translation=F.new("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                                 rotation=F.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw)))  # fmt: skip


def pitch_about_y(deg: float) -> np.ndarray:
    """A REP-103 link pitched down by `deg` (a positive rotation about its y axis, left)."""
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def mount_chain(height: float, pitch_deg: float, optical: str = "camera_optical_frame"):
    """base_footprint -> base_link (0.1 m up) -> camera_link (pitched, at `height`) -> optical frame."""
    return [transform("base_footprint", "base_link", np.eye(3), [0.0, 0.0, 0.1]),
            transform("base_link", "camera_link", pitch_about_y(pitch_deg), [0.2, 0.05, height - 0.1]),
            transform("camera_link", optical, BODY_TO_LEVEL.T, [0.0, 0.0, 0.0])]  # fmt: skip


def test_a_mount_chain_gives_the_mounts_floor_plane():
    tree = TfTree()
    tree.add(mount_chain(1.3, 12.0))
    plane = floor_plane_in_camera(*tree.lookup("camera_optical_frame", "base_footprint"))
    np.testing.assert_allclose(plane, floor_plane_from_mount(1.3, 12.0), atol=1e-9)
    R, t = tree.lookup("base_footprint", "camera_optical_frame")  # the other way: the inverse
    R_back, t_back = tree.lookup("camera_optical_frame", "base_footprint")
    np.testing.assert_allclose(R @ R_back, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(t, [0.2, 0.05, 1.3], atol=1e-12)  # the optical centre above the footprint
    np.testing.assert_allclose(R_back @ t + t_back, 0.0, atol=1e-12)


def test_siblings_meet_at_their_common_parent_and_the_latest_transform_counts():
    tree = TfTree()
    tree.add([transform("base_link", "a", np.eye(3), [1.0, 0.0, 0.0]),
              transform("base_link", "b", level_to_camera(0.3, 0.0), [0.0, 2.0, 0.0])])  # fmt: skip
    R, t = tree.lookup("b", "a")
    p_a = np.array([0.5, -0.2, 0.3])
    np.testing.assert_allclose(R @ p_a + t, level_to_camera(0.3, 0.0).T @ (p_a + [1.0, -2.0, 0.0]), atol=1e-12)
    tree.add([transform("base_link", "a", np.eye(3), [3.0, 0.0, 0.0])])  # a moved
    assert tree.lookup("base_link", "a")[1][0] == pytest.approx(3.0)


MS = 1_000_000  # ns


def head_at(pitch_deg: float, stamp_ns: int):
    """base_link -> camera_link of a pan-tilt head pitched by `pitch_deg` at `stamp_ns` (on /tf)."""
    return transform("base_link", "camera_link", pitch_about_y(pitch_deg), [0.2, 0.05, 1.1], stamp_ns)


def test_a_moving_head_is_interpolated_at_the_stamp_and_the_static_mount_holds_at_any():
    chain = mount_chain(1.2, 0.0)
    tree = TfTree()
    tree.add([chain[0], chain[2]], static=True)  # footprint -> base_link, camera_link -> optical
    tree.add([head_at(20.0, 200 * MS)])  # bag order need not be stamp order
    tree.add([head_at(0.0, 100 * MS)])

    def pitch(stamp):
        return floor_plane_in_camera(*tree.lookup("camera_optical_frame", "base_footprint", stamp))

    np.testing.assert_allclose(pitch(150 * MS), floor_plane_from_mount(1.2, 10.0), atol=1e-9)  # half-way
    np.testing.assert_allclose(pitch(125 * MS), floor_plane_from_mount(1.2, 5.0), atol=1e-9)  # one turn, linear
    np.testing.assert_allclose(pitch(100 * MS), floor_plane_from_mount(1.2, 0.0), atol=1e-9)  # the ends hold
    np.testing.assert_allclose(pitch(200 * MS), floor_plane_from_mount(1.2, 20.0), atol=1e-9)
    np.testing.assert_allclose(pitch(None), floor_plane_from_mount(1.2, 20.0), atol=1e-9)  # None: the newest
    for stamp, when in ((100 * MS - 1, "before"), (200 * MS + 1, "after")):  # as tf2: no extrapolation
        with pytest.raises(TfExtrapolation, match=rf"'base_link' -> 'camera_link' at 0\.\d+ s: the bag's /tf has it "
                                                  rf"from 0\.100 to 0\.200 s, and this image is {when}"):
            pitch(stamp)
    assert isinstance(TfExtrapolation(""), InputError)  # callers that expect a missing transform catch it
    edge = tree.edges["camera_link"]
    tree.add([head_at(30.0, 200 * MS + 10_000 * MS)])  # ten seconds on: older transforms leave the history
    assert edge.stamps == [200 * MS, 10_200 * MS] and len(edge.quaternions) == len(edge.translations) == 2
    assert tree.edges["base_link"].stamps == [0]  # static: one transform, whatever the stamps


def test_slerp_takes_the_short_way_for_either_sign_of_a_quaternion():
    from mhr2_ros.ros.tf_tree import slerp

    q0 = matrix_to_quaternion_xyzw(pitch_about_y(0.0))
    q1 = -matrix_to_quaternion_xyzw(pitch_about_y(60.0))  # the same rotation, the other sign
    half = slerp(q0, q1, 0.5)
    from mhr2_ros.geometry import quaternion_xyzw_to_matrix

    np.testing.assert_allclose(quaternion_xyzw_to_matrix(half), pitch_about_y(30.0), atol=1e-12)
    np.testing.assert_allclose(slerp(q0, q0, 0.3), q0, atol=1e-12)


def test_a_new_parent_starts_a_new_history():
    tree = TfTree()
    tree.add([transform("odom", "base_link", np.eye(3), [1.0, 0.0, 0.0], 100 * MS)])
    tree.add([transform("map", "base_link", np.eye(3), [5.0, 0.0, 0.0], 200 * MS)])  # re-parented
    assert tree.edges["base_link"].parent == "map" and tree.lookup("map", "base_link", 200 * MS)[1][0] == 5.0
    with pytest.raises(TfExtrapolation, match="from 0.200 to 0.200 s"):  # odom's transform at 100 ms is gone
        tree.lookup("map", "base_link", 100 * MS)


def test_frames_without_a_path_are_named():
    tree = TfTree()
    tree.add(mount_chain(1.3, 0.0))
    with pytest.raises(InputError, match="no TF path from 'map' to 'camera_optical_frame'.*'base_footprint'"):
        tree.lookup("camera_optical_frame", "map")


def test_bag_floor_frame_moves_people_towards_the_floor_of_the_bags_tf(tmp_path, body_model, shipped_detector,
                                                                      caplog):
    """A bag with the mount chain on /tf_static (a level camera, its floor 1.2x below the first
    person's lowest point) and one image: `--floor-frame base_footprint` moves that person towards
    1.2x farther (DEPTH_FLOOR); a floor frame the bag lacks is warned about and changes nothing."""
    import copy

    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from mhr2_ros.cli.demo_scene import render_demo_scene
    from mhr2_ros.config import override
    from mhr2_ros.inference.floor_contact import floor_scales
    from mhr2_ros.io.rosbag import BagImageReader, BagWriter
    from mhr2_ros.ros.offline import BagOptions, process_bag
    from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
    from test_rosbag import FRAME, T0, TOPIC, image_msg

    image, _ = render_demo_scene(body_model, width=160, height=120)
    det = copy.copy(shipped_detector)  # people stood on the scene's floor: their lowest points below the camera
    det.cfg = override(shipped_detector.cfg, score_threshold=0.0, max_humans=2)
    plain = det(image)
    lowest = float(np.max(plain.humans[0].vertices[:, 1]))  # meters below a level camera
    tf_msg = F.new("tf2_msgs/msg/TFMessage", transforms=mount_chain(1.2 * lowest, 0.0, optical=FRAME))
    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        tf_conn = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=STORE)
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        w.write(tf_conn, T0 - 1_000_000, STORE.serialize_cdr(tf_msg, "tf2_msgs/msg/TFMessage"))
        w.write(conn, T0 + 5_000_000, STORE.serialize_cdr(image_msg(image, T0), "sensor_msgs/msg/Image"))
    depths = {}
    for floor_frame in ("base_footprint", "map"):
        out = tmp_path / floor_frame
        reader = BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree())
        with BagWriter(out, STORE) as writer:
            process_bag(reader, writer, det, OutputBuilder(F, det.faces, OutputOptions(marker_mesh=False)),
                        BagOptions(floor_frame=floor_frame, progress=False))  # fmt: skip
        with Reader(out) as r:
            (msg,) = [STORE.deserialize_cdr(d, c.msgtype) for c, _, d in r.messages() if c.topic == "/humans"]
        depths[floor_frame] = [(h.depth_source, h.pelvis.pose.position.z) for h in msg.humans]
    expected = floor_scales(plain.humans[0].vertices[None].astype(np.float64), np.array([0.0, 1.0, 0.0, 1.2 * lowest]),
                            det.cfg.floor_angle_sigma).scale[0]  # fmt: skip
    source, z = depths["base_footprint"][0]
    assert source == STORE.types["mhr2_ros/msg/Human"].DEPTH_FLOOR and 1.0 < expected < 1.2
    assert z == pytest.approx(expected * plain.humans[0].depth, rel=1e-4)
    assert [s for s, _ in depths["map"]] == [0, 0] and depths["map"][0][1] == pytest.approx(plain.humans[0].depth)
    assert "no TF path from 'map' to 'cam_optical_frame'" in caplog.text


def test_bag_floor_frame_interpolates_a_moving_head_with_transforms_recorded_after_the_image(
        tmp_path, body_model, shipped_detector, weights, caplog):
    """The head pitches -4, +4 and +2 degrees on /tf, stamped at -50, 50 and 150 ms, each recorded
    after the images stamped before it (the last after the next image too, within
    floor_tf_timeout): images at 0, 100 and 110 ms wait for them, and their floors are the level one,
    3 and 2.8 degrees between them; an image at 200 ms, after the last transform, keeps the
    network's depth (as tf2: no extrapolation)."""
    import copy

    from rosbags.rosbag2 import Reader, StoragePlugin, Writer

    from mhr2_ros.cli.demo_scene import render_demo_scene
    from mhr2_ros.config import override
    from mhr2_ros.inference.floor_contact import floor_scales
    from mhr2_ros.io.rosbag import BagImageReader, BagWriter
    from mhr2_ros.ros.offline import BagOptions, process_bag
    from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
    from test_rosbag import FRAME, T0, TOPIC, image_msg

    image, _ = render_demo_scene(body_model, width=160, height=120)
    det = copy.copy(shipped_detector)  # people stood on the scene's floor: their lowest points below the camera
    det.cfg = override(shipped_detector.cfg, score_threshold=0.0, max_humans=2)
    plain = det(image)
    height = 1.2 * float(np.max(plain.humans[0].vertices[:, 1]))  # a level camera's floor 1.2x below
    chain = mount_chain(height, 0.0, optical=FRAME)
    tf_type = "tf2_msgs/msg/TFMessage"

    def head(pitch_deg, stamp_ns):
        return transform("base_link", "camera_link", pitch_about_y(pitch_deg), [0.2, 0.05, height - 0.1], stamp_ns)

    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        static = w.add_connection("/tf_static", tf_type, typestore=STORE)
        moving = w.add_connection("/tf", tf_type, typestore=STORE)
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        w.write(static, T0 - 100 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[chain[0], chain[2]]), tf_type))
        w.write(moving, T0 - 49 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[head(-4.0, T0 - 50 * MS)]), tf_type))
        w.write(conn, T0 + 5 * MS, STORE.serialize_cdr(image_msg(image, T0), "sensor_msgs/msg/Image"))
        w.write(moving, T0 + 51 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[head(4.0, T0 + 50 * MS)]), tf_type))
        w.write(conn, T0 + 105 * MS, STORE.serialize_cdr(image_msg(image, T0 + 100 * MS), "sensor_msgs/msg/Image"))
        w.write(conn, T0 + 115 * MS, STORE.serialize_cdr(image_msg(image, T0 + 110 * MS), "sensor_msgs/msg/Image"))
        w.write(moving, T0 + 140 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[head(2.0, T0 + 150 * MS)]),
                                                           tf_type))  # after the next image, within the wait
        w.write(conn, T0 + 205 * MS, STORE.serialize_cdr(image_msg(image, T0 + 200 * MS), "sensor_msgs/msg/Image"))
    out = tmp_path / "out"
    reader = BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree())
    with BagWriter(out, STORE) as writer:
        summary = process_bag(reader, writer, det, OutputBuilder(F, det.faces, OutputOptions(marker_mesh=False)),
                              BagOptions(floor_frame="base_footprint", progress=False))  # fmt: skip
    assert summary.tf_misses == {"floor_frame": 1}
    with Reader(out) as r:
        first, second, third, last = [STORE.deserialize_cdr(d, c.msgtype) for c, _, d in r.messages()
                                      if c.topic == "/humans"]
    level = floor_scales(plain.humans[0].vertices[None].astype(np.float64), np.array([0.0, 1.0, 0.0, height]),
                         det.cfg.floor_angle_sigma).scale[0]  # fmt: skip
    assert first.humans[0].pelvis.pose.position.z == pytest.approx(level * plain.humans[0].depth, rel=1e-4)
    pitched = floor_scales(plain.humans[0].vertices[None].astype(np.float64), floor_plane_from_mount(height, 3.0),
                           det.cfg.floor_angle_sigma).scale[0]  # fmt: skip
    assert second.humans[0].pelvis.pose.position.z == pytest.approx(pitched * plain.humans[0].depth, rel=1e-4)
    assert abs(pitched - level) > 1e-3 and abs(pitched - 1.0) > 1e-3  # the test tells the floors and none apart
    assert third.humans[0].pelvis.pose.position.z == pytest.approx(
        floor_scales(plain.humans[0].vertices[None].astype(np.float64), floor_plane_from_mount(height, 2.8),
                     det.cfg.floor_angle_sigma).scale[0] * plain.humans[0].depth, rel=1e-4)  # fmt: skip
    assert last.humans[0].depth_source == STORE.types["mhr2_ros/msg/Human"].DEPTH_NETWORK
    assert last.humans[0].pelvis.pose.position.z == pytest.approx(plain.humans[0].depth, rel=1e-4)
    assert "at 1700000000.200 s: the bag's /tf has it from 1699999999.950 to 1700000000.150 s, and this image is " \
           "after that" in caplog.text
    # without the wait (the CLI's --tf-timeout 0) the image at 100 ms is yielded before the transform after it
    code = main(["bag", str(src), str(tmp_path / "no_wait"), "--image-topic", TOPIC, "--weights", str(weights),
                 "--floor-frame", "base_footprint", "--tf-timeout", "0"])  # fmt: skip
    assert code == 0 and "--floor-frame base_footprint: no transform at 2 of 4 image(s)" in caplog.text
