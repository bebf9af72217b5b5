"""Query selection at inference (paper, "Inference on images").

Instead of the training-time Hungarian matching, keep the queries whose score
is above a threshold (paper: 0.4), then optionally suppress duplicates whose 3D
pelvis locations are closer than a radius (greedy NMS, best score first).
"""

from __future__ import annotations

import numpy as np


def select_queries(
    scores: np.ndarray,
    positions: np.ndarray,
    threshold: float,
    nms_distance: float = 0.0,
    max_count: int | None = None,
) -> np.ndarray:
    """Indices of the kept queries, best score first.

    scores: (N,) in [0, 1]; positions: (N, 3) pelvis locations in meters.
    A query is kept when its score is strictly above `threshold`; with
    `nms_distance` > 0 a kept query removes every lower-scored query within
    that Euclidean distance (meters). `max_count` caps the result.
    """
    scores = np.asarray(scores, dtype=np.float64)
    candidates = np.flatnonzero(scores > threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if nms_distance > 0 and len(order) > 1:
        order = nms_3d(order, np.asarray(positions, dtype=np.float64), nms_distance)
    if max_count is not None:
        order = order[:max_count]
    return order


def nms_3d(order: np.ndarray, positions: np.ndarray, radius: float) -> np.ndarray:
    """Greedy non-maximum suppression on 3D points; `order` is sorted by score."""
    kept = []
    suppressed = np.zeros(len(order), dtype=bool)
    pts = positions[order]
    for i in range(len(order)):
        if suppressed[i]:
            continue
        kept.append(order[i])
        dist = np.linalg.norm(pts[i + 1 :] - pts[i], axis=1)
        suppressed[i + 1 :] |= dist < radius
    return np.asarray(kept, dtype=np.int64)
