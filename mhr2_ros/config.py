"""Typed configuration, loaded from YAML/JSON in one place.

`ModelConfig` describes the network (it travels with a checkpoint as JSON);
`InferenceConfig` describes what the Detector does around it. CLI flags and ROS
parameters override fields of the same names.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple

import yaml

from mhr2_ros.errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def find_data_dir(name: str, root: Path = PACKAGE_ROOT, prefix: Path = Path(sys.prefix)) -> Path:
    """`name`/ (config, weights) of a source checkout, else where setup.py / colcon install
    it; `root` is the folder holding the mhr2_ros package."""
    for candidate in (
        root / name,  # source checkout or editable install
        prefix / "share" / "mhr2_ros" / name,  # pip install
        root.parent.parent.parent / "share" / "mhr2_ros" / name,  # colcon: root = lib/pythonX.Y/site-packages
    ):
        if candidate.is_dir():
            return candidate
    return root / name


CONFIG_DIR = find_data_dir("config")
# Here, not in checkpoint.py (which loads torch): `mhr2 --help` shows it.
WEIGHTS_DIR = find_data_dir("weights")  # the repository's, else share/mhr2_ros/weights (pip, colcon)
DEFAULT_WEIGHTS = WEIGHTS_DIR / "mhr2_tiny.safetensors"
PRESETS = ("tiny", "small", "large")
ROOT_FRAMES = ("camera", "allocentric", "ray")  # ModelConfig.root_frame


@dataclass
class ModelConfig:
    # --- encoder (ViT of the DINOv2/DINOv3 family) ---
    patch_size: int = 16  # pixels per patch side: 14 (DINOv2) or 16 (DINOv3)
    image_size: int = 768  # largest image side fed to the network, in pixels
    encoder_dim: int = 1024  # token width of the ViT
    encoder_depth: int = 24  # number of ViT blocks
    encoder_heads: int = 16  # attention heads per ViT block
    encoder_mlp_ratio: float = 4.0  # hidden width of the ViT MLP / encoder_dim
    num_registers: int = 4  # register ("storage") tokens after CLS; 0 for plain DINOv2
    pos_embed: str = "rope"  # "rope" (DINOv3, 2D rotary) or "learned" (DINOv2, interpolated)
    pos_embed_grid: int = 37  # side of the learned pos-embed grid (DINOv2: 518 px / 14 = 37)
    rope_base: float = 100.0  # base period of the 2D rotary embedding (DINOv3 default)
    layerscale_init: float = 1e-5  # initial LayerScale gamma in ViT blocks (DINO: 1e-5; from scratch: ~0.1)
    patch_embed: str = "linear"  # "linear": one strided conv per patch (DINO's layout, needed to load a
    # DINO backbone); "conv": a stride-2 3x3 convolution stem (patch_size 16 only), which trains faster
    # from scratch
    # --- decoder (DETR) ---
    decoder_dim: int = 512  # width of queries and of the projected image tokens
    decoder_depth: int = 8  # decoder blocks: self-attn, cross-attn, MLP (paper: 8)
    decoder_heads: int = 8  # attention heads in the decoder
    decoder_mlp_ratio: float = 4.0  # hidden width of the decoder MLP / decoder_dim
    num_queries: int = 100  # learned human queries (paper: 100)
    query_points: bool = False  # a learned 2D reference point per query: its sine encoding joins the
    # cross-attention query and the pelvis is predicted relative to it (DAB/Conditional-DETR-style
    # convergence aid; False: the paper's plain learned queries)
    query_point_sigmas: Tuple[float, ...] = (0.05, 0.1, 0.2)  # with query_points: the first heads of
    # cross-attention get a Gaussian prior of this width (image fractions) around the query's point
    # (SMCA-DETR-style locality); the other heads attend freely
    query_selection: bool = False  # with query_points: a dense head on the image tokens scores every
    # patch as a pelvis location and the queries' reference points are the best-scoring patches of
    # each image (two-stage / DINO-DETR-style proposals, trained with a dense focal loss; False: the
    # learned points). The dense loss trains every image token; the queries stay DETR queries. Added
    # because learned points had no usable score after 8000 CPU steps (not a controlled ablation)
    proposal_content: bool = False  # with query_selection: each query's content starts as its selected
    # image token (normalised) plus its learned embedding, as in two-stage Deformable DETR, so the heads
    # see the person from the first step (False: learned content only, position from the proposal)
    # --- heads ---
    root_frame: str = "camera"  # frame of the root (body) rotation the pose head predicts: "camera"
    # (paper); "allocentric": relative to the viewing ray through the query's pelvis (what the
    # person's appearance shows), turned into the camera frame with that ray; "ray": the shipped
    # model's flawed first version (the camera-axes ray rotation applied to the root's Anny-axes
    # columns: right for people above or below the image centre, off by up to ~60 deg beside it),
    # kept only so the weights trained with it run as trained. The outputs are in the camera frame
    # in every case
    num_bones: int = 163  # bones of the body rig, one 6D rotation each (paper: 163)
    num_shape: int = 6  # Anny phenotypes: gender, age, muscle, weight, height, proportions
    track_dim: int = 4096  # track feature width (SAM2 memory 64x64x64, 8x8-pooled: 4096)
    head_hidden: int = 512  # hidden width of the per-query MLP heads
    fov_min_deg: float = 10.0  # lowest vertical FOV the camera head can output
    fov_max_deg: float = 140.0  # highest vertical FOV the camera head can output
    nearness_ref_focal: float = 768.0  # f_ref in depth = f / f_ref * exp(-nearness), pixels
    # --- body model ---
    rig: str = "makehuman"  # anny rig spec; "makehuman" is the 163-bone rig of the paper
    # aspect ratios (width / height) seen in training; inference may pad to the nearest
    train_aspect_ratios: Tuple[float, ...] = (0.5625, 0.75, 1.0, 1.333, 1.7778)

    def __post_init__(self) -> None:
        self.train_aspect_ratios = tuple(float(a) for a in self.train_aspect_ratios)
        if not self.train_aspect_ratios or any(not a > 0 for a in self.train_aspect_ratios):
            raise ConfigError(f"train_aspect_ratios must be positive widths / heights, got {self.train_aspect_ratios}")
        self.query_point_sigmas = tuple(float(a) for a in self.query_point_sigmas)
        if len(self.query_point_sigmas) > self.decoder_heads or any(a <= 0 for a in self.query_point_sigmas):
            raise ConfigError(f"query_point_sigmas must be at most decoder_heads ({self.decoder_heads}) "
                              f"positive widths, got {self.query_point_sigmas}")
        if self.proposal_content and not self.query_selection:
            raise ConfigError("proposal_content needs query_selection: true (the content is the selected token)")
        if self.query_selection and not self.query_points:
            raise ConfigError("query_selection needs query_points: true (proposals become reference points)")
        if self.patch_size not in (14, 16):
            raise ConfigError(f"patch_size must be 14 or 16, got {self.patch_size}")
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}"
            )
        if self.root_frame not in ROOT_FRAMES:
            raise ConfigError(f"root_frame must be one of {ROOT_FRAMES}, got {self.root_frame!r}")
        if self.patch_embed not in ("linear", "conv"):
            raise ConfigError(f"patch_embed must be 'linear' or 'conv', got {self.patch_embed!r}")
        if self.patch_embed == "conv" and self.patch_size != 16:
            raise ConfigError(f"patch_embed 'conv' halves the resolution 4 times: it needs patch_size 16, "
                              f"got {self.patch_size}")
        if self.pos_embed not in ("rope", "learned"):
            raise ConfigError(f"pos_embed must be 'rope' or 'learned', got {self.pos_embed!r}")
        for dim, heads, name in (
            (self.encoder_dim, self.encoder_heads, "encoder"),
            (self.decoder_dim, self.decoder_heads, "decoder"),
        ):
            if dim % heads:
                raise ConfigError(f"{name}_dim {dim} is not divisible by {name}_heads {heads}")
        if self.pos_embed == "rope" and (self.encoder_dim // self.encoder_heads) % 4:
            raise ConfigError("rope needs a head width (encoder_dim / encoder_heads) divisible by 4")
        if not 0 < self.fov_min_deg < self.fov_max_deg < 180:
            raise ConfigError("need 0 < fov_min_deg < fov_max_deg < 180")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["train_aspect_ratios"] = list(self.train_aspect_ratios)
        return d


MAX_FLOOR_ANGLE_SIGMA = 0.2  # radians (11 deg): a floor known worse than this is no use


@dataclass
class InferenceConfig:
    score_threshold: float = 0.4  # keep queries whose score is above this (paper: 0.4)
    nms_distance: float = 0.0  # 3D NMS radius in meters between pelvis locations; 0 = off
    # meters across the view: sum duplicate queries' scores first (select.merge_duplicates); 0 = off;
    # None = the checkpoint's own setting (its JSON's "inference": {"merge_radius": ...}), else off
    merge_radius: Optional[float] = None
    pad_to_train_aspect: bool = True  # pad the image to the nearest training aspect ratio
    # with pad_to_train_aspect, also the rows above and below an image wider than that ratio (3:2
    # and 2:1 for 4:3 and 16:9 training); None = the checkpoint's setting (its JSON's "inference":
    # {"pad_rows": ...}), else true, the paper's padding
    pad_rows: Optional[bool] = None
    max_humans: int = 100  # keep at most this many humans per frame, best scores first
    return_vertices: bool = True  # attach mesh vertices to each Human
    return_track_features: bool = True  # attach the track feature to each Human
    device: str = "auto"  # torch device: "auto" (the GPU when there is one), "cpu", "cuda", "cuda:1", ...
    dtype: str = "float32"  # compute dtype of the network: float32, bfloat16 or float16
    compile: bool = False  # torch.compile the network (GPU; slow first frame)
    # radians: how far the ray to a person's lowest point may be off (the mesh's foot and the camera
    # mount's pitch) when a floor is given (inference/floor_contact.py); 0.015 (0.86 deg) was chosen
    # on the tuning set among 0.01, 0.015 and 0.02; 0: the floor alone decides
    floor_angle_sigma: float = 0.015
    # degrees: with a floor given, a camera rolled about its optical axis by at least this much has its
    # image levelled by gravity (the floor's normal) before the network and the outputs turned back
    # (inference/level.py); the training scenes roll up to 4 degrees; a negative value: never
    level_roll_deg: float = 4.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ConfigError(f"score_threshold must be in [0, 1], got {self.score_threshold}")
        if self.nms_distance < 0:
            raise ConfigError(f"nms_distance must be >= 0 meters, got {self.nms_distance}")
        if self.merge_radius is not None and self.merge_radius < 0:
            raise ConfigError(f"merge_radius must be >= 0 meters, got {self.merge_radius}")
        if self.max_humans < 1:
            raise ConfigError(f"max_humans must be >= 1, got {self.max_humans}")
        if not 0.0 <= self.floor_angle_sigma <= MAX_FLOOR_ANGLE_SIGMA:
            raise ConfigError(f"floor_angle_sigma must be in [0, {MAX_FLOOR_ANGLE_SIGMA}] radians, got "
                              f"{self.floor_angle_sigma}")
        if not self.level_roll_deg < 90.0:  # NaN fails too
            raise ConfigError(f"level_roll_deg must be below 90 degrees (negative: never level), got "
                              f"{self.level_roll_deg}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError(f"dtype must be float32, bfloat16 or float16, got {self.dtype!r}")


def from_dict(cls, data: Optional[dict], source: str = "config") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and refused values are errors naming
    `source` (the file) and the field."""
    data = dict(data or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{source}: unknown {cls.__name__} field(s) {unknown}; valid fields: {sorted(names)}"
        )
    try:
        return cls(**data)
    except (TypeError, ConfigError) as exc:  # a wrong type, or a value the dataclass's checks refuse
        raise ConfigError(f"{source}: {exc}") from exc


def read_mapping(path: Path) -> dict:
    """Read a YAML or JSON file holding a mapping, with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        text = path.read_text()
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse config file {path}: {exc}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping, got {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    return CONFIG_DIR / f"model_{name}.yaml"


def load_model_config(name_or_path: str | Path) -> ModelConfig:
    """A preset name (tiny, small, large) or a YAML/JSON file -> ModelConfig; a
    checkpoint's JSON (its config under "model", beside provenance) works too."""
    path = Path(name_or_path)
    if str(name_or_path) in PRESETS:
        path = preset_path(str(name_or_path))
    elif not path.exists():
        raise ConfigError(
            f"model config {name_or_path!r} is neither a preset {list(PRESETS)} nor an existing file"
        )
    data = read_mapping(path)
    if isinstance(data.get("model"), dict):  # a checkpoint JSON written by save_checkpoint
        data = data["model"]
    return from_dict(ModelConfig, data, source=str(path))


def override(obj: Any, **changes: Any) -> Any:
    """A copy of dataclass `obj` with the fields that are not None replaced."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(obj, **changes)


__all__ = [
    "ConfigError",
    "ModelConfig",
    "InferenceConfig",
    "from_dict",
    "read_mapping",
    "load_model_config",
    "override",
    "PRESETS",
    "CONFIG_DIR",
]
