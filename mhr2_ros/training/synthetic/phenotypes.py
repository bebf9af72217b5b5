"""Anny phenotypes covering infants to elders.

Ages are drawn in years from a mixture of age groups, mapped to Anny's `age`
phenotype with Anny's own morphological-age calibration, and the `height`
phenotype follows Anny's WHO-calibrated conditional distribution for that age and
gender (anny/data/shape_calibration/{boys,girls}.pth, copied below so that sampling
needs no file and stays on the numpy generator; a test checks the copy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from mhr2_ros.body.anny_body import SHAPE_NAMES

# Anny's morphological age mapping: anny `age` value <-> age in years.
ANNY_AGE_ANCHORS = (0.0, 0.05, 0.215, 0.415, 0.67, 0.77, 0.83, 1.0)
AGE_YEARS_ANCHORS = (0.0, 1.0, 4.0, 11.0, 16.0, 18.0, 64.0, 110.0)
# Beta(alpha, beta) of the height phenotype given the anny age (clamped beyond the last anchor).
HEIGHT_AGE_ANCHORS = (0.0, 0.05, 0.215, 0.415, 0.67)
HEIGHT_BETA = {
    "male": ((21.596, 51.978, 22.147, 13.405, 16.496), (58.601, 57.36, 45.859, 22.105, 25.656)),
    "female": ((29.521, 66.282, 31.816, 21.264, 13.684), (96.722, 74.54, 59.491, 23.975, 25.748)),
}
AGE_GROUPS = ("infant", "child", "teen", "adult", "elder")
AGE_GROUP_YEARS = {"infant": (0.3, 2.0), "child": (2.0, 12.0), "teen": (12.0, 18.0),
                   "adult": (18.0, 65.0), "elder": (65.0, 95.0)}  # fmt: skip
WALKING_AGE_YEARS = 1.5  # younger children are seated on the ground, never walk or stand


@dataclass(frozen=True)
class PhenotypeConfig:
    """How people's bodies are drawn."""

    # Probability of each age group (infant 0.3-2 y, child 2-12, teen 12-18, adult 18-65, elder 65-95).
    age_group_weights: Tuple[float, float, float, float, float] = (0.05, 0.17, 0.1, 0.48, 0.2)
    # Gender phenotype range (0 male, 1 female); sampled uniformly, as Anny's own sampler does.
    gender_range: Tuple[float, float] = (0.0, 1.0)
    # Beta(a, b) of the weight phenotype (0 thin, 1 heavy).
    weight_beta: Tuple[float, float] = (2.0, 2.0)
    # Beta(a, b) of the muscle phenotype (0 none, 1 muscular).
    muscle_beta: Tuple[float, float] = (2.0, 2.0)
    # Beta(a, b) of the proportions phenotype (0 ideal, 1 uncommon).
    proportions_beta: Tuple[float, float] = (1.5, 2.5)
    # Multiplies the spread of the height phenotype around its calibrated mean for the age.
    height_spread: float = 1.0


@dataclass(frozen=True)
class Phenotype:
    """One person's body: the 6 Anny shape parameters and the age they came from."""

    shape: np.ndarray  # (6,) in [0, 1], SHAPE_NAMES order
    age_years: float  # morphological age in years
    age_group: str  # one of AGE_GROUPS

    @property
    def can_walk(self) -> bool:
        return self.age_years >= WALKING_AGE_YEARS


def anny_age(years: np.ndarray) -> np.ndarray:
    """Anny `age` phenotype of ages in years (piecewise linear, Anny's anchors)."""
    return np.interp(years, AGE_YEARS_ANCHORS, ANNY_AGE_ANCHORS)


def age_years(anny_age_value: np.ndarray) -> np.ndarray:
    """Inverse of `anny_age`."""
    return np.interp(anny_age_value, ANNY_AGE_ANCHORS, AGE_YEARS_ANCHORS)


def _height_phenotype(rng: np.random.Generator, age: float, gender: float, spread: float) -> float:
    """Height phenotype from Anny's calibrated Beta for the age, blended by gender."""
    draws = []
    for label in ("male", "female"):
        alphas, betas = HEIGHT_BETA[label]
        a = float(np.interp(age, HEIGHT_AGE_ANCHORS, alphas))
        b = float(np.interp(age, HEIGHT_AGE_ANCHORS, betas))
        draws.append((a, b))
    (am, bm), (af, bf) = draws
    a, b = am + gender * (af - am), bm + gender * (bf - bm)
    mean = a / (a + b)
    value = rng.beta(a, b)
    return float(np.clip(mean + spread * (value - mean), 0.0, 1.0))


def sample_phenotype(rng: np.random.Generator, cfg: PhenotypeConfig) -> Phenotype:
    """Draw one body."""
    weights = np.asarray(cfg.age_group_weights, dtype=np.float64)
    if weights.shape != (len(AGE_GROUPS),) or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(
            f"age_group_weights must be {len(AGE_GROUPS)} non-negative weights, got {cfg.age_group_weights}"
        )
    group = AGE_GROUPS[int(rng.choice(len(AGE_GROUPS), p=weights / weights.sum()))]
    years = float(rng.uniform(*AGE_GROUP_YEARS[group]))
    age = float(anny_age(years))
    gender = float(rng.uniform(*cfg.gender_range))
    values = {
        "gender": gender,
        "age": age,
        "muscle": float(rng.beta(*cfg.muscle_beta)),
        "weight": float(rng.beta(*cfg.weight_beta)),
        "height": _height_phenotype(rng, age, gender, cfg.height_spread),
        "proportions": float(rng.beta(*cfg.proportions_beta)),
    }
    shape = np.array([values[name] for name in SHAPE_NAMES], dtype=np.float32)
    return Phenotype(shape=shape, age_years=years, age_group=group)
