"""Named detection-stream scenarios for evaluating the tracker (`mhr2 track-eval --simulate`).

Each scenario builds a set of `simulate.Walker`s (straight constant-velocity paths in the
camera frame) that stresses one failure mode of online tracking; `simulate.generate`
turns them into noisy detections (misses, false positives, appearance noise per SimConfig):

- "crossing": people walk across the view in pairs whose paths cross; every other pair
  crosses at the same depth (the pelvis points coincide in 3D: only appearance and motion
  tell them apart), the others at different depths, and then the farther person is hidden
  while the nearer one passes in front (capped at max_occlusion_frames).
- "occlusion": a crowd (as "crowd") in which every person is hidden once for min..max_occlusion_frames
  frames (fully occluded or out of the detector's reach), then reappears.
- "crowd": more people at 2.5-8.5 m walking in random directions (crossings happen by
  chance), half of them hidden once for min..max_occlusion_frames frames.

People are present only while their pelvis projects into the image, so they enter and
leave the view as a camera would see them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mhr2_ros.errors import ConfigError
from mhr2_ros.geometry import project
from mhr2_ros.tracking import simulate as sim

SCENARIOS = ("crossing", "occlusion", "crowd")
DEFAULT_PEOPLE = {"crossing": 6, "occlusion": 6, "crowd": 12}  # people per scenario when not given
OCCLUDER_HALF_WIDTH_M = 0.25  # half the width of a body hiding the person behind it, meters
WALK_SPEED_MPS = (0.8, 1.5)  # range of walking speeds, m/s
CROSSING_DEPTH_M = (2.5, 7.0)  # range of the depths at which pairs cross, meters
PELVIS_HEIGHT_M = 0.4  # pelvis below the optical axis (camera y points down), meters


@dataclass
class ScenarioConfig:
    people: Optional[int] = None  # people in the scene; None: the scenario's DEFAULT_PEOPLE
    frames: int = 300  # frames of the stream
    fps: float = 30.0  # frames per second (stamps are index / fps)
    seed: int = 0  # seed of the paths, the hidden intervals and the detection noise
    min_occlusion_frames: int = 10  # shortest hidden interval, frames
    max_occlusion_frames: int = 40  # longest hidden interval, frames (< the tracker's max_missed_frames)

    def __post_init__(self) -> None:
        if self.people is not None and self.people < 1:
            raise ConfigError(f"scenario people must be >= 1, got {self.people}")
        if self.frames < 2:
            raise ConfigError(f"scenario frames must be >= 2, got {self.frames}")
        if not self.fps > 0:
            raise ConfigError(f"scenario fps must be > 0, got {self.fps}")
        if not 1 <= self.min_occlusion_frames <= self.max_occlusion_frames:
            raise ConfigError("scenario occlusions need 1 <= min_occlusion_frames <= max_occlusion_frames, got "
                              f"{self.min_occlusion_frames} and {self.max_occlusion_frames}")

    def people_for(self, scenario: str) -> int:
        return self.people if self.people is not None else DEFAULT_PEOPLE[scenario]


def _hide_some(walkers: Sequence[sim.Walker], count: int, cfg: ScenarioConfig, rng: np.random.Generator) -> None:
    """Hide the first `count` walkers once each for min..max_occlusion_frames frames inside their presence."""
    for w in walkers[:count]:
        first, last = w.frames if w.frames is not None else (0, cfg.frames)
        length = int(rng.integers(cfg.min_occlusion_frames, cfg.max_occlusion_frames + 1))
        if last - first < length + 2:  # too short a presence to be hidden and seen again
            continue
        start = int(rng.integers(first + 1, last - length))
        w.hidden.append((start, start + length))


def crowd_walkers(cfg: ScenarioConfig, rng: np.random.Generator, people: int,
                  focal: float = sim.SimConfig.focal) -> List[sim.Walker]:
    """simulate.crowd: people at 2.5-8.5 m walking in random horizontal directions (focal: unused,
    the builders share one signature)."""
    return sim.crowd(people, cfg.frames, cfg.fps, seed=int(rng.integers(2**31)))


def _crossing_pair(index: int, t_meet: float, cfg: ScenarioConfig, rng: np.random.Generator,
                   focal: float) -> Tuple[sim.Walker, sim.Walker]:
    """Two people meeting in the image at t_meet, walking in opposite lateral directions.

    Even pairs meet at the same depth (same 3D point); odd pairs at depths 1.5-3 m apart,
    the farther one hidden while within OCCLUDER_HALF_WIDTH_M (at the nearer depth) of the
    nearer one in the image.
    """
    z_near = rng.uniform(*CROSSING_DEPTH_M)
    z_far = z_near if index % 2 == 0 else z_near + rng.uniform(1.5, 3.0)
    x_meet = rng.uniform(-0.2, 0.2)  # lateral meeting point, in units of depth (image x ~ focal * 0.2)
    v_near = np.array([rng.uniform(*WALK_SPEED_MPS), 0.0, rng.uniform(-0.2, 0.2)])
    v_far = np.array([-rng.uniform(*WALK_SPEED_MPS), 0.0, 0.0])  # opposite direction
    p_near = np.array([x_meet * z_near, PELVIS_HEIGHT_M, z_near])
    p_far = np.array([x_meet * z_far, PELVIS_HEIGHT_M, z_far])
    near = sim.Walker(2 * index, p_near - t_meet * v_near, v_near)
    far = sim.Walker(2 * index + 1, p_far - t_meet * v_far, v_far)
    if z_far > z_near:
        # image separation ~ |relative image speed| * |t - t_meet|; hidden while below the occluder half width
        image_speed = focal * (v_near[0] / z_near - v_far[0] / z_far)  # relative, pixels / s
        half = focal * OCCLUDER_HALF_WIDTH_M / z_near  # pixels
        frames = min(cfg.max_occlusion_frames, max(1, int(2 * half / image_speed * cfg.fps)))
        start = int(round(t_meet * cfg.fps)) - frames // 2
        far.hidden.append((start, start + frames))
    return near, far


def crossing_walkers(cfg: ScenarioConfig, rng: np.random.Generator, people: int,
                     focal: float = sim.SimConfig.focal) -> List[sim.Walker]:
    """Pairs crossing at evenly spread times in the middle 60 % of the stream (an odd person walks alone)."""
    duration = cfg.frames / cfg.fps
    pairs = people // 2
    meet_times = duration * np.linspace(0.2, 0.8, pairs) if pairs > 1 else [duration / 2] * pairs
    walkers: List[sim.Walker] = []
    for k, t_meet in enumerate(meet_times):
        t_frame = round(float(t_meet) * cfg.fps) / cfg.fps  # meet exactly on a frame: coincident pelvis pixels
        walkers.extend(_crossing_pair(k, t_frame, cfg, rng, focal))
    if people % 2:
        walkers.extend(sim.crowd(1, cfg.frames, cfg.fps, seed=int(rng.integers(2**31))))
        walkers[-1].identity = people - 1
    return walkers


BUILDERS: Dict[str, Callable[..., List[sim.Walker]]] = {
    "crossing": crossing_walkers, "occlusion": crowd_walkers, "crowd": crowd_walkers,
}
HIDDEN_FRACTION = {"crossing": 0.0, "occlusion": 1.0, "crowd": 0.5}  # people hidden once (crossing: own rule)


def _in_view(walker: sim.Walker, stamps: np.ndarray, sim_cfg: sim.SimConfig) -> Tuple[int, int]:
    """[first, last) frames in which the walker's pelvis is in front of the camera and inside the image."""
    pos = walker.start[None, :] + stamps[:, None] * walker.velocity[None, :]
    ahead = pos[:, 2] > 0.5
    uv = project(np.where(ahead[:, None], pos, 1.0), sim_cfg.K)
    inside = ahead & (uv[:, 0] >= 0) & (uv[:, 0] < sim_cfg.width) & (uv[:, 1] >= 0) & (uv[:, 1] < sim_cfg.height)
    idx = np.flatnonzero(inside)  # a straight path crosses the view once: one interval
    return (int(idx[0]), int(idx[-1]) + 1) if len(idx) else (0, 0)


def build_walkers(scenario: str, cfg: ScenarioConfig, sim_cfg: Optional[sim.SimConfig] = None) -> List[sim.Walker]:
    """The walkers of a named scenario, present only while in view (deterministic in cfg.seed)."""
    if scenario not in BUILDERS:
        raise ConfigError(f"unknown tracking scenario {scenario!r}; expected one of {SCENARIOS}")
    sim_cfg = sim_cfg or sim.SimConfig()
    rng = np.random.default_rng([cfg.seed, SCENARIOS.index(scenario)])
    people = cfg.people_for(scenario)
    walkers = BUILDERS[scenario](cfg, rng, people, sim_cfg.focal)
    stamps = np.arange(cfg.frames) / cfg.fps
    for w in walkers:
        w.start, w.velocity = np.asarray(w.start, float), np.asarray(w.velocity, float)
        w.frames = _in_view(w, stamps, sim_cfg)
    _hide_some(walkers, int(round(HIDDEN_FRACTION[scenario] * people)), cfg, rng)
    return walkers


def scenario_stream(scenario: str, cfg: ScenarioConfig, sim_cfg: Optional[sim.SimConfig] = None) -> List[sim.SimFrame]:
    """Detections of a named scenario, one SimFrame per frame (with ground truth)."""
    sim_cfg = sim_cfg or sim.SimConfig()
    walkers = build_walkers(scenario, cfg, sim_cfg)
    return sim.generate(walkers, np.arange(cfg.frames) / cfg.fps, sim_cfg, seed=cfg.seed)
