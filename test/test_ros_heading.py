"""A walking track's heading and the camera's motion in the published messages, and
`mhr2 bag --fixed-frame` handing the bag's TF poses to the tracker."""

import copy
import dataclasses

import numpy as np
import pytest

from mhr2_ros.body import SKELETON_EDGES
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.geometry import homogeneous, quaternion_xyzw_to_matrix
from mhr2_ros.inference.covariance import ANGULAR, CovariancePrior
from mhr2_ros.ros import messages, persons, tf
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.typestore import DISTROS, make_typestore
from ros_fakes import fake_tracks, round_trip
from test_ros_messages_values import _xyz
from test_tf_tree import BODY_TO_LEVEL, F, STORE, transform

HEADER = messages.SourceHeader(stamp_ns=1_700_000_000_123_456_789, frame_id="camera_color_optical_frame")
MS = 1_000_000  # ns


@pytest.fixture(scope="module")
def scene(body_model):
    _, frame = render_demo_scene(body_model, width=160, height=120)
    return frame


def _turn_about_up(R, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(R, np.float64) @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("distro", DISTROS)
def test_a_walking_track_publishes_its_velocity_heading_with_its_sigma(scene, distro):
    store = make_typestore(distro)
    consts = dict((n, v) for n, _, v in store.fielddefs[messages.HUMAN][0])
    assert (consts["HEADING_NETWORK"], consts["HEADING_VELOCITY"]) == (messages.HEADING_NETWORK,
                                                                       messages.HEADING_VELOCITY)
    tracks = fake_tracks(scene, states=("tracked", "tracked"))
    walking = _turn_about_up(tracks[0].human.orientation, 1.0)
    tracks[0].orientation, tracks[0].heading_from_velocity = walking, True
    prior = CovariancePrior(heading_sigma=1.5, velocity_heading_sigma=0.4, tilt_sigma=0.2)
    f = RosbagsFactory(store)
    views = persons.person_views(scene, tracks)
    msg = messages.build_human_array(f, scene, HEADER, views, messages.HumanOptions(prior=prior))
    round_trip(store, msg)
    for m, view, heading in zip(msg.humans, views, (0.4, 1.5)):
        q = m.pelvis.pose.orientation
        np.testing.assert_allclose(quaternion_xyzw_to_matrix([q.x, q.y, q.z, q.w]), view.rotation, atol=1e-6)
        up = view.rotation[:, 2]
        angular = np.reshape(m.pelvis.covariance, (6, 6))[ANGULAR, ANGULAR]
        assert up @ angular @ up == pytest.approx(heading**2)
        side = view.rotation[:, 0]
        assert side @ angular @ side == pytest.approx(0.2**2)
    assert [m.heading_source for m in msg.humans] == [consts["HEADING_VELOCITY"], consts["HEADING_NETWORK"]]
    np.testing.assert_allclose(views[0].rotation, walking)
    assert not np.allclose(walking, scene.humans[0].orientation, atol=1e-3)  # the detection keeps its own
    transforms = tf.build_transforms(f, HEADER, views)
    r = transforms[0].transform.rotation
    np.testing.assert_allclose(quaternion_xyzw_to_matrix([r.x, r.y, r.z, r.w]), walking, atol=1e-6)


@pytest.mark.parametrize("distro", DISTROS)
def test_a_walker_facing_its_velocity_is_published_turned_whole_and_its_image_fields_stay(scene, body_model,
                                                                                           distro):
    """Keypoints, vertices and the skeleton and mesh markers of a track facing its velocity are the
    detection's body turned about its pelvis into the track's orientation (joint distances kept);
    box, pelvis pixel and 2D keypoints stay the detection's; a track with the network's heading
    publishes the detection's body unchanged."""
    from mhr2_ros.ros import markers

    store = make_typestore(distro)
    f = RosbagsFactory(store)
    tracks = fake_tracks(scene, states=("tracked", "tracked"))
    walker = tracks[0].human
    tracks[0].orientation = _turn_about_up(walker.orientation, 1.0)
    tracks[0].heading_from_velocity = True
    views = persons.person_views(scene, tracks)
    msg = messages.build_human_array(f, scene, HEADER, views, messages.HumanOptions(with_vertices=True))
    round_trip(store, msg)
    pelvis = np.asarray(walker.position, np.float64)
    turn = tracks[0].orientation @ np.asarray(walker.orientation, np.float64).T
    for name, points in (("keypoints", walker.joints_3d), ("vertices", walker.vertices)):
        expected = pelvis + (np.asarray(points, np.float64) - pelvis) @ turn.T
        got = msg.humans[0].vertices.reshape(-1, 3) if name == "vertices" else _xyz(msg.humans[0].keypoints)
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=name)
        assert np.abs(got - np.asarray(points)).max() > 0.05, name  # turned by 1 rad: far from the detection's
    joints = _xyz(msg.humans[0].keypoints)
    np.testing.assert_allclose(np.linalg.norm(joints - joints[0], axis=1),
                               np.linalg.norm(walker.joints_3d - walker.joints_3d[0], axis=1), atol=1e-5)
    np.testing.assert_array_equal(msg.humans[0].box, np.asarray(walker.box, np.float32))
    np.testing.assert_array_equal(msg.humans[0].pelvis_pixel, np.asarray(walker.pelvis_2d, np.float32))
    np.testing.assert_array_equal(msg.humans[0].keypoints_2d, np.asarray(walker.keypoints_2d, np.float32).reshape(-1))
    other = tracks[1].human
    np.testing.assert_allclose(_xyz(msg.humans[1].keypoints), other.joints_3d, atol=1e-6)
    np.testing.assert_allclose(msg.humans[1].vertices.reshape(-1, 3), other.vertices, atol=1e-6)
    faces = body_model.faces.cpu().numpy()
    built = markers.MarkerTracker(f, faces, markers.MarkerOptions(mesh_resolution=0.0)).build(HEADER, views)
    by_key = {(m.ns, m.id): m for m in built.markers}
    mid = markers.marker_id(views[0].id)
    skeleton = _xyz(by_key[markers.NS_SKELETON, mid].points)
    np.testing.assert_allclose(skeleton, joints[[i for edge in SKELETON_EDGES for i in edge]], atol=1e-5)
    mesh = _xyz(by_key[markers.NS_MESH, mid].points)
    turned = msg.humans[0].vertices.reshape(-1, 3)
    np.testing.assert_allclose(mesh, turned[faces.reshape(-1)], atol=1e-5)


def test_camera_pose_from_a_tf2_transform_and_a_static_camera():
    R = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # optical axes -> REP-103 odom axes
    msg = transform("odom", "cam_optical_frame", R, [1.0, 2.0, 0.8])
    T = tf.camera_pose_from_transform(msg)
    np.testing.assert_allclose(T @ [0.0, 0.0, 3.0, 1.0], [4.0, 2.0, 0.8, 1.0], atol=1e-12)  # 3 m ahead
    from mhr2_ros.tracking import STATIC_CAMERA  # what a camera whose own frame is the fixed one passes

    np.testing.assert_array_equal(STATIC_CAMERA, np.eye(4))
    with pytest.raises(ValueError, match="read-only"):
        STATIC_CAMERA[0, 3] = 1.0


class _PoseRecorder:
    """A tracker that records the camera poses it is given."""

    def __init__(self):
        self.poses = []

    def update(self, frame, stamp, camera_pose=None):
        self.poses.append(camera_pose)
        return []


def test_bag_fixed_frame_gives_the_tracker_the_camera_pose_at_each_image(tmp_path, body_model, tiny_detector,
                                                                         caplog):
    """The robot drives along odom's x at 1 m/s, /tf stamped 50 ms either side of each image but the
    first (odometry starts after it): the tracker gets the pose interpolated at the image's stamp,
    None for the first (as tf2, no extrapolation) and for a frame with no path; the misses are counted."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from mhr2_ros.io.rosbag import BagImageReader, BagWriter
    from mhr2_ros.ros.offline import BagOptions, process_bag
    from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
    from mhr2_ros.ros.tf_tree import TfTree
    from test_rosbag import FRAME, T0, TOPIC, image_msg

    image, _ = render_demo_scene(body_model, width=96, height=72)
    tf_type = "tf2_msgs/msg/TFMessage"
    optical = transform("base_link", FRAME, BODY_TO_LEVEL.T, [0.2, 0.0, 1.1])

    def odom(stamp_ns):
        return transform("odom", "base_link", np.eye(3), [(stamp_ns - T0) / 1e9, 0.0, 0.0], stamp_ns)

    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        static = w.add_connection("/tf_static", tf_type, typestore=STORE)
        moving = w.add_connection("/tf", tf_type, typestore=STORE)
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        w.write(static, T0 - 100 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[optical]), tf_type))
        for k in range(3):
            stamp = T0 + 100 * MS * k
            if k:
                w.write(moving, stamp - 49 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[odom(stamp - 50 * MS)]),
                                                                     tf_type))  # fmt: skip
            w.write(conn, stamp + 5 * MS, STORE.serialize_cdr(image_msg(image, stamp), "sensor_msgs/msg/Image"))
            w.write(moving, stamp + 51 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[odom(stamp + 50 * MS)]),
                                                                 tf_type))  # fmt: skip
    det = copy.copy(tiny_detector)
    builder = OutputBuilder(F, det.faces, OutputOptions(marker_mesh=False))
    for fixed, expected in (("odom", 2), ("map", 0), (FRAME, 3)):
        recorder = _PoseRecorder()
        with BagWriter(tmp_path / f"out_{fixed}", STORE) as writer:
            summary = process_bag(BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree()), writer, det, builder,
                                  BagOptions(fixed_frame=fixed, progress=False), recorder)  # fmt: skip
        assert sum(p is not None for p in recorder.poses) == expected, fixed
        assert summary.tf_misses == {"fixed_frame": 3 - expected}
        if fixed == "odom":
            assert recorder.poses[0] is None  # stamped before odometry started
            mount = homogeneous(BODY_TO_LEVEL.T, [0.2, 0.0, 1.1])
            for k in (1, 2):
                np.testing.assert_allclose(recorder.poses[k], homogeneous(np.eye(3), [0.1 * k, 0.0, 0.0]) @ mount,
                                           atol=1e-9)  # fmt: skip
        if fixed == FRAME:  # the image's own frame: a static camera
            assert all(np.array_equal(p, np.eye(4)) for p in recorder.poses)
    assert "no TF path from 'cam_optical_frame' to 'map'" in caplog.text
    assert "the tracker assumes the camera where it last was" in caplog.text
    assert "no transform 'odom' -> 'base_link' at 1700000000.000 s: the bag's /tf has it from 1700000000.050" \
        in caplog.text


def test_bag_fixed_frame_levels_a_rolled_camera_without_tracking(tmp_path, body_model, tiny_detector):
    """`mhr2 bag --fixed-frame odom --no-track` on a camera rolled 20 degrees in odom (z up): the
    recorded people are the detector's for the gravity of that pose, unlike the unlevelled ones."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from mhr2_ros.geometry import gravity_from_pose
    from mhr2_ros.inference.level import roll_matrix
    from mhr2_ros.io.rosbag import BagImageReader, BagWriter
    from mhr2_ros.ros.offline import BagOptions, process_bag
    from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
    from mhr2_ros.ros.tf_tree import TfTree
    from test_rosbag import FRAME, T0, TOPIC, image_msg, read_topics

    image, _ = render_demo_scene(body_model, width=96, height=72)
    tf_type = "tf2_msgs/msg/TFMessage"
    R = BODY_TO_LEVEL.T @ roll_matrix(np.radians(20.0))  # odom <- optical, rolled about the optical axis
    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        static = w.add_connection("/tf_static", tf_type, typestore=STORE)
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        mount = transform("odom", FRAME, R, [0.0, 0.0, 1.2])
        w.write(static, T0 - 100 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[mount]), tf_type))
        w.write(conn, T0 + 5 * MS, STORE.serialize_cdr(image_msg(image, T0), "sensor_msgs/msg/Image"))
    det = copy.copy(tiny_detector)
    det.cfg = dataclasses.replace(det.cfg, score_threshold=0.0, max_humans=2)
    builder = OutputBuilder(F, det.faces, OutputOptions(marker_mesh=False))
    with BagWriter(tmp_path / "out", STORE) as writer:
        summary = process_bag(BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree()), writer, det, builder,
                              BagOptions(fixed_frame="odom", progress=False))  # fmt: skip
    assert len(summary.level_rolls) == 1 and abs(summary.level_rolls[0]) == pytest.approx(20.0)
    ((_, humans),) = read_topics(tmp_path / "out")[0]["/humans"]
    got = [[h.pelvis.pose.position.x, h.pelvis.pose.position.y, h.pelvis.pose.position.z] for h in humans.humans]
    want = det(image, gravity=gravity_from_pose(homogeneous(R, [0.0, 0.0, 1.2])))
    np.testing.assert_allclose(got, [h.position for h in want.humans], atol=1e-5)
    assert not np.allclose(got[0], det(image).humans[0].position, atol=1e-3)


def test_bag_imu_topic_levels_a_rolled_camera_by_its_accelerometer(tmp_path, body_model, tiny_detector):
    """`mhr2 bag --imu-topic`: a hand-held camera rolled 25 degrees whose IMU (frame cam_imu, the camera
    link's axes, in the bag's /tf_static) reads 1 g up with a jolt among the readings: the recorded
    people are the detector's for the mount's gravity; without the topic they are not levelled."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from mhr2_ros.inference.floor_contact import gravity_from_mount
    from mhr2_ros.io.rosbag import IMU, BagImageReader, BagWriter
    from mhr2_ros.ros.offline import BagOptions, process_bag
    from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
    from mhr2_ros.ros.tf_tree import TfTree
    from test_rosbag import FRAME, T0, TOPIC, image_msg, read_topics

    image, _ = render_demo_scene(body_model, width=96, height=72)
    tf_type = "tf2_msgs/msg/TFMessage"
    c, s = np.cos(np.radians(25.0)), np.sin(np.radians(25.0))
    roll = np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])  # the camera link turned about its x (forward)
    reading = roll.T @ [0.0, 0.0, 9.81]  # 1 g up, in the rolled link's axes
    types = STORE.types

    def imu(stamp_ns, accel):
        a = types["geometry_msgs/msg/Vector3"](*accel)
        header = F.header(stamp_ns, "cam_imu")
        return types[IMU](header, types["geometry_msgs/msg/Quaternion"](0.0, 0.0, 0.0, 1.0), np.zeros(9),
                          types["geometry_msgs/msg/Vector3"](0.0, 0.0, 0.0), np.zeros(9), a, np.zeros(9))  # fmt: skip

    src = tmp_path / "in"
    with Writer(src, version=8, storage_plugin=StoragePlugin.MCAP) as w:
        static = w.add_connection("/tf_static", tf_type, typestore=STORE)
        imus = w.add_connection("/imu", IMU, typestore=STORE)
        conn = w.add_connection(TOPIC, "sensor_msgs/msg/Image", typestore=STORE)
        mount = transform(FRAME, "cam_imu", BODY_TO_LEVEL, [0.0, 0.0, 0.0])  # optical <- link axes
        w.write(static, T0 - 100 * MS, STORE.serialize_cdr(F.new(tf_type, transforms=[mount]), tf_type))
        for k, accel in enumerate([reading, 3.0 * reading, reading]):  # a 3 g jolt between two still readings
            stamp = T0 - (30 - 10 * k) * MS
            w.write(imus, stamp, STORE.serialize_cdr(imu(stamp, accel), IMU))
        w.write(conn, T0 + 5 * MS, STORE.serialize_cdr(image_msg(image, T0), "sensor_msgs/msg/Image"))
    det = copy.copy(tiny_detector)
    det.cfg = dataclasses.replace(det.cfg, score_threshold=0.0, max_humans=2)
    builder = OutputBuilder(F, det.faces, OutputOptions(marker_mesh=False))
    positions, readers, rolls = {}, {}, {}
    for name, topic in (("imu", "/imu"), ("none", None)):
        reader = readers[name] = BagImageReader(src, TOPIC, None, STORE, tf_tree=TfTree(), imu_topic=topic)
        with BagWriter(tmp_path / name, STORE) as writer:
            summary = process_bag(reader, writer, det, builder, BagOptions(imu=topic is not None, progress=False))
        rolls[name] = summary.level_rolls
        ((_, humans),) = read_topics(tmp_path / name)[0]["/humans"]
        positions[name] = [[h.pelvis.pose.position.x, h.pelvis.pose.position.y, h.pelvis.pose.position.z]
                           for h in humans.humans]  # fmt: skip
    assert readers["imu"].imu.skipped == 1  # the jolt
    assert rolls["imu"] == [pytest.approx(25.0)] and rolls["none"] == []
    want = det(image, gravity=gravity_from_mount(roll_deg=25.0))
    np.testing.assert_allclose(positions["imu"], [h.position for h in want.humans], atol=1e-5)
    np.testing.assert_allclose(positions["none"], [h.position for h in det(image).humans], atol=1e-5)


def test_the_session_hands_the_pose_to_the_tracker_only_with_fixed_frame(tiny_detector, body_model):
    """fixed_frame '' : the tracker gets no pose (even if the node had one); set: the pose; changing
    it starts fresh tracks (the tracks' frame changes)."""
    from mhr2_ros.ros.session import DetectorSession
    from test_ros_session import _image_msg

    image, _ = render_demo_scene(body_model, width=96, height=72)
    session = DetectorSession(RosbagsFactory(STORE), {"score_threshold": 0.0, "max_humans": 1, "marker_mesh": False})
    session.attach(copy.copy(tiny_detector))
    recorder, resets = _PoseRecorder(), []
    recorder.reset = lambda: resets.append(True)
    session.tracker = session._tracker = recorder
    pose = homogeneous(np.eye(3), [1.0, 0.0, 0.0])
    session.process(_image_msg(image), compressed=False, camera_pose=pose)
    session.update({"fixed_frame": "odom"})
    session.process(_image_msg(image, 2_100_000_000), compressed=False, camera_pose=pose)
    session.update({"fixed_frame": "odom"})  # unchanged: no reset
    session.process(_image_msg(image, 2_200_000_000), compressed=False, camera_pose=pose)
    assert recorder.poses[0] is None and recorder.poses[1] is pose and recorder.poses[2] is pose
    assert len(resets) == 2  # attach's fresh start, then the change of frame


def _posed_scene(scene, body_model):
    """The demo scene with its people's arms, legs and heads bent (random turns of the part bones),
    so every part frame differs from the body frame."""
    import torch

    from mhr2_ros.body.joints import PART_BONES
    from mhr2_ros.geometry import matrix_to_rotation_6d

    rng = np.random.default_rng(3)
    frame = copy.deepcopy(scene)
    for human in frame.humans:
        pose = torch.as_tensor(human.pose_6d[None]).clone()
        for bone in PART_BONES:
            axis, half = rng.normal(size=3), np.radians(35.0) / 2  # 35 degrees about a random axis
            R = quaternion_xyzw_to_matrix([*(np.sin(half) * axis / np.linalg.norm(axis)), np.cos(half)])
            pose[0, body_model.bone_names.index(bone)] = matrix_to_rotation_6d(torch.as_tensor(R, dtype=torch.float32))
        with torch.no_grad():
            out = body_model(pose, torch.as_tensor(human.shape[None]))
        human.pose_6d = pose[0].numpy()
        human.joints_3d = (out.joints[0].numpy() + human.position).astype(np.float32)
        human.orientation, human.part_rotations = out.orientation[0].numpy(), out.part_rotations[0].numpy()
    return frame


@pytest.mark.parametrize("distro", DISTROS)
def test_body_part_frames_hang_under_the_body_frame_and_turn_with_a_walker(scene, body_model, distro):
    """REP-155 part frames: `<part>_<id>`, children of `body_<id>`, after it in the same message;
    body then part give the part's joint and its bone's axes in the camera frame; a walker turned to
    face its velocity carries its parts with it (PersonView.body_points), and off they are gone."""
    from mhr2_ros.body.joints import PART_NAMES, part_origins

    store = make_typestore(distro)
    f = RosbagsFactory(store)
    posed = _posed_scene(scene, body_model)
    tracks = fake_tracks(posed, states=("tracked", "occluded"))
    tracks[0].orientation = _turn_about_up(tracks[0].human.orientation, 1.0)
    tracks[0].heading_from_velocity = True
    (view, _) = views = persons.person_views(posed, tracks)
    transforms = tf.build_transforms(f, HEADER, views, parts=True)
    round_trip(store, tf.tf_message(f, transforms))
    assert [t.child_frame_id for t in transforms] == ["body_t0", *(f"{p}_t0" for p in PART_NAMES)]
    assert {t.header.frame_id for t in transforms[1:]} == {"body_t0"}  # REP-155: parented to the body frame

    def pose(t):
        q, x = t.transform.rotation, t.transform.translation
        return homogeneous(quaternion_xyzw_to_matrix([q.x, q.y, q.z, q.w]), [x.x, x.y, x.z])

    h = view.human
    origins = part_origins(view.body_points(h.joints_3d))  # where the walker's parts are published
    turn = view.rotation @ np.asarray(h.orientation, np.float64).T  # the detection's body into the track's
    for t, origin, rotation in zip(transforms[1:], origins, h.part_rotations):
        in_camera = pose(transforms[0]) @ pose(t)
        np.testing.assert_allclose(in_camera[:3, 3], origin, atol=1e-5)
        np.testing.assert_allclose(in_camera[:3, :3], turn @ rotation, atol=1e-5)
    assert not np.allclose(pose(transforms[1 + PART_NAMES.index("l_elbow")])[:3, :3], np.eye(3), atol=0.1)
    assert [t.child_frame_id for t in tf.build_transforms(f, HEADER, views)] == ["body_t0"]  # parts off
    h.part_rotations = None  # a detection without them (e.g. ground truth): the body frame alone
    assert [t.child_frame_id for t in tf.build_transforms(f, HEADER, views, parts=True)] == ["body_t0"]
