"""Mixed precision: the bf16 training step and bfloat16 / float16 inference. `train_step`
autocasts to bfloat16 on CUDA only and the detector's dtype setting is meant for GPUs, which no
session had; CPU autocast runs the same code with the same dtype rules for the ops that matter here
(linear, attention, convolution in bf16): a dtype mix-up between bf16 activations and float32
targets, body model and losses fails here, and so do heads that lose their float32."""

import contextlib
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mhr2_ros.inference.detector import Detector
from mhr2_ros.training.synthetic.config import config_from_dict
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.matcher import MatcherConfig
from mhr2_ros.training.step import compute_losses
from mhr2_ros.training.train import setup
from test_training import SMALL_MODEL, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# train_synthetic_tiny.yaml's network options (its from-scratch aids), on the small test network
SYNTHETIC_TINY = yaml.safe_load((Path(__file__).parents[1] / "config/train_synthetic_tiny.yaml").read_text())[
    "model_overrides"
]


@pytest.mark.parametrize("mode", ["loc2d", "joints3d"])
def test_a_bf16_autocast_step_keeps_float32_losses_close_to_the_float32_step(tmp_path, mode):
    cfg = small_config(tmp_path, model_overrides={**SMALL_MODEL, **SYNTHETIC_TINY}, token_supervision=True,
                       matcher=MatcherConfig(mode=mode), batch_size=3)  # fmt: skip
    run = setup(cfg)
    batch = run.stream.next()
    terms = {}
    for name, ctx in (("fp32", contextlib.nullcontext()), ("bf16", torch.autocast("cpu", torch.bfloat16))):
        with ctx:
            total, terms[name], matched = compute_losses(run.net, run.body, run.matcher, run.criterion, batch,
                                                         token_supervision=True)  # fmt: skip
        run.optimizer.zero_grad(set_to_none=True)
        total.backward()
        grads = [p.grad for p in run.model.parameters() if p.grad is not None]
        assert total.dtype == torch.float32 and matched > 0 and run.criterion.skipped_non_finite == 0
        assert len(grads) > 0 and all(bool(torch.isfinite(g).all()) for g in grads)
    assert set(terms["bf16"]) == set(terms["fp32"]) >= {"loc", "vertices", "reproj", "proposal_loc"}
    # With float32 heads the terms move by 0.3% at most (depth); heads run in bf16 moved depth by 1.3%.
    for key, value in terms["fp32"].items():
        assert terms["bf16"][key].dtype == torch.float32, key
        assert float(terms["bf16"][key]) == pytest.approx(float(value), rel=0.006, abs=1e-5), key


def test_bfloat16_and_float16_inference_find_the_same_people(body_model):
    """The shipped network on a synthetic frame with people (3 found): the reduced dtypes find the
    same people, at the same place up to 1% of their depth (measured: 0.3% bf16, 0.1% fp16)."""
    scenes = config_from_dict({"independent": True, "placement": {"people": [3, 4]}})
    frame = SyntheticClip(scenes, 7, body_model).frame(0)
    full = Detector.from_checkpoint(device="cpu")  # with the checkpoint's duplicate merging
    reference = full(frame.image, K=frame.truth.K)
    assert len(reference) == 3
    for dtype in ("bfloat16", "float16"):
        reduced = Detector(full.model, full.model_cfg, dataclasses.replace(full.cfg, dtype=dtype), full.metadata)
        result = reduced(frame.image, K=frame.truth.K)
        assert len(result) == len(reference), dtype
        for h in reference.humans:
            g = min(result.humans, key=lambda o: np.linalg.norm(o.position - h.position))
            assert np.linalg.norm(g.position - h.position) < 0.01 * h.depth and abs(g.score - h.score) < 0.02, dtype
            assert g.joints_3d.dtype == g.vertices.dtype == np.float32
            np.testing.assert_allclose(g.joints_3d - g.position, h.joints_3d - h.position, atol=0.02)
