"""The generator's configuration: one typed dataclass of typed parts, JSON round trip
and validation with errors that name the bad field."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict

from mhr2_ros.errors import ConfigError
from mhr2_ros.training.synthetic.background import BackgroundConfig
from mhr2_ros.training.synthetic.camera import CameraConfig
from mhr2_ros.training.synthetic.motion import MotionConfig
from mhr2_ros.training.synthetic.phenotypes import PhenotypeConfig
from mhr2_ros.training.synthetic.render import RenderConfig
from mhr2_ros.training.synthetic.scene import MAX_PEOPLE, PlacementConfig
from mhr2_ros.training.synthetic.textures import AppearanceConfig


@dataclass(frozen=True)
class SynthConfig:
    """Everything that decides a generated clip, together with the seed."""

    frames: int = 1  # frames to render
    independent: bool = False  # True: every frame is a new scene (people, camera, background); False: one clip
    vertices: bool = False  # keep the mesh vertices in the ground truth (large: V = 13718 per person)
    camera: CameraConfig = field(default_factory=CameraConfig)  # image size, FOV, height, pitch, roll
    placement: PlacementConfig = field(default_factory=PlacementConfig)  # people count, behaviours, positions
    phenotypes: PhenotypeConfig = field(default_factory=PhenotypeConfig)  # ages and body shapes
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)  # clothes and colours
    motion: MotionConfig = field(default_factory=MotionConfig)  # frame rate, speeds, routes
    background: BackgroundConfig = field(default_factory=BackgroundConfig)  # floor, wall, sky
    render: RenderConfig = field(default_factory=RenderConfig)  # device, lighting, noise


def config_to_dict(cfg: SynthConfig) -> Dict[str, Any]:
    """Plain JSON-able dict (tuples become lists)."""
    return _lists(dataclasses.asdict(cfg))


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def _tuples(value):
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def config_from_dict(data: Dict[str, Any]) -> SynthConfig:
    """Inverse of config_to_dict; unknown keys are an error, missing keys keep defaults."""
    parts = {f.name: f for f in dataclasses.fields(SynthConfig)}
    kwargs = {}
    for key, value in data.items():
        if key not in parts:
            raise ConfigError(f"synthetic config: unknown field {key!r}")
        default = getattr(SynthConfig(), key)
        if dataclasses.is_dataclass(default):
            names = {f.name for f in dataclasses.fields(default)}
            unknown = set(value) - names
            if unknown:
                raise ConfigError(f"synthetic config: unknown field(s) {sorted(unknown)} in {key!r}")
            value = dataclasses.replace(default, **{k: _tuples(v) for k, v in value.items()})
        kwargs[key] = value
    return validate(SynthConfig(**kwargs))


def _range(name: str, value, lo: float, hi: float) -> None:
    a, b = value
    if not (lo <= a <= b <= hi):
        raise ConfigError(f"{name} must be a range (min, max) with {lo} <= min <= max <= {hi}, got {tuple(value)}")


def validate(cfg: SynthConfig) -> SynthConfig:
    """Return cfg, or raise ConfigError naming the first bad field."""
    if cfg.frames < 1:
        raise ConfigError(f"frames must be at least 1, got {cfg.frames}")
    _range("placement.people", cfg.placement.people, 1, MAX_PEOPLE)  # the renderer needs one person
    # from 1 m: nearer, a body can reach behind the camera, which the renderer does not clip
    _range("placement.distance_m", cfg.placement.distance_m, 1.0, 200.0)
    _range("camera.fov_deg", cfg.camera.fov_deg, 1.0, 170.0)
    _range("camera.height_m", cfg.camera.height_m, 0.05, 100.0)
    _range("camera.pitch_deg", cfg.camera.pitch_deg, -89.0, 89.0)
    _range("camera.long_side", cfg.camera.long_side, 16, 8192)
    if cfg.camera.size is not None:
        w, h = cfg.camera.size
        if not (16 <= w <= 8192 and 16 <= h <= 8192):
            raise ConfigError(f"camera.size must be WxH with both sides in 16..8192 pixels, got {w}x{h}")
    if not cfg.motion.fps > 0:
        raise ConfigError(f"motion.fps must be positive, got {cfg.motion.fps}")
    if cfg.render.budget < 1024:
        raise ConfigError(f"render.budget must be at least 1024 candidate pixels, got {cfg.render.budget}")
    return cfg
