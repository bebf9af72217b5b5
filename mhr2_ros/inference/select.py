"""Query selection at inference (paper, "Inference on images").

Instead of the training-time Hungarian matching, keep the queries whose score
is above a threshold (paper: 0.4), then optionally suppress duplicates whose 3D
pelvis locations are closer than a radius (greedy NMS, best score first).

Optionally, before the threshold, duplicates are merged (`merge_duplicates`, not in the
paper): a trained DETR gives each person one confident query, but an under-trained one
spreads a person's confidence over several queries at the same place, none of them
above the threshold. That is what the shipped CPU-trained model does, most for near,
large people (on the synthetic benchmark a person's queries sum to about 0.9, split
over 6 queries within 3 m and 2-3 beyond 9 m). Merging sums them into one detection.
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


MERGE_FLOOR = 0.1  # queries scoring below this neither lead nor join a merge (empty queries' noise)


def merge_duplicates(
    scores: np.ndarray, pelvis_2d: np.ndarray, depth: np.ndarray, focal_px: float, radius_m: float
) -> np.ndarray:
    """Scores (N,) after merging duplicate queries ("score voting").

    scores (N,) in [0, 1]; pelvis_2d (N, 2) pixels; depth (N,) meters; focal_px the
    vertical focal length in pixels. Greedily, best first, a query scoring at least
    MERGE_FLOOR leads a group of every remaining such query whose 2D pelvis is within
    `radius_m` of its own, measured across the view at the leader's depth (radius_m *
    focal_px / depth pixels: duplicates agree on the pixel far more than on the depth).
    The leader's score becomes the group's sum (at most 1), the others' 0; queries below
    the floor keep their score.
    """
    scores = np.asarray(scores, dtype=np.float64)
    merged = scores.copy()
    order = np.flatnonzero(scores >= MERGE_FLOOR)
    order = order[np.argsort(-scores[order], kind="stable")]
    free = np.ones(len(order), dtype=bool)
    pts = np.asarray(pelvis_2d, dtype=np.float64)[order]
    for i, lead in enumerate(order):
        if not free[i]:
            continue
        radius_px = radius_m * focal_px / max(float(depth[lead]), 1e-3)
        group = free & (np.linalg.norm(pts - pts[i], axis=1) < radius_px)
        group[i] = True
        free &= ~group
        merged[order[group]] = 0.0
        merged[lead] = min(1.0, float(scores[order[group]].sum()))
    return merged


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
