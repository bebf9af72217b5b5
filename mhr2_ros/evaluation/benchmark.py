"""The evaluation protocol of `mhr2 eval`: the fixed synthetic benchmark, per-frame
matching of predictions to ground truth and the accumulation of every metric.

Protocol (as the paper's "Metrics"): in each image, predictions are matched to the
ground-truth people in view by Hungarian matching on their 2D joints; a pair is a
true positive when the boxes around the two sets of 2D joints overlap with IoU >= 0.1
(the acceptance of the benchmarks the paper follows: AGORA's evaluation,
`metrics.match_people`; `Evaluator(match_iou=...)` changes it). Detection precision /
recall / F1 count those pairs; the mesh and placement metrics are averaged over the
true positives (TA-PVE over frames with >= 2 of them, Pair-PA-MPJPE over every pair of
them). Joints are the 27 of `body.JOINT_NAMES`. Two stricter detection counts are
reported beside it: `*_box`, the boxes overlapping with IoU >= 0.5 (COCO's box test,
which a body of the wrong size, turn or limb spread fails), and `*_joints`, that box
test and the mean joint distance of a pair below 10% of the person's box diagonal.

Ignore regions: a person in view is counted when at least MIN_VISIBLE_PIXELS of them
are visible and their pelvis lies inside the image, which is exactly who the training
targets hold (`training.data`); the model's 2D location cannot leave the image. The
others (a hand at the border, a head behind someone) are ignored: missing them costs
nothing and detecting them is no false positive (`metrics.match_people`). The summary
reports how many were ignored.

By distance (`Evaluator.by_distance`): the counted people binned by their true pelvis
depth (DISTANCE_BINS_M), with the recall, the MRPE and the median ratio of predicted to
true depth of those found in each bin: where a model loses people (near, truncated
bodies or far, small ones) and whether it places them too far (ratio > 1) or too near.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections import defaultdict
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mhr2_ros.body import JOINT_NAMES, PELVIS
from mhr2_ros.body.joints import PART_NAMES
from mhr2_ros.evaluation import metrics as M
from mhr2_ros.evaluation.errors import ErrorTypes, classify_errors
from mhr2_ros.evaluation.uncertainty import frame_sums
from mhr2_ros.inference.covariance import PriorCheck, residual
from mhr2_ros.inference.results import PREDICTED_K, FrameResult
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX, track_observations
# the benchmark's definition, in a module without torch (`mhr2 eval --help` shows its sizes)
from mhr2_ros.evaluation.benchmark_spec import SyntheticBenchmark  # noqa: F401
from mhr2_ros.training.data import MIN_VISIBLE_PIXELS

HEAD_PART = PART_NAMES.index("head")  # the part whose x axis is where the face looks (ros/tf.py)

DISTANCE_BINS_M = (3.0, 5.0, 7.0, 9.0)  # edges of the by-distance breakdown (true pelvis depth), meters


def distance_bin(depth_m: float) -> str:
    """Label of the DISTANCE_BINS_M bin holding `depth_m`: "< 3 m", "3-5 m", ..., ">= 9 m"
    (a bin holds its lower edge)."""
    edges = DISTANCE_BINS_M
    k = int(np.searchsorted(edges, depth_m, side="right"))
    if k == 0:
        return f"< {edges[0]:g} m"
    if k == len(edges):
        return f">= {edges[-1]:g} m"
    return f"{edges[k - 1]:g}-{edges[k]:g} m"


def distance_labels() -> List[str]:
    """Every bin label, nearest first."""
    edges = (0.0, *DISTANCE_BINS_M)
    return [distance_bin(e) for e in edges]


def keypoints(result: FrameResult) -> np.ndarray:
    """(N, J, 2) projected joints of every human of a result, pixels."""
    return np.array([h.keypoints_2d for h in result.humans], np.float64).reshape(len(result), len(JOINT_NAMES), 2)


def match_frame(result: FrameResult, truth: FrameResult, ignore=None, criterion: str = "iou",
                threshold: Optional[float] = None):
    """Predictions of `result` matched to `truth` on 2D joints: (pred idx, gt idx, Detection);
    `ignore` (len(truth),) bool: people not counted (`ignored_people`); `criterion` and
    `threshold`: see `metrics.match_people` ("iou": found, at keypoint-box IoU >= threshold,
    default the protocol's 0.1; "joints": found with the right 2D pose)."""
    boxes = np.array([t.box for t in truth.humans], np.float64).reshape(len(truth), 4)
    gt = keypoints(truth)
    return M.match_people(keypoints(result), gt, np.ones(gt.shape[:2]), boxes, threshold=threshold,
                          ignore=ignore, criterion=criterion)  # fmt: skip


def frame_errors(result: FrameResult, truth: FrameResult, rows, cols, det: M.Detection, ignore=None) -> ErrorTypes:
    """The error types (evaluation/errors.py) of one frame's matching (`match_frame`)."""
    boxes = np.array([t.box for t in truth.humans], np.float64).reshape(len(truth), 4)
    diag = np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=-1)
    return classify_errors(keypoints(result)[:, PELVIS], keypoints(truth)[:, PELVIS], diag, rows, cols, det, ignore)


def ignored_people(frame_truth, truth: FrameResult) -> np.ndarray:
    """(len(truth),) bool over the humans of `truth` (= to_frame_result(frame_truth) with
    ids GT_ID_PREFIX + id): True for a person the protocol ignores, with fewer than
    MIN_VISIBLE_PIXELS visible pixels or the pelvis outside the image."""
    h, w = frame_truth.image_size
    u, v = frame_truth.pelvis_2d[:, 0], frame_truth.pelvis_2d[:, 1]
    counted = (frame_truth.visible_pixels >= MIN_VISIBLE_PIXELS) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    counted_ids = {f"{GT_ID_PREFIX}{int(i)}" for i in frame_truth.ids[counted]}
    return np.array([person.track_id not in counted_ids for person in truth.humans], dtype=bool)


def fill_bodies(truth: FrameResult, body) -> FrameResult:
    """Ground truth with mesh vertices and body part rotations: those of the dataset, else posed
    with `body` from the stored pose and shape (the synthetic format can omit vertices; part
    rotations come from the pose alone, without skinning)."""
    missing = [h for h in truth.humans if h.vertices is None]
    unturned = [h for h in truth.humans if h.part_rotations is None]
    device = next(iter(body.buffers())).device
    if unturned:
        rot6d = torch.as_tensor(np.stack([h.pose_6d for h in unturned]), dtype=torch.float32, device=device)
        with torch.inference_mode():
            for h, parts in zip(unturned, body.part_rotations(rot6d).cpu().numpy()):
                h.part_rotations = parts
    if not missing:
        return truth
    rot6d = torch.as_tensor(np.stack([h.pose_6d for h in missing]), dtype=torch.float32, device=device)
    shape = torch.as_tensor(np.stack([h.shape for h in missing]), dtype=torch.float32, device=device)
    with torch.inference_mode():
        verts = body(rot6d, shape).vertices.cpu().numpy()  # (N, V, 3) pelvis-centred, camera axes
    for h, v in zip(missing, verts):
        h.vertices = v + np.asarray(h.position, np.float32)
    return truth


def counted_tracks(truth: FrameResult, ignore: np.ndarray, result: FrameResult, det: M.Detection,
                   observe=track_observations):
    """One frame's MOT observations (gt, pred) under the ignore regions: the counted
    ground-truth people, and the tracked detections that are not on an ignored person.
    `observe`: track_observations (3D pelvis) or track_eval.track_boxes (person boxes)."""
    gt = observe(h for h, ignored in zip(truth.humans, ignore) if not ignored)
    pred = observe(h for k, h in enumerate(result.humans) if k not in det.ignored)
    return gt, pred


class Evaluator:
    """Accumulates the metrics of many frames; `summary()` averages them.

    Units: mesh metrics in mm, MRPE in meters, FOV error in degrees."""

    MESH_KEYS = ("mpjpe", "pa_mpjpe", "pve", "abs_pve", "mrpe")
    ORIENTATION_KEYS = ("orientation_error", "heading_error", "turned_away", "back_to_camera", "back_to_camera_pred",
                        "head_orientation_error", "part_orientation_error")
    # detection counts: name -> (match_people criterion, threshold); "" is the protocol's
    # (its IoU set by match_iou), the others are the stricter counts of the module docstring
    STRICTER = {"box": ("iou", M.BOX_IOU), "joints": ("joints", None)}

    def __init__(self, match_iou: float = M.MATCH_IOU) -> None:
        if not 0.0 < match_iou <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {match_iou}")
        self.match_iou = match_iou  # keypoint-box IoU of a true positive (the protocol's 0.1)
        self.values: Dict[str, List[float]] = defaultdict(list)
        self.counts = {name: M.Detection(0, 0, 0) for name in ("", *self.STRICTER)}
        self.ignored = 0
        self.frames = 0
        self.errors = ErrorTypes()  # why the FPs and FNs of the protocol's match are wrong (errors.py)
        self.frame_sums: List[Dict[str, float]] = []  # per frame, uncertainty.frame_sums (for the bootstrap)
        # per frame, per true positive: (ground-truth id, PA-MPJPE mm, MRPE m), for uncertainty.PersonError
        self.frame_people: List[List[Tuple[str, float, float]]] = []
        # distance bin -> counted people, found people, and per found person MRPE (m),
        # predicted / true pelvis depth and heading error (deg)
        self.bins: Dict[str, Dict[str, list]] = defaultdict(
            lambda: {"found": [], "mrpe": [], "depth_ratio": [], "heading": []})
        self.prior_check = PriorCheck()  # the published pose covariance against these errors (covariance.py)
        self.last_pairs: List[Tuple[int, int]] = []  # the last frame's true positives (detection, person)

    def add(self, result: FrameResult, truth: FrameResult, ignore=None) -> M.Detection:
        """One frame; `ignore` (len(truth),) bool marks the people not counted (`ignored_people`).
        Every detection count; the other metrics over the protocol's true positives.
        Returns the frame's Detection by the protocol."""
        tests = {"": ("iou", self.match_iou), **self.STRICTER}
        matched = {name: match_frame(result, truth, ignore, *test) for name, test in tests.items()}
        for name, (_, _, det) in matched.items():
            c = self.counts[name]
            self.counts[name] = M.Detection(c.tp + det.tp, c.fp + det.fp, c.fn + det.fn)
        rows, cols, det = matched[""]
        self.last_pairs = list(zip(rows.tolist(), cols.tolist()))  # (detection, person) of this frame's TPs
        self.errors = self.errors + frame_errors(result, truth, rows, cols, det, ignore)
        self.frames += 1
        self.ignored += 0 if ignore is None else int(np.sum(ignore))
        fov_error = M.fov_error_deg(result.fov_y, truth.fov_y)
        self.values["fov_error"].append(fov_error)
        self.values["fov_bias"].append(M.fov_bias_deg(result.fov_y, truth.fov_y))
        pairs = [(result.humans[r], truth.humans[c]) for r, c in zip(rows, cols)]
        first = len(self.values["pa_mpjpe"])  # this frame's pairs start here
        focal, k_predicted = float(result.K[1, 1]), result.K_source == PREDICTED_K
        headings = []  # per pair, its heading error (deg) or None
        for p, g in pairs:
            headings.append(self._person(p, g))
            self.prior_check.add(residual(p.position, g.position, p.orientation, g.orientation, focal, p.depth_source),
                                 k_predicted)  # fmt: skip
        self.frame_sums.append(frame_sums(det.tp, det.fp, det.fn, self.values["pa_mpjpe"][first:],
                                          self.values["mrpe"][first:], fov_error,
                                          [h for h in headings if h is not None]))  # fmt: skip
        ids = [str(g.track_id) if g.track_id is not None else str(c) for (_, g), c in zip(pairs, cols)]
        self.frame_people.append(list(zip(ids, self.values["pa_mpjpe"][first:], self.values["mrpe"][first:])))
        self._add_distances(pairs, headings, truth, ignore, set(cols.tolist()))
        meshes = [(p.vertices, g.vertices) for p, g in pairs if p.vertices is not None and g.vertices is not None]
        ta = M.ta_pve([m[0] for m in meshes], [m[1] for m in meshes])
        if ta is not None:
            self.values["ta_pve"].append(ta)
        for (pa, ga), (pb, gb) in itertools.combinations(pairs, 2):
            self.values["pair_pa_mpjpe"].append(M.pair_pa_mpjpe(pa.joints_3d, pb.joints_3d, ga.joints_3d, gb.joints_3d))
        return det

    def _person(self, p, g) -> Optional[float]:
        """Every per-person value of a true-positive pair; returns its heading error (deg) or None."""
        self.values["mpjpe"].append(M.mpjpe(p.joints_3d, g.joints_3d, PELVIS))
        self.values["pa_mpjpe"].append(M.pa_mpjpe(p.joints_3d, g.joints_3d))
        self.values["mrpe"].append(M.mrpe(np.asarray(p.position), np.asarray(g.position)))
        self.values["orientation_error"].append(M.orientation_error_deg(p.orientation, g.orientation))
        heading = M.heading_error_deg(p.orientation, g.orientation)
        if heading is not None:
            self.values["heading_error"].append(heading)
            self.values["turned_away"].append(float(heading > M.TURNED_AWAY_DEG))
        facing = [M.facing_camera_deg(h.orientation, h.position) for h in (g, p)]
        if None not in facing:  # which way the truth and the prediction face, each from the camera
            self.values["back_to_camera"].append(float(facing[0] > M.BACK_TO_CAMERA_DEG))
            self.values["back_to_camera_pred"].append(float(facing[1] > M.BACK_TO_CAMERA_DEG))
        if p.part_rotations is not None and g.part_rotations is not None:
            parts = [M.orientation_error_deg(a, b) for a, b in zip(p.part_rotations, g.part_rotations)]
            self.values["head_orientation_error"].append(parts[HEAD_PART])
            self.values["part_orientation_error"].append(float(np.mean(parts)))
        if p.vertices is not None and g.vertices is not None:
            self.values["pve"].append(M.pve(p.vertices, g.vertices, p.position, g.position))
            self.values["abs_pve"].append(M.abs_pve(p.vertices, g.vertices))
        return heading

    def _add_distances(self, pairs, headings, truth: FrameResult, ignore, found: set) -> None:
        for g, person in enumerate(truth.humans):
            if ignore is None or not ignore[g]:
                self.bins[distance_bin(float(person.depth))]["found"].append(g in found)
        for (p, g), heading in zip(pairs, headings):
            b = self.bins[distance_bin(float(g.depth))]
            b["mrpe"].append(M.mrpe(np.asarray(p.position), np.asarray(g.position)))
            b["depth_ratio"].append(float(p.depth) / max(float(g.depth), 1e-6))
            if heading is not None:
                b["heading"].append(heading)

    def by_distance(self) -> Dict[str, Dict[str, Optional[float]]]:
        """Per distance bin (nearest first, empty bins left out): counted people, recall
        (by the protocol's match), MRPE (m), median predicted / true depth and median heading
        error (deg) of the found."""
        out = {}
        for label in distance_labels():
            b = self.bins.get(label)
            if not b or not b["found"]:
                continue
            out[label] = {
                "gt_people": len(b["found"]), "recall": float(np.mean(b["found"])),
                "mrpe": float(np.mean(b["mrpe"])) if b["mrpe"] else None,
                "depth_ratio": float(np.median(b["depth_ratio"])) if b["depth_ratio"] else None,
                "heading_error": float(np.median(b["heading"])) if b["heading"] else None,
            }  # fmt: skip
        return out

    def summary(self) -> Dict[str, Optional[float]]:
        det = self.counts[""]
        out: Dict[str, Optional[float]] = {
            "frames": self.frames, "gt_people": det.tp + det.fn, "ignored_people": self.ignored,
            "detections": det.tp + det.fp, "match_iou": self.match_iou,
        }  # fmt: skip
        for name, counts in self.counts.items():
            suffix = f"_{name}" if name else ""
            out.update({f"precision{suffix}": counts.precision, f"recall{suffix}": counts.recall,
                        f"f1{suffix}": counts.f1})  # fmt: skip
        fixed = self.errors.fixed_bodies(det)
        out.update({f"errors_{name}": value for name, value in dataclasses.asdict(self.errors).items()})
        out["f1_bodies_fixed"] = fixed.f1
        for key in (*self.MESH_KEYS, *self.ORIENTATION_KEYS, "ta_pve", "pair_pa_mpjpe", "fov_error", "fov_bias"):
            vals = self.values.get(key, [])
            out[key] = float(np.mean(vals)) if vals else None
        out.update(self.prior_check.summary())
        return out
