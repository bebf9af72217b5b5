"""Export the network to ONNX (`mhr2 export`), checked against PyTorch before it is kept.

One graph serves every input size: the height and width are dynamic (multiples of the
patch size), as is the batch. Except with a learned position table (pos_embed "learned",
DINOv2): it is resampled with scale factors computed from the grid, which the exporter
fixes at the traced size, so such a file serves the one input size it was exported at
(the first check size; the file records it and refuses others).

The exporter (torch.onnx, dynamo) can turn a Python number computed from a shape into a
constant without a word, and such a graph is exact at the traced size only; this happened to the pelvis scale (`QueryHeads` multiplies by the input
size), which is why the graph outputs image fractions (inference/onnx_network.py). So the
export is not trusted: every size in `check_sizes` (by default the input sizes of every
training aspect ratio, plus one the trace did not see) is run through ONNX Runtime and
PyTorch on the same input, and a file whose outputs differ beyond tolerance is not written.

Needs `pip install 'mhr2_ros[onnx]'` (onnx, onnxscript, onnxruntime); nothing here is
imported by inference with .safetensors weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from mhr2_ros.config import ModelConfig
from mhr2_ros.errors import CheckpointError, ConfigError
from mhr2_ros.inference.onnx_network import (
    GRAPH_INPUT, GRAPH_OUTPUTS, METADATA_CHECKPOINT, METADATA_FORMAT, METADATA_INPUT_HW, METADATA_MODEL, ONNX_FORMAT,
    import_onnxruntime,
)  # fmt: skip
from mhr2_ros.inference.preprocess import aspect_input_hw
from mhr2_ros.io.atomic import atomic_path
from mhr2_ros.model.decoder import proposal_ranks
from mhr2_ros.model.mhr2 import MultiHMR2

log = logging.getLogger(__name__)

DEFAULT_OPSET = 18  # the ONNX opset torch.onnx's dynamo exporter targets natively
UNIT_IMAGE = (1, 1)  # (H, W) given to the heads: the pelvis comes out in image fractions
# |onnx - torch| <= ATOL + RTOL * |torch|, elementwise; float32 kernels differ by ~1e-5 here
ATOL, RTOL = 1e-3, 1e-3
CHECK_SEED = 0  # the random input of the check, so a failure can be replayed
LARGER_BY = 2  # the unseen check size: the first size plus this many patches on each side
EXPORTER_LOGGERS = ("torch.onnx", "torch.export", "onnx_ir", "onnxscript", "torch._dynamo")
TIE_GAP = 1e-3  # proposal logits closer than this may be ranked differently by the two runtimes


class ExportError(CheckpointError):
    """The exported graph disagrees with PyTorch, or the exporter failed."""


class _Graph(nn.Module):
    """What the ONNX file computes: encoder, decoder and heads, outputs in GRAPH_OUTPUTS order."""

    def __init__(self, model: MultiHMR2) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        cls, patches, grid_hw = self.model.encode(images)
        decoded = self.model.decode(patches, grid_hw)
        out = self.model.query_heads(decoded.queries, UNIT_IMAGE, decoded.points)
        out["fov"] = self.model.camera_head(cls)
        out["loc_fraction"] = out.pop("loc")
        return tuple(out[name] for name in GRAPH_OUTPUTS)


def fixed_size(cfg: ModelConfig) -> bool:
    """True when the graph can serve only the size it is traced at (learned position table)."""
    return cfg.pos_embed == "learned"


def default_check_sizes(cfg: ModelConfig) -> List[Tuple[int, int]]:
    """(H, W) inputs of every training aspect ratio, then one larger than the first (unseen);
    a fixed-size graph: the input of the aspect ratio closest to 4:3."""
    ratios = cfg.train_aspect_ratios
    if fixed_size(cfg):
        ratios = [min(ratios, key=lambda a: abs(a - 4.0 / 3.0))]
    sizes = [aspect_input_hw(a, cfg.image_size, cfg.patch_size) for a in ratios]
    sizes = list(dict.fromkeys(sizes))  # distinct, in order
    if fixed_size(cfg):
        return sizes
    h, w = sizes[0]
    return sizes + [(h + LARGER_BY * cfg.patch_size, w + LARGER_BY * cfg.patch_size)]


def _check_size(cfg: ModelConfig, hw: Tuple[int, int]) -> None:
    h, w = hw
    if h <= 0 or w <= 0 or h % cfg.patch_size or w % cfg.patch_size:
        raise ConfigError(f"check size {h}x{w} (HxW): both sides must be positive multiples of the patch size "
                          f"{cfg.patch_size}")
    patches = (h // cfg.patch_size) * (w // cfg.patch_size)
    if cfg.query_selection and patches < cfg.num_queries:
        raise ConfigError(f"check size {h}x{w} has {patches} patches, fewer than the {cfg.num_queries} queries "
                          "the decoder selects among them; use a larger size")


def export_onnx(model: MultiHMR2, path: str | Path, metadata: dict | None = None,
                check_sizes: Sequence[Tuple[int, int]] | None = None, opset: int = DEFAULT_OPSET) -> Dict:
    """Write `path` (.onnx, atomically) after checking it against `model` at `check_sizes`.

    Moves `model` to the CPU in float32 and eval mode. Returns {"path", "sizes": [(H, W)],
    "max_abs": {output: largest |onnx - torch|}}.
    `metadata`: the checkpoint's JSON (provenance, inference settings), kept in the file."""
    path = Path(path)
    if path.suffix != ".onnx":
        raise ConfigError(f"ONNX output must end in .onnx, got {path}")
    cfg = model.cfg
    sizes = [tuple(int(v) for v in hw) for hw in (check_sizes or default_check_sizes(cfg))]
    for hw in sizes:
        _check_size(cfg, hw)
    if fixed_size(cfg) and len(set(sizes)) > 1:
        raise ConfigError(f"a model with a learned position table exports for one input size, got check sizes {sizes}: "
                          "export one file per size")
    graph = _Graph(model.to("cpu", torch.float32)).eval()  # the exporter traces on the CPU
    log.info("exporting %s (tracing, then checking against PyTorch at %d sizes)", path, len(sizes))
    program = _trace(graph, cfg, sizes[0], opset)
    props = program.model.metadata_props
    props[METADATA_FORMAT] = ONNX_FORMAT
    props[METADATA_MODEL] = json.dumps(cfg.to_dict())
    props[METADATA_CHECKPOINT] = json.dumps({k: v for k, v in (metadata or {}).items() if k != "model"})
    if fixed_size(cfg):
        props[METADATA_INPUT_HW] = json.dumps(list(sizes[0]))
    with atomic_path(path) as tmp:
        program.save(str(tmp))
        max_abs = check_against_torch(tmp, graph, sizes)
    log.info("wrote %s (checked at %s)", path, ", ".join(f"{h}x{w}" for h, w in sizes))
    return {"path": path, "sizes": sizes, "max_abs": max_abs}


def _trace(graph: _Graph, cfg: ModelConfig, hw: Tuple[int, int], opset: int):
    """torch.onnx's dynamo export with a dynamic batch, height and width (multiples of the patch)."""
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter needs it; fail with the install hint)
    except ImportError as exc:
        raise ConfigError(f"`mhr2 export` needs onnxscript ({exc}); pip install 'mhr2_ros[onnx]'") from exc
    example = torch.zeros(2, 3, *hw)  # batch 2: torch.export would specialise a dimension of size 1
    dim = torch.export.Dim
    shapes = {"images": {0: dim("batch", min=1, max=1024)}}
    if not fixed_size(cfg):
        rows, cols = dim("patch_rows", min=1, max=4096), dim("patch_cols", min=1, max=4096)
        shapes["images"].update({2: cfg.patch_size * rows, 3: cfg.patch_size * cols})
    try:
        with torch.no_grad(), warnings.catch_warnings(), _quiet_exporter():
            # the exporter's deprecation notices about its own internals, nothing a user can act on
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.onnx.export(graph, (example,), dynamo=True, dynamic_shapes=shapes, opset_version=opset,
                                     input_names=[GRAPH_INPUT], output_names=list(GRAPH_OUTPUTS), verbose=False)
    except Exception as exc:  # torch.onnx wraps exporter failures in several types
        raise ExportError(f"torch.onnx could not export the network: {exc}") from exc


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter logs every pass and the torchvision ops it skips at INFO / WARNING: only
    errors, unless this module logs at DEBUG (mhr2 -v)."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def check_against_torch(onnx_path: Path, graph: nn.Module, sizes: Sequence[Tuple[int, int]]) -> Dict[str, float]:
    """Run both on the same random inputs (batch 2 at the first size, 1 at the others);
    ExportError names the first output and size beyond ATOL + RTOL * |torch|."""
    ort = import_onnxruntime()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(CHECK_SEED)
    max_abs = {name: 0.0 for name in GRAPH_OUTPUTS}
    for i, (h, w) in enumerate(sizes):
        images = torch.randn(2 if i == 0 else 1, 3, h, w, generator=gen)
        with torch.no_grad():
            expected = [t.numpy() for t in graph(images)]
        got = session.run(list(GRAPH_OUTPUTS), {GRAPH_INPUT: images.numpy()})
        for name, want, have in zip(GRAPH_OUTPUTS, expected, got):
            if want.shape != have.shape:
                raise ExportError(f"exported {name} has shape {have.shape} at input {h}x{w}, PyTorch's {want.shape}")
            diff = np.abs(have - want)
            max_abs[name] = max(max_abs[name], float(diff.max()) if diff.size else 0.0)
            if not np.all(diff <= ATOL + RTOL * np.abs(want)):
                raise ExportError(
                    f"exported {name} differs from PyTorch at input {h}x{w} by up to {float(diff.max()):.3g} "
                    f"(tolerance {ATOL} + {RTOL} x |value|); nothing written" + _tie_note(graph.model, images))
    return max_abs


def proposal_gap(model: MultiHMR2, images: torch.Tensor) -> float:
    """Smallest gap between consecutive ranks among the k + 1 best proposals (decoder's
    query selection) of `images`; inf without query selection."""
    if not model.cfg.query_selection:
        return math.inf
    with torch.no_grad():
        _, patches, grid_hw = model.encode(images)
        logits = model.decoder(patches, grid_hw).proposals["logits"]  # (B, P)
    rank = proposal_ranks(logits, grid_hw)  # as the decoder ranks them
    top = rank.topk(min(model.cfg.num_queries + 1, rank.shape[1]), dim=1).values
    return float((top[:, :-1] - top[:, 1:]).min()) if top.shape[1] > 1 else math.inf


def _tie_note(model: MultiHMR2, images: torch.Tensor) -> str:
    gap = proposal_gap(model, images)
    if gap >= TIE_GAP:
        return "; the graph is not valid at that size"
    return (f"; the network's best proposal scores are {gap:.1g} apart, so which queries it selects, and in what "
            "order, is arbitrary between runtimes (usual for an untrained network: export a trained one)")


__all__ = ["export_onnx", "check_against_torch", "default_check_sizes", "ExportError", "DEFAULT_OPSET"]
