"""The weight average (`ema_decay`, training/ema.py): its arithmetic by hand, and a training run
that evaluates and exports the average, saves it and resumes it exactly."""

import json

import pytest
import torch
from safetensors.torch import load_file

from mhr2_ros.checkpoint import load_checkpoint
from mhr2_ros.errors import CheckpointError, ConfigError
from mhr2_ros.training.ema import EMA_PREFIX, WeightAverage
from mhr2_ros.training.state import load_state
from mhr2_ros.training.train import setup, train
from test_training import Interrupted, _interrupt, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(torch.nn.Module):
    """One weight, one float buffer and one integer buffer (a counter: copied, not averaged)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([0.0, 10.0]))
        self.register_buffer("scale", torch.tensor(1.0))
        self.register_buffer("count", torch.tensor(0))


def test_the_average_by_hand_with_its_warm_up():
    model = Tiny()
    ema = WeightAverage(model, decay=0.5)
    assert ema.rate() == pytest.approx(0.1)  # (1 + 0) / (10 + 0): the first update follows the weights
    with torch.no_grad():
        model.w.copy_(torch.tensor([1.0, 0.0]))
        model.count.fill_(7)
    ema.update(model)  # d = 0.1: 0.1 * [0, 10] + 0.9 * [1, 0]
    torch.testing.assert_close(ema.shadow["w"], torch.tensor([0.9, 1.0]))
    assert int(ema.shadow["count"]) == 7 and ema.updates == 1
    ema.updates = 1000  # past the warm-up the decay is the configured one
    assert ema.rate() == 0.5
    with torch.no_grad():
        model.w.copy_(torch.tensor([3.0, 3.0]))
        model.scale.fill_(3.0)
    ema.update(model)  # 0.5 * [0.9, 1.0] + 0.5 * [3, 3]; the float buffer too: 0.5 * 1 + 0.5 * 3
    torch.testing.assert_close(ema.shadow["w"], torch.tensor([1.95, 2.0]))
    assert float(ema.shadow["scale"]) == pytest.approx(2.0)


def test_applied_swaps_the_average_in_and_the_weights_back_even_on_error():
    model = Tiny()
    ema = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.w.copy_(torch.tensor([5.0, 5.0]))
    with ema.applied(model):
        torch.testing.assert_close(model.w.detach(), torch.tensor([0.0, 10.0]))  # the average (not updated yet)
    torch.testing.assert_close(model.w.detach(), torch.tensor([5.0, 5.0]))
    with pytest.raises(RuntimeError, match="boom"), ema.applied(model):
        raise RuntimeError("boom")
    torch.testing.assert_close(model.w.detach(), torch.tensor([5.0, 5.0]))


def test_saved_averages_must_fit_and_bad_decays_are_refused(tmp_path):
    ema = WeightAverage(Tiny(), decay=0.9)
    with pytest.raises(ValueError, match=r"missing \['w'\]"):
        ema.load_state_tensors({EMA_PREFIX + "scale": torch.tensor(1.0), EMA_PREFIX + "count": torch.tensor(0),
                                EMA_PREFIX + "other": torch.tensor(1.0)}, 3, "state.safetensors")  # fmt: skip
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightAverage(Tiny(), decay=1.0)
    for decay in (-0.1, 1.0):
        with pytest.raises(ConfigError, match=r"ema_decay must be in \[0, 1\)"):
            small_config(tmp_path, ema_decay=decay)


def test_a_run_exports_the_average_and_resumes_it_identically(tmp_path):
    """4 steps with the average == 2 steps, a crash, a resume, 2 more: the saved average and its
    update count carry the run, and model.safetensors holds the average, not the last weights."""
    whole = small_config(tmp_path / "whole", ema_decay=0.9)
    train(whole)
    split = small_config(tmp_path / "split", ema_decay=0.9, eval_every=2)
    with pytest.raises(Interrupted):
        train(split, eval_hook=_interrupt)
    train(split, resume=tmp_path / "split")
    for run in ("whole", "split"):
        info = json.loads((tmp_path / run / "last.json").read_text())
        assert info["ema_updates"] == 4
    states = [load_file(str(tmp_path / d / json.loads((tmp_path / d / "last.json").read_text())["tensors"]))
              for d in ("whole", "split")]  # fmt: skip
    averages = [{k[len(EMA_PREFIX):]: v for k, v in s.items() if k.startswith(EMA_PREFIX)} for s in states]
    assert averages[0] and set(averages[0]) == set(averages[1])
    for key, value in averages[0].items():
        torch.testing.assert_close(averages[1][key], value, rtol=0, atol=1e-6, msg=key)
    final, _, meta = load_checkpoint(tmp_path / "whole" / "model.safetensors")
    assert meta["weight_average"] == {"decay": 0.9, "updates": 4}
    raw = {k[len("model."):]: v for k, v in states[0].items() if k.startswith("model.")}
    assert all(torch.equal(final[k], averages[0][k]) for k in final)  # the export is the average
    assert any(not torch.equal(final[k], raw[k]) for k in final)  # which is not the last step's weights


def test_a_state_without_an_average_starts_one_and_a_wrong_one_is_refused(tmp_path, caplog):
    train(small_config(tmp_path / "run", steps=2))
    with caplog.at_level("WARNING", logger="mhr2_ros.training.state"):
        train(small_config(tmp_path / "run", steps=4, ema_decay=0.9), resume=tmp_path / "run")
    assert "holds no weight average" in caplog.text
    assert json.loads((tmp_path / "run" / "last.json").read_text())["ema_updates"] == 2  # begun at step 2
    run = setup(small_config(tmp_path / "run", steps=6, ema_decay=0.9))
    try:  # the state's average against one of another network: refused, naming what does not fit
        fits_not = r"weight average does not fit this network; missing \['count', 'scale', 'w'\] \(3\)"
        with pytest.raises(CheckpointError, match=fits_not):
            load_state(tmp_path / "run", run.model, run.optimizer, run.scheduler, WeightAverage(Tiny(), 0.9))
    finally:
        run.stream.close()
