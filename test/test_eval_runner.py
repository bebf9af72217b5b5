"""`mhr2 eval`'s runner (evaluation/runner.py) and the protocol's ignore rule on real
synthetic frames: which scenes a seed renders, whom every evaluated frame ignores (a pelvis
beyond any side of the image, too few visible pixels), the true camera on request, folders of
independent images, the records of clips (one per person and frame, identities per clip), and the
IDF1 with true identities."""

import copy
import dataclasses
import json

import numpy as np
import pytest

from mhr2_ros.cli import main
from mhr2_ros.evaluation.benchmark import ignored_people
from mhr2_ros.evaluation.runner import Sequence, disk_sequences, evaluate, synthetic_sequences
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX
from mhr2_ros.training.data import MIN_VISIBLE_PIXELS
from mhr2_ros.training.synthetic.dataset import write_clip
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result
from test_eval import SMALL

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# 1-2 m away in 192x144 images: the second scene has a person whose pelvis is below the image
NEAR = dataclasses.replace(SMALL, images=3, clips=0, distance_m=(1.0, 2.0))


def first_truth(seq: Sequence):
    return next(iter(seq.frames)).truth


def test_each_sequence_renders_the_scenes_of_its_own_seed(body_model):
    """--image-seed 500 --clip-seed 600 is a tuning set disjoint from the benchmark: the images
    are the generator's scenes of seed 500 (not those of the benchmark's seed 0), clip i the
    clip of seed 600 + i (two clips, two scenes)."""
    spec = dataclasses.replace(SMALL, images=1, image_seed=500, clips=2, clip_seed=600, clip_frames=1)
    images, *clips = synthetic_sequences(spec, body_model)
    assert [images.name, *(c.name for c in clips)] == ["images (seed 500)", "clip seed 600", "clip seed 601"]

    def seed_positions(independent: bool, seed: int) -> np.ndarray:
        return SyntheticClip(spec.synth_config(independent), seed, body_model).frame(0).truth.position

    np.testing.assert_array_equal(first_truth(images).position, seed_positions(True, 500))
    assert not np.array_equal(first_truth(images).position, seed_positions(True, 0))
    for i, clip in enumerate(clips):
        np.testing.assert_array_equal(first_truth(clip).position, seed_positions(False, 600 + i))
    assert not np.array_equal(first_truth(clips[0]).position, first_truth(clips[1]).position)


def test_a_pelvis_beyond_any_side_of_the_image_is_ignored(body_model):
    """The ignore rule on all four sides of a 192x144 image (a pixel column u is inside for
    0 <= u < 192, a row v for 0 <= v < 144; a wrong (width, height) order would count a pelvis
    at row 160), and at the visibility threshold (MIN_VISIBLE_PIXELS counts, one fewer does not)."""
    truth = SyntheticClip(SMALL.synth_config(independent=True), SMALL.image_seed, body_model).frame(0).truth
    assert tuple(truth.image_size) == (144, 192)
    person = int(np.flatnonzero(truth.visible_pixels > 0)[0])
    cases = [  # (pelvis u, v), visible pixels, ignored
        ((0.0, 0.0), 500, False), ((191.5, 143.5), 500, False), ((160.0, 10.0), 500, False),
        ((-0.5, 10.0), 500, True), ((192.0, 10.0), 500, True), ((10.0, -0.5), 500, True),
        ((10.0, 144.0), 500, True), ((10.0, 160.0), 500, True),
        ((96.0, 72.0), MIN_VISIBLE_PIXELS, False), ((96.0, 72.0), MIN_VISIBLE_PIXELS - 1, True),
    ]  # fmt: skip
    for pelvis, visible, ignored in cases:
        ft = copy.deepcopy(truth)
        ft.pelvis_2d[person], ft.visible_pixels[person] = pelvis, visible
        result = to_frame_result(ft, id_prefix="p")
        flags = dict(zip((h.track_id for h in result.humans), ignored_people(ft, result)))
        assert flags[f"p{int(ft.ids[person])}"] == ignored, (pelvis, visible)


def test_every_evaluated_frame_ignores_whom_the_protocol_ignores(body_model, tiny_detector):
    """The report's counted and ignored people, overall and per sequence, are those of the rule
    applied by hand to every frame's truth (people in view: any visible pixel)."""
    sequences = []
    for seq in synthetic_sequences(NEAR, body_model):
        frames = list(seq.frames)
        sequences.append(Sequence(seq.name, frames, len(frames), seq.tracked))
    expected = {}
    for seq in sequences:
        counted = ignored = 0
        for frame in seq.frames:
            t = frame.truth
            (h, w), (u, v) = t.image_size, t.pelvis_2d.T
            seen = t.visible_pixels > 0
            inside = (t.visible_pixels >= MIN_VISIBLE_PIXELS) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
            counted, ignored = counted + int((seen & inside).sum()), ignored + int((seen & ~inside).sum())
        expected[seq.name] = (counted, ignored)
    assert sum(i for _, i in expected.values()) > 0  # the scenes hold someone to ignore
    report = evaluate(tiny_detector, sequences)
    assert (report.overall["gt_people"], report.overall["ignored_people"]) == tuple(np.sum(list(expected.values()), 0))
    for name, counts in expected.items():
        assert (report.per_sequence[name]["gt_people"], report.per_sequence[name]["ignored_people"]) == counts


def test_the_true_camera_on_request_leaves_no_fov_error(body_model, tiny_detector):
    """`mhr2 eval --gt-intrinsics` hands the detector each frame's K: the FOV error is then 0
    by construction, where the (random) network's own FOV is off by degrees."""
    spec = dataclasses.replace(SMALL, images=1, clips=0)
    given = evaluate(tiny_detector, synthetic_sequences(spec, body_model), gt_intrinsics=True).overall
    predicted = evaluate(tiny_detector, synthetic_sequences(spec, body_model)).overall
    assert given["fov_error"] == pytest.approx(0.0, abs=1e-3) and predicted["fov_error"] > 1.0


def test_a_folder_of_independent_images_is_not_tracked(body_model, tmp_path):
    """A set written with `mhr2 synth --independent` holds unrelated scenes: evaluated as
    images (no tracker, each its own resampling unit), a temporal clip as a tracked clip."""
    for name, independent in (("images", True), ("clip", False)):
        config = dataclasses.replace(SMALL.synth_config(independent), frames=1, vertices=False)
        write_clip(tmp_path / name, SyntheticClip(config, 5, body_model))
    assert [s.tracked for s in disk_sequences([tmp_path / "images", tmp_path / "clip"])] == [False, True]


def test_clip_records_keep_people_and_identities_apart(tmp_path):
    """The shipped model on two tracked clips: a clip's true positives are one record each
    (frame and person: the same person in two frames is two records, which `mhr2 compare`
    pairs by that key), and the identity counts over all clips are the sums of each clip's
    (person p1 of one clip is not person p1 of the other)."""
    out = tmp_path / "clips.json"
    assert main(["eval", "--images", "0", "--clips", "2", "--clip-frames", "3", "--json", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    data = json.loads(out.read_text())
    for unit in data["units"]:
        mine = [p["person"] for p in data["people"] if p["unit"] == unit["name"]]
        assert unit["stratum"] == "clips" and len(mine) == unit["tp"] > 3  # more than its 3 people: repeats
        assert len(set(mine)) == len(mine)
    clips = [data["per_sequence"][name] for name in ("clip seed 1", "clip seed 2")]
    for key in ("idtp", "idfp", "idfn", "idtp_2d", "idfp_2d", "idfn_2d"):
        assert data["metrics"][key] == sum(c[key] for c in clips), key
    assert all(c["idtp_2d"] > 0 for c in clips)  # tracked people in both (3D: within 0.5 m, in one here)


class _TruthDetector:
    """Returns each frame's ground truth as its detections (exact boxes and pelvises), plus, with
    `false_positive`, one detection on nobody: far outside the image and 50 m away."""

    def __init__(self, frames, body, false_positive=False):
        self.body, self.false_positive = body, false_positive
        self.frames = {f.image.tobytes(): f for f in frames}

    def __call__(self, image, K=None, depth=None, floor=None, gravity=None):
        result = to_frame_result(self.frames[image.tobytes()].truth)
        humans = [dataclasses.replace(h, track_id=None) for h in result.humans]
        if self.false_positive:
            far = humans[0]
            humans.append(dataclasses.replace(far, keypoints_2d=far.keypoints_2d - 1000.0, box=far.box - 1000.0,
                                              pelvis_2d=far.pelvis_2d - 1000.0, position=far.position + 50.0))
        return dataclasses.replace(result, humans=humans)


class _FreshIds:
    """The worst association: a new id for every detection of every frame."""

    def __init__(self):
        self.count = 0

    def update(self, result, stamp, camera_pose=None):
        for h in result.humans:
            self.count += 1
            h.track_id = f"t{self.count}"
        return []


@pytest.mark.parametrize("false_positive", [False, True])
def test_true_identities_score_what_a_perfect_association_would(body_model, false_positive):
    """Detections exactly on the people, tracked with a new id per frame: the tracker's IDF1 is
    G / N (each of the G people keeps one id for one of the N counted person-frames), the IDF1
    with true identities 1. A detection on nobody in each of the F frames keeps an id of its own
    per frame: 2N / (2N + F) with true identities."""
    spec = dataclasses.replace(SMALL, images=0, clips=1, clip_frames=3)
    (seq,) = synthetic_sequences(spec, body_model)
    frames = list(seq.frames)
    truths = [to_frame_result(f.truth, id_prefix=GT_ID_PREFIX) for f in frames]
    counted = [[h.track_id for h, ignored in zip(t.humans, ignored_people(f.truth, t)) if not ignored]
               for f, t in zip(frames, truths)]
    n, g = sum(len(c) for c in counted), len(set().union(*counted))
    assert n > g > 1 and all(counted)
    detector = _TruthDetector(frames, body_model, false_positive)
    report = evaluate(detector, [Sequence(seq.name, frames, len(frames), tracked=True)], tracker_factory=_FreshIds)
    t = report.tracking
    expected_true = 2 * n / (2 * n + len(frames)) if false_positive else 1.0
    for suffix in ("", "_2d"):
        assert t[f"idf1{suffix}_true_ids"] == pytest.approx(expected_true)
        assert t[f"idf1{suffix}"] == pytest.approx(2 * g / (2 * n + (len(frames) if false_positive else 0)))
        assert report.per_sequence[seq.name][f"idf1{suffix}_true_ids"] == pytest.approx(expected_true)
