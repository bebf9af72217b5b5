"""ROS 1 bags (`.bag`, written here with rosbags' ROS 1 writer and the Noetic definitions: Header.seq,
CameraInfo K/D/P) are read like rosbag2 ones: the same people from the same images and camera_info."""

import numpy as np
import pytest
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.typesys import Stores, get_typestore

from mhr2_ros.cli import main
from mhr2_ros.errors import InputError
from mhr2_ros.io.rosbag import BagImageReader
from mhr2_ros.ros.offline import BagOptions
from test_rosbag import (  # noqa: F401 - fixtures: scene_images, weights
    FRAME, INFO_TOPIC, STORE, TOPIC, _run, camera_info_msg, read_topics, scene_images, weights, write_bag,
)  # fmt: skip

NOETIC = get_typestore(Stores.ROS1_NOETIC)
IMAGE, CAMERA_INFO = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"
K = np.array([[150.0, 0.0, 80.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])


def _ros1_header(seq, stamp_ns):
    t = NOETIC.types["builtin_interfaces/msg/Time"](stamp_ns // 10**9, stamp_ns % 10**9)
    return NOETIC.types["std_msgs/msg/Header"](seq, t, FRAME)


def write_ros1_bag(path, images):
    """images: (stamp_ns, rgb); a camera_info (K, no distortion) before each image, as a driver records them."""
    roi = NOETIC.types["sensor_msgs/msg/RegionOfInterest"](0, 0, 0, 0, False)
    with Ros1Writer(path) as w:
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
