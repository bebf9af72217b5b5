"""The training configuration (training/config.py): which values are refused, with errors
naming the field, and what each section of a training YAML becomes."""

import logging

import pytest
import yaml

from mhr2_ros.errors import ConfigError
from mhr2_ros.evaluation.benchmark_spec import TRAINING_SEED_MIN
from mhr2_ros.training.data import ClipSource
from mhr2_ros.training.config import DataSourceConfig, TrainConfig, load_train_config
from mhr2_ros.training.losses import LossConfig, LossWeights
from mhr2_ros.training.matcher import MatcherConfig


def test_steps_and_batch_size_start_at_one():
    smallest = TrainConfig(steps=1, batch_size=1)
    assert (smallest.steps, smallest.batch_size) == (1, 1)
    for empty in ({"steps": 0}, {"batch_size": 0}):
        with pytest.raises(ConfigError, match="steps and batch_size must be >= 1"):
            TrainConfig(**empty)


def test_a_teacher_with_either_consistency_weight_is_accepted():
    """Fine-tuning against a teacher (2.b) may weigh the pose term alone or the joints term
    alone; only a teacher with neither is refused (it would change nothing)."""
    for weights in (LossWeights(teacher_pose=1.0), LossWeights(teacher_joints=1.0)):
        assert TrainConfig(teacher="teacher.safetensors", loss_weights=weights).teacher == "teacher.safetensors"
    with pytest.raises(ConfigError, match="teacher 'teacher.safetensors' is set but"):
        TrainConfig(teacher="teacher.safetensors", loss_weights=LossWeights())


def test_a_data_source_of_an_unknown_kind_is_refused_by_name():
    """A typo ("clip") must not fall through to the last branch of build_sources (COCO),
    whose error would talk about annotation files."""
    with pytest.raises(ConfigError, match="data source kind must be synthetic, clips or coco, got 'clip'"):
        DataSourceConfig(kind="clip", paths=["data/clips"])


def test_synthetic_training_seeds_stay_off_the_evaluation_seeds(tmp_path):
    """Seeds below 1000 are mhr2 eval's (benchmark: images 0, clips 1-3; tuning sets 500-809): a
    training source on one of them, with the benchmark's scene settings, renders the benchmark."""
    assert DataSourceConfig().seed == TRAINING_SEED_MIN == 1000
    assert DataSourceConfig(seed=1000).seed == 1000
    for seed in (0, 1, 500, 999, -5, 1500.0, True):
        with pytest.raises(ConfigError, match=rf"seed must be an integer >= 1000, got {seed!r}: the seeds below"):
            DataSourceConfig(seed=seed)
    assert DataSourceConfig("clips", paths=["a"], seed=0).seed == 0  # not rendered: the seed is unused
    with pytest.raises(ConfigError, match="got 3"):
        load_train_config(write_yaml(tmp_path, {"data": [{"kind": "synthetic", "seed": 3}]}))


def test_clips_rendered_with_evaluation_seeds_are_named(make_clip, caplog):
    """A clips source cannot be refused (real datasets have no seed) but is named when clip.json
    records a seed of the evaluation sets."""
    low, high = make_clip("seed7", frames=1, people=1, seed=7), make_clip("seed1001", frames=1, people=1, seed=1001)
    with caplog.at_level(logging.WARNING, logger="mhr2_ros.training.data"):
        ClipSource([high])
        assert caplog.text == ""
        ClipSource([low, high])
    assert "1 training clip(s) were rendered with seeds below 1000" in caplog.text
    assert f"{low} (seed 7)" in caplog.text and "seed1001" not in caplog.text


def write_yaml(tmp_path, mapping) -> str:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_each_section_of_the_yaml_becomes_its_dataclass(tmp_path):
    path = write_yaml(tmp_path, {
        "matcher": {"mode": "joints3d"}, "loss_weights": {"teacher_pose": 2.0}, "loss": {"fov_over_factor": 1.0},
        "data": [{"kind": "clips", "paths": ["a", "b"], "weight": 3.0}, {"seed": 1234}],
    })  # fmt: skip
    cfg = load_train_config(path)
    assert cfg.matcher == MatcherConfig(mode="joints3d")
    assert cfg.loss_weights == LossWeights(teacher_pose=2.0)
    assert cfg.loss == LossConfig(fov_over_factor=1.0)
    assert cfg.data == [DataSourceConfig("clips", 3.0, ["a", "b"]), DataSourceConfig(seed=1234)]


@pytest.mark.parametrize("section, value, cls, typo", [
    ("matcher", {"mdoe": "loc3d"}, "MatcherConfig", "mdoe"),
    ("loss_weights", {"reprojection": 1.0}, "LossWeights", "reprojection"),
    ("loss", {"fov_over": 1.0}, "LossConfig", "fov_over"),
    ("data", [{"kind": "clips", "path": ["a"]}], "DataSourceConfig", "path"),
])  # fmt: skip
def test_a_misspelt_field_names_the_file_its_section_and_the_field(tmp_path, section, value, cls, typo):
    """A typo in a nested section is an error at load time naming where it is, not a dict that
    fails (or is silently ignored) hours into the run."""
    path = write_yaml(tmp_path, {section: value})
    with pytest.raises(ConfigError, match=rf"train\.yaml: {section}: unknown {cls} field\(s\) \['{typo}'\]"):
        load_train_config(path)
