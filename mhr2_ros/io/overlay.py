"""Overlay of detections on the input image: shaded meshes, skeletons, boxes, labels.

Meshes are rasterised in numpy, not with one cv2.fillPoly per face (27k faces per
person would take seconds). Every face lists the pixel centres of its bounding box,
keeps those inside it (edge functions), interpolates 1/z there (it is affine in screen
space, so this is perspective-correct) and a per-pixel depth test keeps the nearest
face. That is the painter's order of the design done exactly: nearer people cover
farther ones, and a person's own hidden faces are hidden, whatever the face order or
winding. Shading is Lambert with a light at the camera (|cos| between face normal and
view ray), so it does not depend on the mesh's winding either.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from typing import Iterable, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import project
from mhr2_ros.inference.results import FrameResult, Human
from mhr2_ros.io.images import check_rgb8

NEAR = 0.01  # meters: faces with a vertex closer than this (or behind) are skipped
AMBIENT = 0.3  # shade of a face seen edge-on; 1.0 for a face seen head-on
CHUNK = 1_000_000  # candidate pixels per batch: ~110 bytes each at the peak, so ~110 MB
_GOLDEN = 0.618033988749895


# ------------------------------------------------------------------------------ colours
def color_for(track_id: Optional[str], index: int) -> Tuple[int, int, int]:
    """Distinct saturated RGB colour: stable hash of the track id (same colour in every
    frame and run), else spread by the golden ratio over the detection index."""
    if track_id is not None:
        hue = (zlib.crc32(str(track_id).encode("utf-8")) % 3600) / 3600.0
    else:
        hue = (0.1 + index * _GOLDEN) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


# ------------------------------------------------------------------------- mesh faces
def check_faces(faces, num_vertices: int, who: str) -> np.ndarray:
    """`faces` as an (F, 3) integer array indexing `num_vertices` vertices, else ValueError."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(f"faces: expected an (F, 3) integer array, got shape {faces.shape} dtype {faces.dtype}")
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise ValueError(f"faces index vertices 0..{faces.max()} but {who} has {num_vertices} vertices")
    return faces


def _human_faces(human: Human, faces: np.ndarray, K: np.ndarray, color, who: str):
    """Screen corners xs, ys (3, F), inverse depths iz (3, F), shaded colours (F, 3).

    Corner arrays are laid out (corner, face) so that every later step works on
    contiguous 1-D arrays; projection is done once per vertex, not per corner.
    """
    verts = np.asarray(human.vertices, dtype=np.float64)
    faces = check_faces(faces, len(verts), who)
    faces = faces[(verts[:, 2] > NEAR)[faces].all(axis=1)]  # behind / at the camera: skip
    uv = project(verts, np.asarray(K, dtype=np.float64))
    corners = faces.T  # (3, F)
    xs, ys, iz = uv[:, 0][corners], uv[:, 1][corners], (1.0 / np.maximum(verts[:, 2], NEAR))[corners]
    p0, p1, p2 = verts[corners[0]], verts[corners[1]], verts[corners[2]]
    normals = np.cross(p1 - p0, p2 - p0)
    rays = p0 + p1 + p2  # centroid * 3: only its direction matters
    cos = np.abs(np.einsum("ij,ij->i", normals, rays)) / (
        np.linalg.norm(normals, axis=1) * np.linalg.norm(rays, axis=1) + 1e-12
    )
    shade = AMBIENT + (1.0 - AMBIENT) * cos
    return xs, ys, iz, shade[:, None] * np.asarray(color, dtype=np.float64)[None, :]


# ------------------------------------------------------------------------ rasteriser
def _face_setup(xs: np.ndarray, ys: np.ndarray, iz: np.ndarray, height: int, width: int):
    """Per face: integer bbox (x0, y0, w, h) clipped to the image, and 12 coefficients
    of the barycentric weights and 1/z as affine functions of (dx, dy), the pixel offset
    from (x0, y0). Offsets are small integers, which keeps float32 accurate later."""
    xs, ys = np.clip(xs, -1e6, 1e6), np.clip(ys, -1e6, 1e6)
    x0 = np.maximum(np.ceil(np.minimum(np.minimum(xs[0], xs[1]), xs[2])), 0)
    y0 = np.maximum(np.ceil(np.minimum(np.minimum(ys[0], ys[1]), ys[2])), 0)
    w = np.minimum(np.floor(np.maximum(np.maximum(xs[0], xs[1]), xs[2])), width - 1) - x0 + 1
    h = np.minimum(np.floor(np.maximum(np.maximum(ys[0], ys[1]), ys[2])), height - 1) - y0 + 1
    area = (xs[1] - xs[0]) * (ys[2] - ys[0]) - (ys[1] - ys[0]) * (xs[2] - xs[0])
    ok = (w > 0) & (h > 0) & (np.abs(area) > 1e-9)
    xs, ys, iz, x0, y0, w, h, area = (a[..., ok] for a in (xs, ys, iz, x0, y0, w, h, area))
    coef = np.empty((12, len(area)))
    # Weight of corner i = edge function of the opposite edge (j, k) / area.
    for i, (j, k) in enumerate(((1, 2), (2, 0), (0, 1))):
        ea, eb = (ys[j] - ys[k]) / area, (xs[k] - xs[j]) / area
        coef[i], coef[3 + i], coef[6 + i] = ea, eb, ea * (x0 - xs[j]) + eb * (y0 - ys[j])
    for row in range(3):
        coef[9 + row] = (coef[3 * row : 3 * row + 3] * iz).sum(0)
    box = np.stack([x0, y0, w, h], 1).astype(np.int64)
    return box, np.ascontiguousarray(coef.T, dtype=np.float32), ok


def _chunks(counts: np.ndarray) -> Iterable[slice]:
    """Consecutive face ranges with at most ~CHUNK candidate pixels each."""
    ends = np.cumsum(counts)
    start = 0
    while start < len(counts):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + CHUNK, side="right")), start + 1)
        yield slice(start, stop)
        start = stop


def _raster_chunk(box, coef, face_ids, width, zbuf, owner) -> None:
    """Rasterise some faces into the depth buffer `zbuf` (1/z, 0 = empty) and `owner`
    (id of the nearest face so far). Running the depth test per chunk against the
    shared buffer keeps the result exact across chunks."""
    counts = box[:, 2] * box[:, 3]
    face = np.repeat(np.arange(len(box)), counts)
    local = np.arange(len(face)) - np.repeat(np.cumsum(counts) - counts, counts)
    bw = box[face, 2]
    dx, dy = (local % bw).astype(np.float32), (local // bw).astype(np.float32)
    c = coef[face]
    wts = c[:, 0:3] * dx[:, None] + c[:, 3:6] * dy[:, None] + c[:, 6:9]
    inside = (wts >= -1e-5).all(1)
    iz = (c[:, 9] * dx + c[:, 10] * dy + c[:, 11])[inside]
    pix = ((box[face, 1] + local // bw) * width + box[face, 0] + local % bw)[inside]
    np.maximum.at(zbuf, pix, iz)
    win = iz >= zbuf[pix]
    owner[pix[win]] = face_ids[face[inside][win]]


def rasterize(xs, ys, iz, height: int, width: int) -> np.ndarray:
    """(H*W,) index of the visible face at each pixel centre, -1 where none.

    xs, ys: (3, F) corner pixel coordinates (integers are pixel centres); iz: (3, F) 1/z.
    """
    owner = np.full(height * width, -1, dtype=np.int64)
    if xs.shape[1] == 0:
        return owner
    box, coef, ok = _face_setup(xs, ys, iz, height, width)
    face_ids = np.flatnonzero(ok)
    zbuf = np.zeros(height * width, dtype=np.float32)
    counts = box[:, 2] * box[:, 3]
    for part in _chunks(counts):
        _raster_chunk(box[part], coef[part], face_ids[part], width, zbuf, owner)
    return owner


def draw_meshes(out: np.ndarray, frame: FrameResult, faces, alpha: float = 0.5) -> None:
    """Rasterise every human's mesh together (one depth buffer) and blend into `out`
    in place (alpha 1.0 paints opaque meshes, as the demo scene renderer does)."""
    if faces is None:
        return
    parts = [
        _human_faces(h, faces, frame.K, color_for(h.track_id, i), f"human {i}")
        for i, h in enumerate(frame.humans)
        if h.vertices is not None and len(h.vertices)
    ]
    if not parts:
        return
    xs, ys, iz = (np.concatenate([p[k] for p in parts], axis=1) for k in range(3))
    colors = np.concatenate([p[3] for p in parts])
    height, width = out.shape[:2]
    owner = rasterize(xs, ys, iz, height, width)
    pix = np.flatnonzero(owner >= 0)
    flat = out.reshape(-1, 3)
    blended = (1.0 - alpha) * flat[pix] + alpha * colors[owner[pix]]
    flat[pix] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------ 2D drawing
FONT, FONT_SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.5  # label text; both grow with `scale`


def _thickness(scale: float) -> int:
    """Line and text thickness in pixels; `scale`: the image's short side / 720, at least 1."""
    return max(1, int(round(2 * scale)))


def _point(p) -> Tuple[int, int]:
    """Pixel tuple for cv2, clipped far outside the image (cv2 wants small ints)."""
    x, y = float(p[0]), float(p[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        return 0, 0
    return int(round(min(max(x, -1e5), 1e5))), int(round(min(max(y, -1e5), 1e5)))


def _visible_joints(human: Human) -> np.ndarray:
    kp = np.asarray(human.keypoints_2d, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(kp).all(1)
    joints = np.asarray(human.joints_3d).reshape(-1, 3) if human.joints_3d is not None else None
    if joints is not None and len(joints) == len(kp):
        ok &= joints[:, 2] > NEAR  # projection of a point behind the camera is meaningless
    return ok


def _draw_skeleton(out, human: Human, edges, color, scale: float) -> None:
    kp = np.asarray(human.keypoints_2d, dtype=np.float64).reshape(-1, 2)
    ok = _visible_joints(human)
    thick = _thickness(scale)
    for i, j in edges:
        if i < len(kp) and j < len(kp) and ok[i] and ok[j]:
            cv2.line(out, _point(kp[i]), _point(kp[j]), color, thick, cv2.LINE_AA)
    for p in kp[ok]:
        cv2.circle(out, _point(p), thick + 1, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, _point(p), thick + 1, color, 1, cv2.LINE_AA)


def label_text(human: Human, index: int) -> str:
    """'a3 0.92 4.1m': track id (else '#index'), score, depth in meters."""
    name = human.track_id if human.track_id is not None else f"#{index}"
    return f"{name} {human.score:.2f} {human.depth:.1f}m"


Rect = Tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_label(box: Rect, size: Tuple[int, int], image_hw: Tuple[int, int], taken: Sequence[Rect]) -> Rect:
    """Where a label of `size` (w, h pixels) goes for `box`: above it, else inside its top,
    else below it, else further up or down in label-height steps; the first spot on
    screen that covers no label in `taken`. With none free, above (or inside) the box."""
    (w, h), (height, width) = size, image_hw
    x0 = min(max(box[0], 0), max(width - w, 0))  # keep the label on screen horizontally
    above, inside, below = box[1] - h, box[1], box[3]
    steps = [above - k * h for k in range(1, 4)] + [below + k * h for k in range(1, 4)]
    on_screen = [y for y in (above, inside, below, *steps) if 0 <= y and y + h <= height]
    for y in on_screen:
        rect = (x0, y, x0 + w, y + h)
        if not any(_overlaps(rect, t) for t in taken):
            return rect
    y = on_screen[0] if on_screen else max(min(above, height - h), 0)
    return (x0, y, x0 + w, y + h)


def _label_layout(out, frame: FrameResult, order: Sequence[int], scale: float) -> dict:
    """index -> (text, label rect); nearer people choose their spot first."""
    font, fs, thick = FONT, FONT_SCALE * scale, _thickness(scale)
    taken: List[Rect] = []
    layout = {}
    for i in reversed(order):  # `order` is far to near
        human = frame.humans[i]
        text = label_text(human, i)
        (tw, th), base = cv2.getTextSize(text, font, fs, thick)
        box = _point(human.box[:2]) + _point(human.box[2:])
        rect = place_label(box, (tw + 4, th + base + 2), out.shape[:2], taken)
        taken.append(rect)
        layout[i] = (text, rect)
    return layout


def _draw_box(out, human: Human, color, scale: float) -> None:
    x0, y0, x1, y1 = (_point(human.box[:2]) + _point(human.box[2:]))
    cv2.rectangle(out, (x0, y0), (x1, y1), color, _thickness(scale))


def _draw_label(out, label, color, scale: float) -> None:
    text, (x0, y0, x1, y1) = label
    font, fs, thick = FONT, FONT_SCALE * scale, _thickness(scale)
    _, base = cv2.getTextSize(text, font, fs, thick)
    cv2.rectangle(out, (x0, y0), (x1, y1), color, -1)
    cv2.putText(out, text, (x0 + 2, y1 - base), font, fs, (0, 0, 0), thick, cv2.LINE_AA)


# ------------------------------------------------------------------------------ entry
def draw_overlay(
    image_rgb: np.ndarray,
    frame: FrameResult,
    faces: Optional[np.ndarray],
    edges: Sequence[Tuple[int, int]] = (),
    alpha: float = 0.5,
) -> np.ndarray:
    """New HxWx3 uint8 image: meshes (blended with `alpha`), skeletons joined by
    `edges` (joint index pairs), boxes and labels of `frame` drawn over `image_rgb`.

    Humans without vertices (or `faces=None`) get only skeleton, box and label.
    Skeletons and boxes go far to near; labels come last, placed near to far, each
    where it covers no label placed before it (place_label).
    """
    out = check_rgb8(image_rgb, "overlay image").copy()
    if tuple(frame.image_size[:2]) != out.shape[:2]:
        raise InputError(
            f"overlay image: received {out.shape[1]}x{out.shape[0]} (WxH) but the results are for "
            f"{frame.image_size[1]}x{frame.image_size[0]}; expected the image the detector saw"
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    draw_meshes(out, frame, faces, alpha)
    scale = max(1.0, min(out.shape[:2]) / 720.0)
    order: List[int] = sorted(range(len(frame.humans)), key=lambda i: -float(frame.humans[i].depth))
    for i in order:
        human = frame.humans[i]
        _draw_skeleton(out, human, edges, color_for(human.track_id, i), scale)
        _draw_box(out, human, color_for(human.track_id, i), scale)
    for i, label in reversed(_label_layout(out, frame, order, scale).items()):  # after every box; nearest last
        _draw_label(out, label, color_for(frame.humans[i].track_id, i), scale)
    return out
