"""Run a detector (and the tracker on clips) over ground-truth frames and collect the
metrics of `evaluation.benchmark`. Used by `mhr2 eval` and the training eval hook."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional

import numpy as np

from mhr2_ros.evaluation import metrics as M
from mhr2_ros.evaluation.benchmark import Evaluator, SyntheticBenchmark, counted_tracks, fill_bodies, ignored_people
from mhr2_ros.evaluation.track_heading import TrackHeadings
from mhr2_ros.evaluation.track_velocity import TrackVelocities
from mhr2_ros.tracking.tracker import STATIC_CAMERA
from mhr2_ros.evaluation.track_eval import GT_ID_PREFIX, TRACK_MATCH_IOU, TRACK_MATCH_M, track_boxes, track_observations
from mhr2_ros.evaluation.uncertainty import PersonError, Unit, intervals, merge_units, unit_key

# The tracking protocols, name suffix of their metrics -> (observations, mot metric, threshold):
# 3D pelvises within 0.5 m (the robot's), and the paper's 2D boxes at IoU 0.5 ("_2d").
TRACK_PROTOCOLS = {"": (track_observations, "euclidean", TRACK_MATCH_M), "_2d": (track_boxes, "iou", TRACK_MATCH_IOU)}
# Suffix of the IDF1s scored with every found person given their true identity (`with_true_ids`).
TRUE_IDS = "_true_ids"


@dataclass
class Sequence:
    """Frames to evaluate: a set of independent images, or a clip (then also tracked)."""

    name: str  # shown in the table
    frames: Iterable  # SynthFrame-like: .image (H, W, 3) uint8, .truth (FrameTruth), .time (s)
    length: int  # number of frames
    tracked: bool  # a temporal clip: run the tracker and compute the MOT metrics
    # the camera does not move (generated clips): the tracker is told so (STATIC_CAMERA), which lets
    # walkers face their velocity (tracking/heading.py) as on a robot with poses; a converted
    # dataset's camera may move, and the format has no camera poses: its tracker gets none
    static_camera: bool = False


@dataclass
class Report:
    """What `evaluate` returns: the metrics of all frames and per sequence."""

    overall: Dict[str, Optional[float]]  # detection + mesh + FOV metrics over every frame
    # MOT metrics over the tracked sequences, per TRACK_PROTOCOLS, and TrackHeadings' (or empty)
    tracking: Dict[str, Optional[float]]
    per_sequence: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)
    by_distance: Dict[str, Dict[str, Optional[float]]] = field(default_factory=dict)  # Evaluator.by_distance, all frames
    units: List[Unit] = field(default_factory=list)  # resampling units (uncertainty.py): images, whole clips
    people: List[PersonError] = field(default_factory=list)  # every true positive's errors, for `mhr2 compare`

    def intervals(self) -> Dict[str, Optional[List[float]]]:
        """95% bootstrap intervals of the headline metrics (`uncertainty.intervals`)."""
        return intervals(self.units) if self.units else {}


def synthetic_sequences(spec: SyntheticBenchmark, body) -> List[Sequence]:
    """The fixed synthetic benchmark, rendered in memory on the CPU (deterministic)."""
    from mhr2_ros.training.synthetic.generator import SyntheticClip

    seqs = []
    if spec.images > 0:
        images = SyntheticClip(spec.synth_config(independent=True), spec.image_seed, body)
        seqs.append(Sequence(f"images (seed {spec.image_seed})", images, len(images), tracked=False))
    for i in range(spec.clips if spec.clip_frames > 0 else 0):
        seed = spec.clip_seed + i
        clip = SyntheticClip(spec.synth_config(independent=False), seed, body)
        seqs.append(Sequence(f"clip seed {seed}", clip, len(clip), tracked=True, static_camera=True))
    return seqs


def disk_sequences(paths) -> List[Sequence]:
    """Clips in the documented on-disk format (docs/dataset_format.md); a path is a clip
    or a folder of clips."""
    from mhr2_ros.training.synthetic.dataset import clip_folders, load_clip

    seqs = []
    for path in clip_folders(paths):
        reader = load_clip(path)
        generated = "config" in reader.info  # `mhr2 synth`'s clips: one fixed camera each
        seqs.append(Sequence(str(path), reader, len(reader), tracked=not reader.info.get("independent", False),
                             static_camera=generated))
    return seqs


def evaluate(
    detector, sequences: List[Sequence], gt_intrinsics: bool = False, tracker_factory: Optional[Callable] = None,
    progress: Optional[Callable[[int], None]] = None, match_iou: float = M.MATCH_IOU,
    depth_sensor: Optional[Callable[[np.ndarray], np.ndarray]] = None,
    floor: Optional[Callable[[np.ndarray], np.ndarray]] = None,
) -> Report:
    """Detector over every frame: the predicted camera unless `gt_intrinsics` (then the
    FOV error is zero by construction). `tracker_factory()` -> a fresh tracker per clip.
    `match_iou`: the keypoint-box IoU of a detection true positive (the protocol's 0.1).
    `depth_sensor(true depth image) -> measured depth image`: the detector also gets a depth
    camera's image (inference/depth_fusion.py); None: RGB only, as the paper.
    `floor(true floor plane) -> the floor plane the robot knows`: the detector also gets the floor
    (inference/floor_contact.py); None: not, as the paper."""
    from mhr2_ros.training.synthetic.truth import to_frame_result

    overall, per_seq, headings, velocities = Evaluator(match_iou), {}, TrackHeadings(), TrackVelocities()
    tracks, true_ids = empty_tracks(), empty_tracks()  # all clips: the tracker's ids, the true ones
    frame_names, clips = [], {}  # (sequence, frame) per frame of `overall`; clip name -> its tracking counts
    for seq in sequences:
        ev = Evaluator(match_iou)
        tracker = tracker_factory() if (seq.tracked and tracker_factory) else None
        seq_tracks, seq_true_ids = empty_tracks(), empty_tracks()
        velocities.new_clip()
        for index, frame in enumerate(seq.frames):
            frame_names.append((seq.name, str(index)))
            truth = fill_bodies(to_frame_result(frame.truth, id_prefix=GT_ID_PREFIX), detector.body)
            ignore = ignored_people(frame.truth, truth)
            depth = None if depth_sensor is None else depth_sensor(frame.depth)
            plane = None if floor is None else floor(frame.truth.floor_plane)
            result = detector(frame.image, K=truth.K if gt_intrinsics else None, depth=depth, floor=plane)
            overall.add(result, truth, ignore)
            det = ev.add(result, truth, ignore)
            if tracker is not None:
                live = tracker.update(result, frame.time, camera_pose=STATIC_CAMERA if seq.static_camera else None)
                add_tracks(seq_tracks, truth, ignore, result, det)
                add_tracks(seq_true_ids, truth, ignore, with_true_ids(result, truth, ev.last_pairs, index), det)
                headings.add(live, result, truth, ev.last_pairs)
                velocities.add(live, result, truth, ev.last_pairs, frame.time)
            if progress:
                progress(1)
        per_seq[seq.name] = ev.summary()
        if seq.tracked:  # a clip is one resampling unit, tracked or not (--no-track)
            clips[seq.name] = tracking_metrics(seq_tracks) if tracker is not None else {}
            per_seq[seq.name].update(clips[seq.name])
        if tracker is not None:
            per_seq[seq.name].update(true_id_metrics(seq_true_ids))
            pool_tracks(tracks, seq_tracks, seq.name)
            pool_tracks(true_ids, seq_true_ids, seq.name)
    tracking = ({**tracking_metrics(tracks), **true_id_metrics(true_ids), **headings.summary(),
                 **velocities.summary()} if tracks[""][0] else {})
    units = merge_units([(*name, sums) for name, sums in zip(frame_names, overall.frame_sums)], clips)
    people = [PersonError(*unit_key(seq, frame, clips), f"{frame}/{gt_id}", pa_mpjpe, mrpe)
              for (seq, frame), found in zip(frame_names, overall.frame_people) for gt_id, pa_mpjpe, mrpe in found]
    return Report(overall.summary(), tracking, per_seq, overall.by_distance(), units, people)


def empty_tracks() -> Dict[str, tuple]:
    """{suffix of TRACK_PROTOCOLS: ([], [])}: per protocol, the (gt, pred) observations per frame."""
    return {suffix: ([], []) for suffix in TRACK_PROTOCOLS}


def add_tracks(tracks: Dict[str, tuple], truth, ignore, result, det) -> None:
    """Append one frame's observations (`benchmark.counted_tracks`) of every protocol to `tracks`."""
    for suffix, (observe, _, _) in TRACK_PROTOCOLS.items():
        gt_obs, pred_obs = counted_tracks(truth, ignore, result, det, observe)
        tracks[suffix][0].append(gt_obs)
        tracks[suffix][1].append(pred_obs)


def with_true_ids(result, truth, pairs, frame: int):
    """`result` relabelled as a perfect association would: each true positive (`pairs`: (detection,
    person) of the protocol's match) takes its person's id, every other detection an id of its own
    that no other frame uses. Scored like the tracker's output, it tells the share of the IDF1 gap
    that association could close from the share that the detections and bodies hold."""
    ids = {int(r): truth.humans[c].track_id for r, c in pairs}
    humans = [dataclasses.replace(h, track_id=ids.get(k, f"unmatched/{frame}/{k}"))
              for k, h in enumerate(result.humans)]
    return dataclasses.replace(result, humans=humans)


def pool_tracks(tracks: Dict[str, tuple], seq_tracks: Dict[str, tuple], name: str) -> None:
    """Append one clip's observations to `tracks`, its ids prefixed with `name`, so one MOT
    evaluation spans all clips with distinct ids."""
    for suffix, (seq_gt, seq_pred) in seq_tracks.items():
        tracks[suffix][0].extend([[(f"{name}/{i}", p) for i, p in fr] for fr in seq_gt])
        tracks[suffix][1].extend([[(f"{name}/{i}", p) for i, p in fr] for fr in seq_pred])


def true_id_metrics(tracks: Dict[str, tuple]) -> Dict[str, Optional[float]]:
    """The IDF1 of every tracking protocol on `with_true_ids` observations, keys suffixed TRUE_IDS."""
    metrics = tracking_metrics(tracks)
    return {f"idf1{suffix}{TRUE_IDS}": metrics[f"idf1{suffix}"] for suffix in TRACK_PROTOCOLS}


def tracking_metrics(tracks: Dict[str, tuple]) -> Dict[str, Optional[float]]:
    """MOT_KEYS of every tracking protocol, each key with the protocol's suffix; `tracks`:
    {suffix of TRACK_PROTOCOLS: (gt, pred) observations per frame, of that protocol}."""
    from mhr2_ros.evaluation.mot import evaluate as mot_evaluate

    out: Dict[str, Optional[float]] = {}
    for suffix, (gt, pred) in tracks.items():
        _, metric, threshold = TRACK_PROTOCOLS[suffix]
        out.update({k + suffix: v for k, v in _mot(mot_evaluate(gt, pred, threshold, metric)).items()})
    return out


MOT_KEYS = ("idf1", "mota", "hota", "num_switches", "idtp", "idfp", "idfn")  # ID counts: for uncertainty.py


def _mot(result: Dict) -> Dict[str, Optional[float]]:
    out = {}
    for key in MOT_KEYS:
        value = float(result[key])
        out[key] = value if math.isfinite(value) else None  # MOTA is -inf without ground truth
    return out

