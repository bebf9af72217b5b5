"""Everything the generator derives once from the body model: the rig's DOF axes,
body regions for clothing, and the vertex-to-face table for normals."""

from __future__ import annotations

import contextlib
import logging
import weakref
from dataclasses import dataclass
from typing import Dict

import numpy as np
import torch

from mhr2_ros.training.synthetic.raster import vertex_faces
from mhr2_ros.training.synthetic.rig import RigAxes
from mhr2_ros.training.synthetic.textures import BodyRegions, build_regions

log = logging.getLogger(__name__)
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


@dataclass
class SynthAssets:
    """Derived once per body model and shared by every clip."""

    body: torch.nn.Module  # mhr2_ros.body.BodyModel that poses the people (any device)
    rig: RigAxes  # DOF axes measured on the rest skeleton
    regions: BodyRegions  # per-vertex clothing regions
    vertex_faces: torch.Tensor  # (V, K) int64 faces around each vertex, -1 padded (K = max valence)


@contextlib.contextmanager
def _one_torch_thread():
    """Torch on one CPU thread inside, the process's count restored after. The body model's
    CPU outputs differ in their last bit with the thread count on some CPUs (measured: bone
    heads by 2e-7 m with 1 and 2 threads on an AVX-512 Xeon); what is measured once and
    shapes every later scene must not depend on how many threads the first caller had."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _rest_skeleton(body) -> tuple:
    """Mean body at rest (identity deltas): (V, 3) vertices and (163, 3) bone heads,
    Anny axes, pelvis at the origin, meters. Measured on one CPU thread (_one_torch_thread),
    so a data worker (one thread) and a training process (all cores) measure the same rig."""
    device = body.faces.device
    with torch.no_grad(), _one_torch_thread():
        eye = torch.eye(4, device=device).repeat(1, body.num_bones, 1, 1)
        out = body.anny(pose_parameters=eye, phenotype_kwargs=torch.full((1, 6), 0.5, device=device))
    pelvis = out["bone_poses"][0, 0, :3, 3]
    heads = (out["bone_poses"][0, :, :3, 3] - pelvis).double().cpu().numpy()
    vertices = (out["vertices"][0] - pelvis).double().cpu().numpy()
    return vertices, heads


def build_assets(body) -> SynthAssets:
    """The assets of `body`, measured now (`assets_for` keeps them)."""
    log.debug("measuring the rest skeleton and body regions")
    vertices, heads = _rest_skeleton(body)
    names = tuple(body.bone_names)
    head_of: Dict[str, np.ndarray] = {n: heads[i] for i, n in enumerate(names)}
    return SynthAssets(
        body=body,
        rig=RigAxes.from_rest(names, heads),
        regions=build_regions(body, vertices, head_of),
        vertex_faces=vertex_faces(body.faces, body.num_vertices),
    )


def assets_for(body) -> SynthAssets:
    """The assets of `body`, built on first use and kept while the body lives."""
    cached = _CACHE.get(body)
    if cached is None:
        cached = _CACHE[body] = build_assets(body)
    return cached
