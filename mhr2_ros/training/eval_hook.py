"""The periodic evaluation of `mhr2-train`: the detector built on the training model,
run through `evaluation.runner` on the config's `eval_clips` (on-disk clips)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

from mhr2_ros.config import InferenceConfig

EVAL_KEYS = ("f1", "f1_box", "pa_mpjpe", "mrpe", "fov_error", "fov_bias", "idf1_2d", "idf1")  # logged as eval/<key>


def build_eval_hook(cfg) -> Optional[Callable]:
    """hook(model, model_cfg) -> {metric: value}, or None without eval clips / eval_every."""
    if not cfg.eval_clips or not cfg.eval_every:
        return None
    from mhr2_ros.evaluation.runner import disk_sequences, evaluate
    from mhr2_ros.inference.detector import Detector
    from mhr2_ros.tracking import Tracker, load_tracker_config

    sequences = disk_sequences([Path(p) for p in cfg.eval_clips])  # fails early on a bad folder
    tracker_config = load_tracker_config()

    def hook(model, model_cfg) -> Dict[str, float]:
        device = str(next(model.parameters()).device)
        detector = Detector(model, model_cfg, InferenceConfig(device=device))
        report = evaluate(detector, sequences, tracker_factory=lambda: Tracker(tracker_config))
        metrics = {**report.overall, **report.tracking}
        return {k: float(metrics[k]) for k in EVAL_KEYS if metrics.get(k) is not None}

    return hook
