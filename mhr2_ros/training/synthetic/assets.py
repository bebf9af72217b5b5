"""Everything the generator derives once from the body model: the rig's DOF axes,
body regions for clothing, and the vertex-to-face table for normals."""

from __future__ import annotations

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


def _rest_skeleton(body) -> tuple:
    """Mean body at rest (identity deltas): (V, 3) vertices and (163, 3) bone heads,
    Anny axes, pelvis at the origin, meters."""
    device = body.faces.device
    with torch.no_grad():
        eye = torch.eye(4, device=device).repeat(1, body.num_bones, 1, 1)
        out = body.anny(pose_parameters=eye, phenotype_kwargs=torch.full((1, 6), 0.5, device=device))
    pelvis = out["bone_poses"][0, 0, :3, 3]
    heads = (out["bone_poses"][0, :, :3, 3] - pelvis).double().cpu().numpy()
    vertices = (out["vertices"][0] - pelvis).double().cpu().numpy()
    return vertices, heads


def assets_for(body) -> SynthAssets:
    """The assets of `body`, built on first use and kept while the body lives."""
    cached = _CACHE.get(body)
    if cached is None:
        log.debug("measuring the rest skeleton and body regions")
        vertices, heads = _rest_skeleton(body)
        names = tuple(body.bone_names)
        head_of: Dict[str, np.ndarray] = {n: heads[i] for i, n in enumerate(names)}
        cached = SynthAssets(
            body=body,
            rig=RigAxes.from_rest(names, heads),
            regions=build_regions(body, vertices, head_of),
            vertex_faces=vertex_faces(body.faces, body.num_vertices),
        )
        _CACHE[body] = cached
    return cached
