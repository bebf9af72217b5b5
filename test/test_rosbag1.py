"""ROS 1 bags (`.bag`, written here with rosbags' ROS 1 writer and the Noetic definitions: Header.seq,
CameraInfo K/D/P) are read like rosbag2 ones: the same people from the same images and camera_info."""

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from mhr2_ros.cli import main
from mhr2_ros.errors import InputError
from mhr2_ros.io.rosbag import BagImageReader
from mhr2_ros.ros.offline import BagOptions
from test_rosbag import (  # noqa: F401 - fixtures: scene_images, weights
    FRAME, INFO_TOPIC, STORE, TOPIC, _run, camera_info_msg, read_topics, scene_images, weights, write_bag,
)  # fmt: skip

NOETIC = get_typestore(Stores.ROS1_NOETIC)  # as a ROS 1 machine has them: tf2_msgs too (rosbags' store lacks it)
NOETIC.register(get_types_from_msg("geometry_msgs/TransformStamped[] transforms", "tf2_msgs/msg/TFMessage"))
IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])


def _ros1_header(seq, stamp_ns, frame_id=FRAME):
    t = NOETIC.types["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9)
    return NOETIC.types["std_msgs/msg/Header"](seq, t, frame_id)


def ros1_tf_message(transforms):
    """tf2_msgs/TFMessage of the ROS 1 definitions holding these (ROS 2) TransformStamped."""
    T = NOETIC.types
    out = []
    for seq, ts in enumerate(transforms):
        tr, stamp = ts.transform, int(ts.header.stamp.sec) * 10**9 + int(ts.header.stamp.nanosec)
        out.append(T["geometry_msgs/msg/TransformStamped"](
            _ros1_header(seq, stamp, ts.header.frame_id), ts.child_frame_id, T["geometry_msgs/msg/Transform"](
                T["geometry_msgs/msg/Vector3"](tr.translation.x, tr.translation.y, tr.translation.z),
                T["geometry_msgs/msg/Quaternion"](tr.rotation.x, tr.rotation.y, tr.rotation.z, tr.rotation.w))))
    return T["tf2_msgs/msg/TFMessage"](out)


def write_ros1_bag(path, images, tf_static=None):
    """images: (stamp_ns, rgb); a camera_info (K, no distortion) before each image, as a driver records them;
    `tf_static`: (ROS 2) TransformStamped recorded first on /tf_static."""
    roi = NOETIC.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
    with Ros1Writer(path) as w:
        if tf_static:
            tf_conn = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=NOETIC, latching=1)
            w.write(tf_conn, images[0][0] - 1_000_000, NOETIC.serialize_ros1(ros1_tf_message(tf_static),
                                                                             "tf2_msgs/msg/TFMessage"))  # fmt: skip
        image_conn = w.add_connection(TOPIC, IMAGE, typestore=NOETIC)
        info_conn = w.add_connection(INFO_TOPIC, CAMERA_INFO, typestore=NOETIC)
        for seq, (stamp, rgb) in enumerate(images):
            h, width = rgb.shape[:2]
            info = NOETIC.types[CAMERA_INFO](_ros1_header(seq, stamp), h, width, "plumb_bob", np.zeros(5),
                                             K.reshape(-1), np.eye(3).reshape(-1),
                                             np.hstack([K, np.zeros((3, 1))]).reshape(-1), 0, 0, roi)  # fmt: skip
            w.write(info_conn, stamp + 1, NOETIC.serialize_ros1(info, CAMERA_INFO))
            image = NOETIC.types[IMAGE](_ros1_header(seq, stamp), h, width, "rgb8", 0, 3 * width,
                                        np.ascontiguousarray(rgb).reshape(-1))  # fmt: skip
            w.write(image_conn, stamp + 5_000_000, NOETIC.serialize_ros1(image, IMAGE))
    return path


def test_a_ros1_bag_gives_the_people_of_the_same_rosbag2(tmp_path, scene_images, tiny_detector):
    ros1 = write_ros1_bag(tmp_path / "in.bag", scene_images)
    ros2 = write_bag(tmp_path / "in2", "mcap", scene_images, info=lambda s: camera_info_msg(K, 160, 120, s))
    for src, out in ((ros1, tmp_path / "out1"), (ros2, tmp_path / "out2")):
        reader = BagImageReader(src, TOPIC, INFO_TOPIC, STORE)
        assert reader.ros1 == (src == ros1)
        summary = _run(reader, out, tiny_detector)
        assert summary.frames == len(scene_images) and not summary.failures
    got, want = (read_topics(tmp_path / name)[0]["/humans"] for name in ("out1", "out2"))
    assert [t for t, _ in got] == [t for t, _ in want]  # recorded at the images' receive times
    for (_, a), (_, b) in zip(got, want, strict=True):
        assert a.intrinsics_source == b.intrinsics_source == "camera_info"  # the ROS 1 K (upper case) read
        np.testing.assert_array_equal(a.k, b.k)
        assert a.header.stamp == b.header.stamp and a.header.frame_id == b.header.frame_id == FRAME
        assert [h.pelvis.pose.position.z for h in a.humans] == [h.pelvis.pose.position.z for h in b.humans]


def test_a_ros1_bag_through_the_command_line_and_what_it_cannot_do(tmp_path, scene_images, tiny_detector, weights):
    src = write_ros1_bag(tmp_path / "in.bag", scene_images)
    assert main(["bag", str(src), str(tmp_path / "out"), "--image-topic", TOPIC, "--camera-info-topic", INFO_TOPIC,
                 "--weights", str(weights)]) == 0  # fmt: skip
    assert len(read_topics(tmp_path / "out")[0]["/humans"]) == len(scene_images)
    refused = r"in.bag is a ROS 1 bag, whose messages cannot be copied unchanged .*\(rosbags-convert --src IN.bag"
    with pytest.raises(InputError, match=refused):
        _run(BagImageReader(src, TOPIC, None, STORE), tmp_path / "copy", tiny_detector,
             bag_options=BagOptions(progress=False, copy_input=True))  # fmt: skip
    assert main(["bag", str(src), str(tmp_path / "copy_cli"), "--image-topic", TOPIC, "--copy-input"]) == 2
    assert not (tmp_path / "copy_cli").exists()  # refused before the model loads, nothing written
    broken = tmp_path / "broken.bag"
    broken.write_bytes(b"#ROSBAG V2.0\n" + bytes(64))
    with pytest.raises(InputError, match=r"broken.bag: not a readable ROS 1 bag"):
        BagImageReader(broken, TOPIC, None, STORE)


def test_a_ros1_bags_tf_stands_people_on_its_floor(tmp_path, scene_images, shipped_detector):
    """/tf_static of a ROS 1 bag (TFMessage, Header.seq): --floor-frame base_footprint moves the people
    the shipped model finds as the same transforms in a rosbag2 do."""
    import copy

    from rosbags.rosbag2 import StoragePlugin, Writer

    from mhr2_ros.config import override
    from mhr2_ros.ros.tf_tree import TfTree
    from test_rosbag import image_msg
    from test_tf_tree import mount_chain

    det = copy.copy(shipped_detector)
    det.cfg = override(shipped_detector.cfg, max_humans=2)
    chain = mount_chain(1.5, 0.0, optical=FRAME)
    ros1 = write_ros1_bag(tmp_path / "in.bag", scene_images, tf_static=chain)
    ros2 = tmp_path / "in2"
    with Writer(ros2, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        tf_conn = w.add_connection("/tf_static", "tf2_msgs/msg/TFMessage", typestore=STORE)
        conn = w.add_connection(TOPIC, IMAGE, typestore=STORE)
        msg = STORE.types["tf2_msgs/msg/TFMessage"](chain)
        w.write(tf_conn, scene_images[0][0] - 1_000_000, STORE.serialize_cdr(msg, "tf2_msgs/msg/TFMessage"))
        for stamp, rgb in scene_images:
            w.write(conn, stamp + 5_000_000, STORE.serialize_cdr(image_msg(rgb, stamp), IMAGE))
    floor = BagOptions(progress=False, floor_frame="base_footprint")
    for src, out in ((ros1, tmp_path / "out1"), (ros2, tmp_path / "out2")):
        _run(BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree()), out, det, bag_options=floor)
    got, want = ([[(h.depth_source, h.pelvis.pose.position.z) for h in m.humans]
                  for _, m in read_topics(tmp_path / name)[0]["/humans"]] for name in ("out1", "out2"))  # fmt: skip
    assert got == want and len(got) == len(scene_images)
    assert {source for frame in got for source, _ in frame} == {STORE.types["mhr2_ros/msg/Human"].DEPTH_FLOOR}
