"""Pure association functions (SORT-style): similarity matrices and the Hungarian step.

Paper ("Tracking in videos"): pelvis similarity
    exp(-|p - p̂| / t_p) * exp(-|n - n̂| / t_n) * exp(-|θ - θ̂| / t_θ),  t_p=1, t_n=3, t_θ=20,
combined with the feature similarity by a weighted sum (weights 1 and 8), Hungarian
matching, and a new track for a detection with no association of similarity >= 0.69.

Units the paper leaves open (see TrackerConfig):
- |p - p̂| is the Euclidean pixel distance converted to `pixel_unit`; the default "focal"
  divides it by the focal length: about the angle between the detection's ray and the
  predicted one, in radians, invariant to image resolution and focal length. With t_p = 1 and
  the 0.69 gate a track can take a detection up to 15-25° from its prediction (by how well the
  features agree), and the Hungarian step chooses among the candidates. "meters_at_depth"
  multiplies the angle by the depth: the lateral offset in meters ("one meter sideways costs a
  factor e"), whose gate closes at 0.25-0.43 m. A detector errs in pixels, about as much near
  as far, so in meters a far person's jitter alone crosses that gate and starts a new track:
  with the shipped model's detections (`mhr2 eval`, 2026-12-03) "meters_at_depth" made 50
  tracks of the 29 people of the tuning clips (31 ID switches on person boxes; "focal": 2),
  and "focal" raised IDF1 on person boxes from 0.591 to 0.676 (tuning clips, 95% paired
  interval +0.033 to +0.147), 0.597 to 0.674 (confirmation clips, seeds 800-809) and 0.422 to
  0.528 (benchmark), each within 0.01 of the IDF1 with true identities
  (`runner.with_true_ids`). On generated streams, whose pelvises jitter little, the two tie
  (`benchmarks/tracker.py --quality`: 0.953 both; with poses from a turning camera
  `--camera-motion` 0.85 / 0.85 against 0.86 / 0.88 for "focal"), except with useless
  appearance features: `mhr2 track-eval --simulate --feature-noise 1` loses 0.94 to 0.90 on
  the occlusion scenario, where a false positive near an occluded person's prediction now
  continues that track. Raw pixels with t_p = 1 would zero the term for any real motion
  (tuning clips: IDF1 0.09).
- |n - n̂| is in nearness units (natural log of inverse depth, as the network predicts).
- |θ - θ̂| is the geodesic angle between the two orientations, in radians by default:
  with t_θ = 20 the term is a mild factor in [0.855, 1] that only disfavours flips. In
  degrees (angle_unit "deg") the term is strict: an error over 8.6° alone (feature and
  position perfect) brings the normalised score below 0.69, and on simulated streams with 6° orientation noise IDF1
  fell from 0.95 to 0.28 (`python benchmarks/tracker.py --quality`); detectors' frame-to-frame
  orientation jitter is at least that large.
- The quantity compared to 0.69 is the combined score normalised by the weight sum,
  (w_f F + w_p P) / (w_f + w_p), in [0, 1]. It gates the Hungarian step: pairs below it
  are never associated; an unassociated detection starts a new track.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def pixel_offsets(det_pixels: np.ndarray, pred_pixels: np.ndarray, depth: np.ndarray, focal: float,
                  unit: str) -> np.ndarray:
    """(M, 2) detections x (T, 2) predictions -> (M, T) pelvis offsets in `unit`.

    depth: (M,) detection depths in meters (for "meters_at_depth"); focal in pixels.
    """
    d = np.linalg.norm(det_pixels[:, None, :] - pred_pixels[None, :, :], axis=-1)  # pixels
    if unit == "pixels":
        return d
    if unit == "focal":
        return d / focal
    if unit == "meters_at_depth":
        return d * (np.maximum(depth, 0.0) / focal)[:, None]
    raise ValueError(f"unknown pixel unit {unit!r}")


def orientation_offsets(det_rot: np.ndarray, pred_rot: np.ndarray, unit: str) -> np.ndarray:
    """(M, 3, 3) x (T, 3, 3) -> (M, T) geodesic angles in `unit` ("deg" or "rad")."""
    trace = np.einsum("mij,tij->mt", det_rot, pred_rot)  # trace(R_det^T R_pred)
    angle = np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0))
    if unit == "deg":
        return np.degrees(angle)
    if unit == "rad":
        return angle
    raise ValueError(f"unknown angle unit {unit!r}")


def pelvis_similarity(dp: np.ndarray, dn: np.ndarray, dtheta: np.ndarray,
                      t_p: float, t_n: float, t_theta: float) -> np.ndarray:
    """Paper's product of exponentials on (M, T) offsets -> (M, T) similarity in (0, 1]."""
    return np.exp(-(np.abs(dp) / t_p + np.abs(dn) / t_n + np.abs(dtheta) / t_theta))


def combine_similarities(feature: np.ndarray, pelvis: np.ndarray, w_feature: float, w_pelvis: float,
                         has_feature: np.ndarray | None = None) -> np.ndarray:
    """Weighted sum normalised by the weight sum: (M, T) in [0, 1].

    Rows of detections without a track feature (has_feature False) use the pelvis term
    alone, so a missing feature is not read as a dissimilar one.
    """
    score = (w_feature * feature + w_pelvis * pelvis) / (w_feature + w_pelvis)
    if has_feature is not None and not np.all(has_feature):
        alone = pelvis if w_pelvis > 0 else np.zeros_like(pelvis)
        score = np.where(np.asarray(has_feature)[:, None], score, alone)
    return score


def associate(score: np.ndarray, threshold: float):
    """Hungarian assignment maximising the summed score over pairs with score >= threshold.

    score: (M, T) detections x tracks. Pairs below the threshold cost 0, the same as
    leaving both unassociated, so the solver never trades a valid pair for them.
    Returns (matches (k, 2) int [det, track], unmatched_dets (M-k,), unmatched_tracks (T-k,)).
    """
    m, t = score.shape
    if m == 0 or t == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(m), np.arange(t)
    allowed = score >= threshold
    rows, cols = linear_sum_assignment(np.where(allowed, -score, 0.0))
    keep = allowed[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    free_dets, free_tracks = np.ones(m, dtype=bool), np.ones(t, dtype=bool)
    free_dets[matches[:, 0]] = False
    free_tracks[matches[:, 1]] = False
    return matches, np.flatnonzero(free_dets), np.flatnonzero(free_tracks)
