"""Who is in a scene, what they do, and where they start on the floor.

Ground positions are (x, z) in the camera's level frame (camera.py): x right, z
forward, meters. Yaw is the heading about the vertical: 0 faces the camera, and a
person with yaw psi faces the ground direction (sin psi, -cos psi).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np

from mhr2_ros.training.synthetic import poses
from mhr2_ros.training.synthetic.phenotypes import Phenotype, PhenotypeConfig, sample_phenotype
from mhr2_ros.training.synthetic.textures import Appearance, AppearanceConfig, sample_appearance

MAX_PEOPLE = 20
BEHAVIOURS = ("walk", "stand", "gesture", "sit_stool", "sit_ground")
ROUTES = ("wander", "cross", "out_and_back")


@dataclass(frozen=True)
class PlacementConfig:
    """How many people, what they do and where they stand."""

    people: Tuple[int, int] = (1, 8)  # people per clip or scene, (min, max) inclusive, at most 20
    distance_m: Tuple[float, float] = (1.0, 20.0)  # pelvis distance from the camera, meters
    # Density of the distance d is proportional to d ** distance_power: 0 uniform, -1 log-uniform
    # (more near people), 1 uniform over the floor area (more far people, like a crowd).
    distance_power: float = 0.0
    lateral_margin: float = 0.1  # people may start this fraction of the half FOV beyond the image sides
    group_probability: float = 0.3  # chance that a person joins an earlier one (close interaction)
    group_distance_m: Tuple[float, float] = (0.75, 1.1)  # pelvis distance to the partner in a group
    min_separation_m: float = 0.8  # least distance between two people's pelvises on the floor
    # Relative frequency of each behaviour (people too young to walk, under 1.5 years, sit on the ground).
    behaviour_weights: Tuple[float, ...] = (0.5, 0.22, 0.12, 0.09, 0.07)  # BEHAVIOURS order
    route_weights: Tuple[float, ...] = (0.4, 0.3, 0.3)  # ROUTES order, for walkers
    busy_walker: float = 0.15  # chance a walker holds a phone pose instead of swinging the arms
    pose_jitter_deg: float = 5.0  # std of the random variation added to every joint angle
    obstacles: Tuple[int, int] = (0, 2)  # boxes and pillars standing on the floor, (min, max)


@dataclass(frozen=True)
class Box:
    """A box standing on the floor (stool, crate, pillar): an occluder that is not a person."""

    x: float  # centre, level frame, meters
    z: float
    yaw: float  # radians about the vertical
    size: Tuple[float, float, float]  # (width along x, height, depth along z) before the yaw, meters
    colour: Tuple[float, float, float]  # sRGB in [0, 1]


@dataclass
class PersonSpec:
    """A person's constant attributes and starting state."""

    id: int  # stable identity in the ground truth
    phenotype: Phenotype
    appearance: Appearance
    behaviour: str  # one of BEHAVIOURS
    label: str  # pose label written in the ground truth ("walk", "wave", "sit_chair", ...)
    base_pose: np.ndarray  # (D,) degrees over rig.DOF_NAMES
    start: np.ndarray  # (2,) ground position (x, z), meters
    yaw: float  # initial heading, radians
    route: str = "static"  # walkers: one of ROUTES or "follow"
    gesture: Optional[str] = None  # animated gesture (poses.GESTURES) for behaviour "gesture"
    mirrored: bool = False  # asymmetric poses use the left side
    swing_arms: bool = True  # walkers swing their arms (else keep the base pose's arms)
    leader: Optional[int] = None  # index of the person a follower walks beside
    follow_offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # (left, forward) of the leader, m
    idle_phase: float = 0.0  # phase of the idle sway, radians


def _choice(rng: np.random.Generator, names: Tuple[str, ...], weights) -> str:
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(names),) or w.min() < 0 or w.sum() <= 0:
        raise ValueError(f"weights for {names} must be {len(names)} non-negative numbers, got {weights}")
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def _static_pose(rng: np.random.Generator, behaviour: str, cfg: PlacementConfig) -> Tuple[str, np.ndarray, bool]:
    """(label, base pose, mirrored) of a non-walking behaviour."""
    mirrored = bool(rng.uniform() < 0.5)
    family = {"stand": poses.STANDING, "sit_stool": poses.SEATED_ON_STOOL, "sit_ground": poses.SEATED_ON_GROUND}
    names = family.get(behaviour, ("stand", "stand_contrapposto"))
    name = names[int(rng.integers(len(names)))]
    return name, poses.jitter(poses.static_pose(name, mirrored), rng, cfg.pose_jitter_deg), mirrored


def sample_person(rng: np.random.Generator, index: int, cfg: PlacementConfig,
                  phen_cfg: PhenotypeConfig, look_cfg: AppearanceConfig) -> PersonSpec:  # fmt: skip
    """A person's body, clothes and behaviour; placement comes later."""
    phen = sample_phenotype(rng, phen_cfg)
    look = sample_appearance(rng, look_cfg, phen.age_years)
    behaviour = _choice(rng, BEHAVIOURS, cfg.behaviour_weights) if phen.can_walk else "sit_ground"
    label, base, mirrored = _static_pose(rng, behaviour, cfg)
    spec = PersonSpec(index, phen, look, behaviour, label, base, np.zeros(2), 0.0, mirrored=mirrored,
                      idle_phase=float(rng.uniform(0, 2 * math.pi)))  # fmt: skip
    if behaviour == "walk":
        spec.route = _choice(rng, ROUTES, cfg.route_weights)
        spec.label = "walk"
        if rng.uniform() < cfg.busy_walker:
            name = ("phone_call", "texting")[int(rng.integers(2))]
            spec.base_pose = poses.jitter(poses.static_pose(name, mirrored), rng, cfg.pose_jitter_deg)
            spec.swing_arms, spec.label = False, f"walk_{name}"
        else:
            spec.base_pose = poses.jitter(poses.static_pose("stand"), rng, cfg.pose_jitter_deg)
    elif behaviour == "gesture":
        spec.gesture = tuple(poses.GESTURES)[int(rng.integers(len(poses.GESTURES)))]
        spec.label = spec.gesture
    return spec


def _free(point: np.ndarray, taken: List[np.ndarray], min_dist: float) -> bool:
    return all(np.linalg.norm(point - p) >= min_dist for p in taken)


def sample_distance(rng: np.random.Generator, cfg: PlacementConfig) -> float:
    """A distance in cfg.distance_m with density proportional to d ** cfg.distance_power
    (inverse of the cumulative distribution)."""
    lo, hi = cfg.distance_m
    u, k = rng.uniform(), cfg.distance_power
    if abs(k + 1.0) < 1e-9:
        return math.exp(math.log(lo) + u * (math.log(hi) - math.log(lo)))
    return (lo ** (k + 1) + u * (hi ** (k + 1) - lo ** (k + 1))) ** (1.0 / (k + 1))


def _random_spot(rng: np.random.Generator, cfg: PlacementConfig, half_fov: float) -> np.ndarray:
    """A ground point in (or slightly beside) the view."""
    dist = sample_distance(rng, cfg)
    bearing = rng.uniform(-1.0, 1.0) * half_fov * (1.0 + cfg.lateral_margin)
    return np.array([dist * math.sin(bearing), dist * math.cos(bearing)])


def _facing(src: np.ndarray, dst: np.ndarray) -> float:
    """Yaw that makes a person at `src` face `dst`."""
    d = dst - src
    return math.atan2(d[0], -d[1])


def place_people(rng: np.random.Generator, people: List[PersonSpec], cfg: PlacementConfig, half_fov: float) -> None:
    """Set start positions and headings: alone, or in a group with an earlier person
    (facing each other when standing, side by side when walking)."""
    taken: List[np.ndarray] = []
    for i, person in enumerate(people):
        partner = None
        if i and rng.uniform() < cfg.group_probability:
            partner = people[int(rng.integers(i))]
            if (partner.behaviour == "walk") != (person.behaviour == "walk"):
                partner = None  # walkers pair with walkers (side by side), the others face each other
        for _ in range(60):
            if partner is not None:
                angle = rng.uniform(0, 2 * math.pi)
                gap = rng.uniform(*cfg.group_distance_m)
                spot = partner.start + gap * np.array([math.cos(angle), math.sin(angle)])
            else:
                spot = _random_spot(rng, cfg, half_fov)
            if spot[1] > 0.8 and _free(spot, taken, cfg.min_separation_m if partner is None else 0.7):
                break
        person.start = spot
        taken.append(spot)
        _orient(rng, person, partner, people)


def _orient(rng: np.random.Generator, person: PersonSpec, partner: Optional[PersonSpec],
            people: List[PersonSpec]) -> None:  # fmt: skip
    """Initial heading; a walker next to a walking partner follows it."""
    if partner is not None and person.behaviour == "walk" and partner.behaviour == "walk":
        person.route, person.leader = "follow", people.index(partner)
        side = 1.0 if rng.uniform() < 0.5 else -1.0
        person.follow_offset = np.array([side * rng.uniform(0.65, 0.9), rng.uniform(-0.2, 0.2)])
        person.yaw = partner.yaw
    elif partner is not None and person.behaviour != "walk":
        person.yaw = _facing(person.start, partner.start) + rng.normal(0, math.radians(15))
        if partner.behaviour != "walk" and partner.leader is None:
            partner.yaw = _facing(partner.start, person.start) + rng.normal(0, math.radians(15))
    elif rng.uniform() < 0.5:
        person.yaw = rng.uniform(-math.pi, math.pi)
    else:
        person.yaw = rng.normal(0.0, math.radians(40))


def sample_obstacles(rng: np.random.Generator, cfg: PlacementConfig, half_fov: float,
                     people: List[PersonSpec]) -> List[Box]:  # fmt: skip
    """Crates and pillars on the floor, away from everyone's start."""
    boxes: List[Box] = []
    taken = [p.start for p in people]
    for _ in range(int(rng.integers(cfg.obstacles[0], cfg.obstacles[1] + 1))):
        for _ in range(30):
            spot = _random_spot(rng, cfg, half_fov)
            if spot[1] > 1.5 and _free(spot, taken, 1.2):
                break
        else:
            continue
        pillar = rng.uniform() < 0.3
        size = (rng.uniform(0.3, 0.6), rng.uniform(1.8, 3.5), rng.uniform(0.3, 0.6)) if pillar else \
            (rng.uniform(0.4, 1.2), rng.uniform(0.3, 1.1), rng.uniform(0.4, 1.0))  # fmt: skip
        colour = tuple(float(c) for c in rng.uniform(0.15, 0.85, size=3))
        boxes.append(Box(float(spot[0]), float(spot[1]), float(rng.uniform(0, math.pi)), size, colour))
        taken.append(spot)
    return boxes
