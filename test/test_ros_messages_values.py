"""Message builders, value by value after a CDR round trip: marker geometry and
headers, marker lifetime, the mesh topology's faces and names, people_msgs tags,
the diagnostics' numbers, HumanArray's fov_y and unknown angular twist, and
unknown track states refused.

test_ros_messages.py checks types, sizes and the wire; here every expected value is
derived from the inputs by hand, so a builder that zeroes, blanks or swaps a field
fails. Values are read from the deserialized message: what a subscriber gets.
"""

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from mhr2_ros.body import SKELETON_EDGES
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.ros import diagnostics, markers, messages, people, persons
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
from mhr2_ros.ros.typestore import DISTROS, make_typestore
from mhr2_ros.tracking.track import TrackState
from ros_fakes import FakeTrack, fake_tracks, round_trip

HEADER = messages.SourceHeader(stamp_ns=1_700_000_000_123_456_789, frame_id="camera_color_optical_frame")
SEC, NANOSEC = 1_700_000_000, 123_456_789  # HEADER's stamp split by hand


@pytest.fixture(scope="module")
def scene(body_model):
    _, frame = render_demo_scene(body_model, width=160, height=120)
    return frame, body_model.faces.cpu().numpy()


def _wire(store, msg):
    """The message as a subscriber gets it: serialized to CDR and read back."""
    typename = type(msg).__msgtype__
    return store.deserialize_cdr(round_trip(store, msg), typename)


def _xyz(points):
    return np.array([[p.x, p.y, p.z] for p in points])


# ------------------------------------------------------------------------------ markers
@pytest.mark.parametrize("distro", DISTROS)
def test_markers_carry_the_image_header_and_each_persons_geometry(scene, distro):
    frame, faces = scene
    store = make_typestore(distro)
    full_mesh = markers.MarkerOptions(mesh_resolution=0.0)  # no clustering: points are the vertices at the faces
    tracker = markers.MarkerTracker(RosbagsFactory(store), faces, full_mesh)
    tracks = fake_tracks(frame)  # t0, t1 visible, velocities (0.5, 0, 0) and (0.5, 0, -0.2) m/s
    msg = _wire(store, tracker.build(HEADER, persons.person_views(frame, tracks)))
    by_key = {(m.ns, m.id): m for m in msg.markers}
    assert len(by_key) == 8  # four kinds for each of t0, t1
    for m in msg.markers:
        assert m.header.frame_id == HEADER.frame_id, m.ns
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == (SEC, NANOSEC), m.ns
        assert (m.lifetime.sec, m.lifetime.nanosec) == (0, 0)  # default: until deleted
    for track in tracks[:2]:
        h, mid = track.human, markers.marker_id(track.id)
        joints = np.asarray(h.joints_3d, np.float64)
        line_ends = [joints[i] for edge in SKELETON_EDGES for i in edge]  # LINE_LIST: a, b of each bone
        np.testing.assert_allclose(_xyz(by_key[markers.NS_SKELETON, mid].points), line_ends, atol=1e-9)
        vertices = np.asarray(h.vertices, np.float64)
        corners = [vertices[i] for face in faces for i in face]  # TRIANGLE_LIST: the corners of each face
        np.testing.assert_allclose(_xyz(by_key[markers.NS_MESH, mid].points), corners, atol=1e-6)
        label = by_key[markers.NS_LABEL, mid]
        name, score = label.text.split()  # README: "id and score as text"
        assert name == track.id and float(score) == pytest.approx(float(h.score), abs=0.005)
        up = np.asarray(h.orientation) @ np.array([0.0, 0.0, 1.0])  # the body's z axis in the camera frame
        above = np.asarray(h.position) + up * markers.LABEL_ABOVE * float(h.height)  # "in body heights"
        p = label.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], above, atol=1e-6)
        assert np.linalg.norm(above - h.position) > 0.5  # well away from the pelvis: a blanked pose fails
        start, end = _xyz(by_key[markers.NS_VELOCITY, mid].points)
        np.testing.assert_allclose(start, h.position, atol=1e-6)  # the arrow starts at the pelvis
        np.testing.assert_allclose(end - start, track.velocity * 1.0, atol=1e-9)  # and spans one second


def test_the_clustered_mesh_marker_stays_on_the_body(scene):
    """The default (2 cm clustering) mesh: each point is the mean of vertices in one 2 cm
    voxel, so within a voxel diagonal of some vertex, and together they span the body."""
    frame, faces = scene
    tracker = markers.MarkerTracker(RosbagsFactory(make_typestore("jazzy")), faces)
    msg = tracker.build(HEADER, persons.person_views(frame))
    mesh = next(m for m in msg.markers if m.ns == markers.NS_MESH and m.id == markers.marker_id("gt0"))
    points, vertices = _xyz(mesh.points), np.asarray(frame.humans[0].vertices, np.float64)
    distance, _ = cKDTree(vertices).query(points)
    assert distance.max() <= 0.02 * math.sqrt(3)
    np.testing.assert_allclose(points.min(axis=0), vertices.min(axis=0), atol=0.02)
    np.testing.assert_allclose(points.max(axis=0), vertices.max(axis=0), atol=0.02)


def test_marker_lifetime_reaches_every_marker_as_sec_and_nanosec(scene):
    frame, faces = scene
    store = make_typestore("jazzy")
    builder = OutputBuilder(RosbagsFactory(store), faces, OutputOptions(marker_lifetime=1.5))
    msg = _wire(store, builder.build(frame, HEADER, fake_tracks(frame)).markers)
    assert len(msg.markers) == 8
    assert {(m.lifetime.sec, m.lifetime.nanosec) for m in msg.markers} == {(1, 500_000_000)}  # 1.5 s


# ------------------------------------------------------------------------------ mesh topology
@pytest.mark.parametrize("distro", DISTROS)
def test_mesh_topology_carries_the_faces_in_order_and_its_names(scene, body_model, distro):
    _, faces = scene
    store = make_typestore(distro)
    f = RosbagsFactory(store)
    msg = _wire(store, messages.build_mesh_topology(f, faces, body_model.num_vertices, HEADER.stamp_ns, "makehuman"))
    np.testing.assert_array_equal(np.reshape(msg.faces, (-1, 3)), faces)  # same triangles, same winding
    assert msg.num_vertices == body_model.num_vertices
    assert msg.rig == "makehuman" and msg.body_model == "anny"  # the default body model
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (SEC, NANOSEC)
    assert msg.header.frame_id == ""  # vertices carry their own frame (MeshTopology.msg)
    tiny = np.array([[0, 1, 2], [2, 1, 3]])
    other = _wire(store, messages.build_mesh_topology(f, tiny, 4, 7, "default", body_model="other"))
    assert list(other.faces) == [0, 1, 2, 2, 1, 3]
    assert (other.rig, other.body_model, other.num_vertices) == ("default", "other", 4)
    assert (other.header.stamp.sec, other.header.stamp.nanosec) == (0, 7)


# ------------------------------------------------------------------------------ people
@pytest.mark.parametrize("distro", DISTROS)
def test_people_carry_the_header_tags_and_the_whole_velocity(scene, distro):
    frame, _ = scene
    store = make_typestore(distro)
    tracks = fake_tracks(frame, ("tracked", "occluded"))
    tracks[1].age, tracks[1].time_since_seen = 2.25, 0.125  # distinct: swapped tags fail
    msg = _wire(store, people.build_people(RosbagsFactory(store), HEADER, persons.person_views(frame, tracks)))
    assert msg.header.frame_id == HEADER.frame_id
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (SEC, NANOSEC)
    seen, hidden = msg.people
    # tagnames tracking_state, height, age, time_since_seen; numbers with three decimals
    height = float(frame.humans[1].height)
    assert list(hidden.tagnames) == ["tracking_state", "height", "age", "time_since_seen"]
    assert list(hidden.tags) == ["occluded", f"{height:.3f}", "2.250", "0.125"]
    assert list(seen.tags) == ["tracked", f"{float(frame.humans[0].height):.3f}", "1.500", "0.000"]
    assert float(hidden.tags[1]) == pytest.approx(height, abs=5e-4)
    assert [hidden.velocity.x, hidden.velocity.y, hidden.velocity.z] == pytest.approx([0.5, 0.0, -0.2])
    assert [seen.velocity.x, seen.velocity.y, seen.velocity.z] == pytest.approx([0.5, 0.0, 0.0])
    p = frame.humans[1].position
    assert [hidden.position.x, hidden.position.y, hidden.position.z] == pytest.approx(p.tolist(), abs=1e-9)


# ------------------------------------------------------------------------------ diagnostics
def test_diagnostic_values_are_the_measured_numbers():
    """Images at 10 Hz, every second one processed (5 Hz out): each value from the inputs."""
    store = make_typestore("jazzy")
    clock = SimpleNamespace(t=0.0)
    stats = diagnostics.DetectorStats(clock=lambda: clock.t)
    latencies = iter([0.05, 0.09, 0.06, 0.08, 0.07, 0.12])  # median (0.07 + 0.08) / 2, max 0.12
    for i in range(11):  # images at t = 0.0, 0.1, ..., 1.0 s
        clock.t = i * 0.1
        stats.image_received()
        if i % 2 == 0:  # frames published at t = 0.0, 0.2, ..., 1.0 s
            latency = next(latencies)
            stats.frame_done(latency=latency, processing=latency - 0.01, inference=0.03, people=i, tracked=i // 2,
                             started=int(i in (0, 4, 8)),  # the first frame's start is before the window's span
                             level_roll=None if i < 10 else -12.5)  # the last frame's image was levelled
    stats.image_dropped()
    stats.image_dropped()
    stats.image_dropped(stale=True)
    snap = stats.snapshot()
    msg = diagnostics.build_diagnostic_array(
        RosbagsFactory(store), HEADER.stamp_ns, "detector", "cuda:0", diagnostics.OK, "ok",
        diagnostics.key_values(snap),
    )  # fmt: skip
    (status,) = _wire(store, msg).status
    assert (status.name, status.hardware_id, status.level, status.message) == ("detector", "cuda:0", 0, "ok")
    assert {kv.key: kv.value for kv in status.values} == {
        "input rate": "10 Hz",  # 10 intervals in 1 s
        "output rate": "5 Hz",  # 5 intervals in 1 s
        "latency (stamp to publish, median)": "0.075 s",
        "latency (stamp to publish, max)": "0.12 s",
        "processing (receipt to publish, median)": "0.065 s",
        "inference time (median)": "0.03 s",
        "people": "10",  # the last frame's (i = 10)
        "tracked": "5",
        "tracks started (per minute; far above the people arriving: ids break)": "120 /min",  # 2 in 1 s
        "images dropped (newer arrived)": "2",
        "images dropped (too old)": "1",
        "failed frames": "0",
        "camera roll levelled (last frame)": "-12.5 deg",
    }
    empty = dict(diagnostics.key_values(diagnostics.DetectorStats(clock=lambda: 0.0).snapshot()))
    assert empty["input rate"] == "0 Hz" and empty["latency (stamp to publish, median)"] == "n/a"
    assert empty["tracks started (per minute; far above the people arriving: ids break)"] == "n/a"
    assert empty["camera roll levelled (last frame)"] == "no"


# ------------------------------------------------------------------------------ HumanArray
@pytest.mark.parametrize("tracked", [False, True])
def test_human_array_fov_and_twist_covariance_on_the_wire(scene, tracked):
    frame, _ = scene
    store = make_typestore("humble")
    views = persons.person_views(frame, fake_tracks(frame) if tracked else None)
    msg = _wire(store, messages.build_human_array(RosbagsFactory(store), frame, HEADER, views))
    height, width = frame.image_size
    assert (msg.image_height, msg.image_width) == (height, width)
    assert msg.fov_y == pytest.approx(float(frame.fov_y), rel=1e-6)  # float32 on the wire
    assert msg.fov_y == pytest.approx(2 * math.atan(height / 2 / frame.K[1, 1]), rel=1e-4)  # the fov of k
    unknown = make_typestore("humble").types["mhr2_ros/msg/Human"].UNKNOWN_VARIANCE
    assert unknown == 1.0e6
    for m in msg.humans:
        cov = np.reshape(m.velocity.covariance, (6, 6))
        np.testing.assert_array_equal(cov[3:, 3:], np.eye(3) * unknown)  # angular: not estimated
        np.testing.assert_array_equal(cov[:3, 3:], 0.0)
        np.testing.assert_array_equal(cov[3:, :3], 0.0)
        linear = np.eye(3) * (0.01 if tracked else unknown)  # fake_tracks' velocity_cov: 0.01 I
        np.testing.assert_allclose(cov[:3, :3], linear)
        angular = m.velocity.twist.angular
        assert (angular.x, angular.y, angular.z) == (0.0, 0.0, 0.0)


# ------------------------------------------------------------------------------ track states
def test_an_unknown_track_state_is_refused_by_name(scene):
    frame, _ = scene
    odd = FakeTrack("t0", "walking", frame.humans[0], np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match=r"track 't0': unknown state 'walking'"):
        persons.person_views(frame, [odd])
    # the tracker's enum is read by value and maps onto Human.msg's STATE_* constants
    human = make_typestore("jazzy").types["mhr2_ros/msg/Human"]
    enum_tracks = [dataclasses.replace(odd, state=TrackState.OCCLUDED)]
    (view,) = persons.person_views(frame, enum_tracks)
    assert view.state == "occluded"
    msg = messages.build_human_array(RosbagsFactory(make_typestore("jazzy")), frame, HEADER, [view])
    assert msg.humans[0].tracking_state == human.STATE_OCCLUDED
