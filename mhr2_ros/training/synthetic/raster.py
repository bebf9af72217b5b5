"""Device-agnostic triangle rasteriser in PyTorch (CPU or CUDA, same code).

The method of mhr2_ros/io/overlay.py, vectorised in torch: every face lists the
pixel centres of its screen bounding box, keeps those inside it (edge functions)
and interpolates 1/z there (affine in screen space, hence perspective-correct). The
depth test is a single `scatter_reduce(amax)` over int64 keys that pack the float32
bits of 1/z (monotonic for positive floats) above the face index: the largest key
is the nearest face, so one exact, order-independent reduction gives both the depth
and the face, and the result is deterministic on every device. Pixel centres are at
integer coordinates, the convention of geometry.project and the overlay.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional

import torch

NEAR = 0.01  # meters: faces with a vertex closer than this (or behind the camera) are skipped
INSIDE_EPS = 1e-5  # barycentric tolerance: pixels on a shared edge belong to both faces
_FACE_BITS = 32
_FACE_MASK = (1 << _FACE_BITS) - 1


@dataclass
class Raster:
    """Nearest surface per pixel, flattened row-major (index = row * width + col)."""

    face: torch.Tensor  # (H*W,) int64 index into the rasterised faces, -1 where empty
    depth: torch.Tensor  # (H*W,) float32 z of the nearest surface in meters, 0 where empty
    covered: Optional[torch.Tensor]  # (num_owners, H*W) bool: pixels each owner covers alone
    uv: torch.Tensor  # (V, 2) projected vertices, pixels
    inv_z: torch.Tensor  # (V,) 1 / z of the vertices, 0 behind the camera


@dataclass
class _Setup:
    """Per face, after culling: bounding box and affine coefficients in (dx, dy)."""

    face_id: torch.Tensor  # (F',) int64 original face index
    x0: torch.Tensor  # (F',) int64 bbox left column
    y0: torch.Tensor  # (F',) int64 bbox top row
    w: torch.Tensor  # (F',) int64 bbox width in pixels
    count: torch.Tensor  # (F',) int64 candidate pixels (w * h)
    coef: torch.Tensor  # (F', 12) float32: 3 x (a, b, c) barycentric weights, then 1/z (a, b, c)


def project_vertices(vertices: torch.Tensor, K: torch.Tensor) -> tuple:
    """(V, 3) camera-frame meters -> (V, 2) pixels and (V,) inverse depth (0 behind NEAR)."""
    z = vertices[:, 2]
    zc = z.clamp(min=NEAR)
    u = K[0, 0] * vertices[:, 0] / zc + K[0, 1] * vertices[:, 1] / zc + K[0, 2]
    v = K[1, 1] * vertices[:, 1] / zc + K[1, 2]
    inv = torch.where(z > NEAR, 1.0 / zc, torch.zeros_like(z))
    return torch.stack([u, v], -1), inv


def _candidate_faces(uv: torch.Tensor, inv_z: torch.Tensor, faces: torch.Tensor, height: int, width: int):
    """(F',) indices of the faces that may cover a pixel centre: in front of the camera,
    on screen, bounding box around an integer point. A cheap float32 pre-pass (with a
    margin, so nothing that covers a pixel is lost): at low resolution most faces are
    smaller than a pixel, and the exact float64 setup then runs on the few left."""
    xs, ys = uv[faces, 0].clamp(-1e6, 1e6), uv[faces, 1].clamp(-1e6, 1e6)  # (F, 3)
    lo_x, hi_x = xs.amin(1) - 1e-3, xs.amax(1) + 1e-3
    lo_y, hi_y = ys.amin(1) - 1e-3, ys.amax(1) + 1e-3
    ok = (torch.ceil(lo_x) <= torch.floor(hi_x)) & (torch.ceil(lo_y) <= torch.floor(hi_y))
    ok &= (hi_x >= 0) & (lo_x <= width - 1) & (hi_y >= 0) & (lo_y <= height - 1)
    ok &= (inv_z[faces] > 0).all(1)
    return torch.nonzero(ok)[:, 0]


def _setup(uv: torch.Tensor, inv_z: torch.Tensor, faces: torch.Tensor, height: int, width: int) -> _Setup:
    """Cull faces behind the camera, off screen, degenerate or covering no pixel centre."""
    ids = _candidate_faces(uv, inv_z, faces, height, width)
    corners = faces[ids]
    xs = uv[corners, 0].double().clamp(-1e6, 1e6)  # (F', 3) float64: the edge functions stay exact
    ys = uv[corners, 1].double().clamp(-1e6, 1e6)
    iz = inv_z[corners].double()
    x0 = torch.ceil(xs.min(1).values).clamp(min=0)
    y0 = torch.ceil(ys.min(1).values).clamp(min=0)
    w = torch.floor(xs.max(1).values).clamp(max=width - 1) - x0 + 1
    h = torch.floor(ys.max(1).values).clamp(max=height - 1) - y0 + 1
    area = (xs[:, 1] - xs[:, 0]) * (ys[:, 2] - ys[:, 0]) - (ys[:, 1] - ys[:, 0]) * (xs[:, 2] - xs[:, 0])
    keep = torch.nonzero((w > 0) & (h > 0) & (area.abs() > 1e-12))[:, 0]
    xs, ys, iz, x0, y0, w, h, area = (t[keep] for t in (xs, ys, iz, x0, y0, w, h, area))
    coef = torch.empty(len(keep), 12, dtype=torch.float64, device=uv.device)
    # Weight of corner i = edge function of the opposite edge (j, k) / area.
    for i, (j, k) in enumerate(((1, 2), (2, 0), (0, 1))):
        a, b = (ys[:, j] - ys[:, k]) / area, (xs[:, k] - xs[:, j]) / area
        coef[:, i], coef[:, 3 + i], coef[:, 6 + i] = a, b, a * (x0 - xs[:, j]) + b * (y0 - ys[:, j])
    for row in range(3):  # 1/z = sum_i weight_i * iz_i, affine too
        coef[:, 9 + row] = (coef[:, 3 * row : 3 * row + 3] * iz).sum(1)
    wi, hi = w.long(), h.long()
    return _Setup(ids[keep], x0.long(), y0.long(), wi, wi * hi, coef.float())


def _chunks(count: torch.Tensor, budget: int) -> Iterator[slice]:
    """Consecutive face ranges with at most ~budget candidate pixels each."""
    ends = torch.cumsum(count, 0).cpu()
    start, n = 0, len(ends)
    while start < n:
        base = int(ends[start - 1]) if start else 0
        stop = max(int(torch.searchsorted(ends, base + budget, right=True)), start + 1)
        yield slice(start, min(stop, n))
        start = stop


def _candidates(s: _Setup, part: slice, width: int) -> tuple:
    """Candidate pixels of the faces in `part`: (pixel index, packed key, local face)."""
    count = s.count[part]
    total = int(count.sum())
    local = torch.repeat_interleave(torch.arange(len(count), device=count.device), count, output_size=total)
    offset = torch.arange(total, device=count.device) - (torch.cumsum(count, 0) - count)[local]
    bw = s.w[part][local]
    dy, dx = offset // bw, offset % bw
    c = s.coef[part][local]  # (N, 12)
    fx, fy = dx.float(), dy.float()
    inside = torch.ones(total, dtype=torch.bool, device=count.device)
    for i in range(3):
        inside &= c[:, i] * fx + c[:, 3 + i] * fy + c[:, 6 + i] >= -INSIDE_EPS
    iz = (c[:, 9] * fx + c[:, 10] * fy + c[:, 11]).clamp(min=1e-30)
    pix = (s.y0[part][local] + dy) * width + s.x0[part][local] + dx
    key = (iz.view(torch.int32).long() << _FACE_BITS) | s.face_id[part][local]
    return pix[inside], key[inside], local[inside]


def rasterize(
    vertices: torch.Tensor, faces: torch.Tensor, K: torch.Tensor, height: int, width: int,
    face_owner: Optional[torch.Tensor] = None, num_owners: int = 0, budget: int = 1 << 21,
) -> Raster:  # fmt: skip
    """Rasterise a triangle soup.

    vertices: (V, 3) camera frame, meters; faces: (F, 3) int64; K: (3, 3) pixels.
    face_owner: (F,) int64 owner of each face (a person), -1 for none; with it, the
    pixels every owner would cover if alone are returned in `covered` (amodal masks).
    budget: candidate pixels per pass (memory ~60 bytes each)."""
    device = vertices.device
    K = torch.as_tensor(K, dtype=vertices.dtype, device=device)
    uv, inv_z = project_vertices(vertices, K)
    s = _setup(uv, inv_z, faces, height, width)
    keys = torch.zeros(height * width, dtype=torch.int64, device=device)
    covered = None
    if face_owner is not None and num_owners > 0:
        covered = torch.zeros(num_owners * height * width, dtype=torch.bool, device=device)
        owner_of = face_owner.to(device)[s.face_id]
    for part in _chunks(s.count, budget):
        pix, key, local = _candidates(s, part, width)
        keys.scatter_reduce_(0, pix, key, reduce="amax")
        if covered is not None:
            owner = owner_of[part][local]
            mine = owner >= 0
            covered[owner[mine] * (height * width) + pix[mine]] = True
    hit = keys >= (1 << _FACE_BITS)
    face = torch.where(hit, keys & _FACE_MASK, torch.full_like(keys, -1))
    inv = (keys >> _FACE_BITS).to(torch.int32).view(torch.float32)
    depth = torch.where(hit, 1.0 / inv.clamp(min=1e-30), torch.zeros_like(inv))
    if covered is not None:
        covered = covered.view(num_owners, height * width)
    return Raster(face=face, depth=depth, covered=covered, uv=uv, inv_z=inv_z)


def barycentrics(uv: torch.Tensor, inv_z: torch.Tensor, faces: torch.Tensor, pix: torch.Tensor,
                 face: torch.Tensor, width: int) -> torch.Tensor:  # fmt: skip
    """(N, 3) perspective-correct barycentric weights of (N,) faces at the centres of
    (N,) flat pixel indices (the pixels where Raster.face is not -1)."""
    f = faces[face]  # (N, 3) vertex indices
    px, py = (pix % width).double(), (pix // width).double()
    x, y = uv[f, 0].double(), uv[f, 1].double()  # (N, 3) corner pixels
    area = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
    area = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
    w = torch.stack([
        ((y[:, j] - y[:, k]) * (px - x[:, j]) + (x[:, k] - x[:, j]) * (py - y[:, j])) / area
        for j, k in ((1, 2), (2, 0), (0, 1))
    ], 1).clamp(min=0.0)  # fmt: skip
    w = w * inv_z[f].double()  # screen-space weights -> perspective-correct
    return (w / w.sum(1, keepdim=True).clamp(min=1e-30)).float()


def vertex_faces(faces: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """(V, K) table of the faces incident to each vertex, -1 padded (K = largest valence),
    so that vertex normals are a gather and a sum (meshes.corner_normals)."""
    faces = faces.cpu()
    flat = faces.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=num_vertices)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(len(flat)) - starts[flat[order]]
    table = torch.full((num_vertices, max(int(counts.max()), 1)), -1, dtype=torch.int64)
    table[flat[order], slot] = order // 3
    return table
