"""Why detections are false and people missed: detection error types, after TIDE.

TIDE (Bolya et al., "TIDE: A General Toolbox for Identifying Object Detection Errors",
ECCV 2020) splits the errors of a detector into types so that one sees what to fix. For
people found by their 2D joints (`metrics.match_people`), four types cover every false
positive (FP) and false negative (FN) of a frame, decided by where a detection's 2D
pelvis lies: on a person when within LOCATE_FRACTION of that person's box diagonal from
their 2D pelvis.

- wrong body: an FP on a counted person who was missed. The person was found at the
  right place, but the body (scale from the depth, body rotation, pose, shape) puts the
  2D joints in a box that fails the match criterion. Each such person takes one FP
  (Hungarian on the pelvis distance), so one wrong body is both one FP and one FN:
  fixing it turns both into a true positive.
- duplicate: an FP on a counted person who is matched already, or a second FP on a
  missed one.
- background: an FP on no counted person (nothing there, or only an ignored person).
- not found: a missed counted person with no FP on them.

FP = wrong body + duplicate + background; FN = wrong body + not found.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mhr2_ros.evaluation.metrics import Detection, assignment_pairs

LOCATE_FRACTION = 0.15  # a detection lies on a person within this fraction of their box diagonal (pelvis to pelvis)
NOT_ON_COST = 1e9  # pixels: the assignment cost of a detection that does not lie on a person


@dataclass
class ErrorTypes:
    """Counts of each error type (see the module docstring); they add up over frames."""

    wrong_body: int = 0  # an FP on a missed person: one FP and one FN
    duplicate: int = 0  # an FP on a matched person (or a second one on a missed person)
    background: int = 0  # an FP on no counted person
    not_found: int = 0  # an FN with no FP on them

    def __add__(self, other: "ErrorTypes") -> "ErrorTypes":
        return ErrorTypes(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def fixed_bodies(self, det: Detection) -> Detection:
        """The counts `det` would have if every wrong body were right and every other detection
        stayed as it is: what better depth, body rotation and pose would give with the same detections."""
        return Detection(det.tp + self.wrong_body, det.fp - self.wrong_body, det.fn - self.wrong_body)


def classify_errors(
    pred_pelvis: np.ndarray, gt_pelvis: np.ndarray, gt_diag: np.ndarray,
    matched_pred: np.ndarray, matched_gt: np.ndarray, det: Detection, ignore: np.ndarray | None = None,
) -> ErrorTypes:
    """One frame's error types.

    pred_pelvis (P, 2), gt_pelvis (G, 2) 2D pelvises in pixels; gt_diag (G,) the diagonal
    of each person's box, pixels; matched_pred, matched_gt the true-positive pairs of
    `metrics.match_people` and `det` its counts (its `ignored` predictions are neither TP
    nor FP); `ignore` (G,) bool the people not counted.
    """
    ignore = np.zeros(len(gt_pelvis), dtype=bool) if ignore is None else np.asarray(ignore, dtype=bool)
    false = np.setdiff1d(np.arange(len(pred_pelvis)), np.concatenate([np.asarray(matched_pred, np.int64), det.ignored]))
    counted = ~ignore
    missed = counted.copy()
    missed[np.asarray(matched_gt, np.int64)] = False
    dist = np.linalg.norm(np.asarray(pred_pelvis, float)[false, None] - np.asarray(gt_pelvis, float)[None], axis=-1)
    on = dist / np.maximum(np.asarray(gt_diag, float), 1.0)[None] < LOCATE_FRACTION  # (F, G)
    missed_idx = np.flatnonzero(missed)
    # the most missed people each get an FP on them (pairs not "on" cost more than any that are)
    cost = np.where(on, dist, NOT_ON_COST)[:, missed_idx]
    rows, _ = assignment_pairs(cost, on[:, missed_idx])
    wrong = len(rows)
    rest = np.setdiff1d(np.arange(len(false)), rows)
    on_person = on[rest][:, counted].any(axis=1) if len(rest) else np.zeros(0, dtype=bool)
    # wrong_body + duplicate + background == det.fp: every FP has one type
    return ErrorTypes(wrong_body=wrong, duplicate=int(on_person.sum()), background=int((~on_person).sum()),
                      not_found=len(missed_idx) - wrong)  # fmt: skip
