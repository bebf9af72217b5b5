"""One frame's detections as stacked arrays: what the association functions consume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from mhr2_ros.inference.results import FrameResult, Human


@dataclass
class Detections:
    pixels: np.ndarray  # (M, 2) pelvis pixels (u, v)
    nearness: np.ndarray  # (M,) network nearness
    depth: np.ndarray  # (M,) pelvis z, meters
    positions: np.ndarray  # (M, 3) pelvis, camera frame, meters
    rotations: np.ndarray  # (M, 3, 3) pelvis orientation, body -> camera
    features: np.ndarray  # (F, D) track features of the detections that have one
    has_feature: np.ndarray  # (M,) bool: which detections have a feature (rows of `features`)
    focal: float  # pixels: geometric mean of fx and fy of the frame's K

    def __len__(self) -> int:
        return len(self.depth)


def stack_detections(frame: FrameResult) -> Detections:
    """Stack the Humans of a FrameResult into arrays (float64 for the geometry)."""
    humans: List[Human] = list(frame.humans)
    m = len(humans)
    K = np.asarray(frame.K, dtype=np.float64)
    focal = float(np.sqrt(abs(K[0, 0] * K[1, 1])))
    has_feature = np.array([h.track_feature is not None for h in humans], dtype=bool)
    feats = [np.asarray(h.track_feature, dtype=np.float32).reshape(-1)
             for h in humans if h.track_feature is not None]
    if feats and len({f.shape[0] for f in feats}) > 1:
        raise ValueError(f"track features of one frame differ in width: {sorted({f.shape[0] for f in feats})}")
    return Detections(
        pixels=np.array([h.pelvis_2d for h in humans], dtype=np.float64).reshape(m, 2),
        nearness=np.array([h.nearness for h in humans], dtype=np.float64).reshape(m),
        depth=np.array([h.depth for h in humans], dtype=np.float64).reshape(m),
        positions=np.array([h.position for h in humans], dtype=np.float64).reshape(m, 3),
        rotations=np.array([h.orientation for h in humans], dtype=np.float64).reshape(m, 3, 3),
        features=np.stack(feats) if feats else np.zeros((0, 0), dtype=np.float32),
        has_feature=has_feature,
        focal=focal,
    )
