"""What the node does, without ROS: the latest-frame worker and the DetectorSession."""

import copy
import logging
import math
import threading
import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.geometry import matrix_to_quaternion_xyzw
from mhr2_ros.inference.floor_contact import floor_scales
from mhr2_ros.io.ros_image import stamp_to_ns
from mhr2_ros.ros.depth_buffer import DepthBuffer
from mhr2_ros.ros.factory import GeneratedFactory, RosbagsFactory
from mhr2_ros.ros.markers import DELETEALL
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.session import DetectorSession
from mhr2_ros.ros.tf import floor_from_transform
from mhr2_ros.ros.typestore import make_typestore
from mhr2_ros.ros.worker import FrameWorker, LatestSlot
from mhr2_ros.training.synthetic.camera import level_to_camera
from ros_fakes import fake_generated_classes

STORE = make_typestore("jazzy")


# ------------------------------------------------------------------------------ worker
def test_slot_keeps_only_the_newest_item():
    slot = LatestSlot()
    assert slot.put(1) is False
    assert slot.put(2) is True and slot.put(3) is True
    assert slot.replaced == 2 and slot.take(0.1) == 3
    assert slot.take(0.01) is None


def test_closing_the_slot_wakes_a_waiting_taker():
    slot = LatestSlot()
    got = []
    thread = threading.Thread(target=lambda: got.append(slot.take(5.0)))
    thread.start()
    time.sleep(0.05)
    slot.close()
    thread.join(1.0)
    assert not thread.is_alive() and got == [None]


def test_worker_processes_only_the_newest_frame():
    release, busy = threading.Event(), threading.Event()
    seen = []

    def process(item):
        seen.append(item)
        if item == 0:
            busy.set()
            release.wait(2.0)  # busy on frame 0 while frames 1..9 arrive

    worker = FrameWorker(process)
    worker.start()
    worker.submit(0)
    assert busy.wait(5.0)  # inside frame 0 (an event, not a sleep: a loaded machine may start late)
    dropped = sum(worker.submit(i) for i in range(1, 10))
    release.set()
    deadline = time.monotonic() + 2.0
    while seen[-1:] != [9] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.stop(2.0) and not worker.running
    assert seen == [0, 9] and dropped == 8  # frames 1..8 were replaced: never processed


def test_a_busy_worker_can_be_waited_for_until_its_frame_ends():
    release, busy = threading.Event(), threading.Event()
    worker = FrameWorker(lambda item: (busy.set(), release.wait(5.0)))
    worker.start()
    worker.submit(1)
    assert busy.wait(5.0)
    assert worker.stop(0.05) is False and worker.running  # still inside its frame
    threading.Timer(0.2, release.set).start()
    assert worker.stop(timeout=None) and not worker.running


def test_worker_reports_an_exception_and_goes_on():
    errors, seen = [], []
    worker = FrameWorker(lambda item: seen.append(1 / item), on_error=errors.append)
    worker.start()
    worker.submit(0)
    _wait_for(lambda: errors)  # frame 0 failed before frame 2 comes (else 2 would replace it)
    worker.submit(2)
    _wait_for(lambda: seen)
    assert worker.stop(2.0)
    assert isinstance(errors[0], ZeroDivisionError) and seen == [0.5] and worker.processed == 1


def _wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert condition()


def _stamped(stamp_ns):
    return RosbagsFactory(STORE).header(stamp_ns, "cam_optical_frame")


def test_depth_buffer_gives_the_nearest_and_waits_for_a_later_one():
    """The aligned depth comes just after its colour image: the worker waits for it (up to the
    tolerance) rather than take the previous frame's."""
    buffer = DepthBuffer(size=3)
    assert buffer.nearest(1_000, wait_s=0.0) is None
    for stamp in (100, 200, 300, 400):  # 100 falls out (size 3)
        buffer.add(SimpleNamespace(header=_stamped(stamp)))
    assert stamp_to_ns(buffer.nearest(260, 0.0).header.stamp) == 300
    assert stamp_to_ns(buffer.nearest(0, 0.0).header.stamp) == 200  # the oldest kept
    threading.Timer(0.05, lambda: buffer.add(SimpleNamespace(header=_stamped(500)))).start()
    start = time.monotonic()
    assert stamp_to_ns(buffer.nearest(500, wait_s=2.0).header.stamp) == 500  # waited for it
    assert time.monotonic() - start < 1.0
    start = time.monotonic()
    assert stamp_to_ns(buffer.nearest(700, wait_s=0.1).header.stamp) == 500  # none comes: the nearest
    assert 0.09 <= time.monotonic() - start < 1.0
    buffer.clear()
    assert buffer.nearest(500, 0.0) is None


# ------------------------------------------------------------------------------ session
@pytest.fixture(scope="module")
def scene(body_model):
    return render_demo_scene(body_model, width=160, height=120)


def _image_msg(rgb, stamp_ns=2_000_000_000, frame_id="cam_optical_frame"):
    f = RosbagsFactory(STORE)
    h, w = rgb.shape[:2]
    return f.new("sensor_msgs/msg/Image", header=f.header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                 step=3 * w, data=rgb.reshape(-1))  # fmt: skip


def _session(detector) -> DetectorSession:
    values = {"score_threshold": 0.0, "max_humans": 2, "marker_mesh": False, "track": False}
    s = DetectorSession(RosbagsFactory(STORE), values)
    s.attach(copy.copy(detector))
    return s


@pytest.fixture
def session(tiny_detector):
    return _session(tiny_detector)


def test_session_builds_every_output_of_an_image(session, scene):
    image, _ = scene
    run = session.process(_image_msg(image), compressed=False)
    assert run.people == 2 and run.tracked == 0  # no tracker: untracked
    assert run.outputs.humans.header.frame_id == "cam_optical_frame"
    bodies = [t.child_frame_id for t in run.outputs.transforms if t.header.frame_id == "cam_optical_frame"]
    assert bodies == ["body_p0", "body_p1"]
    assert len(run.outputs.transforms) == 2 * (1 + len(PART_NAMES))  # each with its REP-155 part frames
    assert run.outputs.markers is not None and run.outputs.people is None
    assert run.outputs.humans.intrinsics_source == "predicted"
    assert session.last_header.stamp_ns == 2_000_000_000


def test_parameter_updates_reach_the_detector_and_outputs(session, scene):
    image, _ = scene
    session.update({"score_threshold": 1.0, "publish_tf": False, "publish_people": True})
    assert session.detector.cfg.score_threshold == 1.0
    run = session.process(_image_msg(image), compressed=False)
    assert run.people == 0 and run.outputs.transforms == [] and run.outputs.people is not None
    session.update({"publish_meshes": True})
    assert session.detector.cfg.return_vertices
    session.update({"merge_radius": 0.3})
    assert session.detector.merge_radius == 0.3
    session.update({"merge_radius": -1.0})  # back to the weights' own setting (none here: off)
    assert session.detector.cfg.merge_radius is None and session.detector.merge_radius == 0.0
    session.update({"pad_rows": "false"})
    assert session.detector.pad_rows is False and session.detector.padding.endswith("sides only")
    session.update({"pad_rows": "weights"})  # back to the weights' own setting (none here: the paper's)
    assert session.detector.cfg.pad_rows is None and session.detector.pad_rows is True


def test_missing_message_packages_switch_their_outputs_off_not_the_node(tiny_detector, scene, caplog):
    """A robot without people_msgs and hri_msgs: rclpy-like classes that lack both."""
    generated = fake_generated_classes(STORE)

    def resolve(typename):
        if typename.split("/")[0] in ("people_msgs", "hri_msgs"):
            raise ModuleNotFoundError(f"No module named '{typename.split('/')[0]}'")
        return generated(typename)

    values = {"score_threshold": 0.0, "max_humans": 2, "marker_mesh": False, "publish_people": True,
              "publish_hri": True}  # fmt: skip
    session = DetectorSession(GeneratedFactory(resolve), values)
    with caplog.at_level(logging.WARNING, logger="mhr2_ros.ros.session"):
        session.attach(copy.copy(tiny_detector))
        session.update({"score_threshold": 0.0})  # re-applied: warned once per package
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and any("hri_msgs is not installed" in w for w in warnings)
    run = session.process(_image_msg(scene[0]), compressed=False)
    assert run.people == 2 and run.outputs.people is None and run.outputs.hri is None
    assert len(run.outputs.humans.humans) == 2 and run.outputs.transforms
    with_both = DetectorSession(GeneratedFactory(generated), values)
    with_both.attach(copy.copy(tiny_detector))
    run = with_both.process(_image_msg(scene[0]), compressed=False)
    assert run.outputs.people is not None and run.outputs.hri.messages[0].topic == "/humans/bodies/tracked"


def test_markers_turned_off_are_cleared_once(session, scene):
    image = _image_msg(scene[0])
    assert session.process(image, compressed=False).outputs.markers.markers
    session.update({"publish_markers": False})
    (clear,) = session.process(image, compressed=False).outputs.markers.markers
    assert clear.action == DELETEALL  # RViz would keep the last ones forever
    assert session.process(image, compressed=False).outputs.markers is None


def test_camera_info_and_camera_frame_are_used(session, scene):
    image, _ = scene
    f = RosbagsFactory(STORE)
    K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
    P = np.array([[130.0, 0, 78, 0], [0, 135.0, 61, 0], [0, 0, 1, 0]])  # rectified: another focal length
    info = f.new("sensor_msgs/msg/CameraInfo", width=160, height=120, k=K.reshape(-1), p=P.reshape(-1))
    session.update({"camera_frame": "fallback_optical_frame"})
    run = session.process(_image_msg(image, frame_id=""), compressed=False, camera_info=info)
    assert run.outputs.humans.intrinsics_source == "camera_info" and np.allclose(run.result.K, K)
    assert run.outputs.humans.header.frame_id == "fallback_optical_frame"
    session.update({"intrinsics_matrix": "p"})  # rectified images: P's left 3x3
    run = session.process(_image_msg(image), compressed=False, camera_info=info)
    assert np.allclose(run.result.K, P[:, :3]) and np.allclose(run.outputs.humans.k, P[:, :3].reshape(-1))
    assert run.outputs.humans.header.frame_id == "cam_optical_frame"  # the header's own frame wins
    session.update({"use_camera_info": False})
    run = session.process(_image_msg(image), compressed=False, camera_info=info)
    assert run.outputs.humans.intrinsics_source == "predicted"


def test_a_distorted_raw_image_is_rectified_and_its_2d_outputs_are_the_raw_images(session, scene, caplog):
    """The detector sees the pinhole image of K; boxes, pixels and 2D keypoints come back in the raw
    image's pixels (the lens's projection of the 3D outputs); rectify false: the raw image, warned once."""
    from mhr2_ros.geometry import project

    image, _ = scene
    f = RosbagsFactory(STORE)
    K = np.array([[150.0, 0, 80], [0, 150.0, 60], [0, 0, 1]])
    info = f.new("sensor_msgs/msg/CameraInfo", width=160, height=120, k=K.reshape(-1), p=np.eye(3, 4).reshape(-1),
                 d=np.array([-0.2, 0.0, 0.0, 0.0, 0.0]), distortion_model="plumb_bob")  # fmt: skip
    session.update({"score_threshold": 0.0, "max_humans": 3})
    with caplog.at_level("INFO", logger="mhr2_ros.ros.camera"):
        run = session.process(_image_msg(image), compressed=False, camera_info=info)
    rect = session.lens.rectifier(info, "k", 120, 160)
    direct = session.detector(rect.image(image), K=K)
    assert len(run.result.humans) == len(direct.humans) > 0
    for h, d in zip(run.result.humans, direct.humans):
        np.testing.assert_allclose(h.position, d.position, atol=1e-5)  # the pinhole image's detection
        np.testing.assert_allclose(h.pelvis_2d, rect.project(h.position)[0], atol=1e-3)  # in raw pixels
        np.testing.assert_allclose(h.keypoints_2d, rect.project(h.joints_3d), atol=1e-3)
        assert np.abs(h.keypoints_2d - d.keypoints_2d).max() > 0.5  # the lens moved them
    assert "rectifying the 160x120 raw images" in caplog.text and "WARNING" not in caplog.text
    session.update({"rectify": False})
    for _ in range(2):
        run = session.process(_image_msg(image), compressed=False, camera_info=info)
    for h in run.result.humans:  # the raw image as a pinhole one
        np.testing.assert_allclose(h.keypoints_2d, project(h.joints_3d.astype(np.float64), K), atol=1e-3)
    assert caplog.text.count("160x120 images are distorted") == 1
    session.update({"intrinsics_matrix": "p"})  # rectified images: nothing to do or say
    session.process(_image_msg(image), compressed=False, camera_info=info)
    assert caplog.text.count("images are distorted") == 1


def _depth_msg(meters, stamp_ns, encoding="16UC1"):
    f = RosbagsFactory(STORE)
    h, w = meters.shape
    pixels = np.round(meters * 1000).astype("<u2") if encoding == "16UC1" else meters.astype("<f4")
    return f.new("sensor_msgs/msg/Image", header=f.header(stamp_ns, "cam_optical_frame"), height=h, width=w,
                 encoding=encoding, step=pixels.itemsize * w, data=pixels.view(np.uint8).reshape(-1))  # fmt: skip


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_a_depth_image_within_the_sync_tolerance_sets_the_depths(session, scene, encoding):
    """use_depth: a wall 3 m ahead (REP-118 millimetres or meters) puts every person's front on it; a
    depth image too far in time, or use_depth off, leaves the network's depths."""
    image, _ = scene
    wall = np.full((120, 160), 3.0, np.float32)
    plain = session.process(_image_msg(image), compressed=False)
    depth = _depth_msg(wall, 2_000_000_000 + 40_000_000, encoding)  # 40 ms after the image
    assert [h.depth_source for h in session.process(_image_msg(image), False, depth=depth).result.humans] == [
        "network", "network"]  # use_depth is off by default
    session.update({"use_depth": True})
    fused = session.process(_image_msg(image), compressed=False, depth=depth)
    for a, b in zip(plain.result.humans, fused.result.humans):
        assert b.depth_source == "depth image" and a.depth_source == "network"
        np.testing.assert_allclose(b.position, a.position * (b.depth / a.depth), rtol=1e-4)
        assert 3.0 < b.depth < 3.4  # the pelvis just behind the body's front, which is on the wall
    assert fused.outputs.humans.humans[0].pelvis.pose.position.z == pytest.approx(fused.result.humans[0].depth)
    session.update({"depth_sync_tolerance": 0.03})  # 40 ms apart: too far
    late = session.process(_image_msg(image), compressed=False, depth=depth)
    assert [h.depth for h in late.result.humans] == [h.depth for h in plain.result.humans]


def test_a_floor_from_tf_stands_people_on_it_while_floor_frame_is_set(shipped_detector, scene):
    """floor_frame: the plane tf.floor_from_transform makes of a looked-up transform (a camera
    pitched 10 degrees down, its floor set 1.2x below the first person's lowest point) moves that
    person towards 1.2x farther, DEPTH_FLOOR in the message, exactly 1.2x with floor_angle_sigma 0;
    floor_frame '' ignores the floor."""
    session = _session(shipped_detector)  # people stood on the scene's floor, below the camera
    image, _ = scene
    session.update({"publish_meshes": True})  # the detector returns the vertices
    plain = session.process(_image_msg(image), compressed=False)
    R = level_to_camera(math.radians(10.0), 0.0) @ np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])
    n = R @ [0.0, 0.0, -1.0]  # gravity in the optical frame
    height = 1.2 * float(np.max(plain.result.humans[0].vertices.astype(np.float64) @ n))
    f = RosbagsFactory(STORE)
    qx, qy, qz, qw = matrix_to_quaternion_xyzw(R)
    t = -R @ [0.0, 0.0, height]  # the camera `height` above base_footprint's origin
    transform = f.new("geometry_msgs/msg/TransformStamped", header=f.header(2_000_000_000, "cam_optical_frame"),
                      child_frame_id="base_footprint", transform=f.new(
                          "geometry_msgs/msg/Transform",
                          translation=f.new("geometry_msgs/msg/Vector3", x=t[0], y=t[1], z=t[2]),
                          rotation=f.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw)))  # fmt: skip
    floor = floor_from_transform(transform)
    np.testing.assert_allclose(floor, [*n, height], atol=1e-9)
    ignored = session.process(_image_msg(image), compressed=False, floor=floor)  # floor_frame '' by default
    assert [h.depth for h in ignored.result.humans] == [h.depth for h in plain.result.humans]
    session.update({"floor_frame": "base_footprint"})
    run = session.process(_image_msg(image), compressed=False, floor=floor)
    scale = floor_scales(plain.result.humans[0].vertices[None].astype(np.float64), floor, 0.015)
    first = run.result.humans[0]
    assert first.depth_source == "floor" and first.depth == pytest.approx(scale.scale[0] * plain.result.humans[0].depth,
                                                                          rel=1e-5)  # fmt: skip
    assert 1.0 < scale.scale[0] < 1.2 and scale.weight[0] > 0.5  # weighed with the network's depth
    assert run.outputs.humans.humans[0].depth_source == STORE.types["mhr2_ros/msg/Human"].DEPTH_FLOOR
    session.update({"floor_angle_sigma": 0.0})  # the floor alone: exactly 1.2x
    alone = session.process(_image_msg(image), compressed=False, floor=floor).result.humans[0]
    assert alone.depth == pytest.approx(1.2 * plain.result.humans[0].depth, rel=1e-5)


def test_an_unusable_depth_stream_is_named_once_and_detection_goes_on(session, scene, caplog):
    """A depth image of another aspect ratio, or a colour image on the depth topic: warned once per
    problem, every frame still detected with the network's depths."""
    image, _ = scene
    session.update({"use_depth": True})
    wrong = [_depth_msg(np.full((120, 120), 3.0, np.float32), 2_000_000_000),
             _image_msg(image)]  # rgb8 on the depth topic
    with caplog.at_level(logging.WARNING, logger="mhr2_ros.io.ros_image"):
        for depth in wrong + wrong:
            run = session.process(_image_msg(image), compressed=False, depth=depth)
            assert run.people == 2 and {h.depth_source for h in run.result.humans} == {"network"}
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and "not registered to the 160x120 colour image" in warnings[0]
    assert "unsupported depth encoding 'rgb8'" in warnings[1] and warnings[1].endswith("network's depths")


def test_compressed_images_are_decoded_as_rgb_and_detected(session, scene):
    """A JPEG CompressedImage (image_transport's compressed plugin: BGR inside) gives the people
    its pixels give as a raw rgb8 Image: same count, same boxes and scores."""
    image, _ = scene
    ok, jpeg = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])  # RGB -> BGR, as cv2 wants
    assert ok
    f = RosbagsFactory(STORE)
    msg = f.new("sensor_msgs/msg/CompressedImage", header=f.header(3_000_000_000, "jpeg_optical_frame"),
                format="rgb8; jpeg compressed bgr8", data=jpeg.reshape(-1))  # fmt: skip
    msg = STORE.deserialize_cdr(STORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)  # as received
    decoded = np.ascontiguousarray(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])  # the JPEG's own pixels, RGB
    assert np.abs(decoded.astype(int) - image).mean() < 8  # a faithful JPEG, not a blank one
    run = session.process(msg, compressed=True)
    raw = session.process(_image_msg(decoded), compressed=False)
    assert run.header == SourceHeader(3_000_000_000, "jpeg_optical_frame")
    assert run.result.image_size == (120, 160) and run.people == raw.people == 2
    for got, want in zip(run.result.humans, raw.result.humans):
        assert got.score == pytest.approx(want.score, abs=1e-5)
        assert np.allclose(got.box, want.box, atol=1e-3) and np.allclose(got.position, want.position, atol=1e-4)


def test_a_frame_id_tf2_would_refuse_disables_tf_with_one_warning(session, scene, caplog):
    """README "TF tree": a leading '/' (tf2 refuses it) turns TF off for that frame id, with one
    warning naming it, not one per image; the HumanArray is still published."""
    image = _image_msg(scene[0], frame_id="/camera")
    with caplog.at_level(logging.WARNING):
        runs = [session.process(image, compressed=False) for _ in range(2)]
    for run in runs:
        assert run.outputs.transforms == [] and run.people == 2
        assert run.outputs.humans.header.frame_id == "/camera" and len(run.outputs.humans.humans) == 2
    ours = [r for r in caplog.records if r.name.startswith("mhr2_ros")]
    warnings = [r.getMessage() for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "'/camera'" in warnings[0] and "TF" in warnings[0], warnings
    good = session.process(_image_msg(scene[0]), compressed=False)  # a valid frame id: TF is back
    assert [t.header.frame_id for t in good.outputs.transforms].count("cam_optical_frame") == 2


def test_stale_images_and_release(session, scene):
    header = session.header_of(_image_msg(scene[0], stamp_ns=1_000_000_000))
    assert not session.is_stale(header, now_ns=10**12)  # max_image_age 0: never stale
    session.update({"max_image_age": 0.5})
    assert session.is_stale(header, now_ns=1_600_000_000) and not session.is_stale(header, now_ns=1_400_000_000)
    topology = session.mesh_topology(5)
    assert topology.num_vertices == session.detector.body.num_vertices
    session.release()
    assert not session.loaded
    with pytest.raises(RuntimeError, match="not loaded"):
        session.process(_image_msg(scene[0]), compressed=False)


def test_a_fixed_frame_levels_a_rolled_camera_when_no_floor_is_set(tiny_detector, scene):
    """fixed_frame (z up) without floor_frame: the camera's pose gives gravity, and a camera rolled by
    20 degrees is levelled (the result the detector gives for that gravity); a floor_frame's floor, or
    fixed_frame being the image's own frame (a static camera), leaves the pose's gravity unused."""
    from mhr2_ros.geometry import gravity_from_pose, homogeneous
    from mhr2_ros.inference.level import roll_matrix

    session = _session(tiny_detector)
    session.update({"score_threshold": 0.0, "max_humans": 2, "track": False})
    image, _ = scene
    level = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical axes in odom, facing +x
    pose = homogeneous(level @ roll_matrix(math.radians(20.0)), [1.0, 2.0, 1.3])  # odom <- camera
    detector = session.detector
    levelled = detector(image, gravity=gravity_from_pose(pose))
    plain = session.process(_image_msg(image), compressed=False, camera_pose=pose)  # fixed_frame '' by default
    assert not np.allclose(plain.result.humans[0].position, levelled.humans[0].position, atol=1e-3)
    session.update({"fixed_frame": "odom"})
    run = session.process(_image_msg(image), compressed=False, camera_pose=pose)
    np.testing.assert_allclose([h.position for h in run.result.humans], [h.position for h in levelled.humans],
                               atol=1e-5)  # fmt: skip
    session.update({"fixed_frame": "cam_optical_frame"})  # the image's own frame: a static camera
    static = session.process(_image_msg(image), compressed=False, camera_pose=pose)
    np.testing.assert_allclose(static.result.humans[0].position, plain.result.humans[0].position, atol=1e-6)


def test_imu_gravity_levels_when_the_parameter_says_so_and_fixed_frame_does_not(tiny_detector, scene):
    """imu_gravity: the gravity the node's IMU gives (ros/imu_gravity.py) levels a rolled camera; off, or
    with a fixed_frame's gravity to hand, it is not used."""
    from mhr2_ros.inference.floor_contact import gravity_from_mount

    session = _session(tiny_detector)
    session.update({"score_threshold": 0.0, "max_humans": 2, "track": False})
    image, _ = scene
    rolled = gravity_from_mount(roll_deg=-30.0)
    levelled = session.detector(image, gravity=rolled)
    off = session.process(_image_msg(image), compressed=False, imu_gravity=rolled)  # imu_gravity false by default
    assert not np.allclose(off.result.humans[0].position, levelled.humans[0].position, atol=1e-3)
    session.update({"imu_gravity": True})
    on = session.process(_image_msg(image), compressed=False, imu_gravity=rolled)
    np.testing.assert_allclose([h.position for h in on.result.humans], [h.position for h in levelled.humans],
                               atol=1e-5)  # fmt: skip
    session.update({"fixed_frame": "odom"})  # a level camera in odom: its gravity wins over the IMU's
    level_pose = np.eye(4)
    level_pose[:3, :3] = [[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]  # optical axes in odom
    fixed = session.process(_image_msg(image), compressed=False, camera_pose=level_pose, imu_gravity=rolled)
    np.testing.assert_allclose(fixed.result.humans[0].position, off.result.humans[0].position, atol=1e-6)
