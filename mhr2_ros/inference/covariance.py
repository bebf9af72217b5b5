"""The pose covariance published with each person (Human.pose), and how to check it.

The network gives no covariance, so the node publishes a prior. A monocular estimate is good
across the viewing ray and poor along it: the lateral sigma is a pixel error seen at the
person's distance, the sigma along the ray a fraction of that distance, set by where the
person's depth came from (results.DEPTH_SOURCES) and by whether the camera's K was given or
predicted (a predicted field of view moves every ray and scales every depth).

The orientation is split the same way: a person's heading (the turn about their own up axis)
is what a monocular network gets wrong (the shipped model: 68% of the errors within 1.5 rad), their
tilt (about the two horizontal body axes) far less (0.17 rad per axis); one sigma for all three
axes would be wrong both ways.

A covariance is only useful to a tracker or a costmap if it is calibrated: about 68% of the
people should lie within one sigma. `mhr2 eval` checks that (`PriorCheck`): the fraction of the
true positives inside the 68% region of the prior (coverage; 0.68 when calibrated) along the
ray, across it, in heading and in tilt, and the prior that would be calibrated on the evaluated
frames (the 68th percentiles), to paste into config/detector.yaml for a model of one's own.

68% regions: along the ray and in heading one sigma (1D); across the ray and in tilt a circle of
radius 1.515 sigma (a 2D isotropic Gaussian: sqrt of the chi-square 2-dof 68th percentile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from scipy.spatial.transform import Rotation

from mhr2_ros.inference.results import FLOOR_DEPTH, MEASURED_DEPTH, NETWORK_DEPTH

POSE_DOF = 6  # covariance rows: x, y, z, rotation about x, y, z
LINEAR = slice(0, 3)
ANGULAR = slice(3, 6)
COVERAGE = 0.68  # the probability of the regions below; a calibrated prior covers this fraction
RADIUS_1D, RADIUS_2D = 1.0, 1.515  # 68% region radius / sigma for 1 and 2 dof
UP_AXIS = 2  # column of a body rotation (REP-103 body axes -> camera) that is the body's up (z)


@dataclass(frozen=True)
class CovariancePrior:
    """Pose uncertainty model. Defaults measured with `mhr2 eval` on the tuning set's images
    (--image-seed 500 --clips 0: independent scenes, harder than its clips, so the prior errs wide)
    for the shipped model: each about the 68th percentile of its error (README, Evaluation)."""

    pixel_sigma: float = 4.0  # pixels per image axis: error of the pelvis across the ray, the camera's K
    # sigma along the ray / distance: the network's depth, the camera's K (published; the floor fusion's
    # own weight, floor_contact.NETWORK_SIGMA 0.12, was tuned with floor_angle_sigma and stays apart)
    depth_sigma_ratio: float = 0.13
    heading_sigma: float = 1.5  # radians about the person's up axis (which way they face)
    # the same for a walking track whose heading is its velocity's (tracking/heading.py; measured on the
    # tuning clips: 0.65 rad with the true K, 0.67 predicted)
    velocity_heading_sigma: float = 0.7
    tilt_sigma: float = 0.17  # radians about each of the person's horizontal axes (lean, bend)
    # sigma along the ray / distance of a person scaled to a depth image (Human.depth_source "depth
    # image"): the benchmark's MRPE with exact depth and the true K is 4-5% of the distance
    measured_depth_sigma_ratio: float = 0.05
    # the same for a person stood on a known floor (Human.depth_source "floor")
    floor_depth_sigma_ratio: float = 0.07
    # K predicted by the network (no usable camera_info): every ray and depth is off with the
    # field of view, so the pixel sigma is this instead, and the sigma along the ray is scaled by
    predicted_fov_pixel_sigma: float = 7.8
    predicted_fov_depth_factor: float = 1.4

    def along_ray(self, depth_source: str, k_predicted: bool = False) -> float:
        """sigma along the viewing ray / distance of a person whose depth comes from `depth_source`."""
        ratio = {MEASURED_DEPTH: self.measured_depth_sigma_ratio,
                 FLOOR_DEPTH: self.floor_depth_sigma_ratio}.get(depth_source, self.depth_sigma_ratio)  # fmt: skip
        return ratio * (self.predicted_fov_depth_factor if k_predicted else 1.0)

    def pixels(self, k_predicted: bool = False) -> float:
        """sigma across the ray, in pixels per image axis."""
        return self.predicted_fov_pixel_sigma if k_predicted else self.pixel_sigma


def position_sigmas(distance: float, focal: float, prior: CovariancePrior, depth_source: str = NETWORK_DEPTH,
                    k_predicted: bool = False) -> tuple:
    """(sigma along the ray, sigma across it per axis), meters, of a pelvis `distance` m away."""
    along = prior.along_ray(depth_source, k_predicted) * distance
    across = prior.pixels(k_predicted) / max(focal, 1e-6) * distance
    return along, across


def pose_covariance(position: np.ndarray, rotation: np.ndarray, focal: float, prior: CovariancePrior,
                    depth_source: str = NETWORK_DEPTH, k_predicted: bool = False,
                    heading_from_velocity: bool = False) -> np.ndarray:
    """6x6 pose covariance of a pelvis at `position` (3,) meters turned by `rotation` (3, 3) (body
    axes -> camera): elongated along the camera ray, and about the body's up axis (by
    velocity_heading_sigma instead of heading_sigma when the heading is a walking track's)."""
    p = np.asarray(position, dtype=np.float64)
    distance = float(np.linalg.norm(p))
    ray = p / distance if distance > 0 else np.array([0.0, 0.0, 1.0])
    along, across = position_sigmas(distance, focal, prior, depth_source, k_predicted)
    outer = np.outer(ray, ray)
    cov = np.zeros((POSE_DOF, POSE_DOF))
    cov[LINEAR, LINEAR] = across**2 * (np.eye(3) - outer) + along**2 * outer
    up = np.asarray(rotation, dtype=np.float64)[:, UP_AXIS]
    up_outer = np.outer(up, up)
    heading = prior.velocity_heading_sigma if heading_from_velocity else prior.heading_sigma
    cov[ANGULAR, ANGULAR] = prior.tilt_sigma**2 * (np.eye(3) - up_outer) + heading**2 * up_outer
    return cov


@dataclass
class PersonResidual:
    """One true positive's pose error, in the prior's units (from `residual`)."""

    along: float  # |error along the true ray| / true distance
    across_px: float  # error across the ray, seen at the person's distance, in pixels of the used K
    heading: float  # radians: |the error's turn about the predicted body's up axis|
    tilt: float  # radians: the rest of the error's rotation (about the horizontal axes)
    depth_source: str  # the prediction's Human.depth_source


def residual(position, true_position, rotation, true_rotation, focal: float, depth_source: str) -> PersonResidual:
    """The error of a predicted pelvis (position (3,) m, rotation (3, 3)) against the truth's."""
    p, t = np.asarray(position, dtype=np.float64), np.asarray(true_position, dtype=np.float64)
    distance = max(float(np.linalg.norm(t)), 1e-6)
    ray, error = t / distance, p - t
    along = float(error @ ray)
    across = float(np.linalg.norm(error - along * ray))
    heading, tilt = heading_tilt(rotation, true_rotation)
    return PersonResidual(abs(along) / distance, across / distance * focal, heading, tilt, depth_source)


def heading_tilt(rotation, true_rotation) -> tuple:
    """(heading, tilt) radians of a predicted orientation (3, 3) against the truth's: |the error's turn
    about the predicted body's up axis| and the norm of the rest (about the horizontal axes)."""
    R = np.asarray(rotation, dtype=np.float64)
    turn = Rotation.from_matrix(R @ np.asarray(true_rotation, dtype=np.float64).T).as_rotvec()  # camera axes
    up = R[:, UP_AXIS]
    heading = float(turn @ up)
    return abs(heading), float(np.linalg.norm(turn - heading * up))


class PriorCheck:
    """Accumulates `PersonResidual`s, each with whether its frame's K was predicted, and reports the
    prior's coverage and the calibrated prior (module docstring)."""

    def __init__(self, prior: Optional[CovariancePrior] = None) -> None:
        self.prior = prior or CovariancePrior()
        self.people: List[PersonResidual] = []
        self.k_predicted: List[bool] = []

    def add(self, person: PersonResidual, k_predicted: bool) -> None:
        self.people.append(person)
        self.k_predicted.append(bool(k_predicted))

    def summary(self) -> Dict[str, Optional[float]]:
        """covariance_*_coverage: fraction inside the prior's 68% region (None without people);
        calibrated_*: the prior's fields that would cover 68% on these people (None where no
        person of that kind was seen). K predicted for some people: the predicted_fov_* fields."""
        out: Dict[str, Optional[float]] = {}
        people, predicted = self.people, np.array(self.k_predicted, dtype=bool)
        along_sigma = np.array([self.prior.along_ray(p.depth_source, k) for p, k in zip(people, predicted)])
        pixel_sigma = np.array([self.prior.pixels(k) for k in predicted])
        along = np.array([p.along for p in people])
        across = np.array([p.across_px for p in people])
        heading, tilt = np.array([p.heading for p in people]), np.array([p.tilt for p in people])
        inside = {"along": along <= RADIUS_1D * along_sigma, "across": across <= RADIUS_2D * pixel_sigma,
                  "heading": heading <= RADIUS_1D * self.prior.heading_sigma,
                  "tilt": tilt <= RADIUS_2D * self.prior.tilt_sigma}  # fmt: skip
        for name, ok in inside.items():
            out[f"covariance_{name}_coverage"] = float(np.mean(ok)) if len(people) else None
        out.update(self._calibrated(along, across, heading, tilt, predicted))
        return out

    def _calibrated(self, along, across, heading, tilt, predicted) -> Dict[str, Optional[float]]:
        def q68(values, radius=RADIUS_1D):
            return float(np.percentile(values, 100 * COVERAGE) / radius) if len(values) else None

        sources = np.array([p.depth_source for p in self.people])
        given = ~predicted
        out = {"calibrated_pixel_sigma": q68(across[given], RADIUS_2D),
               "calibrated_heading_sigma": q68(heading), "calibrated_tilt_sigma": q68(tilt, RADIUS_2D),
               "calibrated_predicted_fov_pixel_sigma": q68(across[predicted], RADIUS_2D)}  # fmt: skip
        for field, source in (("depth_sigma_ratio", NETWORK_DEPTH), ("measured_depth_sigma_ratio", MEASURED_DEPTH),
                              ("floor_depth_sigma_ratio", FLOOR_DEPTH)):
            out[f"calibrated_{field}"] = q68(along[given & (sources == source)])
        # the factor that calibrates the predicted-K people given their sources' ratios
        base = np.array([self.prior.along_ray(s) for s in sources[predicted]])
        out["calibrated_predicted_fov_depth_factor"] = q68(along[predicted] / np.maximum(base, 1e-9))
        return out


__all__ = ["CovariancePrior", "PersonResidual", "PriorCheck", "heading_tilt", "pose_covariance", "position_sigmas",
           "residual",
           "COVERAGE", "POSE_DOF", "LINEAR", "ANGULAR"]
