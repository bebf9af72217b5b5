import dataclasses
import json

import pytest
import torch
from safetensors.torch import save_file

from mhr2_ros.checkpoint import load_checkpoint, load_state_strict, save_checkpoint
from mhr2_ros.errors import CheckpointError
from mhr2_ros.model import build_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_config):
    model = build_model(tiny_config)
    path = save_checkpoint(model, tiny_config, tmp_path_factory.mktemp("ckpt") / "m.safetensors")
    return model, path


def test_round_trip_equal_tensors_and_config(saved, tiny_config):
    model, path = saved
    tensors, cfg, info = load_checkpoint(path)
    assert cfg == tiny_config and info["format"] == "mhr2_ros/1"
    fresh = build_model(cfg)
    load_state_strict(fresh, tensors, str(path))
    for k, v in model.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_missing_weights_file_names_path(tmp_path):
    with pytest.raises(CheckpointError, match="not found.*nothing.safetensors"):
        load_checkpoint(tmp_path / "nothing.safetensors")


def test_corrupted_weights(saved, tmp_path):
    _, path = saved
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(path.read_bytes()[:1000])  # truncated
    (tmp_path / "bad.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(bad)


def test_missing_config_json(saved, tmp_path):
    _, path = saved
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="lone.json.*missing"):
        load_checkpoint(lone)


def test_pickle_checkpoints_are_refused(tmp_path):
    p = tmp_path / "weights.pth"
    torch.save({"a": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(p)


def test_strict_errors_name_missing_unexpected_and_mismatched(saved, tiny_config):
    model, _ = saved
    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = sorted(state)[0]
    del state[first]
    state["bogus.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as err:
        load_state_strict(build_model(tiny_config), state, "x.safetensors")
    msg = str(err.value)
    assert f"missing keys: {first}" in msg and "unexpected keys: bogus.weight" in msg


def test_config_that_does_not_match_weights(saved, tiny_config, tmp_path):
    _, path = saved
    other = dataclasses.replace(tiny_config, decoder_dim=128, decoder_heads=4)
    tensors, cfg, _ = load_checkpoint(path, model_config=other)
    with pytest.raises(CheckpointError, match="shape mismatches: .*checkpoint .*192.* vs model .*128"):
        load_state_strict(build_model(cfg), tensors, str(path))


def test_bad_json_config(saved, tmp_path):
    _, path = saved
    p = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(1)}, str(p))
    (tmp_path / "w.json").write_text(json.dumps({"model": {"encoder_dims": 3}}))
    with pytest.raises(CheckpointError, match="unknown ModelConfig field.*encoder_dims"):
        load_checkpoint(p)


def test_a_given_config_keeps_the_json_metadata_and_names_what_it_changes(tmp_path, tiny_config, caplog):
    from mhr2_ros.config import load_model_config

    model = build_model(tiny_config)
    meta = {"inference": {"merge_radius": 0.5}, "trained": True}
    path = save_checkpoint(model, tiny_config, tmp_path / "m.safetensors", metadata=meta)
    assert load_model_config(path.with_suffix(".json")) == tiny_config  # a checkpoint JSON is a config file
    bigger = dataclasses.replace(tiny_config, image_size=tiny_config.image_size + 32)
    with caplog.at_level("WARNING", logger="mhr2_ros.checkpoint"):
        _, cfg, info = load_checkpoint(path, bigger)
    assert cfg == bigger and info["inference"] == {"merge_radius": 0.5} and info["trained"] is True
    assert "image_size" in caplog.text and "differs" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mhr2_ros.checkpoint"):
        load_checkpoint(path, tiny_config)  # the same config: nothing to say
    assert caplog.text == ""


def test_a_json_from_another_save_is_refused(tmp_path, tiny_config):
    """Both files carry one save_id; a pair from two saves (a crash between the two writes
    of a re-save, a copied JSON) is refused, naming both files."""
    model = build_model(tiny_config)
    first = save_checkpoint(model, tiny_config, tmp_path / "a.safetensors")
    old_json = first.with_suffix(".json").read_text()
    save_checkpoint(model, tiny_config, first)  # a re-save: new tensors and JSON, new id
    load_checkpoint(first)  # a pair written together loads
    first.with_suffix(".json").write_text(old_json)  # as if the re-save died before its JSON
    for given in (None, tiny_config):  # with --config too: the JSON's metadata would be used
        with pytest.raises(CheckpointError, match=r"a\.safetensors and a\.json come from different saves"):
            load_checkpoint(first, given)


def test_a_pair_without_save_id_still_loads(saved, tmp_path):
    """Checkpoints from before the id (the shipped weights) have it in neither file: not checked."""
    model, path = saved
    info = json.loads(path.with_suffix(".json").read_text())
    assert len(info.pop("save_id")) == 32
    old = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(old), metadata={"format": "mhr2_ros/1"})
    old.with_suffix(".json").write_text(json.dumps(info))
    _, cfg, loaded = load_checkpoint(old)
    assert "save_id" not in loaded


def test_an_id_in_only_one_file_is_refused(saved, tmp_path):
    """A re-save over a checkpoint from before the id that died between its two files leaves
    new tensors (with an id) beside the old JSON (without): that pair is refused too."""
    _, path = saved
    info = json.loads(path.with_suffix(".json").read_text())
    ours = info.pop("save_id")
    copy = tmp_path / "resaved.safetensors"
    copy.write_bytes(path.read_bytes())
    copy.with_suffix(".json").write_text(json.dumps(info))
    with pytest.raises(CheckpointError, match=f"different saves \\(save_id {ours} vs none\\)"):
        load_checkpoint(copy)


def test_metadata_cannot_carry_another_checkpoints_save_id(tmp_path, tiny_config):
    model = build_model(tiny_config)
    path = save_checkpoint(model, tiny_config, tmp_path / "b.safetensors", metadata={"save_id": "x" * 32})
    _, _, info = load_checkpoint(path)
    assert info["save_id"] != "x" * 32


def test_only_missing_or_only_unexpected_keys_raise_checkpoint_error_naming_all(tiny_config):
    """Kills: `if unexpected or mismatched:` / `if missing or mismatched:` (the existing test has both
    kinds at once, so either condition alone raises) and showing fewer than all the keys."""
    model = build_model(tiny_config)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    gone = sorted(state)[:3]
    only_missing = {k: v for k, v in state.items() if k not in gone}
    with pytest.raises(CheckpointError) as err:
        load_state_strict(build_model(tiny_config), only_missing, "m.safetensors")
    assert f"missing keys: {', '.join(gone)}" in str(err.value)
    extra = dict(state, **{"bogus.a": torch.zeros(1), "bogus.b": torch.zeros(2)})
    with pytest.raises(CheckpointError) as err:
        load_state_strict(build_model(tiny_config), extra, "m.safetensors")
    assert "unexpected keys: bogus.a, bogus.b" in str(err.value) and "missing" not in str(err.value)
