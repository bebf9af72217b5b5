"""Export the people of one frame as a GLB (binary glTF 2.0) scene.

Coordinates: the results are in the OpenCV camera frame (x right, y down, z forward,
meters). glTF is y-up, and its cameras look down -z. The export rotates 180 degrees
about the x axis: (x, y, z)_gltf = (x, -y, -z)_camera. This is a proper rotation
(det = +1), so face winding and handedness are kept, and a viewer whose camera sits at
the origin with the default glTF orientation sees the people as the real camera did.
Units stay meters (glTF's unit).

One node per person, named `human_<track id>` (or `human_<index>` without tracking),
coloured like the overlay through a PBR base colour.
"""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.io.atomic import atomic_write
from mhr2_ros.io.overlay import check_faces, color_for

log = logging.getLogger(__name__)

# Row-vector form of the 180-degree rotation about x: camera (OpenCV) -> glTF (y up).
CAMERA_TO_GLTF = np.diag([1.0, -1.0, -1.0])


def camera_to_gltf(points: np.ndarray) -> np.ndarray:
    """(N, 3) OpenCV camera-frame points -> glTF y-up frame: (x, -y, -z)."""
    return np.asarray(points, dtype=np.float64) @ CAMERA_TO_GLTF.T


def node_name(human: Human, index: int) -> str:
    return f"human_{human.track_id if human.track_id is not None else index}"


def _human_mesh(human: Human, faces: np.ndarray, index: int):
    """trimesh.Trimesh of one person in glTF coordinates, with its overlay colour."""
    import trimesh  # heavy import, only when exporting

    name = node_name(human, index)
    verts = np.asarray(human.vertices)
    faces = check_faces(faces, len(verts), name)
    rgb = color_for(human.track_id, index)
    material = trimesh.visual.material.PBRMaterial(
        name=f"{name}_material",
        baseColorFactor=[rgb[0], rgb[1], rgb[2], 255],
        metallicFactor=0.0,
        roughnessFactor=0.8,
        doubleSided=True,
    )
    # process=False: keep the vertex order of the body model (merging would renumber).
    mesh = trimesh.Trimesh(camera_to_gltf(verts), faces, process=False)
    mesh.visual = trimesh.visual.TextureVisuals(material=material)
    return name, mesh


def export_glb(path, frame: FrameResult, faces: Optional[np.ndarray]) -> int:
    """Write every person with vertices of `frame` to `path` (.glb), atomically.

    Returns the number of meshes written. Raises ValueError when no person has
    vertices (or `faces` is None): an empty scene would only hide the mistake.
    """
    import trimesh

    with_mesh = [(i, h) for i, h in enumerate(frame.humans) if h.vertices is not None and len(h.vertices)]
    if faces is None or not with_mesh:
        raise ValueError(
            f"{path}: nothing to export: {len(frame.humans)} people, {len(with_mesh)} with vertices, "
            f"faces {'missing' if faces is None else 'given'} (run the detector with vertices enabled)"
        )
    scene = trimesh.Scene()
    for index, human in with_mesh:
        name, mesh = _human_mesh(human, faces, index)
        scene.add_geometry(mesh, node_name=name, geom_name=name)
    data = scene.export(file_type="glb")
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    log.info("wrote %s (%d meshes)", path, len(with_mesh))
    return len(with_mesh)
