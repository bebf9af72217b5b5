"""benchmarks/loss_terms.py: every cell draws the same batches, so checkpoints differ by their weights alone."""

import argparse
import sys
from pathlib import Path

import pytest

from mhr2_ros.checkpoint import DEFAULT_WEIGHTS, load_checkpoint, save_checkpoint
from mhr2_ros.model import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import loss_terms as lt  # noqa: E402

POSE_HEAD_BIAS = "query_heads.rot6d.fc2.bias"  # the last layer of the bone-rotation head
# Terms that never read the bone rotations (the matcher is loc2d: it pairs people by their 2D location).
POSE_FREE_TERMS = ("score", "loc", "depth", "shape", "fov", "proposal_score", "proposal_loc")
POSE_TERMS = ("pose", "vertices", "joints")


@pytest.fixture(scope="module")
def setting(make_clip):
    """(training config at batch size 2, two clip folders)."""
    config = lt.load_train_config(lt.DEFAULT_CONFIG)
    config = lt.dataclasses.replace(config, device="cpu", batch_size=2)
    return config, make_clip("lt_a", frames=3, people=2, seed=11), make_clip("lt_b", frames=3, people=2, seed=12)


@pytest.fixture(scope="module")
def other_pose_head(tmp_path_factory):
    """The shipped weights with the pose head's last bias moved: every other tensor identical."""
    tensors, cfg, _ = load_checkpoint(DEFAULT_WEIGHTS)
    model = build_model(cfg)
    tensors[POSE_HEAD_BIAS] = tensors[POSE_HEAD_BIAS] + 0.3
    model.load_state_dict(tensors)
    return save_checkpoint(model, cfg, tmp_path_factory.mktemp("lt_w") / "moved.safetensors")


def test_the_same_weights_and_data_give_the_same_terms_and_another_seed_other_draws(setting):
    config, clip, _ = setting
    first = lt.measure(config, str(DEFAULT_WEIGHTS), [str(clip)], batches=2, seed=5)
    again = lt.measure(config, str(DEFAULT_WEIGHTS), [str(clip)], batches=2, seed=5)
    other = lt.measure(config, str(DEFAULT_WEIGHTS), [str(clip)], batches=2, seed=6)
    assert set(first) >= set(POSE_FREE_TERMS + POSE_TERMS + (lt.TOTAL,))
    assert first == again
    assert first != other


def test_two_checkpoints_are_measured_on_the_same_batches(setting, other_pose_head):
    config, clip, other_clip = setting
    shipped = lt.measure(config, str(DEFAULT_WEIGHTS), [str(clip)], batches=2, seed=5)
    moved = lt.measure(config, str(other_pose_head), [str(clip)], batches=2, seed=5)
    for term in POSE_FREE_TERMS:  # the same draws: what the change cannot reach is equal to the bit
        assert moved[term] == shipped[term], term
    for term in POSE_TERMS:
        assert moved[term] != pytest.approx(shipped[term], rel=1e-3), term
    elsewhere = lt.measure(config, str(DEFAULT_WEIGHTS), [str(other_clip)], batches=2, seed=5)
    assert elsewhere["depth"] != shipped["depth"]  # other data: other batches


def test_the_table_has_a_column_per_cell_and_the_total_last():
    results = {("a.safetensors", "seen"): {"depth": 0.5, "pose": 0.25, lt.TOTAL: 1.0},
               ("b.safetensors", "new"): {"depth": 0.125, lt.TOTAL: 2.0}}
    lines = lt.table(results).splitlines()
    assert lines[0] == "| term | a.safetensors @ seen | b.safetensors @ new |"
    assert lines[2] == "| depth | 0.5000 | 0.1250 |"
    assert lines[3] == "| pose | 0.2500 | nan |"
    assert lines[-1] == "| total | 1.0000 | 2.0000 |"


def test_a_data_argument_names_what_is_wrong(tmp_path):
    assert lt.parse_data(f"new={tmp_path}") == ("new", [str(tmp_path)])
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=PATH"):
        lt.parse_data(str(tmp_path))
    with pytest.raises(argparse.ArgumentTypeError, match="no such folder: .*nothere"):
        lt.parse_data(f"new={tmp_path},{tmp_path / 'nothere'}")
