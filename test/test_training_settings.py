"""Training-loop settings that only show in values: the config's loss settings reach the
Criterion, compute_losses applies each data type's supervision, the saved state restores the RNG."""

import json

import pytest
import torch

from mhr2_ros.training.sample import SUPERVISION
from test_losses_by_hand import TERM_FLAG


@pytest.mark.usefixtures("one_torch_thread")
def test_the_training_config_loss_settings_reach_the_criterion_and_flags_by_data_type(tmp_path):
    """cfg.loss reaches the Criterion (the recipes' fov_over_factor 1.0), ref_focal is the
    network's; compute_losses turns off the terms a data type does not supervise (per image
    flags score / fov included)."""
    from mhr2_ros.training.step import compute_losses
    from mhr2_ros.training.train import setup
    from test_training import small_config

    cfg = small_config(tmp_path)
    cfg.loss.fov_over_factor = 1.5
    run = setup(cfg)
    assert run.criterion.cfg.fov_over_factor == 1.5 and run.criterion.cfg.ref_focal == 64.0
    batch = run.stream.next()
    _, synthetic, _ = compute_losses(run.net, run.body, run.matcher, run.criterion, batch)
    assert all(float(synthetic[t]) > 0 for t in TERM_FLAG if t in synthetic and t != "track"), synthetic
    for data_type in ("keypoints2d", "pseudo3d"):
        for t in batch["targets"]:
            t["sup"] = {**SUPERVISION[data_type], "track": False}
        _, terms, _ = compute_losses(run.net, run.body, run.matcher, run.criterion, batch)
        for name, value in terms.items():
            if name in TERM_FLAG and name != "track":
                assert (float(value) > 0) == SUPERVISION[data_type][TERM_FLAG[name]], (data_type, name, terms)


def test_saved_state_restores_the_torch_rng(tmp_path):
    """The resume test cannot see the RNG restore (setup reseeds identically and the steps
    draw nothing); here the generator moves between save and load."""
    from mhr2_ros.training.state import load_state, save_state

    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    save_state(tmp_path, model, opt, sched, 3, {})
    expected = torch.rand(4)
    torch.rand(100)
    load_state(tmp_path, model, opt, sched)
    assert torch.equal(torch.rand(4), expected)
    assert json.loads((tmp_path / "last.json").read_text())["step"] == 3
