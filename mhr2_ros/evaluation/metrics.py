"""Human mesh recovery metrics (paper, "Metrics"), numpy, per person or per pair.

Inputs are in meters in the camera frame; the mesh metrics return millimeters
(the unit the paper reports), MRPE meters, the FOV error degrees. Predictions
are matched to ground truth beforehand (`match_people`: Hungarian on 2D joints,
as the paper does, accepted by keypoint-box overlap or by joint distance) and
every function takes already-matched arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

# the "iou" criterion's default acceptance (the paper's protocol) and the stricter box test, which
# the "joints" criterion also applies (see match_people); defined with the benchmark, re-exported
from mhr2_ros.evaluation.benchmark_spec import BOX_IOU, MATCH_IOU  # noqa: F401
from mhr2_ros.geometry import rotation_angle

MM = 1000.0
HEADING_FORWARD, HEADING_UP = 0, 2  # columns of a body rotation (REP-103 body axes -> camera): chest, up
MIN_HEADING_NORM = 0.1  # a chest within 6 deg of the vertical has no heading (sin 5.7 deg = 0.1)
TURNED_AWAY_DEG = 90.0  # a heading error above this faces the other half of the circle
BACK_TO_CAMERA_DEG = 120.0  # a body facing more than this from the camera shows it its back


def mpjpe(pred: np.ndarray, gt: np.ndarray, root: int = 0) -> float:
    """Mean per-joint position error, mm, after centring both on joint `root`
    (the pelvis). pred, gt: (J, 3) meters."""
    return float(np.linalg.norm((pred - pred[root]) - (gt - gt[root]), axis=-1).mean() * MM)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """`pred` (N, 3) moved by the similarity (scale, rotation, translation) that best
    fits it to `gt` in the least-squares sense (Umeyama, reflections excluded)."""
    mu_p, mu_g = pred.mean(0), gt.mean(0)
    p, g = pred - mu_p, gt - mu_g
    U, S, Vt = np.linalg.svd(p.T @ g)
    d = np.sign(np.linalg.det(U @ Vt))
    D = np.diag([1.0, 1.0, d])
    R = U @ D @ Vt  # applied on the right: p @ R
    scale = (S * np.diag(D)).sum() / max((p**2).sum(), 1e-12)
    return scale * p @ R + mu_g


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> float:
    """Procrustes-aligned MPJPE, mm: joint error after the best similarity transform
    of each predicted skeleton onto its ground truth. pred, gt: (J, 3) meters."""
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean() * MM)


def pair_pa_mpjpe(pred_a, pred_b, gt_a, gt_b) -> float:
    """Pair-PA-MPJPE, mm: one Procrustes alignment for two people together, so
    their relative placement counts (paper, interaction benchmarks)."""
    pred = np.concatenate([pred_a, pred_b])
    gt = np.concatenate([gt_a, gt_b])
    return float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).mean() * MM)


def pve(pred_verts: np.ndarray, gt_verts: np.ndarray, pred_root: np.ndarray, gt_root: np.ndarray) -> float:
    """Per-vertex error, mm, both meshes centred on their pelvis (`*_root`, (3,))."""
    return float(np.linalg.norm((pred_verts - pred_root) - (gt_verts - gt_root), axis=-1).mean() * MM)


def abs_pve(pred_verts: np.ndarray, gt_verts: np.ndarray) -> float:
    """Absolute per-vertex error, mm, in the camera frame (no centring): measures
    the 3D placement of the mesh as well as its shape and pose."""
    return float(np.linalg.norm(pred_verts - gt_verts, axis=-1).mean() * MM)


def ta_pve(pred_verts: list, gt_verts: list) -> Optional[float]:
    """Translation-aligned PVE, mm, for one frame: every predicted mesh is moved by
    one common translation that aligns the scene centroids (mean of all vertices),
    so errors in the relative placement of people count but not a global offset.
    Defined for at least 2 matched people; None otherwise."""
    if len(pred_verts) < 2:
        return None
    shift = np.concatenate(gt_verts).mean(0) - np.concatenate(pred_verts).mean(0)
    errors = [np.linalg.norm(p + shift - g, axis=-1).mean() for p, g in zip(pred_verts, gt_verts)]
    return float(np.mean(errors) * MM)


def mrpe(pred_root: np.ndarray, gt_root: np.ndarray) -> float:
    """Mean root position error, meters: distance between pelvis positions (3,)."""
    return float(np.linalg.norm(pred_root - gt_root))


def orientation_error_deg(pred_rotation: np.ndarray, gt_rotation: np.ndarray) -> float:
    """Pelvis orientation error, degrees in [0, 180]: the angle of the rotation between the predicted
    and the true body axes (3, 3) (the geodesic distance). PA-MPJPE aligns it away; MPJPE holds it."""
    relative = np.asarray(pred_rotation, np.float64).T @ np.asarray(gt_rotation, np.float64)
    return float(np.degrees(rotation_angle(relative)))


def heading_error_deg(pred_rotation: np.ndarray, gt_rotation: np.ndarray) -> Optional[float]:
    """Heading error, degrees in [0, 180]: which way the person faces, the turn about the true
    body's up axis alone. The body x axes (REP-103: out of the chest; rotations (3, 3) body ->
    camera, columns x forward, y left, z up) are projected onto the plane normal to the true up
    axis and the angle between them is measured: a lean or a bow counts nothing, a person turned
    around counts 180. None when the predicted chest points along the true up axis (within
    MIN_HEADING_NORM: a body lying face down or up has no heading)."""
    pred, gt = np.asarray(pred_rotation, np.float64), np.asarray(gt_rotation, np.float64)
    return _angle_across(pred[:, HEADING_FORWARD], gt[:, HEADING_FORWARD], gt[:, HEADING_UP])


def facing_camera_deg(rotation: np.ndarray, position: np.ndarray) -> Optional[float]:
    """How far a body faces from the camera, degrees in [0, 180]: 0 chest toward the camera, 180 its
    back to it. The chest axis (REP-103 x; rotation (3, 3) body -> camera) and the direction from the
    pelvis `position` (3,) m to the camera are projected onto the plane normal to the body's own up
    axis. None when either is (nearly) vertical: a body lying down, or the camera straight above."""
    R, p = np.asarray(rotation, np.float64), np.asarray(position, np.float64)
    to_camera = -p / max(float(np.linalg.norm(p)), 1e-9)
    return _angle_across(R[:, HEADING_FORWARD], to_camera, R[:, HEADING_UP])


def _angle_across(a: np.ndarray, b: np.ndarray, up: np.ndarray) -> Optional[float]:
    """Degrees in [0, 180] between unit vectors `a` and `b` (3,) projected onto the plane normal to
    the unit `up`; None when either projection is shorter than MIN_HEADING_NORM (nearly along up)."""
    flat = [v - (v @ up) * up for v in (a, b)]
    norms = [float(np.linalg.norm(v)) for v in flat]
    if min(norms) < MIN_HEADING_NORM:
        return None
    return float(np.degrees(np.arccos(np.clip(float(flat[0] @ flat[1]) / (norms[0] * norms[1]), -1.0, 1.0))))


def fov_error_deg(pred_fov: float, gt_fov: float) -> float:
    """Absolute vertical field-of-view error in degrees (inputs in radians)."""
    return float(abs(np.degrees(pred_fov - gt_fov)))


def fov_bias_deg(pred_fov: float, gt_fov: float) -> float:
    """Signed vertical field-of-view error in degrees, predicted - true (inputs in radians):
    negative when the predicted FOV is too narrow, i.e. the focal length too long, which
    places people too far."""
    return float(np.degrees(pred_fov - gt_fov))


@dataclass
class Detection:
    tp: int  # predictions matched to a counted ground-truth person within the threshold
    fp: int  # predictions left unmatched or matched too far (and not on an ignored person)
    fn: int  # counted ground-truth people without a prediction
    ignored: Tuple[int, ...] = ()  # indices of predictions on ignored people: neither TP nor FP

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def assignment_pairs(cost: np.ndarray, accept: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Hungarian pairs of a (P, G) cost matrix that `accept` (P, G) bool lets through:
    as many accepted pairs as possible, then the least cost. A pair that would be refused
    never takes a person from one that would pass (adding a prediction cannot remove a
    true positive); refused pairs cost more than any set of accepted ones."""
    if cost.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    penalty = float(np.abs(cost).max()) * min(cost.shape) + 1.0
    rows, cols = linear_sum_assignment(np.where(accept, cost, cost + penalty))
    good = accept[rows, cols]
    return rows[good], cols[good]


MATCH_JOINT_DISTANCE = 0.1  # "joints" criterion: mean 2D joint error below this fraction of the GT box diagonal
CRITERIA = ("iou", "joints")


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of axis-aligned boxes (..., 4) x0, y0, x1, y1 (broadcast against each other);
    an empty or inverted box has area 0."""
    wh = np.clip(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0, None)
    inter = wh[..., 0] * wh[..., 1]
    area = lambda x: np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def keypoint_box_iou(pred_kp: np.ndarray, gt_kp: np.ndarray, gt_vis: Optional[np.ndarray] = None) -> np.ndarray:
    """(P, G) IoU of the axis-aligned boxes around each person's 2D joints, pred_kp (P, J, 2),
    gt_kp (G, J, 2) pixels. `gt_vis` (G, J) bool: the labelled joints of each GT person; both
    boxes of a pair span only those (an unlabelled joint has no position)."""
    if gt_vis is None:
        gt_vis = np.ones(gt_kp.shape[:2], dtype=bool)
    mask = np.asarray(gt_vis, dtype=bool)[None, :, :, None]  # (1, G, J, 1)

    def boxes(kp):  # (P or 1, 1 or G, J, 2) -> (P, G, 4) x0, y0, x1, y1 over the labelled joints
        lo = np.where(mask, kp, np.inf).min(axis=2)
        hi = np.where(mask, kp, -np.inf).max(axis=2)
        return np.concatenate([lo, hi], axis=-1)

    return box_iou(boxes(pred_kp[:, None]), boxes(gt_kp[None]))


def match_people(
    pred_kp: np.ndarray, gt_kp: np.ndarray, gt_vis: np.ndarray, gt_boxes: np.ndarray, threshold: Optional[float] = None,
    ignore: Optional[np.ndarray] = None, criterion: str = "iou",
) -> Tuple[np.ndarray, np.ndarray, Detection]:
    """Hungarian matching of predictions to ground truth on 2D joints, then a criterion per pair.

    pred_kp (P, J, 2), gt_kp (G, J, 2) pixels; gt_vis (G, J) which GT joints are
    labelled; gt_boxes (G, 4) x0, y0, x1, y1. Pairs minimise the mean 2D distance over
    labelled joints divided by the GT box diagonal. A pair is a true positive when
    - criterion "iou" (default): the boxes around the two sets of 2D joints overlap with
      IoU >= threshold (default MATCH_IOU, 0.1). This is the protocol the paper follows
      ("following prior works"): AGORA's evaluation (pixelite1201/agora_evaluation,
      `match_2d_greedy`), whose matching the later multi-person HMR evaluations copy,
      pairs people by 2D joint error and accepts a pair at keypoint-box IoU >= 0.1. It
      asks whether the person was found; the pose is measured by the mesh metrics of
      the pairs. threshold=BOX_IOU (0.5, COCO's) is the stricter box test,
      which a body of the wrong size, turn or limb spread fails;
    - criterion "joints": stricter still, the box test at BOX_IOU and a mean joint
      distance below threshold (default MATCH_JOINT_DISTANCE, 10% of the diagonal), which
      also demands a correct pose, body rotation and scale.
    The assignment maximises the accepted pairs first (`assignment_pairs`).
    `ignore` (G,) bool marks people the protocol does not count (ignore regions, as
    in MOT and crowd benchmarks): the counted people are matched first; a prediction
    left over that matches an ignored person is neither a true nor a false positive
    (`Detection.ignored`), and a missed ignored person is no false negative.
    Returns (pred indices, gt indices) of the true positives and the counts.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    P, G = len(pred_kp), len(gt_kp)
    ignore = np.zeros(G, dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool)
    if P == 0 or G == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, Detection(0, P, int((~ignore).sum()))
    dist = np.linalg.norm(pred_kp[:, None] - gt_kp[None], axis=-1)  # (P, G, J)
    vis = gt_vis[None].astype(np.float64)
    mean = (dist * vis).sum(-1) / np.maximum(vis.sum(-1), 1)
    diag = np.linalg.norm(gt_boxes[:, 2:] - gt_boxes[:, :2], axis=-1)
    cost = mean / np.maximum(diag, 1.0)[None]
    iou = keypoint_box_iou(pred_kp, gt_kp, gt_vis > 0)
    if criterion == "iou":
        accept = iou >= (MATCH_IOU if threshold is None else threshold)
    else:
        accept = (iou >= BOX_IOU) & (cost < (MATCH_JOINT_DISTANCE if threshold is None else threshold))
    counted, ignored = np.flatnonzero(~ignore), np.flatnonzero(ignore)
    rows, cols = assignment_pairs(cost[:, counted], accept[:, counted])
    left = np.setdiff1d(np.arange(P), rows)
    on_ignored, _ = assignment_pairs(cost[left][:, ignored], accept[left][:, ignored])
    tp, n_ign = len(rows), len(on_ignored)
    det = Detection(tp, P - tp - n_ign, len(counted) - tp, tuple(int(i) for i in left[on_ignored]))
    return rows, counted[cols], det
