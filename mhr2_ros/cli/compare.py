"""`mhr2 compare`: is one model really better than another? Paired bootstrap of two
`mhr2 eval --json` runs on the same frames (mhr2_ros/evaluation/uncertainty.py), with the
body and placement errors also compared on the people both runs found."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.cli.options import check_output_file
from mhr2_ros.io.atomic import atomic_write

# metric -> (label, format): the rows of the table, in uncertainty.METRICS' order
LABELS = {
    "f1": ("detection F1", "{:+.3f}"), "precision": ("precision", "{:+.3f}"), "recall": ("recall", "{:+.3f}"),
    "pa_mpjpe": ("PA-MPJPE (mm)", "{:+.1f}"), "mrpe": ("MRPE (m)", "{:+.3f}"),
    "fov_error": ("vertical FOV error (deg)", "{:+.2f}"), "idf1_2d": ("IDF1, person boxes", "{:+.3f}"),
    "idf1": ("IDF1, 3D", "{:+.3f}"), "heading_error": ("heading error (deg)", "{:+.1f}"),
    "pa_mpjpe_same": ("PA-MPJPE, same people (mm)", "{:+.1f}"),
    "mrpe_same": ("MRPE, same people (m)", "{:+.3f}"),
}  # fmt: skip
# --rule without a list: the rule the shipped model's tries were judged by (weights/README.md)
DEFAULT_RULE = "f1,pa_mpjpe,mrpe,idf1_2d"
EXIT_REJECTED = 3  # --rule / --guard: the candidate failed it (2 is a bad input, as for every mhr2 command)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="tell whether one evaluation is better than another beyond the benchmark's noise",
        description="Compare two `mhr2 eval --json` runs made on the same frames (two models, or two "
        "settings, on one benchmark or tuning set): for each headline metric the difference NEW - BASE and "
        "its 95% paired bootstrap interval (independent images and whole clips resampled, the same draw "
        "for both runs). A metric is 'better' or 'worse' only when its interval excludes zero. PA-MPJPE and "
        "MRPE average over the people each run found; the 'same people' rows average them over the people "
        "both runs found, so a model that finds fewer, easier people does not look better for it.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("base", type=Path, metavar="BASE", help="JSON of `mhr2 eval --json` for the reference model")
    p.add_argument("new", type=Path, metavar="NEW", help="JSON of `mhr2 eval --json` for the candidate, same data")
    p.add_argument("--split", action="store_true",
                   help="also compare each stratum alone (each image set; the clips): shows whether a difference "
                   "comes from the independent images or from a few clips")  # fmt: skip
    p.add_argument("--json", type=Path, default=None, metavar="OUT", help="also write the comparison to this JSON file")
    decision = p.add_mutually_exclusive_group()
    decision.add_argument("--rule", nargs="?", const=DEFAULT_RULE, default=None, metavar="METRICS",
                          help="decide: accept NEW when at least one of these comma-separated metrics is "
                          f"'better' and none is 'worse'; exit status 0 accepted, {EXIT_REJECTED} rejected. "
                          f"Without a list: {DEFAULT_RULE} (the rule of the shipped model's training tries). "
                          "Metrics: " + ", ".join(LABELS))  # fmt: skip
    decision.add_argument("--guard", nargs="?", const=DEFAULT_RULE, default=None, metavar="METRICS",
                          help="decide as --rule, needing none 'worse' only (a confirmation set; a change "
                          "that must not cost anything)")  # fmt: skip
    p.set_defaults(run=run)


def load_units(path: Path) -> Tuple[Dict, List, Optional[List]]:
    """(the eval JSON, its resampling units, its PersonError records or None when it has none);
    InputError naming the file when it is not one."""
    from mhr2_ros.errors import InputError
    from mhr2_ros.evaluation.uncertainty import PersonError, Unit

    if not path.is_file():
        raise InputError(f"{path}: no such file (give the JSON written by `mhr2 eval --json`)")
    try:
        payload = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(payload, dict) or "metrics" not in payload:
        raise InputError(f"{path}: not an `mhr2 eval --json` result (no \"metrics\")")
    if not payload.get("units"):
        raise InputError(f"{path}: has no per-frame \"units\" (written by an older mhr2 eval); run `mhr2 eval "
                         "--json` again")  # fmt: skip
    try:
        units = [Unit.from_json(u) for u in payload["units"]]
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: bad \"units\" record: {e}") from None
    if "people" not in payload:  # written before the per-person records: no same-people rows
        return payload, units, None
    try:
        return payload, units, [PersonError.from_json(p) for p in payload["people"]]
    except (TypeError, ValueError) as e:
        raise InputError(f"{path}: bad \"people\" record: {e}") from None


def run(args: argparse.Namespace) -> int:
    from mhr2_ros.errors import InputError
    from mhr2_ros.evaluation.uncertainty import compare, thin_note

    check_output_file("--json", args.json)
    needs_better = args.guard is None
    rule = parse_rule(args.rule if needs_better else args.guard, "--rule" if needs_better else "--guard")
    base, base_units, base_people = load_units(args.base)
    new, new_units, new_people = load_units(args.new)
    if base["metrics"].get("match_iou") != new["metrics"].get("match_iou"):  # load_units checked "metrics"
        raise InputError("the two runs used different --match-iou; compare runs of one protocol")
    people = None if base_people is None or new_people is None else (base_people, new_people)
    try:
        result = compare(base_units, new_units, people=people)
    except ValueError as e:
        raise InputError(f"{args.base} vs {args.new}: {e}") from None
    print(f"base: {args.base} (weights {base.get('weights')})")
    print(f"new:  {args.new} (weights {new.get('weights')})")
    print(f"data: {base.get('data')}")
    differences = setting_differences(base, new)
    recorded = any(k in base and k in new for k in RUN_SETTINGS + SETTING_GROUPS)
    print("settings that differ: " + ("; ".join(differences) or ("none" if recorded else "not recorded")))
    print(format_comparison(result))
    print(f"95% paired bootstrap over {len(base_units)} units (images; clips whole); "
          "'better' / 'worse' only when the interval excludes 0")  # fmt: skip
    print(same_people_note(people, result, args.base if base_people is None else args.new))
    caution = thin_note(base_units)
    if caution:
        print(caution)
    payload = {"base": str(args.base), "new": str(args.new), "settings_differ": differences, "comparison": result}
    if args.split:
        payload["by_stratum"] = {}
        for stratum in dict.fromkeys(u.stratum for u in base_units):
            base_part = [u for u in base_units if u.stratum == stratum]
            part_people = None if people is None else tuple([p for p in run_people if p.stratum == stratum]
                                                            for run_people in people)  # fmt: skip
            part = compare(base_part, [u for u in new_units if u.stratum == stratum], people=part_people)
            payload["by_stratum"][stratum] = part
            print(f"\n{stratum} alone ({len(base_part)} units):")
            print(format_comparison(part))
    if rule:
        payload["rule"] = decide(result, rule, needs_better)
        print("\n" + format_decision(payload["rule"]))
    if args.json:
        with atomic_write(args.json, "w") as f:
            json.dump(payload, f, indent=1)
        print(f"wrote {args.json}")
    return EXIT_REJECTED if rule and not payload["rule"]["accepted"] else 0


def parse_rule(text: Optional[str], option: str = "--rule") -> List[str]:
    """The metric names of --rule / --guard ([] without it); InputError naming an unknown one."""
    from mhr2_ros.errors import InputError

    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in LABELS]
    if unknown or not names:
        raise InputError(f"{option} {text!r}: unknown metric(s) {', '.join(unknown) or '(none given)'}; "
                         f"choose among {', '.join(LABELS)}")  # fmt: skip
    return names


def decide(result: Dict[str, Dict], metrics: List[str], needs_better: bool = True) -> Dict:
    """The rule's decision: accepted when none of `metrics` is 'worse' and (`needs_better`) one is 'better'.
    A metric without a verdict (n/a: IDF1 on data without clips; the same-people rows of a run
    without per-person records) counts as neither."""
    verdicts = {m: result.get(m, {}).get("verdict", "n/a") for m in metrics}
    better = [m for m, v in verdicts.items() if v == "better"]
    worse = [m for m, v in verdicts.items() if v == "worse"]
    accepted = not worse and (bool(better) or not needs_better)
    return {"metrics": metrics, "needs_better": needs_better, "accepted": accepted, "better": better, "worse": worse,
            "no_verdict": [m for m, v in verdicts.items() if v == "n/a"]}  # fmt: skip


def format_decision(decision: Dict) -> str:
    names = ", ".join(decision["metrics"])
    rule = f"better on one of {names}, worse on none" if decision["needs_better"] else f"worse on none of {names}"
    why = (f"worse: {', '.join(decision['worse'])}" if decision["worse"] else
           f"better: {', '.join(decision['better'])}" if decision["better"] else "nothing better")  # fmt: skip
    missing = f" (no verdict: {', '.join(decision['no_verdict'])})" if decision["no_verdict"] else ""
    return f"rule ({rule}): {'accepted' if decision['accepted'] else 'rejected'}, {why}{missing}"


# What `mhr2 eval --json` records of how it ran, beside the weights and the data (each printed above).
RUN_SETTINGS = ("gt_intrinsics", "depth_camera", "floor", "padding")
SETTING_GROUPS = ("selection", "tracker")  # dicts of fields


def setting_differences(base: Dict, new: Dict) -> List[str]:
    """'name: base -> new' for each run setting the two eval JSONs record differently (camera, depth
    camera, floor, padding, every selection and tracker field), so a verdict is read as the change it measures;
    a setting that one file does not record (an older `mhr2 eval`) is not compared."""
    out = [f"{key}: {base[key]} -> {new[key]}" for key in RUN_SETTINGS
           if key in base and key in new and base[key] != new[key]]
    for group in SETTING_GROUPS:
        a, b = base.get(group), new.get(group)
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{group} {k}: {a.get(k)} -> {b.get(k)}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return out


def same_people_note(people: Optional[Tuple[List, List]], result: Dict[str, Dict], without: Path) -> str:
    """The line under the table saying whom the same-people rows cover, or why they are absent
    (`without`: the file that has no per-person records)."""
    if people is None:
        return (f"no same-people rows: {without} has no per-person records (written by an older mhr2 eval); "
                "run `mhr2 eval --json` again for them")  # fmt: skip
    both = result["pa_mpjpe_same"]["people"]
    return (f"same people: the {both} people both runs found (base found {len(people[0])}, new {len(people[1])}); "
            "the plain PA-MPJPE and MRPE rows average over each run's own")  # fmt: skip


def format_comparison(result: Dict[str, Dict]) -> str:
    """Markdown table: metric, base, new, difference, its interval, verdict."""
    lines = ["| metric | base | new | new - base | 95% interval | verdict |", "|---|---|---|---|---|---|"]
    for name, row in result.items():
        label, fmt = LABELS[name]
        plain = fmt.replace("+", "")

        def show(x, f=plain):
            if x is None:
                return "n/a"
            text = f.format(x)
            return f.format(0.0) if float(text) == 0.0 else text  # float noise (-1e-6) shows as 0, not -0

        low_high = row["interval"]
        interval = "n/a" if low_high is None else f"{show(low_high[0], fmt)} to {show(low_high[1], fmt)}"
        lines.append(f"| {label} | {show(row['base'])} | {show(row['new'])} | {show(row['difference'], fmt)} | "
                     f"{interval} | {row['verdict']} |")  # fmt: skip
    return "\n".join(lines)
