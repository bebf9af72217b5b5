"""Tracking through the ROS outputs: `mhr2 bag` and the node's session with the real tracker.

A rendered synthetic clip (two people walking 2 m apart) is written into a rosbag2.
The shipped (weak, CPU-trained) network does not follow people reliably, so persistent identities are
checked with a detector that sees exactly the people the renderer drew (the ground
truth of each decoded image, looked up by its pixels); each published Human is matched
to its ground-truth person by pelvis position.
"""

import dataclasses

import numpy as np
import pytest
import yaml

from mhr2_ros.config import ConfigError, InferenceConfig
from mhr2_ros.geometry import nearness_from_depth
from mhr2_ros.io.rosbag import BagImageReader
from mhr2_ros.ros import params
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.markers import ADD, DELETE, marker_id
from mhr2_ros.ros.outputs import OutputOptions
from mhr2_ros.ros.session import DetectorSession
from mhr2_ros.tracking.build import make_tracker
from mhr2_ros.tracking.track import TRACK_ID_PATTERN
from mhr2_ros.training.synthetic.config import SynthConfig
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result
from test_rosbag import STORE, T0, TOPIC, _run, image_msg, read_topics, write_bag

pytestmark = pytest.mark.usefixtures("one_torch_thread")

UNTRACKED, NEW, TRACKED, OCCLUDED = 0, 1, 2, 3  # Human.STATE_*
FRAMES, PERIOD_NS = 6, 100_000_000  # the clip's 10 fps
MISSED_FROM = 4  # the detector misses person 1 from this frame on (it "vanishes")
MATCH_M = 1e-3  # a published pelvis is its ground truth (float32) to well under this
OPTIONS = OutputOptions(marker_mesh=False)


@pytest.fixture(scope="module")
def clip(body_model):
    """6 frames, 160x120: persons 0 and 1 walk, about 2 m apart, both in view throughout."""
    base = SynthConfig()
    cfg = dataclasses.replace(
        base, frames=FRAMES,
        camera=dataclasses.replace(base.camera, size=(160, 120), fov_deg=(60.0, 60.0)),
        placement=dataclasses.replace(base.placement, people=(2, 2), distance_m=(3.0, 6.0), group_probability=0.0,
                                      obstacles=(0, 0), behaviour_weights=(1.0, 0.0, 0.0, 0.0, 0.0)),
    )  # fmt: skip
    frames = list(SyntheticClip(cfg, seed=0, body=body_model))
    assert all(list(f.truth.ids) == [0, 1] and (f.truth.visible_pixels > 0).all() for f in frames)
    return frames


class TruthDetector:
    """Detects the people the renderer drew in an image (found by its pixels), minus `missed`."""

    faces = None  # no mesh: markers without meshes, no mesh_topology

    def __init__(self, frames, missed=()):
        self.cfg = InferenceConfig()
        self.frames = {f.image.tobytes(): f for f in frames}
        self.missed = set(missed)  # (frame index, person id)

    def __call__(self, image, K=None, depth=None, floor=None, gravity=None):  # Detector's; the truth needs none
        frame = self.frames[np.ascontiguousarray(image).tobytes()]
        result = to_frame_result(frame.truth)
        focal = float(result.K[1, 1])
        humans = []
        for h in result.humans:
            if (frame.index, int(h.track_id)) not in self.missed:
                humans.append(dataclasses.replace(
                    h, track_id=None, nearness=float(nearness_from_depth(h.depth, focal, focal)),
                ))  # fmt: skip
        return dataclasses.replace(result, humans=humans)


def _missed():
    return {(i, 1) for i in range(MISSED_FROM, FRAMES)}


def _stamp(i):
    return T0 + i * PERIOD_NS


@pytest.fixture(scope="module")
def bag(clip, tmp_path_factory):
    return write_bag(tmp_path_factory.mktemp("in") / "in", "mcap", [(_stamp(f.index), f.image) for f in clip])


def _person_of(human, truth):
    """Ground-truth id of a published Human, by its pelvis position."""
    p = human.pelvis.pose.position
    dist = np.linalg.norm(truth.position - [p.x, p.y, p.z], axis=1)
    assert dist.min() < MATCH_M, f"{human.id} is nobody: {dist}"
    return int(truth.ids[dist.argmin()])


def _ids_by_person(humans_msgs, clip):
    """{person: [published id per frame where seen]} over the visible Humans."""
    out = {}
    for msg, frame in zip(humans_msgs, clip):
        for h in msg.humans:
            if h.tracking_state in (UNTRACKED, NEW, TRACKED):
                out.setdefault(_person_of(h, frame.truth), []).append(h.id)
    return out


# ------------------------------------------------------------------------------ mhr2 bag
def test_bag_ids_follow_each_person_and_vanished_markers_are_deleted(tmp_path, clip, bag):
    reader = BagImageReader(bag, TOPIC, typestore=STORE)
    summary = _run(reader, tmp_path / "out", TruthDetector(clip, _missed()), OPTIONS, tracker=make_tracker())
    topics, _ = read_topics(tmp_path / "out")
    humans = [m for _, m in topics["/humans"]]
    ids = _ids_by_person(humans, clip)
    assert len(ids[0]) == FRAMES and len(ids[1]) == MISSED_FROM
    (id0,), (id1,) = set(ids[0]), set(ids[1])  # one id per person, for all its frames
    assert id0 != id1 and all(TRACK_ID_PATTERN.match(i) and i.startswith("h") for i in (id0, id1))
    assert summary.track_ids == {id0, id1}
    states = [{h.id: h.tracking_state for h in m.humans} for m in humans]
    assert [s[id0] for s in states] == [NEW, NEW, TRACKED, TRACKED, TRACKED, TRACKED]  # new_track_hits: 3
    assert [s[id1] for s in states[MISSED_FROM:]] == [OCCLUDED, OCCLUDED]  # kept, not seen
    # an occluded person is published where the motion model puts it, not where last seen
    hidden = [next(h for h in m.humans if h.id == id1).pelvis.pose.position for m in humans[MISSED_FROM - 1:]]
    walked = np.linalg.norm(clip[-1].truth.position[1] - clip[MISSED_FROM - 1].truth.position[1])
    moved = np.linalg.norm([hidden[-1].x - hidden[0].x, hidden[-1].y - hidden[0].y, hidden[-1].z - hidden[0].z])
    assert walked > 0.1 and abs(moved - walked) < 0.5 * walked
    # velocity from the track: the ground truth's, by finite differences
    truth = np.array([f.truth.position[0] for f in clip], np.float64)
    expected = (truth[-1] - truth[-3]) / (2 * PERIOD_NS / 1e9)
    v = next(h for h in humans[-1].humans if h.id == id0).velocity.twist.linear
    assert np.linalg.norm([v.x - expected[0], v.y - expected[1], v.z - expected[2]]) < 0.25 * np.linalg.norm(expected)
    # TF: one body_<id> per visible person, named after the persistent ids
    tf = [sorted(t.child_frame_id for t in m.transforms) for _, m in topics["/tf"]]
    assert tf == [sorted([f"body_{id0}", f"body_{id1}"])] * MISSED_FROM + [[f"body_{id0}"]] * (FRAMES - MISSED_FROM)
    # markers: person 1's are deleted when it vanishes and never added again
    markers = [m.markers for _, m in topics["/markers"]]
    mid = marker_id(id1)
    added = [{m.ns for m in ms if m.id == mid and m.action == ADD} for ms in markers]
    deleted = {m.ns for m in markers[MISSED_FROM] if m.id == mid and m.action == DELETE}
    assert added[MISSED_FROM - 1] and deleted == added[MISSED_FROM - 1]
    assert not any(added[MISSED_FROM:])


def test_without_tracking_ids_are_per_image(tmp_path, clip, bag):
    reader = BagImageReader(bag, TOPIC, typestore=STORE)
    summary = _run(reader, tmp_path / "out", TruthDetector(clip, _missed()), OPTIONS)
    topics, _ = read_topics(tmp_path / "out")
    humans = [m for _, m in topics["/humans"]]
    for msg in humans:
        assert [h.id for h in msg.humans] == [f"p{i}" for i in range(len(msg.humans))]
        assert {h.tracking_state for h in msg.humans} == {UNTRACKED}
    ids = _ids_by_person(humans, clip)
    assert set(ids[0]) == {"p0", "p1"}  # person 0 is p1 behind the nearer person 1, p0 once alone
    assert summary.track_ids == set()


# ------------------------------------------------------------------------------ session
def _session(clip, missed=(), **values):
    s = DetectorSession(RosbagsFactory(STORE), {"marker_mesh": False, **values})
    s.attach(TruthDetector(clip, missed))
    return s


def _feed(session, clip, indices, stamps=None):
    """Process clip frames `indices` (stamped `stamps`, default their own); the runs."""
    stamps = stamps if stamps is not None else [_stamp(i) for i in indices]
    return [session.process(image_msg(clip[i].image, s), compressed=False) for i, s in zip(indices, stamps)]


def _visible_ids(run):
    return [h.id for h in run.outputs.humans.humans if h.tracking_state in (NEW, TRACKED)]


def test_session_tracks_by_default_across_dropped_frames(clip):
    session = _session(clip)
    assert params.DEFAULTS["track"] and session.tracker is not None
    runs = _feed(session, clip, [0, 1, 3, 5])  # frames 2 and 4 dropped: stamps say how long it was
    by_person = _ids_by_person([r.outputs.humans for r in runs], [clip[i] for i in (0, 1, 3, 5)])
    assert {p: len(set(v)) for p, v in by_person.items()} == {0: 1, 1: 1}
    assert runs[-1].tracked == 2 and runs[-1].people == 2
    assert [r.started for r in runs] == [2, 0, 0, 0]  # the diagnostics' tracks started: two ids, once
    assert [t.child_frame_id for t in runs[-1].outputs.transforms] == [f"body_{i}" for i in _visible_ids(runs[-1])]


def test_stamps_going_back_start_fresh_tracks(clip):
    session = _session(clip)
    before = _feed(session, clip, [0, 1, 2])
    old = set(_visible_ids(before[-1]))
    looped = _feed(session, clip, [0, 1])  # a looping bag: stamps jump back
    new = set(_visible_ids(looped[0]))
    assert len(new) == 2 and not new & old  # fresh tracks, ids never reused
    assert [r.started for r in looped] == [2, 0]
    assert {h.id for h in looped[0].outputs.humans.humans} == new  # the old tracks are gone
    deleted = {m.id for m in looped[0].outputs.markers.markers if m.action == DELETE}
    assert {marker_id(i) for i in old} <= deleted
    assert set(_visible_ids(looped[1])) == new


def test_track_parameter_switches_at_once_and_tracker_config_is_read(clip, tmp_path):
    settings = tmp_path / "tracker.yaml"
    settings.write_text(yaml.safe_dump({"id_prefix": "person", "new_track_hits": 1}))
    session = _session(clip, track=True, tracker_config=str(settings))
    first = _feed(session, clip, [0])[0]
    assert sorted(_visible_ids(first)) == ["person1", "person2"] and first.tracked == 2  # tracked at once
    session.update({"track": False})
    off = _feed(session, clip, [1])[0]
    assert session.tracker is None and [h.id for h in off.outputs.humans.humans] == ["p0", "p1"] and off.tracked == 0
    assert off.started == 0  # no tracker, no tracks
    session.update({"track": True})
    on = _feed(session, clip, [2])[0]
    assert sorted(_visible_ids(on)) == ["person3", "person4"]  # fresh tracks, the same tracker's counter


def test_a_new_tracker_config_goes_on_counting_ids(clip, tmp_path):
    session = _session(clip)
    before = set(_visible_ids(_feed(session, clip, [0])[0]))
    assert before == {"h1", "h2"}
    settings = tmp_path / "tracker.yaml"
    settings.write_text(yaml.safe_dump({"new_track_hits": 1}))
    session.update({"tracker_config": str(settings)})
    session.attach(session.detector)  # what the next configure does: the settings are read
    after = set(_visible_ids(_feed(session, clip, [1])[0]))
    assert after == {"h3", "h4"}  # body_h1 is never someone else


def test_a_bad_tracker_config_is_refused_clearly(clip, tmp_path):
    spec = params.BY_NAME["tracker_config"]
    assert spec.applies == params.CONFIGURE and "tracker_config" in spec.problem("tracker.txt")
    with pytest.raises(ConfigError, match="missing.yaml"):
        _session(clip, tracker_config=str(tmp_path / "missing.yaml"))
    (tmp_path / "bad.yaml").write_text("knn_k: 0\n")
    with pytest.raises(ConfigError, match="knn_k"):
        _session(clip, tracker_config=str(tmp_path / "bad.yaml"))
