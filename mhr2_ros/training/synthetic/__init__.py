"""Procedural synthetic data: Anny people on a floor, rendered with exact ground truth.

It is the demo input, the fixture of every stage's tests, the evaluation benchmark
and the training data (the paper trains on synthetic Anny renders). Public API:

    SynthConfig, SyntheticClip, generate_clip      (config.py, generator.py)
    write_clip, load_clip, clip_folders, ClipReader (dataset.py, docs/dataset_format.md)
    FrameTruth, to_frame_result                    (truth.py)

Importing this package is cheap: the names above load their module on first use.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SynthConfig": "config",
    "config_from_dict": "config",
    "config_to_dict": "config",
    "SyntheticClip": "generator",
    "SynthFrame": "generator",
    "generate_clip": "generator",
    "write_clip": "dataset",
    "load_clip": "dataset",
    "clip_folders": "dataset",
    "ClipReader": "dataset",
    "FrameTruth": "truth",
    "to_frame_result": "truth",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
