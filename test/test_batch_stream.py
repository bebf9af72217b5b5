"""What `BatchStream` (training/data.py) hands the training step: sources drawn by their
configured weights, the people a synthetic frame makes targets (those the evaluation counts),
the targets of a 2D-only sample (its data type's supervision flags, the missing 3D filled with
neutral values), and a data worker killed while loading a batch named with its sample and source."""

import dataclasses
import os
import signal

import numpy as np
import pytest
import torch

from mhr2_ros.config import load_model_config
from mhr2_ros.evaluation.benchmark import ignored_people
from mhr2_ros.training.config import DataSourceConfig
from mhr2_ros.training.data import (
    MIN_VISIBLE_PIXELS, BatchStream, InMemorySource, SourceSpec, build_sources, sample_from_truth, to_target,
)  # fmt: skip
from mhr2_ros.training.sample import Sample
from mhr2_ros.training.synthetic.config import config_from_dict
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.synthetic.truth import to_frame_result
from test_training import SMALL_MODEL, SMALL_SCENES, blank_sample, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")


def one_person(width: int = 64, height: int = 48) -> Sample:
    """A sample with one person at the image centre (2D only)."""
    return dataclasses.replace(blank_sample(width, height), loc=np.array([[32.0, 24.0]]),
                               keypoints_2d=np.full((1, 2, 2), 24.0), keypoints_vis=np.ones((1, 2)))  # fmt: skip


def test_sources_are_drawn_by_their_configured_weights(tmp_path, body_model):
    """Weights 3 and 1: the first source gives three quarters of the samples (600 draws:
    450 expected, a standard deviation of 11), and a training config's weights reach the
    stream's sources."""
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)
    sources = [SourceSpec(InMemorySource([one_person()]), 3.0), SourceSpec(InMemorySource([blank_sample(64, 48)]), 1.0)]
    with BatchStream(sources, model_cfg, batch_size=200, seed=0, device=CPU) as stream:
        people = [len(t["loc"]) for _ in range(3) for t in stream.next()["targets"]]
    assert abs(sum(people) - 450) < 45
    cfg = small_config(tmp_path, data=[DataSourceConfig(synth=SMALL_SCENES, weight=3.0, seed=1000),
                                       DataSourceConfig(synth=SMALL_SCENES, weight=1.0, seed=2000)])  # fmt: skip
    assert [spec.weight for spec in build_sources(cfg, body_model)] == [3.0, 1.0]


def test_the_training_targets_hold_whom_the_evaluation_counts(body_model):
    """Two people with their pelvis at the image centre, one with MIN_VISIBLE_PIXELS visible
    pixels and one with a pixel fewer: the first is a training target and counted by the
    evaluation, the second neither (evaluation.benchmark's ignore rule is the targets' rule)."""
    two = {**SMALL_SCENES["placement"], "people": [2, 2]}
    scenes = {**SMALL_SCENES, "independent": True, "frames": 1, "placement": two}
    frame = SyntheticClip(config_from_dict(scenes), 1000, body_model).frame(0)
    truth = frame.truth
    truth.visible_pixels[:] = [MIN_VISIBLE_PIXELS, MIN_VISIBLE_PIXELS - 1]
    truth.pelvis_2d[:] = [[32.0, 24.0], [30.0, 20.0]]
    assert sample_from_truth(frame.image, truth).loc.tolist() == [[32.0, 24.0]]
    result = to_frame_result(truth, id_prefix="p")
    flags = dict(zip((h.track_id for h in result.humans), ignored_people(truth, result)))
    assert flags == {f"p{int(truth.ids[0])}": False, f"p{int(truth.ids[1])}": True}


def test_a_2d_only_sample_supervises_its_2d_terms_on_neutral_3d_fillers():
    """A COCO-like sample (keypoints2d, two people, no 3D): flags of the keypoints2d row of the
    supervision table (score, loc and reprojection; no depth, pose, shape, mesh, FOV or track);
    its missing 3D is 1 m on each axis, the identity pose and mid-range (0.5) phenotypes: finite
    values the body model poses, kept out of the losses by the flags. COCO crowds (people not
    all annotated) also turn the score off."""
    sample = dataclasses.replace(blank_sample(64, 48), loc=np.array([[10.0, 20.0], [40.0, 30.0]]),
                                 keypoints_2d=np.full((2, 3, 2), 20.0), keypoints_vis=np.ones((2, 3)),
                                 data_type="keypoints2d")  # fmt: skip
    target = to_target(sample, num_bones=4, device=CPU)
    assert target["sup"] == {"score": True, "loc": True, "depth": False, "pose": False, "shape": False,
                             "mesh": False, "reproj": True, "fov": False, "track": False}  # fmt: skip
    assert target["position"].tolist() == [[1.0, 1.0, 1.0]] * 2
    assert target["rot6d"].tolist() == [[[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]] * 4] * 2
    assert target["shape"].tolist() == [[0.5] * 6] * 2
    assert "track" not in target and "track_valid" not in target
    crowd = to_target(dataclasses.replace(sample, unlabelled_people=True), num_bones=4, device=CPU)
    assert crowd["sup"]["score"] is False and crowd["sup"]["loc"] is True


class KillsItsWorker:
    """A source whose load kills the process loading it (the out-of-memory killer, say)."""

    def draw(self, rng):
        return 7

    def load(self, key):
        os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_while_loading_names_the_sample_and_the_way_out():
    model_cfg = dataclasses.replace(load_model_config("tiny"), **SMALL_MODEL)
    with BatchStream([SourceSpec(KillsItsWorker())], model_cfg, 1, 0, CPU, workers=1) as stream:
        with pytest.raises(RuntimeError, match=r"data worker process died \(killed, or out of memory\?\) loading "
                           r"sample 7 of data source 0; try fewer data_workers, or 0"):  # fmt: skip
            stream.next()
