"""The training configuration (training/config.py): which values are refused, with errors
naming the field, and what each section of a training YAML becomes."""

import pytest
import yaml

from mhr2_ros.errors import ConfigError
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
