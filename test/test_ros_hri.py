"""ROS4HRI (REP-155) body topics: names, contents, CDR round trips and publisher bookkeeping."""

import numpy as np
import pytest

from mhr2_ros.body import JOINT_NAMES
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.ros import hri, params, persons
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.outputs import OutputBuilder, OutputOptions
from mhr2_ros.ros.typestore import DISTROS, SKELETON_2D_POINTS, make_typestore
from ros_fakes import fake_tracks, round_trip

HEADER = SourceHeader(stamp_ns=1_700_000_000_500_000_000, frame_id="head_camera_optical_frame")


@pytest.fixture(scope="module")
def scene(body_model):
    image, frame = render_demo_scene(body_model, width=160, height=120)
    assert len(frame.humans) >= 3
    return image, frame


@pytest.fixture(scope="module")
def frame(scene):
    return scene[1]


def _by_topic(hri_frame):
    return {m.topic: m for m in hri_frame.messages}


@pytest.mark.parametrize("distro", DISTROS)
def test_tracked_bodies_get_their_rep155_topics(scene, distro):
    image, frame = scene
    store = make_typestore(distro)
    tracks = fake_tracks(frame, states=("tracked", "new", "occluded"))
    out = OutputBuilder(RosbagsFactory(store), None, OutputOptions(publish_hri=True, publish_markers=False))
    hri_frame = out.build(frame, HEADER, tracks, image=image).hri
    msgs = _by_topic(hri_frame)
    assert hri_frame.messages[0].topic == "/humans/bodies/tracked"
    assert list(msgs["/humans/bodies/tracked"].msg.ids) == ["t0", "t1"]  # the occluded t2 is not seen now
    assert set(msgs) == {"/humans/bodies/tracked"} | {
        f"/humans/bodies/{i}/{leaf}" for i in ("t0", "t1") for leaf in hri.BODY_TOPICS
    }
    assert hri_frame.live_topics == {"/humans/bodies/tracked"} | {
        f"/humans/bodies/{i}/{leaf}" for i in ("t0", "t1", "t2") for leaf in hri.BODY_TOPICS
    }  # t2's publishers stay open while its track lives
    for message in hri_frame.messages:
        assert type(message.msg).__msgtype__ == message.msgtype
        round_trip(store, message.msg)
        assert message.msg.header.frame_id == HEADER.frame_id
        assert message.msg.header.stamp.sec == 1_700_000_000 and message.msg.header.stamp.nanosec == 500_000_000
    human, (height, width) = frame.humans[1], frame.image_size
    roi = msgs["/humans/bodies/t1/roi"].msg
    box = np.clip(human.box / [width, height, width, height], 0, 1)
    assert [roi.xmin, roi.ymin, roi.xmax, roi.ymax] == pytest.approx(box.tolist(), abs=1e-6)
    assert roi.c == pytest.approx(human.score)
    skeleton = msgs["/humans/bodies/t1/skeleton2d"].msg.skeleton
    nose = human.keypoints_2d[JOINT_NAMES.index("nose")] / [width, height]
    assert len(skeleton) == 18 and [skeleton[0].x, skeleton[0].y] == pytest.approx(nose.tolist(), abs=1e-6)
    left_ankle = human.keypoints_2d[JOINT_NAMES.index("left_ankle")] / [width, height]
    point = skeleton[SKELETON_2D_POINTS.index("LEFT_ANKLE")]
    assert [point.x, point.y] == pytest.approx(np.clip(left_ankle, 0, 1).tolist(), abs=1e-6)
    crop = msgs["/humans/bodies/t1/cropped"].msg  # REP-155's other required topic: the pixels in the roi
    x0, y0, x1, y1 = int(np.floor(human.box[0])), int(np.floor(human.box[1])), int(np.ceil(human.box[2])), int(
        np.ceil(human.box[3]))  # fmt: skip
    assert (crop.encoding, crop.height, crop.width, crop.step) == ("rgb8", y1 - y0, x1 - x0, 3 * (x1 - x0))
    np.testing.assert_array_equal(crop.data.reshape(crop.height, crop.width, 3), image[y0:y1, x0:x1])
    position = msgs["/humans/bodies/t1/position"].msg.point
    assert [position.x, position.y, position.z] == pytest.approx(human.position.tolist(), abs=1e-6)
    assert msgs["/humans/bodies/t1/velocity"].msg.twist.linear.z == pytest.approx(tracks[1].velocity[2])


def test_untracked_people_have_no_velocity_and_lost_tracks_no_topics(frame):
    f = RosbagsFactory(make_typestore("jazzy"))
    untracked = hri.build_hri(f, HEADER, persons.person_views(frame), frame.image_size, "/robot1/humans")
    topics = set(_by_topic(untracked))
    body = f"/robot1/humans/bodies/{frame.humans[0].track_id}/"  # the demo scene names its people
    assert body + "position" in topics and body + "velocity" not in topics
    lost = fake_tracks(frame, states=("lost", "tracked"))
    built = hri.build_hri(f, HEADER, persons.person_views(frame, lost), frame.image_size)
    assert list(built.messages[0].msg.ids) == ["t1"]
    assert not any("/t0/" in topic for topic in built.live_topics | set(_by_topic(built)))


@pytest.mark.parametrize("box, rows, cols", [
    ([10.2, 5.7, 20.0, 9.1], (5, 10), (10, 20)),  # widened to whole pixels
    ([-4.0, -3.0, 500.0, 300.0], (0, 12), (0, 16)),  # clipped to the image
    ([7.5, 3.0, 7.5, 3.0], (3, 4), (7, 8)),  # empty: one pixel
    ([16.0, 12.0, 16.0, 12.0], (11, 12), (15, 16)),  # at the far corner: its last pixel
])  # fmt: skip
def test_cropped_images_are_the_box_in_whole_pixels(box, rows, cols):
    image = np.arange(12 * 16 * 3, dtype=np.uint32).reshape(12, 16, 3).astype(np.uint8)
    fields = hri.cropped(image, np.array(box))
    expected = image[rows[0]:rows[1], cols[0]:cols[1]]
    assert (fields["height"], fields["width"]) == expected.shape[:2] and fields["step"] == 3 * expected.shape[1]
    np.testing.assert_array_equal(fields["data"], expected.reshape(-1))


def test_skeleton_points_are_normalised_clipped_and_zero_confidence_outside():
    keypoints = np.zeros((len(JOINT_NAMES), 2))
    keypoints[JOINT_NAMES.index("nose")] = (50.0, 25.0)  # inside a 200 x 100 (w x h) image
    keypoints[JOINT_NAMES.index("neck")] = (250.0, -10.0)  # right of and above it
    points = hri.skeleton_points(keypoints, (100, 200), score=0.8)
    assert points.shape == (18, 3)
    assert points[0].tolist() == pytest.approx([0.25, 0.25, 0.8])
    assert points[1].tolist() == pytest.approx([1.0, 0.0, 0.0])
    box = hri.normalized_box(np.array([-20.0, 10.0, 100.0, 150.0]), (100, 200))
    assert box.tolist() == pytest.approx([0.0, 0.1, 0.5, 1.0])


def test_skeleton_order_is_hri_msgs_and_maps_to_our_joints():
    assert hri.SKELETON_JOINTS[:3] == ("nose", "neck", "right_shoulder") and len(hri.SKELETON_JOINTS) == 18
    assert [JOINT_NAMES[i] for i in hri.SKELETON_INDICES] == list(hri.SKELETON_JOINTS)
    consts = make_typestore("humble").fielddefs[hri.SKELETON_2D][0]
    assert [(name, value) for name, _, value in consts] == [(n, i) for i, n in enumerate(SKELETON_2D_POINTS)]


@pytest.mark.parametrize("good", ["/humans", "/robot1/humans", "/a_b/c2"])
def test_namespaces_rep155_accepts(good):
    assert hri.namespace_problem(good) == ""
    assert params.problems({"hri_namespace": good}) == ()


@pytest.mark.parametrize("bad", ["", "humans", "/humans/", "/1x", "//humans", "/hu-mans"])
def test_namespaces_that_are_refused_say_why(bad):
    assert "absolute ROS namespace" in hri.namespace_problem(bad)
    (problem,) = params.problems({"hri_namespace": bad})
    assert problem.startswith("hri_namespace must be")
    with pytest.raises(ValueError, match="ROS4HRI namespace"):
        hri.build_hri(RosbagsFactory(make_typestore("jazzy")), HEADER, [], (10, 10), bad)


def test_publishers_close_with_their_bodies_and_when_turned_off(scene):
    image, frame = scene
    f = RosbagsFactory(make_typestore("jazzy"))
    first = hri.build_hri(f, HEADER, persons.person_views(frame, fake_tracks(frame)), frame.image_size, image=image)
    opened = {m.topic for m in first.messages}
    assert hri.publishers_to_close(opened, first) == []
    later = fake_tracks(frame, states=("tracked", "lost", "occluded"))
    second = hri.build_hri(f, HEADER, persons.person_views(frame, later), frame.image_size)
    assert hri.publishers_to_close(opened, second) == sorted(f"/humans/bodies/t1/{leaf}" for leaf in hri.BODY_TOPICS)
    cleared = hri.cleared(f, HEADER, "/humans")
    assert list(cleared.messages[0].msg.ids) == [] and len(cleared.messages) == 1
    assert hri.publishers_to_close(opened, cleared) == sorted(opened - {"/humans/bodies/tracked"})
    assert hri.publishers_to_close(opened, None) == sorted(opened)


def test_output_options_from_node_parameters(frame):
    """The node's parameter values -> OutputOptions -> the topics OutputBuilder builds."""
    options = params.output_options({"publish_hri": True, "hri_namespace": "/robot1/humans"})
    assert options.publish_hri and options.hri_namespace == "/robot1/humans"
    other = params.output_options({"publish_hri": True, "hri_namespace": "/a_b/c2", "publish_markers": False})
    assert other.hri_namespace == "/a_b/c2" and not other.publish_markers  # the value given, not a constant
    defaults = params.output_options({})
    assert not defaults.publish_hri  # off by default: it needs hri_msgs on the robot
    assert defaults.hri_namespace == "/humans"  # REP-155's namespace (README)
    builder = OutputBuilder(RosbagsFactory(make_typestore("jazzy")), None, options)
    topics = _by_topic(builder.build(frame, HEADER, fake_tracks(frame)).hri)
    assert "/robot1/humans/bodies/tracked" in topics and "/robot1/humans/bodies/t0/roi" in topics
    assert not any(topic.startswith("/humans/") for topic in topics)
    assert OutputBuilder(RosbagsFactory(make_typestore("jazzy")), None, defaults).build(frame, HEADER).hri is None


@pytest.mark.parametrize("states", [(), ("occluded",), ("occluded", "lost")])
def test_the_tracked_list_is_published_on_every_image_even_empty(frame, states):
    """README: bodies/tracked on every image, possibly empty; nobody seen -> no body topics,
    but an occluded body's publishers stay open."""
    f = RosbagsFactory(make_typestore("jazzy"))
    views = persons.person_views(frame, fake_tracks(frame, states))
    built = hri.build_hri(f, HEADER, views, frame.image_size, "/robot1/humans")
    (only,) = built.messages
    assert only.topic == "/robot1/humans/bodies/tracked" and only.msgtype == "hri_msgs/msg/IdsList"
    assert list(only.msg.ids) == []
    assert only.msg.header.frame_id == HEADER.frame_id and only.msg.header.stamp.nanosec == 500_000_000
    round_trip(make_typestore("jazzy"), only.msg)
    occluded = {f"/robot1/humans/bodies/t0/{leaf}" for leaf in hri.BODY_TOPICS} if states else set()
    assert built.live_topics == {"/robot1/humans/bodies/tracked"} | occluded


class _Publisher:
    """What rclpy's Publisher offers for the wait (Publisher.wait_for_all_acked(timeout) -> bool)."""

    def __init__(self, outcome):
        self.outcome, self.timeouts = outcome, []

    def wait_for_all_acked(self, timeout):
        self.timeouts.append(timeout)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


@pytest.mark.parametrize("outcome", [True, False])  # acknowledged, timed out: nothing to say
def test_closing_publishers_wait_for_acknowledgement_up_to_the_timeout(outcome):
    pub = _Publisher(outcome)
    assert hri.wait_acked(pub, 0.5) == "" and pub.timeouts == [0.5]
    assert hri.wait_acked(object(), 0.5) == ""  # a publisher without the call: no wait


def test_a_middleware_that_cannot_wait_is_reported_not_raised():
    # rclpy raises RCLError("Failed to wait for all acknowledgements") for RCL_RET_UNSUPPORTED
    pub = _Publisher(RuntimeError("Failed to wait for all acknowledgements"))
    assert hri.wait_acked(pub, 0.5) == "RuntimeError: Failed to wait for all acknowledgements"
