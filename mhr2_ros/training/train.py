"""The training loop behind `mhr2-train` (command line: mhr2_ros/cli/train.py).

A flat loop: draw a batch, forward, Hungarian matching on 2D locations, the body
model on matched queries only, weighted losses, backward, clip, step.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch.profiler import record_function
from tqdm import tqdm

from mhr2_ros.body import BodyModel
from mhr2_ros.checkpoint import load_checkpoint, load_model, load_state_strict, read_checkpoint_config, save_checkpoint
from mhr2_ros.config import ModelConfig, from_dict, load_model_config
from mhr2_ros.devices import device_name
from mhr2_ros.errors import ConfigError
from mhr2_ros.model import build_model, load_dino_backbone
from mhr2_ros.training.config import TrainConfig, to_dict
from mhr2_ros.training.data import BatchStream, make_stream
from mhr2_ros.training.ema import WeightAverage, averaged
from mhr2_ros.training.losses import Criterion
from mhr2_ros.training.matcher import HungarianMatcher
from mhr2_ros.training.schedule import Schedule, TimeBox, set_plan
from mhr2_ros.training.state import load_state, save_state
from mhr2_ros.training.step import PHASES, compute_losses
from mhr2_ros.training.stop import GracefulStop, TrainingStopped

log = logging.getLogger(__name__)

DIST_TIMEOUT_MIN = 60  # minutes a rank may wait for the others (rank 0 evaluates alone)


def _distributed() -> tuple:
    """(rank, world size, local rank); initialises the process group under torchrun."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) == 1:
        return 0, 1, 0
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    # Rank 0 evaluates while the others wait at the next all-reduce: allow a long evaluation.
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(minutes=DIST_TIMEOUT_MIN))
    return torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ["LOCAL_RANK"])


def _device(cfg: TrainConfig, local_rank: int) -> torch.device:
    if device_name(cfg.device, torch.cuda.is_available()) == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device cuda requested but CUDA is not available; set device: cpu")
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:  # else set_device fails with "invalid device ordinal"
            raise ConfigError(f"torchrun local rank {local_rank} needs GPU {local_rank}, but this machine has "
                              f"{gpus}: use --nproc_per_node {gpus} or fewer (one process per GPU)")  # fmt: skip
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def build_network(cfg: TrainConfig):
    """(model, model config): from --init weights, else fresh (+ optional DINO encoder).
    `model_overrides` apply on top of the init checkpoint's configuration too; the
    parts they add (a new head) start fresh, anything else must match."""
    if cfg.init:
        tensors, init_cfg, _ = load_checkpoint(Path(cfg.init))
        model_cfg = _with_overrides(init_cfg, cfg.model_overrides, cfg.init)
        model = build_model(model_cfg)
        added = set(model.state_dict()) - set(build_model(init_cfg).state_dict()) if model_cfg != init_cfg else ()
        load_state_strict(model, tensors, cfg.init, fresh=added)
        return model, model_cfg
    model_cfg = model_config_of(cfg)
    model = build_model(model_cfg)
    if cfg.dino:
        load_dino_backbone(model.encoder, cfg.dino)
    return model, model_cfg


def model_config_of(cfg: TrainConfig) -> ModelConfig:
    """The network a training config trains, without building it: the `init` checkpoint's
    configuration (its JSON only), else the `model` preset, with `model_overrides`."""
    if cfg.init:
        return _with_overrides(read_checkpoint_config(Path(cfg.init))[0], cfg.model_overrides, cfg.init)
    return _with_overrides(load_model_config(cfg.model), cfg.model_overrides, cfg.model)


def _with_overrides(model_cfg: ModelConfig, overrides: dict, source: str) -> ModelConfig:
    if not overrides:
        return model_cfg
    return from_dict(type(model_cfg), {**model_cfg.to_dict(), **overrides}, source=f"model_overrides of {source}")


def freeze_all_but(model, prefixes) -> None:
    """requires_grad off for every parameter whose name starts with none of `prefixes`
    (nothing frozen when empty); ConfigError naming a prefix that matches no parameter."""
    if not prefixes:
        return
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            modules = sorted({n.split(".")[0] for n in names})
            raise ConfigError(f"trainable: {prefix!r} matches no parameter; the network's modules: "
                              f"{', '.join(modules)}")
    for name, param in model.named_parameters():
        param.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))


def make_optimizer(model, cfg: TrainConfig):
    """AdamW over the trainable parameters, with a smaller learning rate on a pretrained
    encoder; warm-up then cosine."""
    enc_scale = cfg.encoder_lr_scale if (cfg.dino or cfg.init) else 1.0
    freeze_all_but(model, cfg.trainable)
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    encoder = [p for n, p in params if n.startswith("encoder.")]
    rest = [p for n, p in params if not n.startswith("encoder.")]
    opt = torch.optim.AdamW(
        [{"params": encoder, "lr": cfg.lr * enc_scale}, {"params": rest, "lr": cfg.lr}],
        lr=cfg.lr, weight_decay=cfg.weight_decay,
    )  # fmt: skip

    schedule = Schedule(cfg.steps, cfg.warmup_steps, cfg.lr_min_ratio)  # saved with the scheduler state
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)


@dataclass
class Run:
    """Everything a training run holds; built once by `setup`."""

    cfg: TrainConfig
    model_cfg: object
    model: torch.nn.Module  # the network (unwrapped)
    net: torch.nn.Module  # the network as called: DDP-wrapped under torchrun
    body: BodyModel
    teacher: Optional[torch.nn.Module]
    matcher: HungarianMatcher
    criterion: Criterion
    optimizer: torch.optim.Optimizer
    scheduler: object
    stream: BatchStream  # a ReplayStream around one when data_reuse > 1: the same interface
    device: torch.device
    rank: int
    ema: Optional[WeightAverage] = None  # the weight average (ema_decay > 0), evaluated and exported
    step: int = 0
    inherited: dict = field(default_factory=dict)  # model.json keys taken from the init weights

    @property
    def schedule(self) -> Schedule:
        return self.scheduler.lr_lambdas[0]


def setup(cfg: TrainConfig, resume: Optional[Path] = None) -> Run:
    rank, world, local_rank = _distributed()
    if cfg.time_limit_min and world > 1:  # ranks would plan from their own clocks and stop at different steps
        raise ConfigError("time_limit_min is not supported under torchrun; set steps instead")
    device = _device(cfg, local_rank)
    torch.manual_seed(cfg.seed + rank)
    np.random.seed(cfg.seed + rank)
    model, model_cfg = build_network(cfg)
    inherited = inherited_settings(cfg)  # now: the init file may be replaced before the run ends
    model.to(device).train()
    body = BodyModel(model_cfg.rig).to(device)
    optimizer, scheduler = make_optimizer(model, cfg)
    stream = make_stream(cfg, model_cfg, body, device, cfg.seed + 1000 * rank)  # workers start on its first batch
    net = model
    if world > 1:
        # Some parameters get no gradient in some steps (the track head on batches without
        # track targets, the learned query points under query selection): DDP must not wait for them.
        net = torch.nn.parallel.DistributedDataParallel(
            model, [local_rank] if device.type == "cuda" else None, find_unused_parameters=True
        )
    run = Run(
        cfg, model_cfg, model, net, body, _teacher(cfg, device),
        HungarianMatcher(cfg.matcher, model_cfg.nearness_ref_focal, joints_fn=_joints_fn(body, cfg)),
        Criterion(cfg.loss_weights, _loss_cfg(cfg, model_cfg)), optimizer, scheduler, stream, device, rank,
        WeightAverage(model, cfg.ema_decay) if cfg.ema_decay else None, inherited=inherited,
    )  # fmt: skip
    if resume is not None:
        _resume(run, resume)
    return run


def _resume(run: Run, resume: Path) -> None:
    """Model, optimizer, scheduler, step and this rank's data stream from a saved state."""
    info = load_state(resume, run.model, run.optimizer, run.scheduler, run.ema)
    run.step = info["step"]
    run.schedule.restored(run.cfg.steps, run.cfg.warmup_steps, run.cfg.lr_min_ratio)
    set_plan(run.scheduler, run.schedule.total)  # the next step's learning rate from the restored schedule
    ranks = info.get("ranks") or [{"stream": info["stream"], "numpy": info["numpy"]}]
    if run.rank < len(ranks):  # each rank continues its own data stream
        run.stream.load_state_dict(ranks[run.rank]["stream"])
        np.random.set_state(_np_state(ranks[run.rank]["numpy"]))
    else:  # more ranks than the run was saved with: a new stream, distinct per rank and step
        run.stream.rng = np.random.default_rng(run.cfg.seed + 1000 * run.rank + run.step)
        log.warning("rank %d: the state holds %d data streams; this rank draws a new one", run.rank, len(ranks))


def train_step(run: Run) -> tuple:
    """One optimisation step: (loss, terms, matched people, gradient norm)."""
    cfg = run.cfg
    batch = run.stream.next()
    use_bf16 = cfg.bf16 and run.device.type == "cuda"
    with torch.autocast("cuda", torch.bfloat16) if use_bf16 else contextlib.nullcontext():
        total, terms, matched = compute_losses(run.net, run.body, run.matcher, run.criterion, batch, run.teacher,
                                               cfg.token_supervision)  # fmt: skip
    run.optimizer.zero_grad(set_to_none=True)
    with record_function(PHASES["backward"]):
        total.backward()
    with record_function(PHASES["optimizer"]):
        grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip) if cfg.grad_clip else None
        run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            run.ema.update(run.model)
    run.step += 1
    return total.detach(), terms, matched, grad_norm


def train(cfg: TrainConfig, resume: Optional[Path] = None, eval_hook: Optional[Callable] = None) -> Path:
    """Run the loop; returns the final model checkpoint path. The data workers end with
    it, whether it finishes, fails or is interrupted. A SIGINT / SIGTERM ends it after the
    step in progress with the state saved (training/stop.py: TrainingStopped)."""
    run = setup(cfg, resume)
    try:
        with GracefulStop() as stop:  # SIGINT / SIGTERM: finish the step, save, raise TrainingStopped
            return _train_loop(run, eval_hook, stop)
    finally:
        run.stream.close()


def _train_loop(run: Run, eval_hook: Optional[Callable], stop: GracefulStop) -> Path:
    cfg = run.cfg
    out, lead = Path(cfg.output), run.rank == 0
    writer = _writer(out) if lead else None
    bar = tqdm(total=run.schedule.total, initial=run.step, disable=not lead, unit="step")
    timebox = _start_timebox(cfg, run.step)
    while run.step < run.schedule.total:
        total, terms, matched, grad_norm = train_step(run)
        bar.update(1)
        bar.set_postfix(loss=f"{float(total):.3f}", people=matched)
        if writer and run.step % cfg.log_every == 0:
            _log_scalars(writer, run.step, total, terms, run.scheduler, grad_norm, matched)
        if run.step % cfg.checkpoint_every == 0:
            _save(out, run)  # every rank: each hands its data-stream state to rank 0
        if eval_hook and cfg.eval_every and run.step % cfg.eval_every == 0:
            if lead:
                with averaged(run.ema, run.model):
                    _run_eval(eval_hook, run.model, run.model_cfg, run.step, writer)
            _barrier()
        if timebox and _fit_to_time(run, timebox, bar):
            break
        signum = stop.requested(run.device)
        if signum and run.step < run.schedule.total:  # after the last step: finish, write the model
            bar.close()
            _save(out, run)
            if writer:
                writer.close()
            raise TrainingStopped(signum, run.step, str(out))
    bar.close()
    if lead and hasattr(run.stream, "replayed"):  # a ReplayStream: how much of the run was replayed
        log.info("batch replay: %d fresh batches, %d replayed (this process)", run.stream.fresh, run.stream.replayed)
    final = out / "model.safetensors"
    _save(out, run)
    if lead:
        meta = {"trained": True, "steps": run.step, "train_config": to_dict(cfg), **run.inherited}
        if run.ema is not None:  # the exported weights are the average, not the last step's
            meta["weight_average"] = {"decay": cfg.ema_decay, "updates": run.ema.updates}
        with averaged(run.ema, run.model):
            save_checkpoint(run.model, run.model_cfg, final, metadata=meta)
        if writer:
            writer.close()
    _barrier()  # no rank leaves (and tears the process group down) while rank 0 still writes
    return final


def inherited_settings(cfg: TrainConfig) -> dict:
    """A fine-tune's model JSON keeps its `init` weights' inference settings (their duplicate
    merging and aspect padding, chosen for that network): evaluated or run with the defaults, the
    fine-tune then selects detections as the model it started from, and a comparison of the two
    measures the training, not a change of selection (`--merge`, `--pad-rows` still override them)."""
    if not cfg.init:
        return {}
    settings = read_checkpoint_config(Path(cfg.init))[1].get("inference")
    if not settings:
        return {}
    log.info("model.json keeps the inference settings of %s: %s", cfg.init, settings)
    return {"inference": settings}


def _start_timebox(cfg: TrainConfig, step: int) -> Optional[TimeBox]:
    if not cfg.time_limit_min:
        return None
    timebox = TimeBox(cfg.time_limit_min)
    timebox.start(step)
    return timebox


def _fit_to_time(run: Run, timebox: TimeBox, bar) -> bool:
    """Moves the schedule's end to the last step that fits the time limit; True when the
    time is spent (the caller stops and saves)."""
    last = timebox.plan(run.step, run.cfg.steps)
    if last is not None and last != run.schedule.total:
        level = logging.INFO if timebox.worth_reporting(last) else logging.DEBUG
        log.log(level, "time limit %.1f min: the run ends at step %d (of %d configured)", run.cfg.time_limit_min,
                last, run.cfg.steps)  # fmt: skip
        set_plan(run.scheduler, last)
        bar.total = last
        bar.refresh()
    if timebox.expired() and run.step < run.schedule.total:
        planned = f"a planned {run.schedule.total}" if run.schedule.total < run.cfg.steps else "no plan yet"
        log.warning("time limit %.1f min reached at step %d (%s)", run.cfg.time_limit_min, run.step, planned)
        return True
    return False


def _teacher(cfg: TrainConfig, device: torch.device):
    if not cfg.teacher:
        return None
    teacher, _, _ = load_model(Path(cfg.teacher))
    return teacher.to(device).eval().requires_grad_(False)


def _joints_fn(body: BodyModel, cfg: TrainConfig):
    """For the joints3d matching ablation: every query's joints (B, N, J, 3) in camera
    axes, pelvis-centred (the matcher adds each query's 3D location from loc + nearness)."""
    if cfg.matcher.mode != "joints3d":
        return None

    def joints(outputs):
        b, n = outputs["rot6d"].shape[:2]
        out = body(outputs["rot6d"].flatten(0, 1), outputs["shape"].flatten(0, 1))
        return out.joints.view(b, n, -1, 3)

    return joints


def _loss_cfg(cfg: TrainConfig, model_cfg):
    import dataclasses

    return dataclasses.replace(cfg.loss, ref_focal=model_cfg.nearness_ref_focal)


def _np_state(state):
    return (state[0], np.asarray(state[1], dtype=np.uint32), *state[2:])


def _writer(out: Path):
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(out / "tensorboard"))


def _log_scalars(writer, step, total, terms, scheduler, grad_norm, matched) -> None:
    writer.add_scalar("loss/total", float(total.detach()), step)
    for name, value in terms.items():
        writer.add_scalar(f"loss/{name}", float(value), step)
    writer.add_scalar("lr", scheduler.get_last_lr()[-1], step)
    writer.add_scalar("matched_people", matched, step)
    if grad_norm is not None:
        writer.add_scalar("grad_norm", float(grad_norm), step)


def distributed_on() -> bool:
    """True under torchrun (a process group is up)."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def _barrier() -> None:
    if distributed_on():
        torch.distributed.barrier()


def _save(out: Path, run: Run) -> None:
    """Rank 0 writes the state, with every rank's data-stream and numpy RNG states."""
    np_state = np.random.get_state()
    mine = {"stream": run.stream.state_dict(), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    ranks = [mine]
    if distributed_on():
        ranks = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(ranks, mine)
    if run.rank != 0:
        return
    extra = {
        **mine, "ranks": ranks,  # "stream"/"numpy": rank 0's, as states before multi-rank saving
        "train_config": to_dict(run.cfg), "model_config": run.model_cfg.to_dict(),
    }  # fmt: skip
    save_state(out, run.model, run.optimizer, run.scheduler, run.step, extra, run.ema)


def _run_eval(hook, model, model_cfg, step, writer) -> None:
    model.eval()
    try:
        metrics = hook(model, model_cfg)
    finally:
        model.train()
    log.info("step %d evaluation: %s", step, metrics)
    if writer:
        for name, value in metrics.items():
            writer.add_scalar(f"eval/{name}", value, step)
