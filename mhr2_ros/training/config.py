"""Typed training configuration (config/train_<name>.yaml), one comment per field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from mhr2_ros.config import from_dict, read_mapping
from mhr2_ros.errors import ConfigError
from mhr2_ros.evaluation.benchmark_spec import TRAINING_SEED_MIN
from mhr2_ros.training.losses import LossConfig, LossWeights
from mhr2_ros.training.matcher import MatcherConfig

TRAIN_DEVICES = ("cuda", "cpu", "auto")  # one GPU per process: torchrun picks which


@dataclass
class DataSourceConfig:
    kind: str = "synthetic"  # synthetic (rendered on the fly), clips (on-disk format) or coco (2D keypoints)
    weight: float = 1.0  # relative probability of drawing a sample from this source
    paths: List[str] = field(default_factory=list)  # clips: clips or folders of clips; coco: [annotation.json, image_dir]
    synth: dict = field(default_factory=dict)  # synthetic: SynthConfig overrides (nested mapping)
    # synthetic: generator seed, >= TRAINING_SEED_MIN (1000): `mhr2 eval`'s benchmark and tuning sets
    # render the seeds below, and scenes of the same settings and seed are the same scenes
    seed: int = TRAINING_SEED_MIN

    def __post_init__(self) -> None:
        if self.kind not in ("synthetic", "clips", "coco"):
            raise ConfigError(f"data source kind must be synthetic, clips or coco, got {self.kind!r}")
        if self.kind == "synthetic" and not (isinstance(self.seed, int) and self.seed >= TRAINING_SEED_MIN):
            raise ConfigError(
                f"synthetic data source seed must be an integer >= {TRAINING_SEED_MIN}, got {self.seed!r}: the "
                f"seeds below are the benchmark's and tuning sets' (mhr2 eval), and with the same scene settings "
                f"a training seed of theirs renders their very scenes")


@dataclass
class TrainConfig:
    model: str = "tiny"  # model preset or model config file
    model_overrides: dict = field(default_factory=dict)  # ModelConfig fields changed from the preset or init (image_size...)
    init: Optional[str] = None  # checkpoint (.safetensors) to start from, e.g. fine-tuning
    dino: Optional[str] = None  # local DINOv2/v3 backbone initialising the encoder (when no init)
    teacher: Optional[str] = None  # frozen teacher checkpoint: L2 consistency on pose and joints (2.b)
    data: List[DataSourceConfig] = field(default_factory=lambda: [DataSourceConfig()])
    output: str = "runs/train"  # folder for checkpoints, TensorBoard logs and the final model
    steps: int = 10000  # optimisation steps
    time_limit_min: float = 0.0  # wall-clock minutes for this process's steps (0: off): once the step rate is
    # measured, the schedule ends at the last step that fits (at most `steps`), so the cosine still decays
    # (training/schedule.py). A resumed run keeps the saved plan and fits its rest into its own limit
    batch_size: int = 8  # images per step and per GPU
    data_workers: int = 0  # processes loading samples a few batches ahead, per GPU (synthetic scenes render on
    # their CPU cores, clips are read there); 0: the training process loads them, rendering on the training device
    data_reuse: int = 1  # steps per loaded batch (1: every batch fresh). K > 1: each fresh batch is followed by
    # K - 1 steps on batches drawn at random from the last `replay_batches`, for a GPU faster than the rendering
    # workers (training/replay.py); each scene is then seen about K times
    replay_batches: int = 32  # fresh batches kept for data_reuse > 1, on the training device
    replay_adaptive: bool = False  # data_reuse > 1: replay only while the next fresh batch is still loading (at
    # most data_reuse - 1 in a row): every rendered scene is used and the GPU does not wait, but which steps replay
    # depends on the machine's timing, so the run is not reproducible bit for bit. With data_workers 0 (loading
    # inside the step) it replays data_reuse - 1 times per fresh batch, as without it
    lr: float = 1e-4  # Adam learning rate (paper: Adam)
    encoder_lr_scale: float = 0.1  # learning rate factor of a pretrained encoder
    trainable: List[str] = field(default_factory=list)  # parameter-name prefixes to train, e.g. [camera_head]
    # (the FOV head alone); the rest is frozen, which also skips its backward pass. Empty: everything
    weight_decay: float = 0.0  # AdamW weight decay
    warmup_steps: int = 500  # linear warm-up, then cosine decay to lr_min_ratio * lr
    lr_min_ratio: float = 0.05  # final learning rate / lr
    grad_clip: float = 1.0  # clip the global gradient norm (0: off)
    ema_decay: float = 0.0  # keep an exponential moving average of the weights with this decay (0: off; e.g.
    # 0.999, about the last 1000 steps), which the run then evaluates and exports (training/ema.py)
    bf16: bool = True  # bfloat16 autocast on CUDA (ignored on CPU)
    device: str = "cuda"  # cuda, cpu or auto (cuda when there is one); torchrun sets the GPU per rank
    seed: int = 0  # seeds torch, numpy and the data stream (plus the rank)
    log_every: int = 20  # steps between TensorBoard scalars
    checkpoint_every: int = 500  # steps between resumable checkpoints
    eval_every: int = 1000  # steps between evaluations (0: off)
    eval_clips: List[str] = field(default_factory=list)  # clips (or folders of clips) for the evaluation hook
    matcher: MatcherConfig = field(default_factory=MatcherConfig)  # Hungarian matching (paper, eq. 1)
    token_supervision: bool = False  # query_selection models: the image token holding each person's pelvis
    # is also supervised like a matched query (the query heads run on it; dense auxiliary losses, as in
    # CenterNet-style models), which trains the encoder to carry each person's attributes at the pelvis
    # token that proposal_content hands to the query. Training only: inference is unchanged
    loss_weights: LossWeights = field(default_factory=LossWeights)  # weight of each term
    loss: LossConfig = field(default_factory=LossConfig)  # FOV asymmetry, reprojection camera

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ConfigError("steps and batch_size must be >= 1")
        if not 0 <= self.time_limit_min < float("inf"):
            raise ConfigError(f"time_limit_min must be a number of minutes >= 0 (0: no limit), "
                              f"got {self.time_limit_min}")  # fmt: skip
        if self.data_workers < 0:
            raise ConfigError(f"data_workers must be >= 0 (0: load data in the training process), "
                              f"got {self.data_workers}")  # fmt: skip
        if self.data_reuse < 1 or self.replay_batches < 1:
            raise ConfigError(f"data_reuse (steps per loaded batch, 1: no replay) and replay_batches must be >= 1, "
                              f"got {self.data_reuse} and {self.replay_batches}")  # fmt: skip
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1) (0: no weight average; 0.999 averages about the last "
                              f"1000 steps), got {self.ema_decay}")  # fmt: skip
        if self.device not in TRAIN_DEVICES:
            raise ConfigError(f"device {self.device!r}: expected one of {', '.join(TRAIN_DEVICES)} "
                              "(torchrun gives each rank its GPU)")  # fmt: skip
        if self.teacher and self.loss_weights.teacher_pose <= 0 and self.loss_weights.teacher_joints <= 0:
            raise ConfigError(f"teacher {self.teacher!r} is set but loss_weights.teacher_pose and teacher_joints "
                              "are 0: give them weights (the 2.b fine-tuning) or drop the teacher")  # fmt: skip


def load_train_config(path: Path, overrides: Optional[dict] = None) -> TrainConfig:
    """TrainConfig from YAML; nested sections become their dataclasses."""
    data = read_mapping(Path(path))
    data.update(overrides or {})
    src = str(path)
    nested = {
        "matcher": MatcherConfig, "loss_weights": LossWeights, "loss": LossConfig,
    }  # fmt: skip
    for key, cls in nested.items():
        if key in data:
            data[key] = from_dict(cls, data[key], source=f"{src}: {key}")
    if "data" in data:
        data["data"] = [from_dict(DataSourceConfig, d, source=f"{src}: data") for d in data["data"]]
    return from_dict(TrainConfig, data, source=src)


def to_dict(cfg: TrainConfig) -> dict:
    return dataclasses.asdict(cfg)
