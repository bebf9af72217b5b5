"""The checkpoint shipped in weights/: loads strictly, fits the size limit, and its
provenance points at files of this repository that rebuild the same network."""

import json

import numpy as np
import pytest

from mhr2_ros.checkpoint import DEFAULT_WEIGHTS, load_checkpoint, load_state_strict
from mhr2_ros.evaluation.benchmark_spec import MATCH_IOU
from mhr2_ros.evaluation.uncertainty import Unit, metrics_from_sums
from mhr2_ros.model import build_model
from mhr2_ros.training.config import load_train_config

REPO = DEFAULT_WEIGHTS.parent.parent
MAX_BYTES = 50 * 1024 * 1024  # the repository's limit for its one binary
METRICS = ("f1", "f1_box", "f1_joints", "precision", "recall", "pa_mpjpe", "mrpe", "fov_error", "idf1", "idf1_2d",
           "errors_wrong_body", "errors_not_found", "f1_bodies_fixed", "match_iou")


@pytest.fixture(scope="module")
def shipped():
    tensors, cfg, info = load_checkpoint(DEFAULT_WEIGHTS)
    return tensors, cfg, info


def test_loads_strictly_and_fits_the_limit(shipped):
    tensors, cfg, _ = shipped
    assert DEFAULT_WEIGHTS.stat().st_size <= MAX_BYTES
    load_state_strict(build_model(cfg), tensors, str(DEFAULT_WEIGHTS))  # raises on any mismatch


def test_training_configs_rebuild_the_shipped_network(shipped, recipe_model_config):
    _, cfg, info = shipped
    assert info["trained"] is True
    for key in ("description", "command", "data_commands", "hardware", "training_hours", "steps"):
        assert info.get(key), f"weights JSON lacks {key}"
    stages = [REPO / p for p in info["train_config"]]  # in training order
    for path, steps in zip(stages, info["steps"].values(), strict=True):
        cfg_stage = load_train_config(path)
        # a time-limited stage plans its end from the measured step rate: at most its `steps`
        assert steps == cfg_stage.steps or (cfg_stage.time_limit_min > 0 and steps <= cfg_stage.steps), path
    assert len(stages) == len(info["command"]) and all(p.name in c for p, c in zip(stages, info["command"]))
    assert recipe_model_config(stages[-1]).to_dict() == cfg.to_dict()


def test_evaluation_table_is_recorded(shipped):
    _, _, info = shipped
    table = json.loads(DEFAULT_WEIGHTS.with_name(DEFAULT_WEIGHTS.stem + "_eval.json").read_text())
    for key in METRICS:
        assert key in info["evaluation"]["metrics"], key
        assert table["metrics"][key] == info["evaluation"]["metrics"][key], key
    assert table["metrics"]["match_iou"] == MATCH_IOU  # measured by the current protocol
    # the bootstrap intervals: recorded in both files, each holding its value, and the table's
    # per-unit sums add up to its headline numbers (`mhr2 compare` can pair a new model with it)
    assert table["intervals"] == info["evaluation"]["intervals"]
    for key in ("f1", "pa_mpjpe", "mrpe", "fov_error", "idf1_2d", "idf1"):
        low, high = table["intervals"][key]
        assert low <= table["metrics"][key] <= high, key
    total = metrics_from_sums(np.sum([Unit.from_json(u).sums for u in table["units"]], axis=0))
    for key in ("f1", "pa_mpjpe", "mrpe", "idf1_2d"):
        assert float(total[key]) == pytest.approx(table["metrics"][key]), key


def test_the_recorded_evaluation_used_the_weights_own_selection(shipped):
    """The headline numbers are those of the default selection, which for these weights
    includes their duplicate merging; the paper's plain selection is recorded beside them."""
    _, _, info = shipped
    table = json.loads(DEFAULT_WEIGHTS.with_name(DEFAULT_WEIGHTS.stem + "_eval.json").read_text())
    assert table["selection"]["merge_radius"] == info["inference"]["merge_radius"] > 0
    assert info["evaluation"]["paper_selection"]["selection"]["merge_radius"] == 0
    # the benchmark's 4:3 images are padded alike with or without the rows these weights leave out
    assert info["inference"]["pad_rows"] is False and "size=(384, 288)" in table["data"]
    for key in METRICS:
        assert key in info["evaluation"]["paper_selection"]["metrics"], key


def test_the_gpu_fine_tune_continues_the_last_stage_loss(shipped):
    """config/train_gpu_finetune.yaml continues these weights: with another loss it would first
    undo what their last stage trained for (stage 5's FOV loss, stage 6's pose weight)."""
    _, _, info = shipped
    last = load_train_config(REPO / info["train_config"][-1])
    gpu = load_train_config(REPO / "config" / "train_gpu_finetune.yaml")
    assert gpu.init == "weights/mhr2_tiny.safetensors" and DEFAULT_WEIGHTS == REPO / gpu.init
    assert gpu.loss_weights == last.loss_weights and gpu.loss_weights.pose > 1
    assert gpu.loss == last.loss and gpu.matcher == last.matcher
    assert gpu.token_supervision == last.token_supervision
    assert not gpu.trainable  # the whole network: the frozen encoder held the CPU tries back
