"""Tracker evaluation against ground truth: run the tracker over sequences (simulated
detection streams, or synthetic clips with the detector's or the ground truth's
detections), collect per frame the (id, 3D pelvis) of the ground truth and of the
tracked detections, and compute the MOT metrics of evaluation.mot per sequence and
over all sequences together. Used by `mhr2 track-eval` and `mhr2 demo`.

A tracked detection is a Human the tracker gave a track_id in that frame (false
positives included), at its detected pelvis; it matches a ground-truth person within
`TRACK_MATCH_M` meters. This 3D test is what a robot needs, and it is stricter than the
paper's: the paper evaluates tracking on PoseTrack21 with CoMotion's code, the bounding-box
MOT evaluation (py-motmetrics, a match at box IoU >= 0.5). `mhr2 eval` reports that one
as well (`track_boxes`, `TRACK_MATCH_IOU`, "_2d" metrics), on the person boxes (the
projected mesh's, as the ground truth's), where the depth error does not enter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Hashable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from mhr2_ros.evaluation import mot
from mhr2_ros.inference.results import FrameResult, Human

TRACK_MATCH_M = 0.5  # meters: a tracked pelvis within this distance of a GT pelvis matches it
TRACK_MATCH_IOU = 0.5  # the paper's protocol: a tracked person box overlapping a GT one this much matches it
GT_ID_PREFIX = "p"  # ground-truth ids of synthetic clips: "p" + person id
OVERALL = "overall"  # name of the row over all sequences

Observations = List[Tuple[Hashable, np.ndarray]]  # one frame: (id, (3,) pelvis position, meters, or (4,) box)
Progress = Optional[Callable[[int], None]]  # called with the number of frames just done


def track_observations(humans: Iterable[Human]) -> Observations:
    """(track_id, pelvis position) of each human of a frame (tracked detections or ground truth)."""
    return [(h.track_id, np.asarray(h.position, dtype=np.float64)) for h in humans]


def track_boxes(humans: Iterable[Human]) -> Observations:
    """(track_id, (4,) person box x0, y0, x1, y1, pixels: the projected mesh's, clipped to the
    image) of each human of a frame: the observations of the 2D protocol (mot.evaluate with
    metric "iou"), as PoseTrack21's person boxes."""
    return [(h.track_id, np.asarray(h.box, dtype=np.float64)) for h in humans]


@dataclass
class SequenceTracks:
    """Per-frame ground truth and tracker output of one sequence: 3D pelvises, and for
    synthetic clips also person boxes (the paper's 2D protocol; empty for simulated streams)."""

    name: str  # row name in the table
    gt: List[Observations] = field(default_factory=list)  # per frame: ground-truth (id, position)
    pred: List[Observations] = field(default_factory=list)  # per frame: tracked (track id, position)
    gt_boxes: List[Observations] = field(default_factory=list)  # per frame: ground-truth (id, box)
    pred_boxes: List[Observations] = field(default_factory=list)  # per frame: tracked (track id, box)

    def add(self, gt: Observations, pred: Observations) -> None:
        self.gt.append(gt)
        self.pred.append(pred)

    def add_boxes(self, gt: Observations, pred: Observations) -> None:
        self.gt_boxes.append(gt)
        self.pred_boxes.append(pred)

    def __len__(self) -> int:
        return len(self.gt)


def evaluate_sequences(sequences: Sequence[SequenceTracks], threshold: Optional[float] = None,
                       boxes: bool = False) -> Dict[str, Dict[str, float]]:
    """{sequence name: metrics} plus OVERALL: one evaluation over all sequences, frames
    concatenated and ids made distinct per sequence (so totals and IDF1 are global).
    3D pelvises within `threshold` meters (default TRACK_MATCH_M), or with `boxes` the
    person boxes at IoU >= `threshold` (default TRACK_MATCH_IOU)."""
    names = [s.name for s in sequences]
    if len(set(names)) != len(names) or OVERALL in names:
        raise ValueError(f"sequence names must be distinct and not {OVERALL!r}: {names}")
    metric = "iou" if boxes else "euclidean"
    if threshold is None:
        threshold = TRACK_MATCH_IOU if boxes else TRACK_MATCH_M
    pairs = {s.name: (s.gt_boxes, s.pred_boxes) if boxes else (s.gt, s.pred) for s in sequences}
    if boxes and any(len(s.gt_boxes) != len(s) for s in sequences):
        raise ValueError("person boxes are recorded for synthetic clips only, not for simulated streams")
    rows = {name: mot.evaluate(gt, pred, threshold, metric) for name, (gt, pred) in pairs.items()}
    gt = [[((name, i), p) for i, p in frame] for name, (seq_gt, _) in pairs.items() for frame in seq_gt]
    pred = [[((name, i), p) for i, p in frame] for name, (_, seq_pred) in pairs.items() for frame in seq_pred]
    rows[OVERALL] = mot.evaluate(gt, pred, threshold, metric)
    return rows


def json_metrics(metrics: Dict[str, float]) -> Dict[str, Optional[float]]:
    """Metrics with NaN or infinity (MOTA of a sequence without ground truth) as None: strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}


# -------------------------------------------------------------------------- simulated
def track_simulated(name: str, frames, tracker, progress: Progress = None) -> SequenceTracks:
    """Feed simulate.SimFrames to the tracker: ground truth = the visible walkers."""
    seq = SequenceTracks(name)
    for f in frames:
        tracker.update(f.frame, f.stamp)
        seq.add([(identity, pos) for identity, pos, _ in f.gt], track_observations(f.frame.humans))
        if progress:
            progress(1)
    return seq


# -------------------------------------------------------------------------- synthetic clips
def truth_detections(truth) -> FrameResult:
    """Ground-truth detections of a FrameTruth for the tracker: every person in view, exact
    pelvis, orientation and depth, no track feature (the tracker then uses the pelvis term
    alone) and no track id. Nearness is -log(depth): the tracker only compares nearness
    values of one camera, so the network's reference focal cancels out."""
    from mhr2_ros.geometry import nearness_from_depth
    from mhr2_ros.training.synthetic.truth import to_frame_result

    frame = to_frame_result(truth)
    focal = float(np.sqrt(abs(frame.K[0, 0] * frame.K[1, 1])))
    frame.humans = [dataclasses.replace(
        h, track_id=None, nearness=float(nearness_from_depth(max(h.depth, 1e-3), focal, focal)))
        for h in frame.humans]  # fmt: skip
    return frame


def track_clip(name: str, frames, tracker, detect: Optional[Callable] = None,
               progress: Progress = None) -> SequenceTracks:
    """Feed the frames of a synthetic clip (SynthFrames: .image, .time, .truth) to the tracker.

    detect(frame) -> FrameResult runs a detector; None uses truth_detections (tracker
    errors alone). Records 3D pelvises and person boxes. Ground truth = the people
    `mhr2 eval` counts (benchmark.ignored_people: enough visible pixels, pelvis in the
    image); a track on an ignored person is neither a hit nor a false positive, as there.
    """
    from mhr2_ros.evaluation.benchmark import counted_tracks, ignored_people, match_frame
    from mhr2_ros.training.synthetic.truth import to_frame_result

    seq = SequenceTracks(name)
    for frame in frames:
        truth = to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX)
        result = detect(frame) if detect is not None else truth_detections(frame.truth)
        tracker.update(result, frame.time)
        ignore = ignored_people(frame.truth, truth)
        _, _, det = match_frame(result, truth, ignore)
        seq.add(*counted_tracks(truth, ignore, result, det))
        seq.add_boxes(*counted_tracks(truth, ignore, result, det, track_boxes))
        if progress:
            progress(1)
    return seq
