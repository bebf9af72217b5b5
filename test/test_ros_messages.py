"""Message builders without ROS: CDR round trips (Humble, Jazzy), TF names, markers,
people, diagnostics, and the one-code-path promise of the MessageFactory.

The builders run with rosbags' classes (RosbagsFactory) and with stand-ins that
behave like rosidl-generated rclpy classes (strict setters, array.array sequences,
numpy fixed arrays, bytes for `byte`): both must give the same bytes on the wire.
"""

import copy
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from mhr2_ros.body import JOINT_NAMES, SHAPE_NAMES
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.inference.results import DEPTH_SOURCES, FLOOR_DEPTH, MEASURED_DEPTH, NETWORK_DEPTH
from mhr2_ros.ros import diagnostics, markers, messages, people, persons, tf
from mhr2_ros.ros.factory import GeneratedFactory, RosbagsFactory
from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
from mhr2_ros.ros.typestore import DISTROS, MESSAGE_NAMES, make_typestore, message_definitions
from ros_fakes import fake_generated_classes, fake_tracks, round_trip, to_rosbags

HEADER = messages.SourceHeader(stamp_ns=1_700_000_000_123_456_789, frame_id="camera_color_optical_frame")


@pytest.fixture(scope="module")
def scene(body_model):
    _, frame = render_demo_scene(body_model, width=160, height=120)
    return frame, body_model.faces.cpu().numpy()


# ------------------------------------------------------------------------------ definitions
@pytest.mark.parametrize("distro", DISTROS)
def test_msg_files_parse_and_their_constants_match_the_code(distro):
    store = make_typestore(distro)
    human_consts = dict((n, v) for n, _, v in store.fielddefs["mhr2_ros/msg/Human"][0])
    assert [human_consts[f"STATE_{s.upper()}"] for s in persons.STATES] == list(range(len(persons.STATES)))
    assert human_consts["UNKNOWN_VARIANCE"] == messages.UNKNOWN_VARIANCE
    assert [human_consts["DEPTH_NETWORK"], human_consts["DEPTH_IMAGE"], human_consts["DEPTH_FLOOR"]] == [
        DEPTH_SOURCES.index(NETWORK_DEPTH), DEPTH_SOURCES.index(MEASURED_DEPTH), DEPTH_SOURCES.index(FLOOR_DEPTH)]
    array_consts = {v for _, _, v in store.fielddefs["mhr2_ros/msg/HumanArray"][0]}
    assert array_consts == set(messages.INTRINSICS_SOURCES)
    marker = store.types["visualization_msgs/msg/Marker"]
    for name in ("ARROW", "LINE_LIST", "TEXT_VIEW_FACING", "TRIANGLE_LIST", "ADD", "DELETE", "DELETEALL"):
        assert getattr(markers, name) == getattr(marker, name), name
    status = store.types["diagnostic_msgs/msg/DiagnosticStatus"]
    assert (diagnostics.OK, diagnostics.WARN, diagnostics.ERROR, diagnostics.STALE) == (
        status.OK, status.WARN, status.ERROR, status.STALE)


def test_every_msg_field_is_commented():
    for name, text in message_definitions().items():
        if not name.startswith("mhr2_ros/"):
            continue
        lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        for i, line in enumerate(text.splitlines()):
            if line in lines and "#" not in line:
                previous = text.splitlines()[i - 1].strip()
                assert previous.startswith("#"), f"{name}: field {line!r} has no comment"
    assert set(MESSAGE_NAMES) == {"Human", "HumanArray", "MeshTopology"}


# ------------------------------------------------------------------------------ HumanArray
@pytest.mark.parametrize("distro", DISTROS)
@pytest.mark.parametrize("meshes", [False, True])
@pytest.mark.parametrize("tracked", [False, True])
def test_human_array_round_trips(scene, distro, meshes, tracked):
    frame, _ = scene
    store = make_typestore(distro)
    f = RosbagsFactory(store)
    views = persons.person_views(frame, fake_tracks(frame) if tracked else None)
    msg = messages.build_human_array(f, frame, HEADER, views, messages.HumanOptions(with_vertices=meshes))
    round_trip(store, msg)
    assert msg.header.stamp.sec == 1_700_000_000 and msg.header.stamp.nanosec == 123_456_789
    assert msg.header.frame_id == HEADER.frame_id
    assert list(msg.joint_names) == list(JOINT_NAMES) and list(msg.shape_names) == list(SHAPE_NAMES)
    assert np.allclose(np.reshape(msg.k, (3, 3)), frame.K)
    h, m = frame.humans[0], msg.humans[0]
    assert m.id == ("t0" if tracked else "gt0")
    assert m.tracking_state == (2 if tracked else 0)
    p = m.pelvis.pose.position
    assert np.allclose([p.x, p.y, p.z], h.position, atol=1e-6)
    assert len(m.keypoints) == len(JOINT_NAMES) and m.keypoints_2d.size == 2 * len(JOINT_NAMES)
    assert m.vertices.size == (h.vertices.size if meshes else 0)
    if tracked:
        assert m.velocity.twist.linear.x == 0.5
        assert np.reshape(m.velocity.covariance, (6, 6))[0, 0] == pytest.approx(0.01)


def test_every_human_field_carries_its_detection_value(scene):
    """Field by field against the detection (the round trip above checks sizes and the wire)."""
    from scipy.spatial.transform import Rotation

    frame, _ = scene
    store = make_typestore("jazzy")
    tracks = fake_tracks(frame)
    vel_cov = np.array([[0.04, 0.01, 0.0], [0.01, 0.09, 0.02], [0.0, 0.02, 0.16]])  # not diagonal
    tracks[0].velocity_cov = vel_cov
    msg = messages.build_human_array(RosbagsFactory(store), frame, HEADER, persons.person_views(frame, tracks))
    round_trip(store, msg)
    for h, m in zip(frame.humans, msg.humans):
        assert m.confidence == pytest.approx(h.score) and m.height == pytest.approx(h.height)
        np.testing.assert_array_equal(m.box, np.asarray(h.box, np.float32))  # x0, y0, x1, y1
        np.testing.assert_array_equal(m.pelvis_pixel, np.asarray(h.pelvis_2d, np.float32))
        np.testing.assert_array_equal(m.keypoints_2d.reshape(-1, 2), np.asarray(h.keypoints_2d, np.float32))
        np.testing.assert_array_equal(m.shape, np.asarray(h.shape, np.float32))
        np.testing.assert_allclose([[k.x, k.y, k.z] for k in m.keypoints], h.joints_3d, atol=1e-6)
        q = m.pelvis.pose.orientation  # geometry_msgs order x, y, z, w, as scipy's from_quat
        np.testing.assert_allclose(Rotation.from_quat([q.x, q.y, q.z, q.w]).as_matrix(), h.orientation, atol=1e-5)
    np.testing.assert_allclose(np.reshape(msg.humans[0].velocity.covariance, (6, 6))[:3, :3], vel_cov)


def test_pose_covariance_is_a_prior_along_the_ray():
    prior = messages.CovariancePrior(pixel_sigma=4.0, depth_sigma_ratio=0.1, heading_sigma=0.3, tilt_sigma=0.3)
    position = np.array([1.0, 0.5, 4.0])
    cov = messages.pose_covariance(position, np.eye(3), focal=500.0, prior=prior)
    assert np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > 0)
    ray = position / np.linalg.norm(position)
    along = ray @ cov[:3, :3] @ ray
    assert along == pytest.approx((0.1 * np.linalg.norm(position)) ** 2)
    assert along > 10 * np.linalg.eigvalsh(cov[:3, :3])[0]
    across = np.cross(ray, [1.0, 0, 0])
    across /= np.linalg.norm(across)  # across the ray: 4 px seen at the person's distance
    assert across @ cov[:3, :3] @ across == pytest.approx((4.0 / 500.0 * np.linalg.norm(position)) ** 2)
    assert np.allclose(np.diag(cov)[3:], 0.09)


@pytest.mark.parametrize("source,ratio,constant", [(MEASURED_DEPTH, 0.02, "DEPTH_IMAGE"),
                                                   (FLOOR_DEPTH, 0.07, "DEPTH_FLOOR")])
def test_a_person_scaled_to_a_depth_image_or_the_floor_gets_its_sigma_along_the_ray(scene, source, ratio, constant):
    frame, _ = scene
    frame = copy.deepcopy(frame)
    frame.humans[0].depth_source = source
    prior = messages.CovariancePrior(depth_sigma_ratio=0.1, measured_depth_sigma_ratio=0.02, floor_depth_sigma_ratio=0.07)
    msg = messages.build_human_array(RosbagsFactory(make_typestore("jazzy")), frame, HEADER,
                                     persons.person_views(frame), messages.HumanOptions(prior=prior))  # fmt: skip
    store = make_typestore("jazzy").types[messages.HUMAN]
    for human, m, ratio, source in zip(frame.humans, msg.humans, (ratio, 0.1),
                                       (getattr(store, constant), store.DEPTH_NETWORK)):  # fmt: skip
        assert m.depth_source == source
        ray = human.position / np.linalg.norm(human.position)
        along = ray @ np.reshape(m.pelvis.covariance, (6, 6))[:3, :3] @ ray
        assert along == pytest.approx((ratio * np.linalg.norm(human.position)) ** 2, rel=1e-3)
    assert len(frame.humans) >= 2 and frame.humans[1].depth_source == "network"


def test_a_frame_with_the_network_s_k_publishes_the_wider_predicted_fov_prior(scene):
    frame, _ = scene
    frame = copy.deepcopy(frame)
    frame.K_source = "predicted"
    prior = messages.CovariancePrior(pixel_sigma=3.0, depth_sigma_ratio=0.1, predicted_fov_pixel_sigma=12.0,
                                     predicted_fov_depth_factor=1.4)
    msg = messages.build_human_array(RosbagsFactory(make_typestore("jazzy")), frame, HEADER,
                                     persons.person_views(frame), messages.HumanOptions(prior=prior))  # fmt: skip
    assert msg.intrinsics_source == make_typestore("jazzy").types[messages.HUMAN_ARRAY].INTRINSICS_PREDICTED
    for human, m in zip(frame.humans, msg.humans):
        ray = human.position / np.linalg.norm(human.position)
        along = ray @ np.reshape(m.pelvis.covariance, (6, 6))[:3, :3] @ ray
        assert along == pytest.approx((0.14 * np.linalg.norm(human.position)) ** 2, rel=1e-3)
        side = np.cross(ray, [1.0, 0.0, 0.0])
        side /= np.linalg.norm(side)
        across = side @ np.reshape(m.pelvis.covariance, (6, 6))[:3, :3] @ side
        assert across == pytest.approx((12.0 / frame.K[1, 1] * np.linalg.norm(human.position)) ** 2, rel=1e-3)


def test_untracked_velocity_is_unknown(scene):
    frame, _ = scene
    cov = messages.twist_covariance(persons.person_views(frame)[0])
    assert np.allclose(np.diag(cov), messages.UNKNOWN_VARIANCE)


@pytest.mark.parametrize("distro", DISTROS)
def test_mesh_topology_round_trips(scene, body_model, distro):
    _, faces = scene
    store = make_typestore(distro)
    msg = messages.build_mesh_topology(RosbagsFactory(store), faces, body_model.num_vertices, 5, "makehuman")
    round_trip(store, msg)
    assert msg.faces.size == faces.size and msg.faces.max() < msg.num_vertices
    with pytest.raises(ValueError, match="outside"):
        messages.build_mesh_topology(RosbagsFactory(store), faces, 10, 5, "makehuman")


# ------------------------------------------------------------------------------ ids and TF
@pytest.mark.parametrize("raw, expected", [
    ("p3", "p3"), ("7", "p7"), ("a-b c", "a_b_c"), (None, "p4"), ("", "p4"), ("/x", "p_x"), ("é1", "p_1"),
])  # fmt: skip
def test_ids_are_tf_safe(raw, expected):
    assert persons.safe_id(raw, 4) == expected
    assert tf.is_valid_frame_id(tf.body_frame(persons.safe_id(raw, 4)))


@pytest.mark.parametrize("name, ok", [
    ("camera_color_optical_frame", True), ("cam/optical", True), ("/camera", False), ("", False),
    ("cam/", False), ("a//b", False), ("1cam", False), ("cam era", False), ("body_p1", True),
])  # fmt: skip
def test_frame_id_validity(name, ok):
    assert tf.is_valid_frame_id(name) is ok
    assert (tf.frame_id_problem(name) == "") is ok


@pytest.mark.parametrize("distro", DISTROS)
def test_transforms_are_body_frames_of_the_optical_frame(scene, distro):
    frame, _ = scene
    store = make_typestore(distro)
    f = RosbagsFactory(store)
    views = persons.person_views(frame, fake_tracks(frame))
    transforms = tf.build_transforms(f, HEADER, views)
    round_trip(store, tf.tf_message(f, transforms))
    assert [t.child_frame_id for t in transforms] == ["body_t0", "body_t1"]  # t2 is occluded
    for t, view in zip(transforms, views):
        assert t.header.frame_id == HEADER.frame_id and not t.child_frame_id.startswith("/")
        assert t.header.stamp.sec == 1_700_000_000
        q = t.transform.rotation
        x, y, z, w = q.x, q.y, q.z, q.w
        R = np.array([
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ])  # fmt: skip
        assert np.allclose(R, view.human.orientation, atol=1e-5)
        assert np.allclose([t.transform.translation.x, t.transform.translation.y, t.transform.translation.z],
                           view.human.position, atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="leading slash"):
        tf.build_transforms(f, messages.SourceHeader(0, "/camera"), views)


# ------------------------------------------------------------------------------ markers
def _by_ns(marker_array):
    return {(m.ns, m.id): m for m in marker_array.markers}


@pytest.mark.parametrize("distro", DISTROS)
def test_markers_round_trip_and_ids_come_from_track_ids(scene, distro):
    frame, faces = scene
    store = make_typestore(distro)
    tracker = markers.MarkerTracker(RosbagsFactory(store), faces)
    views = persons.person_views(frame, fake_tracks(frame))
    msg = tracker.build(HEADER, views)
    round_trip(store, msg)
    kinds = {m.ns: m.type for m in msg.markers}
    assert kinds == {markers.NS_MESH: markers.TRIANGLE_LIST, markers.NS_SKELETON: markers.LINE_LIST,
                     markers.NS_LABEL: markers.TEXT_VIEW_FACING, markers.NS_VELOCITY: markers.ARROW}  # fmt: skip
    ids = {m.id for m in msg.markers}
    assert ids == {markers.marker_id("t0"), markers.marker_id("t1")}  # the occluded t2 gets none
    mesh = next(m for m in msg.markers if m.ns == markers.NS_MESH)
    assert len(mesh.points) % 3 == 0 and 0 < len(mesh.points) < faces.size
    skeleton = next(m for m in msg.markers if m.ns == markers.NS_SKELETON)
    assert len(skeleton.points) == 2 * len(markers.SKELETON_EDGES)


def test_markers_of_vanished_people_are_deleted(scene):
    frame, faces = scene
    tracker = markers.MarkerTracker(RosbagsFactory(make_typestore("jazzy")), faces, markers.MarkerOptions(mesh=False))
    first = tracker.build(HEADER, persons.person_views(frame))  # gt0, gt1, gt2, no velocity
    assert {m.action for m in first.markers} == {markers.ADD}
    second = tracker.build(HEADER, persons.person_views(dataclasses.replace(frame, humans=frame.humans[1:])))
    deleted = {(m.ns, m.id) for m in second.markers if m.action == markers.DELETE}
    gone = markers.marker_id("gt0")
    assert deleted == {(ns, gone) for ns in (markers.NS_SKELETON, markers.NS_LABEL)}
    third = tracker.build(HEADER, persons.person_views(dataclasses.replace(frame, humans=frame.humans[1:])))
    assert all(m.action == markers.ADD for m in third.markers)  # deleted once only
    cleared = tracker.clear(HEADER)
    assert [m.action for m in cleared.markers] == [markers.DELETEALL]


def test_a_person_losing_a_marker_kind_has_it_deleted(scene):
    frame, faces = scene
    f = RosbagsFactory(make_typestore("jazzy"))
    tracker = markers.MarkerTracker(f, faces, markers.MarkerOptions(mesh=False))
    moving = fake_tracks(frame, ("tracked",))
    tracker.build(HEADER, persons.person_views(frame, moving))
    still = [dataclasses.replace(moving[0], velocity=np.zeros(3))]
    msg = tracker.build(HEADER, persons.person_views(frame, still))
    deleted = {(m.ns, m.action) for m in msg.markers if m.action == markers.DELETE}
    assert deleted == {(markers.NS_VELOCITY, markers.DELETE)}


def test_marker_id_collisions_get_distinct_ids(scene, monkeypatch):
    frame, _ = scene
    monkeypatch.setattr(markers, "marker_id", lambda pid: 7)
    tracker = markers.MarkerTracker(RosbagsFactory(make_typestore("jazzy")), None, markers.MarkerOptions(mesh=False))
    msg = tracker.build(HEADER, persons.person_views(frame))
    ids = {m.id for m in msg.markers if m.ns == markers.NS_LABEL}
    assert ids == {7, 8, 9}


def test_mesh_decimation_keeps_a_valid_smaller_mesh(scene):
    frame, faces = scene
    vertices = frame.humans[0].vertices
    points, tri = markers.decimate_mesh(vertices, faces, 0.02)
    assert len(tri) < len(faces) / 2 and tri.max() < len(points)
    assert np.all((tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]))
    full_points, full = markers.decimate_mesh(vertices, faces, 0.0)
    assert full is faces and np.allclose(full_points, vertices)


def test_an_occluded_track_is_published_where_its_motion_model_puts_it(scene):
    frame, _ = scene
    store = make_typestore("jazzy")
    f = RosbagsFactory(store)
    tracks = fake_tracks(frame, states=("tracked", "occluded"))
    last = frame.humans[1].position.astype(np.float64)
    moved = last + np.array([0.5, 0.0, 0.2])  # walked on behind something
    for t in tracks:  # the tracker's estimate (a visible track's is ignored: its detection is now)
        t.position, t.position_cov = moved, np.eye(3) * 0.04
    views = persons.person_views(frame, tracks)
    msg = messages.build_human_array(f, frame, HEADER, views, messages.HumanOptions(with_vertices=True))
    round_trip(store, msg)
    seen, hidden = msg.humans
    vertices = hidden.vertices.reshape(-1, 3)  # the mesh moved with the pelvis too
    np.testing.assert_allclose(vertices[0], frame.humans[1].vertices[0] + (moved - last), atol=1e-5)
    assert seen.pelvis.pose.position.x == pytest.approx(float(frame.humans[0].position[0]), abs=1e-6)
    p = hidden.pelvis.pose.position
    assert [p.x, p.y, p.z] == pytest.approx(moved.tolist())
    cov = hidden.pelvis.covariance.reshape(6, 6)
    prior = messages.pose_covariance(moved, frame.humans[1].orientation, float(frame.K[1, 1]), messages.CovariancePrior())
    assert np.allclose(cov[:3, :3], prior[:3, :3] + np.eye(3) * 0.04)
    first = hidden.keypoints[0]  # the skeleton moved with the pelvis
    expected = frame.humans[1].joints_3d[0] + (moved - last)
    assert [first.x, first.y, first.z] == pytest.approx(expected.tolist(), abs=1e-5)
    crowd = people.build_people(f, HEADER, views)
    assert crowd.people[1].position.x == pytest.approx(moved[0])


# ------------------------------------------------------------------------------ people, diagnostics
@pytest.mark.parametrize("distro", DISTROS)
def test_people_round_trip_with_people_msgs_definitions(scene, distro):
    frame, _ = scene
    store = make_typestore(distro)
    tracks = fake_tracks(frame, ("tracked", "occluded", "lost"))
    msg = people.build_people(RosbagsFactory(store), HEADER, persons.person_views(frame, tracks))
    round_trip(store, msg)
    assert [p.name for p in msg.people] == ["t0", "t1"]  # lost left out
    assert msg.people[1].reliability == pytest.approx(frame.humans[1].score * people.OCCLUDED_RELIABILITY)
    assert list(msg.people[0].tagnames) == list(people.TAG_NAMES) and msg.people[0].tags[0] == "tracked"
    assert msg.people[0].velocity.x == 0.5


@pytest.mark.parametrize("distro", DISTROS)
def test_diagnostics_round_trip_and_levels(distro):
    store = make_typestore(distro)
    clock = SimpleNamespace(t=0.0)
    stats = diagnostics.DetectorStats(clock=lambda: clock.t)
    assert diagnostics.assess(stats.snapshot(), 1.0)[0] == diagnostics.WARN  # no image yet
    for i in range(11):
        clock.t = i * 0.1
        stats.image_received()
        stats.frame_done(latency=0.05, processing=0.04, inference=0.03, people=2, tracked=1)
    snap = stats.snapshot()
    assert snap.input_rate == pytest.approx(10.0) and snap.latency == pytest.approx(0.05)
    assert diagnostics.assess(snap, 1.0) == (diagnostics.OK, "10.0 Hz, 2 people")
    stats.frame_failed("boom")
    level, text = diagnostics.assess(stats.snapshot(), 1.0)
    assert level == diagnostics.ERROR and "boom" in text
    assert diagnostics.assess(stats.snapshot(), 1.0, errors_before=1)[0] == diagnostics.OK
    clock.t = 10.0
    assert diagnostics.assess(stats.snapshot(), 1.0, errors_before=1)[0] == diagnostics.WARN  # quiet
    msg = diagnostics.build_diagnostic_array(
        RosbagsFactory(store), 42, "detector", "cpu", diagnostics.OK, "ok", diagnostics.key_values(snap)
    )
    round_trip(store, msg)
    assert {kv.key for kv in msg.status[0].values} >= {"input rate", "inference time (median)", "tracked"}


# ------------------------------------------------------------------------------ one code path
def test_generated_and_rosbags_factories_give_the_same_wire_bytes(scene):
    frame, faces = scene
    store = make_typestore("jazzy")
    tracks = fake_tracks(frame)
    options = OutputOptions(publish_people=True, publish_meshes=True, publish_hri=True)
    built = {}
    factories = (("rosbags", RosbagsFactory(store)), ("generated", GeneratedFactory(fake_generated_classes(store))))
    image = np.random.default_rng(0).integers(0, 256, (*frame.image_size, 3), dtype=np.uint8)  # the crops' pixels
    for name, factory in factories:
        builder = OutputBuilder(factory, faces, options)
        out = builder.build(frame, HEADER, tracks, intrinsics_source="camera_info", image=image)
        assert any(m.msgtype == "sensor_msgs/msg/Image" for m in out.hri.messages)  # ROS4HRI's cropped
        assert len(out.transforms) > 2  # the body part frames too
        diag = diagnostics.build_diagnostic_array(factory, 1, "d", "cpu", diagnostics.WARN, "m", [("k", "v")])
        built[name] = [out.humans, tf.tf_message(factory, out.transforms), out.markers, out.people, diag,
                       builder.mesh_topology(3, int(faces.max()) + 1, "makehuman")]  # fmt: skip
        built[name] += [m.msg for m in out.hri.messages]
    for ours, theirs in zip(built["rosbags"], built["generated"]):
        converted = to_rosbags(store, theirs)
        typename = type(ours).__msgtype__
        assert bytes(store.serialize_cdr(ours, typename)) == bytes(store.serialize_cdr(converted, typename)), typename


def test_factories_refuse_unknown_fields_and_fill_defaults():
    store = make_typestore("humble")
    for factory in (RosbagsFactory(store), GeneratedFactory(fake_generated_classes(store))):
        with pytest.raises(TypeError, match="no field"):
            factory.new("geometry_msgs/msg/Point", x=1.0, w=2.0)
        marker = factory.new("visualization_msgs/msg/Marker", ns="a")
        assert marker.ns == "a" and marker.pose.orientation.w == 0.0 and len(marker.points) == 0
        t = factory.time(-1)  # one nanosecond before the epoch
        assert (t.sec, t.nanosec) == (-1, 999_999_999)
