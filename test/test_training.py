"""The training loop end to end on CPU: overfitting, exact resume, teacher consistency,
the joints3d matching ablation and the `mhr2-train` command.

Everything runs the real parts: the synthetic generator, the Anny body model, the
training loop of `training.train` (setup / train_step / train) and the Detector's
public inference API on the checkpoint the training wrote. The overfitting test takes
one to two minutes on two busy CPU cores (marked slow, still part of `make test`); the
others take seconds each on a tiny network.
"""

import dataclasses
import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file
from scipy.optimize import linear_sum_assignment

from mhr2_ros.checkpoint import load_checkpoint, save_checkpoint
from mhr2_ros.config import CONFIG_DIR, ModelConfig, load_model_config
from mhr2_ros.errors import ConfigError
from mhr2_ros.cli.train import main as train_main
from mhr2_ros.inference.detector import Detector
from mhr2_ros.inference.preprocess import compute_geometry
from mhr2_ros.training.config import DataSourceConfig, TrainConfig, load_train_config
from mhr2_ros.training.data import (
    PER_PERSON_KEYS, BatchStream, InMemorySource, SourceSpec, build_sources, sample_from_truth, to_target,
)  # fmt: skip
from mhr2_ros.training.losses import LossWeights
from mhr2_ros.training.matcher import MatcherConfig
from mhr2_ros.training.sample import Sample, crop_resize
from mhr2_ros.training.step import compute_losses, gather_matched
from mhr2_ros.training.synthetic.config import SynthConfig
from mhr2_ros.training.synthetic.generator import SyntheticClip
from mhr2_ros.training.train import build_network, setup, train, train_step

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# --- the small runs (seconds): a one-block network at 64 px on 64x48 synthetic scenes
SMALL_MODEL = {
    "image_size": 64, "nearness_ref_focal": 64.0, "num_queries": 4, "encoder_depth": 1, "decoder_depth": 1,
}  # fmt: skip
SMALL_SCENES = {
    "camera": {"size": [64, 48], "fov_deg": [50.0, 60.0]},
    "placement": {"people": [1, 2], "distance_m": [2.0, 4.0], "obstacles": [0, 0]},
}  # fmt: skip


def small_config(out, **changes) -> TrainConfig:
    cfg = TrainConfig(
        model="tiny", model_overrides=dict(SMALL_MODEL), data=[DataSourceConfig(synth=SMALL_SCENES, seed=1000)],
        output=str(out), steps=4, batch_size=2, lr=1e-3, warmup_steps=1, device="cpu", log_every=1,
        checkpoint_every=2, eval_every=0,
    )  # fmt: skip
    return dataclasses.replace(cfg, **changes)


# ----------------------------------------------------------------------------- targets
def test_gather_matched_orders_rows_by_image_then_pair_whatever_the_people_per_image():
    """Three images of 2, 0 and 3 people, matched in a shuffled order (the second image has no
    pairs): row i is image b_i's query q_i and person t_i, images in order, each image's pairs
    in the order given; per-image values (K, image size, supervision flags) follow the row's image."""
    rng = np.random.default_rng(1)
    sizes, n = (2, 0, 3), 4
    targets = []
    for b, m in enumerate(sizes):
        sample = Sample(
            image=np.zeros((48, 64 + 8 * b, 3), np.uint8), K=np.diag([60.0 + b, 60.0 + b, 1.0]).astype(np.float32),
            loc=rng.uniform(0, 48, (m, 2)), keypoints_2d=rng.uniform(0, 48, (m, 3, 2)), keypoints_vis=np.ones((m, 3)),
            position=rng.uniform(1, 5, (m, 3)), rot6d=rng.normal(size=(m, 2, 6)), shape=rng.uniform(0, 1, (m, 6)),
        )  # fmt: skip
        target = to_target(sample, num_bones=2, device=torch.device("cpu"))
        target["sup"] = {**target["sup"], "pose": b != 2}
        targets.append(target)
    outputs = {"loc": torch.randn(3, n, 2), "nearness": torch.randn(3, n), "rot6d": torch.randn(3, n, 2, 6),
               "shape": torch.rand(3, n, 6)}  # fmt: skip
    matches = [(torch.tensor([3, 1]), torch.tensor([1, 0])), (torch.tensor([], dtype=torch.long),) * 2,
               (torch.tensor([0, 2, 1]), torch.tensor([2, 0, 1]))]  # fmt: skip
    pred, gt = gather_matched(outputs, targets, matches)
    rows = [(0, 3, 1), (0, 1, 0), (2, 0, 2), (2, 2, 0), (2, 1, 1)]  # (image, query, person)
    for i, (b, q, p) in enumerate(rows):
        for key in ("loc", "rot6d"):
            assert torch.equal(pred[key][i], outputs[key][b, q]), (i, key)
        for key in ("loc", "position", "rot6d", "shape", "keypoints_2d"):
            assert torch.equal(gt[key][i], targets[b][key][p]), (i, key)
        assert torch.equal(gt["K"][i], targets[b]["K"]) and torch.equal(gt["image_size"][i], targets[b]["image_size"])
    assert gt["image_index"].tolist() == [0, 0, 2, 2, 2] and gt["sup_pose"].tolist() == [True, True] + [False] * 3
    assert "track" not in gt and "track_valid" not in gt  # no image has track targets


def test_targets_and_matching_share_the_per_person_keys():
    """to_target builds exactly the per-person keys gather_matched gathers, one row per
    person; per-image tensors (K with 3 people is (3, 3)) are broadcast, not gathered."""
    m, joints = 3, 5
    rng = np.random.default_rng(0)
    sample = Sample(
        image=np.zeros((48, 64, 3), np.uint8), K=np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]], np.float32),
        loc=rng.uniform(0, 48, (m, 2)), keypoints_2d=rng.uniform(0, 48, (m, joints, 2)),
        keypoints_vis=np.ones((m, joints)), position=rng.uniform(1, 5, (m, 3)),
        rot6d=rng.normal(size=(m, 2, 6)), shape=rng.uniform(0, 1, (m, 6)), track=rng.normal(size=(m, 8)),
    )  # fmt: skip
    target = to_target(sample, num_bones=2, device=torch.device("cpu"))
    assert {k for k in target if k in PER_PERSON_KEYS} == set(PER_PERSON_KEYS)
    assert all(len(target[k]) == m for k in PER_PERSON_KEYS)
    n = 6
    outputs = {"loc": torch.randn(1, n, 2), "nearness": torch.randn(1, n), "rot6d": torch.randn(1, n, 2, 6),
               "shape": torch.rand(1, n, 6), "track": torch.randn(1, n, 8)}  # fmt: skip
    queries, people = torch.tensor([4, 0, 2]), torch.tensor([2, 0, 1])
    pred, gt = gather_matched(outputs, [target], [(queries, people)])
    for key in PER_PERSON_KEYS:
        torch.testing.assert_close(gt[key], target[key][people], rtol=0, atol=0)
    torch.testing.assert_close(pred["loc"], outputs["loc"][0, queries], rtol=0, atol=0)
    assert gt["K"].shape == (m, 3, 3) and torch.equal(gt["K"][1], target["K"])
    assert gt["image_size"].tolist() == [[64.0, 48.0]] * m and bool(gt["sup_pose"].all())

    # A batch mixing an image without track targets (COCO, a frame without SAM2 targets):
    # its people get zero rows with sup_track off, so rows stay aligned with the queries.
    bare = {k: v for k, v in target.items() if k != "track"}
    bare["sup"] = {**target["sup"], "track": False}
    outputs2 = {k: torch.cat([v, v]) for k, v in outputs.items()}
    pred, gt = gather_matched(outputs2, [bare, target], [(queries, people), (queries[:1], people[:1])])
    assert gt["track"].shape == pred["track"].shape == (m + 1, 8)
    assert not gt["track"][:m].any() and gt["sup_track"].tolist() == [False] * m + [True]
    assert gt["track_valid"].tolist() == [0.0] * m + [1.0]  # the bare image's leftover track_valid is not read
    assert gt["image_index"].tolist() == [0] * m + [1]
    torch.testing.assert_close(gt["track"][m], target["track"][people[0]], rtol=0, atol=0)
    # a person without a SAM2 mask (has_mask False) keeps its row but is no track target
    masked = to_target(dataclasses.replace(sample, track_valid=np.array([True, False, True])), 2, torch.device("cpu"))
    _, gt = gather_matched(outputs, [masked], [(queries, people)])
    assert gt["sup_track"].tolist() == [True, True, False]  # people 2, 0, 1


def test_a_teacher_without_weights_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="teacher_pose and teacher_joints are 0"):
        small_config(tmp_path, teacher=str(tmp_path / "t.safetensors"))


def test_synthetic_sources_render_on_the_training_device(body_model, tmp_path):
    """README: synthetic scenes are rendered on the fly on the training device (they rendered
    on the CPU while a GPU trained); a render.device in the source's synth config still
    wins. Building a source renders nothing, so naming a GPU needs none."""
    own = {**SMALL_SCENES, "render": {"device": "cpu", "budget": 4096}}
    cfg = small_config(tmp_path, data=[DataSourceConfig(synth=SMALL_SCENES), DataSourceConfig(synth=own)])
    default, chosen = (s.source.clip.config.render for s in build_sources(cfg, body_model, torch.device("cuda", 1)))
    assert default.device == "cuda:1"
    assert (chosen.device, chosen.budget) == ("cpu", 4096)
    assert build_sources(cfg, body_model)[0].source.clip.config.render.device == "cpu"  # no training device


# ----------------------------------------------------------------------------- overfitting
OVERFIT_SIZE = 128  # px: square synthetic images at the network input size (no crop, no resize)
OVERFIT_MODEL = {
    "image_size": OVERFIT_SIZE, "nearness_ref_focal": float(OVERFIT_SIZE), "num_queries": 10,
    "train_aspect_ratios": [1.0],  # the images' own aspect: every step sees them whole
}  # fmt: skip
OVERFIT_STEPS = 200  # the loss falls below 0.1x by step 150 of 300 (pelvis errors < 0.17 m); margin kept
OVERFIT_IMAGES = 4
PELVIS_TOLERANCE_M = 0.3


def overfit_frames(body_model, seed: int = 7):
    """The first OVERFIT_IMAGES independent scenes whose 1-2 people (2.5-4.5 m away,
    no boxes) are all at least 70% visible and not cut by the image border."""
    base = SynthConfig()
    cfg = dataclasses.replace(
        base, independent=True, frames=64,
        camera=dataclasses.replace(base.camera, size=(OVERFIT_SIZE, OVERFIT_SIZE), fov_deg=(50.0, 60.0),
                                   height_m=(1.0, 1.6), pitch_deg=(0.0, 10.0)),
        placement=dataclasses.replace(base.placement, people=(1, 2), distance_m=(2.5, 4.5), obstacles=(0, 0)),
    )  # fmt: skip
    frames = []
    for frame in SyntheticClip(cfg, seed, body_model):
        seen = frame.truth.visible_pixels > 0
        if seen.any() and (frame.truth.visibility[seen] > 0.7).all() and not frame.truth.truncated[seen].any():
            frames.append(frame)
        if len(frames) == OVERFIT_IMAGES:
            return frames
    raise AssertionError("too few well visible scenes; change the seed")


def pelvis_errors(result, truth_positions: np.ndarray) -> np.ndarray:
    """Per ground-truth person, the 3D pelvis distance to its detection (one-to-one,
    Hungarian on distances); inf for a person left without a detection."""
    found = np.array([h.position for h in result.humans]).reshape(-1, 3)
    dist = np.linalg.norm(truth_positions[:, None] - found[None], axis=-1)
    errors = np.full(len(truth_positions), np.inf)
    rows, cols = linear_sum_assignment(dist)
    errors[rows] = dist[rows, cols]
    return errors


@pytest.mark.slow
def test_tiny_model_overfits_four_synthetic_images(body_model, tmp_path):
    frames = overfit_frames(body_model)
    samples = [sample_from_truth(f.image, f.truth) for f in frames]
    assert sum(len(s.loc) for s in samples) >= 5  # single people and pairs
    cfg = TrainConfig(
        model="tiny", model_overrides=OVERFIT_MODEL, data=[], output=str(tmp_path), steps=OVERFIT_STEPS,
        batch_size=OVERFIT_IMAGES, lr=1e-3, warmup_steps=20, device="cpu", seed=0,
    )  # fmt: skip
    run = setup(cfg)
    run.stream = BatchStream([SourceSpec(InMemorySource(samples))], run.model_cfg, cfg.batch_size, 0, run.device)
    first = float(train_step(run)[0])
    while run.step < cfg.steps:
        loss = train_step(run)[0]
    assert float(loss) < 0.1 * first
    weights = save_checkpoint(run.model, run.model_cfg, tmp_path / "overfit.safetensors")

    detector = Detector.from_checkpoint(weights, device="cpu")  # default score threshold 0.4
    report = []
    for frame, sample in zip(frames, samples):
        result = detector(frame.image, K=frame.truth.K)
        errors = pelvis_errors(result, sample.position)
        report.append((len(sample.loc), len(result), np.round(errors, 3).tolist()))
    assert all(max(errors) < PELVIS_TOLERANCE_M for _, _, errors in report), report
    people, found = sum(r[0] for r in report), sum(r[1] for r in report)
    assert found <= people + 1, report  # not by firing every query: at most one spurious detection


# ----------------------------------------------------------------------------- resume
class Interrupted(Exception):
    pass


def _interrupt(model, model_cfg):
    raise Interrupted  # the evaluation hook at step 2, right after the checkpoint: a crash


def _state(out):
    info = json.loads((out / "last.json").read_text())
    return info, load_file(str(out / info["tensors"]))


def test_an_interrupted_run_resumes_identically(tmp_path):
    """4 steps in one go == 2 steps, a crash, a fresh process-like setup resumed from the
    saved state, 2 more steps: weights, optimizer moments, schedule, RNGs and data stream."""
    whole = small_config(tmp_path / "whole")
    train(whole)
    split = small_config(tmp_path / "split", eval_every=2)
    with pytest.raises(Interrupted):
        train(split, eval_hook=_interrupt)
    assert _state(tmp_path / "split")[0]["step"] == 2
    train(split, resume=tmp_path / "split")

    (info_a, tensors_a), (info_b, tensors_b) = _state(tmp_path / "whole"), _state(tmp_path / "split")
    assert info_a["step"] == info_b["step"] == 4
    for key in ("stream", "numpy", "scheduler", "param_groups"):
        assert info_a[key] == info_b[key], key
    assert set(tensors_a) == set(tensors_b) and any(k.endswith(".exp_avg_sq") for k in tensors_a)
    for key, value in tensors_a.items():
        torch.testing.assert_close(tensors_b[key], value, rtol=0, atol=1e-6, msg=key)
    final_a, final_b = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("whole", "split"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    initial, _ = build_network(whole)
    assert any(not torch.equal(v, final_a[k]) for k, v in initial.state_dict().items())  # it did train


# ----------------------------------------------------------------------------- teacher (2.b)
def test_teacher_consistency_terms_and_a_frozen_teacher(tmp_path):
    torch.manual_seed(0)
    model, model_cfg = build_network(small_config(tmp_path))
    teacher_path = save_checkpoint(model, model_cfg, tmp_path / "teacher.safetensors")
    weights = LossWeights(teacher_pose=2.0, teacher_joints=3.0)
    cfg = small_config(tmp_path, init=str(teacher_path), teacher=str(teacher_path), loss_weights=weights,
                       lr=1e-2, encoder_lr_scale=1.0)  # fmt: skip
    run = setup(cfg)
    assert run.teacher is not None and not any(p.requires_grad for p in run.teacher.parameters())
    batch = run.stream.next()

    total, terms, matched = compute_losses(run.net, run.body, run.matcher, run.criterion, batch, run.teacher)
    assert matched > 0 and {"teacher_pose", "teacher_joints"} <= set(terms)
    # student == teacher: zero up to float32 rounding (the teacher runs without autograd, other
    # kernels): mean squares under 1e-10 (10 um rms on joints metres away; measured up to 3e-12),
    # where the trained student below must exceed 1e-6 (1 mm rms)
    assert float(terms["teacher_pose"]) < 1e-10 and float(terms["teacher_joints"]) < 1e-10
    for _ in range(3):
        train_step(run)
    total, terms, _ = compute_losses(run.net, run.body, run.matcher, run.criterion, batch, run.teacher)
    assert float(terms["teacher_pose"]) > 1e-6 and float(terms["teacher_joints"]) > 1e-6
    weighted = sum(getattr(cfg.loss_weights, name) * value for name, value in terms.items())
    torch.testing.assert_close(total.detach(), weighted, rtol=1e-5, atol=1e-6)  # the terms enter the loss

    saved, _, _ = load_checkpoint(teacher_path)
    for name, param in run.teacher.named_parameters():
        assert param.grad is None and torch.equal(param, saved[name]), name
    assert any(not torch.equal(p, saved[n]) for n, p in run.model.named_parameters())  # the student moved


def test_trainable_trains_the_fov_head_alone(tmp_path):
    """`trainable: [camera_head]`: three steps move the FOV head and nothing else, with the
    symmetric FOV loss; a prefix that names no parameter is refused, naming the modules."""
    torch.manual_seed(0)
    model, model_cfg = build_network(small_config(tmp_path))
    start = save_checkpoint(model, model_cfg, tmp_path / "start.safetensors")
    cfg = small_config(tmp_path, init=str(start), trainable=["camera_head"], lr=1e-2, encoder_lr_scale=1.0)
    cfg.loss.fov_over_factor = 1.0
    run = setup(cfg)
    trained = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("camera_head.") for n in trained)
    assert sum(len(g["params"]) for g in run.optimizer.param_groups) == len(trained)
    for _ in range(3):
        train_step(run)
    saved, _, _ = load_checkpoint(start)
    moved = {n for n, p in run.model.named_parameters() if not torch.equal(p.detach(), saved[n])}
    assert moved and moved <= trained, moved - trained
    with pytest.raises(ConfigError, match="'fov_head' matches no parameter.*camera_head, decoder, encoder"):
        setup(small_config(tmp_path / "bad", trainable=["fov_head"]))


def test_a_fine_tune_keeps_the_inference_settings_of_its_init_weights(tmp_path):
    """The shipped weights merge duplicates (their JSON's "inference"); a fine-tune of them must
    select its detections the same way by default, or comparing the two measures the selection
    (the paper's selection has a third less recall on the benchmark) instead of the training."""
    model, model_cfg = build_network(small_config(tmp_path))
    merging = save_checkpoint(model, model_cfg, tmp_path / "merging.safetensors",
                              metadata={"inference": {"merge_radius": 0.5}})
    tuned = train(small_config(tmp_path / "tuned", init=str(merging), steps=1))
    assert json.loads(tuned.with_suffix(".json").read_text())["inference"] == {"merge_radius": 0.5}
    # read when the run starts: the init weights may be replaced (a new model shipped) before it ends
    run = setup(small_config(tmp_path / "tuned_again", init=str(merging), steps=1))
    merging.with_suffix(".json").unlink()
    assert run.inherited == {"inference": {"merge_radius": 0.5}}
    assert Detector.from_checkpoint(tuned).merge_radius == 0.5
    plain = save_checkpoint(model, model_cfg, tmp_path / "plain.safetensors")
    tuned = train(small_config(tmp_path / "tuned_plain", init=str(plain), steps=1))
    assert "inference" not in json.loads(tuned.with_suffix(".json").read_text())
    assert Detector.from_checkpoint(tuned).merge_radius == 0


# ----------------------------------------------------------------------------- joints3d ablation
def test_joints3d_matching_runs_a_training_step(tmp_path):
    """The paper's costly ablation: every query through the body model before matching."""
    run = setup(small_config(tmp_path, matcher=MatcherConfig(mode="joints3d")))
    batch = run.stream.next()
    people = sum(len(t["loc"]) for t in batch["targets"])
    calls = []
    joints_fn = run.matcher.joints_fn

    def counted(outputs):  # the real body-model pass, with the batch shape it saw recorded
        calls.append(tuple(outputs["rot6d"].shape[:2]))
        return joints_fn(outputs)

    run.matcher.joints_fn = counted
    total, terms, matched = compute_losses(run.net, run.body, run.matcher, run.criterion, batch)
    assert matched == people > 0 and torch.isfinite(total) and float(terms["joints"]) > 0
    assert calls == [(2, SMALL_MODEL["num_queries"])]  # all queries of the batch went through Anny


# ----------------------------------------------------------------------------- command line
def test_mhr2_train_writes_a_model_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    config = tmp_path / "train_tiny.yaml"
    config.write_text(yaml.safe_dump({
        "model": "tiny", "model_overrides": SMALL_MODEL, "output": str(out), "device": "cpu", "steps": 2,
        "batch_size": 1, "warmup_steps": 1, "checkpoint_every": 1, "eval_every": 0,
        "data": [{"kind": "synthetic", "seed": 1000, "synth": SMALL_SCENES}],
    }))  # fmt: skip
    assert load_train_config(config).model_overrides == SMALL_MODEL
    assert train_main(["--config", str(config)]) == 0
    assert (out / "model.safetensors").is_file() and (out / "model.json").is_file()
    assert json.loads((out / "last.json").read_text())["step"] == 2
    capsys.readouterr()

    assert train_main(["--config", str(config), "--resume", str(out), "--steps", "3"]) == 0
    err = capsys.readouterr().err
    assert "2/3" in err and "0/3" not in err  # the progress bar went on from step 2
    assert json.loads((out / "last.json").read_text())["step"] == 3
    meta = json.loads((out / "model.json").read_text())
    assert meta["trained"] and meta["steps"] == 3
    Detector.from_checkpoint(out / "model.safetensors")  # loads back through the inference API


def test_init_with_query_selection_adds_a_fresh_proposal_head_and_trains(tmp_path):
    """`init` + `model_overrides`: the parts the overrides add start fresh, the rest is
    loaded; the proposal terms enter the loss; a shape-changing override is refused."""
    from mhr2_ros.errors import CheckpointError

    torch.manual_seed(0)
    model, model_cfg = build_network(small_config(tmp_path))
    assert not model_cfg.query_selection
    init = save_checkpoint(model, model_cfg, tmp_path / "stage1.safetensors")
    cfg = small_config(tmp_path / "run", init=str(init), model_overrides={"query_selection": True})
    run = setup(cfg)
    assert run.model_cfg.query_selection
    loaded = run.model.state_dict()
    for name, value in model.state_dict().items():
        assert torch.equal(loaded[name], value), name
    assert any(name.startswith("decoder.proposal_head.") for name in loaded)
    total, terms, matched = compute_losses(run.net, run.body, run.matcher, run.criterion, run.stream.next())
    assert matched > 0 and float(terms["proposal_score"]) > 0 and float(terms["proposal_loc"]) > 0
    total.backward()
    assert run.model.decoder.proposal_head.fc2.weight.grad.abs().sum() > 0
    with pytest.raises(CheckpointError, match="shape mismatches"):
        build_network(small_config(tmp_path, init=str(init), model_overrides={"num_queries": 5}))


def test_token_supervision_adds_each_persons_pelvis_token_to_the_per_person_losses(tmp_path):
    """token_supervision: the query heads run on every image token, and the token whose
    patch holds a person's pelvis is one more supervised pair for that person's losses."""
    from mhr2_ros.training.step import token_matches

    overrides = {**SMALL_MODEL, "query_selection": True, "proposal_content": True}
    run = setup(small_config(tmp_path, model_overrides=overrides, token_supervision=True))
    batch = run.stream.next()
    images, targets = batch["images"], batch["targets"]
    torch.manual_seed(0)
    outputs = run.net(images, token_heads=True)
    tokens = outputs["proposal_logits"].shape[1]
    assert outputs["token_rot6d"].shape[:2] == (2, tokens) and "token_track" not in outputs
    pairs = token_matches(outputs, targets, images.shape[-2:])
    h, w = images.shape[-2:]
    grid_w = w // 16
    for (cells, people), t in zip(pairs, targets):
        assert people.tolist() == list(range(len(t["loc"])))
        centres = torch.stack([(cells % grid_w + 0.5) * 16, (cells // grid_w + 0.5) * 16], -1).float()
        assert ((centres - t["loc"]).abs() <= 8).all()  # the pelvis lies in the token's patch

    _, on, matched_on = compute_losses(run.net, run.body, run.matcher, run.criterion, batch, token_supervision=True)
    _, off, matched_off = compute_losses(run.net, run.body, run.matcher, run.criterion, batch)
    assert matched_on == matched_off > 0
    # the shape term averages the matched queries and the pelvis tokens, person by person
    pred_q, gt_q = gather_matched(outputs, targets, run.matcher(outputs, targets))
    pred_t, gt_t = gather_matched(outputs, targets, pairs, prefix="token_")
    per_person = torch.cat([(pred_q["shape"] - gt_q["shape"]).abs().mean(1), (pred_t["shape"] - gt_t["shape"]).abs().mean(1)])
    torch.testing.assert_close(on["shape"], per_person.mean().detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(off["shape"], (pred_q["shape"] - gt_q["shape"]).abs().mean().detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("train_*.yaml")), ids=lambda p: p.stem)
def test_shipped_training_configs_load_and_build(path, recipe_model_config):
    """Every training config in config/ parses into its typed dataclasses and its network
    (preset + overrides, or the stage it continues) builds, so a typo fails here and not
    hours into a run."""
    from mhr2_ros.model import build_model

    model = build_model(recipe_model_config(path))
    assert sum(p.numel() for p in model.parameters()) > 0


def test_crop_resize_keeps_the_camera_consistent_and_pads_like_inference():
    """A 4:3 sample cropped to 16:9 at 64 px: one scale, the short side padded to a patch
    multiple; the new K projects each person's 3D pelvis onto its new pixel."""
    K = np.array([[100.0, 0, 80], [0, 100.0, 60], [0, 0, 1]], np.float32)
    position = np.array([[0.0, 0.0, 4.0], [0.5, 0.2, 3.0], [3.0, 0.0, 2.0]], np.float32)  # the last: outside
    loc = (position[:, :2] / position[:, 2:]) * 100.0 + [80.0, 60.0]
    kp = np.repeat(loc[:, None], 2, axis=1)
    sample = Sample(image=np.full((120, 160, 3), 200, np.uint8), K=K, loc=loc, keypoints_2d=kp,
                    keypoints_vis=np.ones((3, 2)), position=position)  # fmt: skip
    out = crop_resize(sample, aspect=16 / 9, image_size=64, patch=16)
    assert out.image.shape[:2] == (48, 64) and len(out.loc) == 2  # 64 x 36 inside, padded to 48
    projected = out.position[:, :2] / out.position[:, 2:] * out.K[0, 0] + out.K[:2, 2]
    np.testing.assert_allclose(projected, out.loc, atol=1e-3)
    assert out.K[0, 0] == pytest.approx(out.K[1, 1])  # square pixels stay square
    assert (out.image[:6] != 200).all() and (out.image[6:42] == 200).all()  # padding above and below


@pytest.mark.parametrize("aspect", ModelConfig().train_aspect_ratios)
def test_crops_of_one_aspect_stack_whatever_the_image_size(aspect):
    """A batch draws one aspect and samples of any size (random synthetic cameras, clips of
    several datasets): their crops must share the input size. Rounding the crop to whole
    pixels used to put 4:3 crops at 448 px either side of a patch boundary (336 or 352
    rows) and torch.cat failed; the size now follows the aspect alone, as inference's for
    an image of exactly that aspect."""
    sizes = {crop_resize(blank_sample(w, h), aspect, 448, 16).image.shape[:2]
             for w in range(320, 1281, 37) for h in range(240, 961, 41)}  # fmt: skip
    assert len(sizes) == 1
    canvas_w, canvas_h = (1000, round(1000 / aspect)) if aspect >= 1 else (round(1000 * aspect), 1000)
    assert sizes == {compute_geometry(canvas_h, canvas_w, 448, 16, None).input_hw}
    if aspect == 1.333:  # by hand: 448 / 1.333 = 336.08 rows: 336 whole rows, a multiple of 16
        assert sizes == {(336, 448)}


def blank_sample(width: int, height: int) -> Sample:
    K = np.array([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], np.float32)
    return Sample(image=np.zeros((height, width, 3), np.uint8), K=K, loc=np.zeros((0, 2)),
                  keypoints_2d=np.zeros((0, 2, 2)), keypoints_vis=np.zeros((0, 2)))  # fmt: skip


SYNTHETIC_RECIPES = [p for p in sorted(CONFIG_DIR.glob("train_*.yaml"))
                     if all(d.kind == "synthetic" for d in load_train_config(p).data)]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("path", SYNTHETIC_RECIPES, ids=lambda p: p.stem)
def test_synthetic_recipes_draw_batches_and_take_a_step(path, tmp_path, monkeypatch):
    """The GPU recipes render their own data, so they can run here (CPU, batch 2): a few
    batches of their scene distribution (random image sizes and aspects: the crop-size
    crash of train_synthetic_tiny.yaml would fail here) and one optimisation step."""
    monkeypatch.chdir(CONFIG_DIR.parent)  # `init` paths are relative to the repository root
    cfg = load_train_config(path, {"device": "cpu", "batch_size": 2, "steps": 1, "data_workers": 0,
                                   "output": str(tmp_path)})  # fmt: skip
    run = setup(cfg)
    for _ in range(4):
        batch = run.stream.next()
        assert batch["images"].shape[0] == 2 and torch.isfinite(batch["images"]).all()
    loss = train_step(run)[0]
    assert torch.isfinite(loss) and run.step == 1


def test_a_recipe_that_continues_the_shipped_weights_trains_their_network():
    """model_config_of reads an `init` checkpoint's configuration (benchmarks/data_loading.py
    sizes its crops with it): train_gpu_finetune.yaml trains the shipped 256 px network, not
    the tiny preset's 448 px one."""
    from mhr2_ros.checkpoint import read_checkpoint_config
    from mhr2_ros.training.train import model_config_of

    shipped, _ = read_checkpoint_config(CONFIG_DIR.parent / "weights" / "mhr2_tiny.safetensors")
    cfg = load_train_config(CONFIG_DIR / "train_gpu_finetune.yaml")
    cfg = dataclasses.replace(cfg, init=str(CONFIG_DIR.parent / cfg.init))  # relative to the repository root
    assert model_config_of(cfg) == shipped and shipped.image_size == 256
    assert model_config_of(dataclasses.replace(cfg, init=None)).image_size == load_model_config("tiny").image_size
