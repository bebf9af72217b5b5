"""Metric depth from a depth camera: each person's scale along the camera rays (not in the paper).

A monocular network places people well in the image and poorly in depth (the shipped model's
MRPE is mostly depth; weights/README, "Where the MRPE comes from"). A robot with an RGB-D camera
measures that depth. For each person the vertices facing the camera (their normal points
towards it: the front of the body, not its back, which near people would otherwise show through
the pixels no front vertex lands in) are projected into the depth image; where such a vertex is
the nearest (a z-buffer), the measured depth over the mesh's depth is one estimate of the
factor by which the person is too near or too far; the densest of these ratios (the peak of
their density, `robust_scale`) is the person's `scale`, and the body is scaled by it about the
camera centre. That keeps every pixel (2D joints, box, overlay) where the network put it and
moves the person to the measured depth, with the size the image then implies (a too-far person
was also predicted too tall: their projection fitted the image).

Robust by construction: pixels of something in front of the person (an occluder, another
person) or behind (background between the legs), flying pixels at the silhouette and the
background a misregistered depth image puts under the person's edge give ratios spread away
from the person's own (which agree with each other) and miss the peak; ratios outside [1 / MAX_RATIO, MAX_RATIO] and pixels
without a measurement (0, NaN, beyond the sensor's range) are not counted; with fewer than
MIN_PIXELS counted pixels the person keeps the network's depth (scale 1, `measured` False).
A median served until sensor artefacts were simulated (evaluation/depth_sensor.py): flying
pixels make most of a distant person's pixels and pulled it far (README, Depth cameras).

The depth image is registered to the colour image (the usual "aligned depth" topic of RGB-D
drivers: same optical frame and field of view); its resolution may differ (pixels are mapped by
the ratio of the sizes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import project

MIN_PIXELS = 20  # counted depth pixels a person needs for a measured scale
MAX_RATIO = 2.0  # measured / predicted depths beyond this factor either way are not the person
# Width (std, in log ratio: 0.02 is 2%) of the kernel that finds the densest ratio: about the
# spread of one person's ratios (pose error, sensor noise); chosen on the tuning set (README)
MODE_BANDWIDTH = 0.02
BINS_PER_BANDWIDTH = 6  # histogram bins per bandwidth (the density's resolution: 0.33%)
KERNEL_BANDWIDTHS = 4  # the Gaussian kernel is cut this many bandwidths out


@dataclass
class DepthScales:
    scale: np.ndarray  # (M,) factor applied to each person's distance from the camera (1: unchanged)
    measured: np.ndarray  # (M,) bool: the scale comes from MIN_PIXELS or more depth pixels
    pixels: np.ndarray  # (M,) int: depth pixels counted for each person


def check_depth_image(depth: np.ndarray, image_hw) -> np.ndarray:
    """(H', W') float meters (0 / NaN: no measurement), or uint16 millimetres (ROS 16UC1, the
    on-disk format) -> float32 meters; the same aspect ratio as the colour image."""
    depth = np.asarray(depth)
    if depth.ndim != 2 or depth.size == 0:
        raise InputError(f"depth image must be a 2D (H, W) array, got shape {depth.shape}")
    if depth.dtype.kind == "u" and depth.dtype.itemsize == 2:  # uint16 of either byte order
        meters = depth.astype(np.float32) / 1000.0
    elif np.issubdtype(depth.dtype, np.floating):
        meters = depth.astype(np.float32, copy=False)  # checked twice on the ROS path: one copy at most
    else:
        raise InputError(f"depth image must be float meters or uint16 millimetres, got dtype {depth.dtype}")
    h, w = image_hw
    dh, dw = meters.shape
    if abs(dw / dh - w / h) > 0.01 * (w / h):
        raise InputError(f"depth image of {dw}x{dh} pixels is not registered to the {w}x{h} colour image "
                         "(another aspect ratio); pass the depth aligned to the colour camera")
    return meters


def depth_scales(vertices: np.ndarray, K: np.ndarray, depth: np.ndarray, image_hw,
                 faces: Optional[np.ndarray] = None) -> DepthScales:
    """vertices (M, V, 3) camera frame, meters; K (3, 3) of the colour image; depth (H', W')
    float32 meters registered to the (H, W) colour image; faces (F, 3) the mesh's triangles, for
    the vertices facing the camera (None: every vertex, for point sets) -> each person's DepthScales."""
    m = vertices.shape[0]
    scale, measured, counted = np.ones(m), np.zeros(m, dtype=bool), np.zeros(m, dtype=np.int64)
    h, w = image_hw
    sy, sx = depth.shape[0] / h, depth.shape[1] / w  # colour pixels -> depth pixels
    for i in range(m):
        points = vertices[i] if faces is None else vertices[i][facing_camera(vertices[i], faces)]
        ratios = _front_ratios(points, K, depth, sx, sy)
        counted[i] = ratios.size
        if ratios.size >= MIN_PIXELS:
            scale[i], measured[i] = robust_scale(ratios), True
    return DepthScales(scale, measured, counted)


def robust_scale(ratios: np.ndarray) -> float:
    """(N,) measured / mesh depth ratios of one person -> the person's scale: the densest ratio.

    The pixels on the person agree on one ratio, within the sensor's noise and the mesh's pose
    error; the others spread over a range: flying pixels at the silhouette (anywhere between
    the person and the background), a misregistered depth image's background or occluder
    pixels. A median is pulled towards them once they are many (a thin or distant person is
    mostly silhouette); the peak of the ratios' density is not. Density: a histogram of
    log ratios smoothed by a Gaussian of MODE_BANDWIDTH; scale: the median of the ratios within
    two bandwidths of its peak."""
    x = np.log(ratios.astype(np.float64))
    step = MODE_BANDWIDTH / BINS_PER_BANDWIDTH
    reach = np.log(MAX_RATIO) + KERNEL_BANDWIDTHS * MODE_BANDWIDTH  # ratios lie within 1/MAX_RATIO..MAX_RATIO
    edges = np.arange(-reach, reach + step, step)
    counts, _ = np.histogram(x, bins=edges)
    offsets = np.arange(-KERNEL_BANDWIDTHS * BINS_PER_BANDWIDTH, KERNEL_BANDWIDTHS * BINS_PER_BANDWIDTH + 1)
    density = np.convolve(counts, np.exp(-0.5 * (offsets / BINS_PER_BANDWIDTH) ** 2), mode="same")
    peak = edges[int(np.argmax(density))] + step / 2  # the centre of the densest bin
    return float(np.exp(np.median(x[np.abs(x - peak) < 2 * MODE_BANDWIDTH])))


def facing_camera(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,) bool: the vertices whose normal (area-weighted over their triangles, turned outwards)
    points towards the camera at the origin."""
    p = points.astype(np.float64)
    tri = p[faces]  # (F, 3, 3)
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # length = 2 x area
    corners, weights = faces.reshape(-1), np.repeat(face_normals, 3, axis=0)  # each face to its 3 vertices
    normals = np.stack([np.bincount(corners, weights[:, k], minlength=len(p)) for k in range(3)], axis=1)
    if np.sum(normals * (p - p.mean(axis=0))) < 0:  # the winding points inwards: turn the normals out
        normals = -normals
    return np.einsum("vi,vi->v", normals, p) < 0.0  # towards the camera: against the viewing ray


def _front_ratios(points: np.ndarray, K: np.ndarray, depth: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Measured / mesh depth at each depth pixel where this mesh is its own nearest surface."""
    z = points[:, 2].astype(np.float64)
    ahead = z > 1e-3
    z = z[ahead]
    u, v = project(points[ahead].astype(np.float64), K).T  # colour pixels
    col, row = np.floor(u * sx).astype(np.int64), np.floor(v * sy).astype(np.int64)
    inside = (col >= 0) & (col < depth.shape[1]) & (row >= 0) & (row < depth.shape[0])
    col, row, z = col[inside], row[inside], z[inside]
    if z.size == 0:
        return z
    pixel = row * depth.shape[1] + col
    order = np.lexsort((z, pixel))  # by pixel, nearest vertex first
    first = np.ones(order.size, dtype=bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    front = order[first]  # the nearest vertex of each pixel the mesh covers
    measured = depth.reshape(-1)[pixel[front]].astype(np.float64)
    ratios = measured / z[front]
    keep = np.isfinite(ratios) & (measured > 0) & (ratios >= 1.0 / MAX_RATIO) & (ratios <= MAX_RATIO)
    return ratios[keep]


__all__ = ["DepthScales", "depth_scales", "robust_scale", "facing_camera", "check_depth_image", "MIN_PIXELS",
           "MAX_RATIO", "MODE_BANDWIDTH"]
