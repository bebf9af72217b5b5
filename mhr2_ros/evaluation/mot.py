"""Multi-object tracking metrics on point tracks: IDF1, MOTA, ID switches (py-motmetrics)
and HOTA / DetA / AssA / LocA (published definition, computed here).

Input, per frame: a list of (id, position) for the ground truth and for the tracker.
With metric "euclidean" (default) positions are 3D points in meters or 2D points in
pixels (all of one kind), and a GT and a predicted point can match when their Euclidean
distance is at most `threshold` (same unit as the positions). With metric "iou" they are
2D boxes (x0, y0, x1, y1, pixels), and a pair can match when its IoU is at least
`threshold` (MOTChallenge and PoseTrack21's box evaluation: 0.5); distances are then
1 - IoU (MOTP included) and HOTA's similarity is the IoU, as TrackEval's box metrics.

- CLEAR MOT and identity metrics come from py-motmetrics 1.4.0 (MOTAccumulator +
  MetricsHost.compute, which work under NumPy 2 / pandas 3). Its distance helper
  `iou_matrix` is broken under NumPy 2 (np.asfarray was removed) and is not used; the
  point distances use its `norm2squared_matrix`, which works. MOTP is reported in the
  unit of the positions (Euclidean distance, not squared).
- HOTA is not in py-motmetrics 1.4.0 and no maintained package for it is a dependency of
  this project, so it is computed following its definition (Luiten et al., IJCV 2021)
  as TrackEval implements it: similarity of a pair = max(0, 1 - d / threshold)
  (TrackEval's Euclidean similarity with zero_distance = threshold; for boxes the IoU), global alignment
  score, per-frame Hungarian on alignment x similarity (py-motmetrics' lap solver),
  alpha from 0.05 to 0.95 by 0.05, results averaged over alpha.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Hashable, List, Mapping, Sequence, Tuple

import numpy as np

from mhr2_ros.evaluation.metrics import box_iou

Observation = Tuple[Hashable, Any]  # (id, (2,) or (3,) position, or (4,) box)
FrameObservations = Sequence[Observation]

CLEAR_METRICS = (
    "num_frames", "idf1", "idp", "idr", "recall", "precision", "mota", "motp", "num_switches",
    "num_false_positives", "num_misses", "num_objects", "num_predictions", "num_unique_objects",
    "mostly_tracked", "partially_tracked", "mostly_lost", "num_fragmentations", "idtp", "idfp", "idfn",
)
METRICS = ("euclidean", "iou")  # how observations are compared: points by distance, boxes by IoU
HOTA_ALPHAS = np.arange(0.05, 0.99, 0.05)  # 0.05 ... 0.95, as in TrackEval
_EPS = np.finfo(float).eps

TABLE_COLUMNS = (  # (metric key, header, format)
    ("idf1", "IDF1", "{:.3f}"), ("mota", "MOTA", "{:.3f}"), ("hota", "HOTA", "{:.3f}"),
    ("deta", "DetA", "{:.3f}"), ("assa", "AssA", "{:.3f}"), ("num_switches", "IDSW", "{:.0f}"),
    ("num_false_positives", "FP", "{:.0f}"), ("num_misses", "FN", "{:.0f}"),
    ("num_fragmentations", "Frag", "{:.0f}"), ("motp", "MOTP", "{:.3f}"),
    ("num_objects", "GT", "{:.0f}"), ("num_frames", "frames", "{:.0f}"),
)


def _motmetrics():
    try:
        import motmetrics
    except ImportError as exc:  # an optional evaluation dependency
        raise ImportError("MOT evaluation needs py-motmetrics: pip install motmetrics==1.4.0") from exc
    return motmetrics


def _split(frame: FrameObservations, dim: int | None, metric: str) -> Tuple[List[Hashable], np.ndarray]:
    """[(id, position)] -> ids, (n, dim) positions (points, or boxes for metric "iou")."""
    ids = [obs[0] for obs in frame]
    if not ids:
        return ids, np.zeros((0, dim or 0))
    pos = np.array([np.asarray(obs[1], dtype=np.float64).reshape(-1) for obs in frame], dtype=np.float64)
    if len(ids) != len(set(ids)):
        raise ValueError(f"an id appears twice in one frame: {ids}")
    if metric == "iou" and (pos.ndim != 2 or pos.shape[1] != 4):
        raise ValueError(f"metric 'iou' needs boxes (x0, y0, x1, y1), got shape {pos.shape}")
    if metric != "iou" and (pos.ndim != 2 or pos.shape[1] not in (2, 3)):
        raise ValueError(f"positions must be 2D (pixels) or 3D (meters) points, got shape {pos.shape}")
    if dim is not None and pos.shape[1] != dim:
        raise ValueError(f"positions mix {dim}-d and {pos.shape[1]}-d points")
    return ids, pos


def distance_matrix(gt_pos: np.ndarray, pred_pos: np.ndarray, threshold: float,
                    metric: str = "euclidean") -> np.ndarray:
    """(G, d) x (P, d) -> (G, P) distances, NaN where no match is allowed: Euclidean beyond
    `threshold`, or for boxes 1 - IoU where the IoU is below `threshold`."""
    if len(gt_pos) == 0 or len(pred_pos) == 0:
        return np.empty((len(gt_pos), len(pred_pos)))
    if metric == "iou":
        iou = box_iou(gt_pos[:, None], pred_pos[None])
        return np.where(iou >= threshold, 1.0 - iou, np.nan)
    mm = _motmetrics()
    return np.sqrt(mm.distances.norm2squared_matrix(gt_pos, pred_pos, max_d2=float(threshold) ** 2))


def similarity(gt_pos: np.ndarray, pred_pos: np.ndarray, threshold: float, metric: str = "euclidean") -> np.ndarray:
    """(G, P) HOTA similarity in [0, 1]: 1 - distance / threshold for points, IoU for boxes."""
    if len(gt_pos) == 0 or len(pred_pos) == 0:
        return np.zeros((len(gt_pos), len(pred_pos)))
    if metric == "iou":
        return box_iou(gt_pos[:, None], pred_pos[None])
    d = np.linalg.norm(gt_pos[:, None, :] - pred_pos[None, :, :], axis=-1)
    return np.maximum(0.0, 1.0 - d / threshold)


def _frames(gt: Sequence[FrameObservations], pred: Sequence[FrameObservations], metric: str):
    """Yield per frame (gt ids, gt positions, pred ids, pred positions), checking dims."""
    if len(gt) != len(pred):
        raise ValueError(f"{len(gt)} ground-truth frames but {len(pred)} predicted frames")
    dim = None
    for g, p in zip(gt, pred):
        gi, gp = _split(g, dim, metric)
        dim = gp.shape[1] if len(gi) else dim
        pi, pp = _split(p, dim, metric)
        dim = pp.shape[1] if len(pi) else dim
        yield gi, gp, pi, pp


def accumulate(gt: Sequence[FrameObservations], pred: Sequence[FrameObservations], threshold: float,
               metric: str = "euclidean"):
    """A py-motmetrics MOTAccumulator with one update per frame.

    py-motmetrics stores ids as floats, so ids (e.g. track ids "h3") are replaced by
    their order of first appearance, per side; the metrics do not depend on the names.
    """
    mm = _motmetrics()
    acc = mm.MOTAccumulator(auto_id=True)
    gt_index, pr_index = {}, {}
    for gi, gp, pi, pp in _frames(gt, pred, metric):
        g = [gt_index.setdefault(i, len(gt_index)) for i in gi]
        p = [pr_index.setdefault(i, len(pr_index)) for i in pi]
        acc.update(g, p, distance_matrix(gp, pp, threshold, metric))
    return acc


def _lsa(score: np.ndarray):
    """Maximum-score assignment through py-motmetrics' solver front-end."""
    rows, cols = _motmetrics().lap.linear_sum_assignment(-score)
    return np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)


def hota(gt: Sequence[FrameObservations], pred: Sequence[FrameObservations],
         threshold: float, metric: str = "euclidean") -> Dict[str, float]:
    """HOTA, DetA, AssA, LocA averaged over alpha, and HOTA at alpha = 0.05 ("hota_0")."""
    frames, gt_index, pr_index = [], {}, {}
    for gi, gp, pi, pp in _frames(gt, pred, metric):
        g = np.array([gt_index.setdefault(i, len(gt_index)) for i in gi], dtype=np.int64)
        p = np.array([pr_index.setdefault(i, len(pr_index)) for i in pi], dtype=np.int64)
        frames.append((g, p, similarity(gp, pp, threshold, metric)))
    n_g, n_p, n_a = len(gt_index), len(pr_index), len(HOTA_ALPHAS)
    gt_count, pr_count = np.zeros(n_g), np.zeros(n_p)
    potential = np.zeros((n_g, n_p))
    for g, p, sim in frames:  # global alignment: soft IoU of whole trajectories
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        potential[g[:, None], p[None, :]] += np.where(denom > _EPS, sim / np.where(denom > _EPS, denom, 1), 0)
        gt_count[g] += 1
        pr_count[p] += 1
    align = potential / np.maximum(gt_count[:, None] + pr_count[None, :] - potential, _EPS)
    tp, fn, fp, loc = np.zeros(n_a), np.zeros(n_a), np.zeros(n_a), np.zeros(n_a)
    matches = np.zeros((n_a, n_g, n_p))
    for g, p, sim in frames:
        if len(g) == 0 or len(p) == 0:
            fn += len(g)
            fp += len(p)
            continue
        r, c = _lsa(align[g[:, None], p[None, :]] * sim)
        s = sim[r, c]
        for a, alpha in enumerate(HOTA_ALPHAS):
            ok = s >= alpha - _EPS
            tp[a] += ok.sum()
            fn[a] += len(g) - ok.sum()
            fp[a] += len(p) - ok.sum()
            loc[a] += s[ok].sum()
            matches[a, g[r[ok]], p[c[ok]]] += 1
    ass_iou = matches / np.maximum(1, gt_count[None, :, None] + pr_count[None, None, :] - matches)
    assa = (matches * ass_iou).sum(axis=(1, 2)) / np.maximum(1, tp)
    deta = tp / np.maximum(1, tp + fn + fp)
    h = np.sqrt(deta * assa)
    loca = np.maximum(1e-10, loc) / np.maximum(1e-10, tp)
    return {"hota": float(h.mean()), "deta": float(deta.mean()), "assa": float(assa.mean()),
            "loca": float(loca.mean()), "hota_0": float(h[0])}


def evaluate(gt: Sequence[FrameObservations], pred: Sequence[FrameObservations],
             threshold: float, metric: str = "euclidean") -> Dict[str, float]:
    """All metrics as one flat dict: CLEAR_METRICS (py-motmetrics) + hota, deta, assa, loca, hota_0.

    gt, pred: one list per frame of (id, position); metric "euclidean": threshold is the
    max match distance (meters for 3D points, pixels for 2D points); metric "iou":
    positions are boxes and threshold the min IoU of a match. MOTA and IDF1 are
    fractions (1 = perfect).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not threshold > 0 or (metric == "iou" and threshold > 1):
        raise ValueError(f"threshold must be > 0{' and <= 1 for IoU' if metric == 'iou' else ''}, got {threshold}")
    mm = _motmetrics()
    acc = accumulate(gt, pred, threshold, metric)
    summary = mm.metrics.create().compute(acc, metrics=list(CLEAR_METRICS), name="x")
    out = {k: float(summary[k].iloc[0]) for k in CLEAR_METRICS}
    out.update(hota(gt, pred, threshold, metric))
    return out


def format_table(results: Mapping[str, Any]) -> str:
    """A fixed-width table: one row per name of {name: metrics}, or one row for a metrics dict."""
    if results and all(isinstance(v, (int, float, np.floating, np.integer)) for v in results.values()):
        results = {"": results}
    width = max([len(str(n)) for n in results] + [4])
    header = " " * width + "".join(f"{h:>9}" for _, h, _ in TABLE_COLUMNS)
    lines = [header]
    for name, metrics in results.items():
        cells = [fmt.format(metrics[k]) if k in metrics else "-" for k, _, fmt in TABLE_COLUMNS]
        lines.append(f"{str(name):<{width}}" + "".join(f"{c:>9}" for c in cells))
    return "\n".join(lines)


def print_table(results: Mapping[str, Any], file=None) -> None:
    """Print `format_table(results)` (to stdout by default)."""
    (file or sys.stdout).write(format_table(results) + "\n")
