"""How sure a measured number is: bootstrap intervals of the headline metrics, and the
paired comparison of two evaluations of the same frames (`mhr2 compare`).

A benchmark of 100 images and 3 clips measures a model with noise: which people happen
to be in it. Whether F1 0.902 meets a target of 0.9, or whether a retrained model that
moves the tuning set's F1 from 0.889 to 0.893 is better, depends on that noise. This
module resamples the benchmark (Efron's bootstrap) to estimate it.

Units. Frames of one clip are not independent (the same people walk through all of
them), so a clip is resampled whole; each independent image is its own unit. Resampling
is stratified: the images, and the clips, each keep their number of units in each
replicate (a replicate never trades images for clips). With few clips (the
benchmark's 3) the tracking intervals are coarse: a replicate can only hold one of the
few clip combinations; they are reported with the number of clips behind them.

Each unit carries sums, so every metric of a replicate is a ratio of summed sums, the
way the metric itself is computed over the whole set: F1 from the summed TP / FP / FN,
PA-MPJPE and MRPE as the mean over the summed true-positive pairs, FOV error over frames,
IDF1 from the summed IDTP / IDFP / IDFN of the clips (IDF1 over several clips with
distinct ids is exactly that sum). Intervals are percentile intervals of the replicates.

Paired comparison: the two evaluations must hold the same units (the same frames, e.g.
two models on one benchmark); each replicate draws the same units for both, so the noise
they share (hard people, easy scenes) cancels in the difference, which is what makes a
small change measurable at all.

The same people. PA-MPJPE and MRPE average over the people a run found, so two models that
find different people are measured on different people: one that stops finding the hard
ones looks better on both without fitting anyone better (the eleventh try of
weights/README.md: -7.3 mm PA-MPJPE at the 0.4 threshold, -2.8 mm where its recall equals
the shipped model's). When both evaluations carry per-person records (`PersonError`), the
comparison adds SAME_PEOPLE: each error averaged over the people both runs found, paired
person by person, resampled by the same units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

# the per-unit sums every metric below is computed from (the JSON's "units" records)
SUM_FIELDS = ("frames", "tp", "fp", "fn", "pairs", "pa_mpjpe_sum", "mrpe_sum", "fov_error_sum",
              "idtp_2d", "idfp_2d", "idfn_2d", "idtp", "idfp", "idfn", "headings", "heading_error_sum")  # fmt: skip
# fields an evaluation written before them lacks: read as 0, so its metrics from them are n/a
OPTIONAL_SUM_FIELDS = ("headings", "heading_error_sum")
# metric -> "max" (higher is better) or "min"
METRICS = {"f1": "max", "precision": "max", "recall": "max", "pa_mpjpe": "min", "mrpe": "min",
           "fov_error": "min", "idf1_2d": "max", "idf1": "max", "heading_error": "min"}  # fmt: skip
# the smallest difference worth a verdict, in the metric's unit (what the tables print): a
# smaller one is "same" even when its interval excludes zero (e.g. float noise of a frozen part)
RESOLUTION = {"f1": 1e-3, "precision": 1e-3, "recall": 1e-3, "pa_mpjpe": 0.1, "mrpe": 1e-3, "fov_error": 0.01,
              "idf1_2d": 1e-3, "idf1": 1e-3, "heading_error": 0.1}  # fmt: skip
# row of the comparison -> the PersonError field it averages over the people both runs found
SAME_PEOPLE = {"pa_mpjpe_same": "pa_mpjpe", "mrpe_same": "mrpe"}
IMAGES, CLIPS = "images", "clips"  # the strata: independent images (from every image set), whole clips
LEVEL = 0.95  # two-sided interval
REPLICATES = 2000  # bootstrap replicates: percentiles at 2.5% / 97.5% settle to ~0.002 in F1
SEED = 0  # the resampling is deterministic: the same JSON gives the same interval
# Fewer units than this in a stratum and its intervals are too narrow: a bootstrap sees no more
# variety than its units hold (3 clips give 10 distinct resamples), so a verdict resting on
# them can be contradicted by other scenes (weights/README.md, the re-judged tries).
MIN_UNITS = 10


@dataclass(frozen=True)
class Unit:
    """One resampling unit: an independent image or a whole clip."""

    stratum: str  # resampled within: IMAGES or CLIPS
    name: str  # unique within its stratum: the image's "sequence/frame", the clip's sequence name
    sums: Tuple[float, ...]  # in SUM_FIELDS order

    def to_json(self) -> Dict:
        return {"stratum": self.stratum, "name": self.name, **dict(zip(SUM_FIELDS, self.sums))}

    @staticmethod
    def from_json(record: Mapping) -> "Unit":
        missing = [k for k in ("stratum", "name", *SUM_FIELDS) if k not in record and k not in OPTIONAL_SUM_FIELDS]
        if missing:
            raise ValueError(f"unit record without {', '.join(missing)}")
        return Unit(str(record["stratum"]), str(record["name"]), tuple(float(record.get(k, 0.0)) for k in SUM_FIELDS))


@dataclass(frozen=True)
class PersonError:
    """The errors of one person a run found (a true positive of the protocol's match)."""

    stratum: str  # of the unit holding the person's frame
    unit: str  # that unit's name (Unit.name)
    person: str  # unique within the unit: "frame/ground-truth id"
    pa_mpjpe: float  # mm
    mrpe: float  # m

    def key(self) -> Tuple[str, str, str]:
        return self.stratum, self.unit, self.person

    def to_json(self) -> Dict:
        return {"stratum": self.stratum, "unit": self.unit, "person": self.person, "pa_mpjpe": self.pa_mpjpe,
                "mrpe": self.mrpe}  # fmt: skip

    @staticmethod
    def from_json(record: Mapping) -> "PersonError":
        missing = [k for k in ("stratum", "unit", "person", "pa_mpjpe", "mrpe") if k not in record]
        if missing:
            raise ValueError(f"person record without {', '.join(missing)}")
        return PersonError(str(record["stratum"]), str(record["unit"]), str(record["person"]),
                           float(record["pa_mpjpe"]), float(record["mrpe"]))  # fmt: skip


def unit_key(sequence: str, frame: str, clips) -> Tuple[str, str]:
    """(stratum, unit name) of a frame: its whole clip when `sequence` is one of `clips`, else
    the image "sequence/frame" alone."""
    return (CLIPS, sequence) if sequence in clips else (IMAGES, f"{sequence}/{frame}")


def frame_sums(tp: int, fp: int, fn: int, pa_mpjpe: Sequence[float], mrpe: Sequence[float], fov_error: float,
               heading: Sequence[float] = ()) -> Dict:  # fmt: skip
    """One frame's SUM_FIELDS (tracking fields zero): its protocol counts, the PA-MPJPE (mm)
    and MRPE (m) of its true-positive pairs, its FOV error (deg), and the heading errors (deg) of
    the pairs that have one (metrics.heading_error_deg)."""
    out = dict.fromkeys(SUM_FIELDS, 0.0)
    out.update(frames=1, tp=tp, fp=fp, fn=fn, pairs=len(pa_mpjpe), pa_mpjpe_sum=float(np.sum(pa_mpjpe)),
               mrpe_sum=float(np.sum(mrpe)), fov_error_sum=fov_error, headings=len(heading),
               heading_error_sum=float(np.sum(heading)))  # fmt: skip
    return out


def merge_units(frames: Sequence[Tuple[str, str, Mapping]], clip_tracking: Mapping[str, Mapping]) -> List[Unit]:
    """Units from per-frame sums: `frames` (sequence name, frame name, frame_sums) in order;
    `clip_tracking` {name of every clip (temporal sequence): its idtp/idfp/idfn with and without
    "_2d", or {} when not tracked}. The frames of a clip add up to one CLIPS unit holding its
    tracking counts; every other frame is one IMAGES unit."""
    acc: Dict[Tuple[str, str], np.ndarray] = {}
    for seq, frame, sums in frames:
        key = unit_key(seq, frame, clip_tracking)
        acc[key] = acc.get(key, 0.0) + np.array([float(sums[k]) for k in SUM_FIELDS])
    for seq, mot in clip_tracking.items():
        key = (CLIPS, seq)
        row = acc.setdefault(key, np.zeros(len(SUM_FIELDS)))
        for field in ("idtp", "idfp", "idfn"):
            for suffix in ("", "_2d"):
                row[SUM_FIELDS.index(field + suffix)] = float(mot.get(field + suffix) or 0.0)
    return [Unit(stratum, name, tuple(float(x) for x in row)) for (stratum, name), row in acc.items()]


def metrics_from_sums(s: np.ndarray) -> Dict[str, np.ndarray]:
    """Every METRICS entry from summed SUM_FIELDS, s (..., len(SUM_FIELDS)); NaN where undefined
    (no pairs, no clips). F1 / precision / recall as `metrics.Detection` (1 when nothing to count)."""
    f = {name: s[..., i] for i, name in enumerate(SUM_FIELDS)}

    def ratio(num, den, empty=np.nan):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1.0), empty)

    precision, recall = ratio(f["tp"], f["tp"] + f["fp"], 1.0), ratio(f["tp"], f["tp"] + f["fn"], 1.0)
    out = {"precision": precision, "recall": recall, "f1": ratio(2 * precision * recall, precision + recall, 0.0),
           "pa_mpjpe": ratio(f["pa_mpjpe_sum"], f["pairs"]), "mrpe": ratio(f["mrpe_sum"], f["pairs"]),
           "fov_error": ratio(f["fov_error_sum"], f["frames"]),
           "heading_error": ratio(f["heading_error_sum"], f["headings"])}  # fmt: skip
    for suffix in ("_2d", ""):
        tp, fp, fn = f["idtp" + suffix], f["idfp" + suffix], f["idfn" + suffix]
        out["idf1" + suffix] = ratio(2 * tp, 2 * tp + fp + fn)
    return out


def _resample_counts(units: Sequence[Unit], replicates: int, rng: np.random.Generator) -> np.ndarray:
    """(replicates, U) how often each unit is drawn, stratified: each stratum keeps its size."""
    counts = np.zeros((replicates, len(units)))
    for stratum in dict.fromkeys(u.stratum for u in units):
        idx = np.array([i for i, u in enumerate(units) if u.stratum == stratum])
        n = len(idx)
        draws = rng.integers(0, n, size=(replicates, n))  # positions within the stratum
        flat = (draws + n * np.arange(replicates)[:, None]).ravel()  # one bincount for every replicate
        counts[:, idx] = np.bincount(flat, minlength=replicates * n).reshape(replicates, n)
    return counts


def _replicate_metrics(units: Sequence[Unit], counts: np.ndarray) -> Dict[str, np.ndarray]:
    sums = counts @ np.array([u.sums for u in units])  # (replicates, len(SUM_FIELDS))
    return metrics_from_sums(sums)


def _percentiles(values: np.ndarray, level: float) -> Optional[List[float]]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = (1.0 - level) / 2 * 100
    return [float(v) for v in np.percentile(values, [tail, 100 - tail])]


def intervals(units: Sequence[Unit], level: float = LEVEL, replicates: int = REPLICATES,
              seed: int = SEED) -> Dict[str, Optional[List[float]]]:
    """{metric: [low, high]} percentile bootstrap interval of every METRICS entry (None where
    the units cannot define it, e.g. IDF1 without clips)."""
    if not units:
        raise ValueError("no units to resample")
    reps = _replicate_metrics(units, _resample_counts(units, replicates, np.random.default_rng(seed)))
    return {name: _percentiles(reps[name], level) for name in METRICS}


def thin_strata(units: Sequence[Unit]) -> Dict[str, int]:
    """{stratum: units} of the strata with fewer than MIN_UNITS units (their intervals are too narrow)."""
    sizes: Dict[str, int] = {}
    for u in units:
        sizes[u.stratum] = sizes.get(u.stratum, 0) + 1
    return {k: n for k, n in sizes.items() if n < MIN_UNITS}


def thin_note(units: Sequence[Unit]) -> Optional[str]:
    """One line warning about thin_strata, or None."""
    thin = thin_strata(units)
    if not thin:
        return None
    listed = ", ".join(f"{k} ({n})" for k, n in thin.items())
    return (f"caution: fewer than {MIN_UNITS} units in {listed}: the intervals of metrics they weigh in are too "
            "narrow; confirm on a set with more (e.g. --clips 10)")  # fmt: skip


def clip_count(units: Sequence[Unit]) -> int:
    """How many clips (tracking units) the tracking intervals rest on."""
    return sum(u.stratum == CLIPS for u in units)


def compare(base: Sequence[Unit], new: Sequence[Unit], level: float = LEVEL, replicates: int = REPLICATES,
            seed: int = SEED, people: Optional[Tuple[Sequence[PersonError], Sequence[PersonError]]] = None,
            ) -> Dict[str, Dict]:
    """Paired bootstrap of new - base on the same units. Per metric: base, new, difference,
    its [low, high] interval, and the verdict "better" / "worse" (the interval excludes 0 on
    that side, by the metric's sense in METRICS, and the difference is at least the metric's
    RESOLUTION) or "same within noise". With `people` (base's, new's PersonError records),
    also the SAME_PEOPLE rows (`compare_same_people`)."""
    keys_b, keys_n = [(u.stratum, u.name) for u in base], [(u.stratum, u.name) for u in new]
    if sorted(keys_b) != sorted(keys_n):
        only_b, only_n = set(keys_b) - set(keys_n), set(keys_n) - set(keys_b)
        raise ValueError(f"the evaluations hold different frames ({len(only_b)} only in the first, "
                         f"{len(only_n)} only in the second): compare runs on the same data and seeds")  # fmt: skip
    order = {k: i for i, k in enumerate(keys_b)}
    new = sorted(new, key=lambda u: order[(u.stratum, u.name)])
    tp, fn = SUM_FIELDS.index("tp"), SUM_FIELDS.index("fn")
    for b, n in zip(base, new):
        if b.sums[tp] + b.sums[fn] != n.sums[tp] + n.sums[fn]:
            raise ValueError(f"{b.stratum}/{b.name}: the two evaluations count different people there "
                             "(another --match-iou or dataset version?)")  # fmt: skip
    counts = _resample_counts(base, replicates, np.random.default_rng(seed))
    rb, rn = _replicate_metrics(base, counts), _replicate_metrics(new, counts)
    point_b = metrics_from_sums(np.sum([u.sums for u in base], axis=0))
    point_n = metrics_from_sums(np.sum([u.sums for u in new], axis=0))
    out = {name: _row(name, float(point_b[name]), float(point_n[name]), _percentiles(rn[name] - rb[name], level))
           for name in METRICS}  # fmt: skip
    if people is not None:
        out.update(compare_same_people(base, *people, counts, level))
    return out


def compare_same_people(units: Sequence[Unit], base: Sequence[PersonError], new: Sequence[PersonError],
                        counts: np.ndarray, level: float = LEVEL) -> Dict[str, Dict]:
    """SAME_PEOPLE rows: each error averaged over the people found by both runs (matched by
    PersonError.key), paired person by person; `counts` (replicates, len(units)) the unit
    draws of the headline rows, so both resample the same scenes. Each row also holds
    "people": how many both found."""
    index = {(u.stratum, u.name): i for i, u in enumerate(units)}
    for p in (*base, *new):
        if (p.stratum, p.unit) not in index:
            raise ValueError(f"a person record names the unit {p.stratum}/{p.unit}, which the evaluation does not hold")
    found_by_new = {p.key(): p for p in new}
    fields = list(SAME_PEOPLE.values())
    # per unit: how many both found, and the sums of each field's errors over them, base's and new's
    both, sums_b, sums_n = np.zeros(len(units)), np.zeros((len(units), len(fields))), np.zeros((len(units), len(fields)))
    for b in base:
        n = found_by_new.get(b.key())
        if n is not None:
            i = index[(b.stratum, b.unit)]
            both[i] += 1
            sums_b[i] += [getattr(b, f) for f in fields]
            sums_n[i] += [getattr(n, f) for f in fields]
    reps_both, reps_b, reps_n = counts @ both, counts @ sums_b, counts @ sums_n
    out = {}
    with np.errstate(invalid="ignore", divide="ignore"):  # nobody found by both (in a replicate): NaN, dropped
        for k, (name, field) in enumerate(SAME_PEOPLE.items()):
            diff = (reps_n[:, k] - reps_b[:, k]) / reps_both
            point_b, point_n = sums_b[:, k].sum() / both.sum(), sums_n[:, k].sum() / both.sum()
            out[name] = {**_row(field, float(point_b), float(point_n), _percentiles(diff, level)),
                         "people": int(both.sum())}  # fmt: skip
    return out


def _row(metric: str, b: float, n: float, interval: Optional[List[float]]) -> Dict:
    """One comparison row of a METRICS entry: base, new, difference, interval, verdict."""
    sense, verdict = METRICS[metric], "n/a"
    if interval is not None:
        up = interval[0] > 0 if sense == "max" else interval[1] < 0
        down = interval[1] < 0 if sense == "max" else interval[0] > 0
        if not abs(n - b) >= RESOLUTION[metric]:  # "not >=": a NaN difference gets no verdict either
            up = down = False
        verdict = "better" if up else "worse" if down else "same within noise"
    return {"base": _finite(b), "new": _finite(n), "difference": _finite(n - b), "interval": interval,
            "verdict": verdict}  # fmt: skip


def _finite(x: float) -> Optional[float]:
    return x if np.isfinite(x) else None
