"""The triangle soup of a frame: every person's mesh and the boxes on the floor, with
face owners, per-vertex shading attributes, and vertex normals on demand."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mhr2_ros.training.synthetic.camera import Camera
from mhr2_ros.training.synthetic.scene import Box

# Box corners (x, y, z in [-0.5, 0.5] x [0, 1] x [-0.5, 0.5], index = 4 x + 2 y + z) and
# the corner cycles of its six sides.
_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (0.0, 1.0) for z in (-0.5, 0.5)])
_SIDES = ((0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3))


@dataclass
class SceneMeshes:
    """What one frame shows, already in the camera frame."""

    people: torch.Tensor  # (P, V, 3) person vertices, meters
    people_attrs: torch.Tensor  # (P, V, textures.ATTRIBUTES) colours and pattern coordinates
    faces: torch.Tensor  # (F, 3) int64 faces shared by every person
    vertex_faces: torch.Tensor  # (V, K) faces around each vertex (raster.vertex_faces)
    boxes: Sequence[Box]  # occluders standing on the floor
    ground: np.ndarray  # (P, 2) level-frame ground points under the people (blob shadows)
    radius: np.ndarray  # (P,) blob shadow radii, meters


@dataclass
class Soup:
    """All triangles of a frame on the render device; people first, then boxes."""

    verts: torch.Tensor  # (N, 3) camera frame, meters
    faces: torch.Tensor  # (M, 3) int64
    owner: torch.Tensor  # (M,) int64 person index of each face, -1 for boxes
    attrs: torch.Tensor  # (N, ATTRIBUTES) shading attributes
    people: int  # P
    person_vertices: int  # V
    person_faces: torch.Tensor  # (F, 3) one person's faces
    vertex_faces: torch.Tensor  # (V, K) one person's faces around each vertex, -1 padded
    box_normals: torch.Tensor  # (4 * sides, 3) flat normals of the box vertices


def box_mesh(boxes: Sequence[Box], cam: Camera) -> tuple:
    """Vertices (4 per side, so normals are flat), faces and sRGB colours of boxes on the
    floor, camera frame: ((N, 3), (M, 3) int64, (N, 3)) numpy."""
    verts, faces, cols = [], [], []
    for box in boxes:
        c, s = math.cos(box.yaw), math.sin(box.yaw)
        local = _CORNERS * np.array(box.size)
        level = np.stack([c * local[:, 0] + s * local[:, 2] + box.x, cam.height_m - local[:, 1],
                          -s * local[:, 0] + c * local[:, 2] + box.z], 1)  # fmt: skip
        for quad in _SIDES:
            base = len(verts) * 4
            verts.append(level[list(quad)])
            faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
            cols.append(np.tile(box.colour, (4, 1)))
    if not verts:
        return np.zeros((0, 3)), np.zeros((0, 3), np.int64), np.zeros((0, 3))
    return cam.to_camera(np.concatenate(verts)), np.array(faces, np.int64), np.concatenate(cols)


def assemble(scene: SceneMeshes, cam: Camera, device) -> Soup:
    """One triangle soup of the people (sharing one topology) and the boxes."""
    P, V = scene.people.shape[:2]
    faces = scene.faces.to(device)
    offsets = (torch.arange(P, device=device) * V)[:, None, None]
    all_faces = (faces[None] + offsets).reshape(-1, 3)
    owner = torch.arange(P, device=device).repeat_interleave(faces.shape[0])
    verts = scene.people.to(device=device, dtype=torch.float32).reshape(P * V, 3)
    attrs = scene.people_attrs.to(device=device, dtype=torch.float32).reshape(P * V, -1)
    bv, bf, bc = box_mesh(scene.boxes, cam)
    box_normals = torch.zeros(0, 3, device=device)
    if len(bf):
        bv_t = torch.as_tensor(bv, dtype=torch.float32, device=device)
        p = bv_t[torch.as_tensor(bf, device=device)]
        flat = torch.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0], dim=1)  # (2 per side, 3)
        box_normals = flat[0::2].repeat_interleave(4, 0)  # each side's 4 vertices
        all_faces = torch.cat([all_faces, torch.as_tensor(bf, device=device) + P * V])
        owner = torch.cat([owner, torch.full((len(bf),), -1, device=device, dtype=torch.int64)])
        verts = torch.cat([verts, bv_t])
        box_attrs = torch.zeros(len(bv), attrs.shape[1], device=device)
        box_attrs[:, 0:3] = torch.as_tensor(bc, dtype=torch.float32, device=device)
        attrs = torch.cat([attrs, box_attrs])
    return Soup(verts, all_faces, owner, attrs, P, V, faces, scene.vertex_faces.to(device), box_normals)


def corner_normals(soup: Soup, vertex_ids: torch.Tensor) -> torch.Tensor:
    """(U, 3) area-weighted normals (not unit) of the vertices `vertex_ids` (U,) of the soup.

    Computed only for the vertices of visible faces, from the fixed vertex-to-face
    table: a gather and a sum, deterministic on every device (scatter-add is not on CUDA)."""
    pv = soup.people * soup.person_vertices
    person = vertex_ids < pv
    pid = torch.where(person, vertex_ids // soup.person_vertices, torch.zeros_like(vertex_ids))
    local = torch.where(person, vertex_ids % soup.person_vertices, torch.zeros_like(vertex_ids))
    table = soup.vertex_faces[local]  # (U, K) face indices within one person, -1 padded
    valid = (table >= 0)[..., None]
    tri = soup.person_faces[table.clamp(min=0)] + (pid * soup.person_vertices)[:, None, None]  # (U, K, 3)
    p = soup.verts[tri]  # (U, K, 3 corners, 3)
    n = torch.cross(p[:, :, 1] - p[:, :, 0], p[:, :, 2] - p[:, :, 0], dim=-1)
    normals = (n * valid).sum(1)
    if len(soup.box_normals):
        box = torch.where(person, torch.zeros_like(vertex_ids), vertex_ids - pv).clamp(max=len(soup.box_normals) - 1)
        normals = torch.where(person[:, None], normals, soup.box_normals[box])
    return normals
