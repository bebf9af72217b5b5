"""Procedural backgrounds in torch: a textured floor seen in perspective, a sky
gradient or a textured wall, haze with distance, and soft blob shadows.

Every pixel's ray is intersected with the floor plane (and the optional wall), so the
background has exact depth too. Textures are functions of floor/wall coordinates in
meters (checkers, tiles, planks, bricks, stripes, tileable noise); their contrast
fades where a pixel covers more than a pattern period, which keeps the horizon from
aliasing into moire.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import torch

from mhr2_ros.training.synthetic.camera import Camera

FLOOR_KINDS = ("checker", "tiles", "noise", "planks")
WALL_KINDS = ("bricks", "stripes", "noise", "plain")
TEXTURE_SIZE = 256  # texels per side of the tileable noise textures
NOISE_SCALES = ((2.0, 0.15), (6.0, 0.35), (20.0, 0.5))  # (Gaussian sigma in texels, weight) of the noise's octaves
TABLE_SIZE = 64  # per-tile brightness table, indexed by tile coordinates modulo its size


@dataclass(frozen=True)
class BackgroundConfig:
    """How backgrounds vary."""

    wall_probability: float = 0.4  # a wall closes the view beyond everyone (indoor look); else sky
    floor_weights: Tuple[float, ...] = (0.2, 0.3, 0.3, 0.2)  # FLOOR_KINDS order
    wall_weights: Tuple[float, ...] = (0.3, 0.25, 0.3, 0.15)  # WALL_KINDS order
    haze_m: Tuple[float, float] = (25.0, 150.0)  # distance where the floor is half faded into the horizon
    shadow_strength: Tuple[float, float] = (0.25, 0.6)  # darkening under people's feet


@dataclass
class BackgroundSpec:
    """One sampled background (colours are linear RGB in [0, 1])."""

    sky: np.ndarray  # (2, 3) horizon and zenith colours
    floor_kind: str
    floor: np.ndarray  # (3, 3) two pattern colours and the grout / seam colour
    floor_scale: float  # pattern period on the floor, meters
    floor_yaw: float  # rotation of the floor pattern, radians
    wall_kind: Optional[str]  # None: sky
    wall: np.ndarray  # (3, 3) two pattern colours and the mortar colour
    wall_scale: float  # pattern period on the wall, meters
    wall_distance: float  # meters from the camera along the level forward axis
    haze_m: float
    shadow: float  # darkening at the centre of a blob shadow
    noise: np.ndarray  # (2, T, T) float32 tileable noise in [0, 1]
    table: np.ndarray  # (TABLE_SIZE, TABLE_SIZE) float32 brightness factors around 1


def srgb_to_linear(c):
    return c**2.2


@functools.lru_cache(maxsize=4)
def _noise_filter(size: int) -> np.ndarray:
    """(size, size // 2 + 1) the octaves' Gaussian low-passes summed, on rfft2's half spectrum:
    filtering is linear, so one product and one inverse FFT give the weighted sum of the octaves."""
    r2 = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.rfftfreq(size)[None, :] ** 2
    return sum(weight * np.exp(-2 * (math.pi * sigma) ** 2 * r2) for sigma, weight in NOISE_SCALES)


def _tileable_noise(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size) smooth periodic noise in [0, 1]: white noise low-passed by FFT at
    several scales (periodic, so it tiles without seams). Real-input FFTs with one summed
    filter: 4x faster than a complex FFT per octave, the same float32 texels."""
    white = rng.standard_normal((size, size))
    out = np.fft.irfft2(np.fft.rfft2(white) * _noise_filter(size), s=(size, size))
    out = (out - out.min()) / max(out.max() - out.min(), 1e-9)
    return out.astype(np.float32)


def _colour(rng: np.random.Generator, lo: float, hi: float, sat: float) -> np.ndarray:
    base = rng.uniform(lo, hi)
    tint = rng.uniform(-sat, sat, size=3)
    return srgb_to_linear(np.clip(base + tint, 0.0, 1.0))


def _pick(rng: np.random.Generator, names: Tuple[str, ...], weights) -> str:
    w = np.asarray(weights, dtype=np.float64)
    return names[int(rng.choice(len(names), p=w / w.sum()))]


def sample_background(rng: np.random.Generator, cfg: BackgroundConfig, far_m: float) -> BackgroundSpec:
    """Draw a background; a wall stands beyond `far_m` (the farthest place anyone goes)."""
    horizon = _colour(rng, 0.55, 0.95, 0.1)
    blue = np.array([0.35, 0.55, 0.9]) * rng.uniform(0.6, 1.1) + rng.uniform(-0.1, 0.1, 3)
    zenith = srgb_to_linear(np.clip(blue, 0, 1))
    floor = np.stack([_colour(rng, 0.15, 0.8, 0.15), _colour(rng, 0.15, 0.8, 0.15), _colour(rng, 0.05, 0.5, 0.05)])
    wall = np.stack([_colour(rng, 0.2, 0.9, 0.15), _colour(rng, 0.2, 0.9, 0.15), _colour(rng, 0.3, 0.8, 0.05)])
    wall_kind = _pick(rng, WALL_KINDS, cfg.wall_weights) if rng.uniform() < cfg.wall_probability else None
    return BackgroundSpec(
        sky=np.stack([horizon, zenith]), floor_kind=_pick(rng, FLOOR_KINDS, cfg.floor_weights), floor=floor,
        floor_scale=float(rng.uniform(0.3, 1.5)), floor_yaw=float(rng.uniform(0, math.pi)),
        wall_kind=wall_kind, wall=wall, wall_scale=float(rng.uniform(0.2, 1.0)),
        wall_distance=float(far_m + rng.uniform(1.0, 8.0)), haze_m=float(rng.uniform(*cfg.haze_m)),
        shadow=float(rng.uniform(*cfg.shadow_strength)),
        noise=np.stack([_tileable_noise(rng, TEXTURE_SIZE) for _ in range(2)]),
        table=rng.uniform(0.82, 1.18, (TABLE_SIZE, TABLE_SIZE)).astype(np.float32),
    )  # fmt: skip


def _sample_wrap(tex: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of a periodic (T, T) texture at texel coordinates (a, b)."""
    size = tex.shape[0]
    a0, b0 = torch.floor(a), torch.floor(b)
    fa, fb = a - a0, b - b0
    i0, j0 = a0.long() % size, b0.long() % size
    i1, j1 = (i0 + 1) % size, (j0 + 1) % size
    top = tex[i0, j0] * (1 - fb) + tex[i0, j1] * fb
    bottom = tex[i1, j0] * (1 - fb) + tex[i1, j1] * fb
    return top * (1 - fa) + bottom * fa


def _table(spec_table: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    return spec_table[i.long() % TABLE_SIZE, j.long() % TABLE_SIZE]


def _lines(frac: torch.Tensor, width: float, pixel: torch.Tensor) -> torch.Tensor:
    """Coverage of grid lines (the first `width` of each unit period) at pattern phase
    `frac`, for pixels `pixel` periods wide: sharp when pixels are finer than the line,
    tending to the line's mean coverage `width` when they are coarser (no moire)."""
    blend = (pixel / width - 0.5).clamp(0.0, 1.0)
    return (frac < width).float() * (1.0 - blend) + width * blend


def floor_colour(spec: BackgroundSpec, tex: dict, X: torch.Tensor, Z: torch.Tensor, footprint: torch.Tensor):
    """(N, 3) linear colours of floor points (X, Z) in meters; footprint: (N,) meters per pixel."""
    c, s = math.cos(spec.floor_yaw), math.sin(spec.floor_yaw)
    x, z = (c * X - s * Z) / spec.floor_scale, (s * X + c * Z) / spec.floor_scale
    fade = (1.0 - footprint / spec.floor_scale).clamp(0.0, 1.0)  # pattern contrast
    col0, col1, grout = tex["floor"][0], tex["floor"][1], tex["floor"][2]
    grain = _sample_wrap(tex["noise"][0], x * 24.0, z * 24.0)[:, None]
    if spec.floor_kind == "checker":
        mix = ((torch.floor(x) + torch.floor(z)) % 2)[:, None]
        out = col0 + (col1 - col0) * (0.5 + (mix - 0.5) * fade[:, None])
    elif spec.floor_kind == "tiles":
        out = col0 * (1 + (_table(tex["table"], torch.floor(x), torch.floor(z)) - 1) * fade)[:, None]
        px = footprint / spec.floor_scale  # pixel size in pattern periods
        edge = torch.maximum(_lines(x - torch.floor(x), 0.04, px), _lines(z - torch.floor(z), 0.04, px))
        out = out + (grout - out) * edge[:, None]
    elif spec.floor_kind == "planks":
        plank = torch.floor(x * 4.0)
        shade = _table(tex["table"], plank, torch.floor(z * 0.5 + plank * 0.37))
        wood = 0.85 + 0.3 * _sample_wrap(tex["noise"][1], x * 40, z * 4)  # grain along the planks
        out = col0 * ((1 + (shade - 1) * fade) * wood)[:, None]
        out = out + (grout - out) * _lines(x * 4.0 - plank, 0.05, 4.0 * footprint / spec.floor_scale)[:, None]
    else:  # noise: grass, asphalt, sand, carpet
        n = 0.6 * _sample_wrap(tex["noise"][0], x * 40.0, z * 40.0)
        n = n + 0.4 * _sample_wrap(tex["noise"][1], x * 160, z * 160)
        out = col0 + (col1 - col0) * (0.5 + (n[:, None] - 0.5) * (0.3 + 0.7 * fade[:, None]))
    return out * (0.9 + 0.2 * grain * fade[:, None])


def wall_colour(spec: BackgroundSpec, tex: dict, X: torch.Tensor, Y: torch.Tensor, footprint: torch.Tensor):
    """(N, 3) linear colours of wall points: X across, Y above the floor, meters."""
    x, y = X / spec.wall_scale, Y / spec.wall_scale
    px = footprint / spec.wall_scale  # pixel size in pattern periods
    fade = (1.0 - 3.0 * px).clamp(0.0, 1.0)  # bricks are a third of a period high
    col0, col1, mortar = tex["wall"][0], tex["wall"][1], tex["wall"][2]
    if spec.wall_kind == "bricks":
        row = torch.floor(y * 3.0)
        xs = x + 0.5 * (row % 2)
        out = col0 * (1 + (_table(tex["table"], torch.floor(xs), row) - 1) * fade)[:, None]
        edge = torch.maximum(_lines(xs - torch.floor(xs), 0.05, px), _lines(y * 3.0 - row, 0.12, 3.0 * px))
        out = out + (mortar - out) * edge[:, None]
    elif spec.wall_kind == "stripes":
        mix = (torch.floor(x * 2.0) % 2)[:, None]
        out = col0 + (col1 - col0) * (0.5 + (mix - 0.5) * fade[:, None])
    elif spec.wall_kind == "noise":
        n = _sample_wrap(tex["noise"][1], x * 30.0, y * 30.0)[:, None]
        out = col0 + (col1 - col0) * n
    else:
        out = col0 * (0.9 + 0.1 * (Y / 5.0).clamp(0, 1))[:, None]
    return out


def textures_on(spec: BackgroundSpec, device) -> dict:
    """The spec's arrays as tensors on `device`."""
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32), device=device)  # noqa: E731
    return {"floor": as_t(spec.floor), "wall": as_t(spec.wall), "sky": as_t(spec.sky),
            "noise": as_t(spec.noise), "table": as_t(spec.table)}  # fmt: skip


def pixel_rays(cam: Camera, device) -> torch.Tensor:
    """(H*W, 3) rays K^-1 (u, v, 1) through the pixel centres, camera frame (z = 1)."""
    v, u = torch.meshgrid(torch.arange(cam.height, device=device, dtype=torch.float32),
                          torch.arange(cam.width, device=device, dtype=torch.float32), indexing="ij")  # fmt: skip
    K = cam.K
    x = (u - float(K[0, 2])) / float(K[0, 0])
    y = (v - float(K[1, 2])) / float(K[1, 1])
    return torch.stack([x, y, torch.ones_like(x)], -1).reshape(-1, 3)


def _blob_shadows(X: torch.Tensor, Z: torch.Tensor, ground: np.ndarray, radius: np.ndarray, strength: float):
    """(N,) darkening factors of floor points under people (soft discs at their feet)."""
    factor = torch.ones_like(X)
    for (gx, gz), r in zip(np.asarray(ground).reshape(-1, 2), np.asarray(radius).reshape(-1)):
        d2 = (X - float(gx)) ** 2 + (Z - float(gz)) ** 2
        factor = factor * (1.0 - strength * torch.exp(-d2 / float(r) ** 2))
    return factor


@dataclass
class BackgroundLayers:
    """The background of a fixed camera, computed once and shaded per frame (only the
    blob shadows move). Flat pixel indices are row-major; colours linear RGB."""

    colour: torch.Tensor  # (H*W, 3) colours without shadows
    depth: torch.Tensor  # (H*W,) camera z, meters; 0 for the sky
    floor_pix: torch.Tensor  # (M,) indices of the floor pixels
    floor_xz: torch.Tensor  # (M, 2) level-frame floor coordinates of those pixels, meters
    floor_albedo: torch.Tensor  # (M, 3) floor colours before haze
    floor_haze: torch.Tensor  # (M, 1) haze weights in [0, 1]
    horizon: torch.Tensor  # (3,) haze colour
    shadow: float  # darkening at the centre of a blob shadow


def background_layers(spec: BackgroundSpec, cam: Camera, device) -> BackgroundLayers:
    """Ray-cast the floor, the wall and the sky for every pixel of `cam`."""
    tex = textures_on(spec, device)
    rays = pixel_rays(cam, device)  # (N, 3), z = 1: the ray parameter t is the camera depth
    lev = rays @ torch.as_tensor(cam.R, dtype=torch.float32, device=device)  # level-frame directions
    inf = torch.full_like(rays[:, 0], float("inf"))
    t_floor = torch.where(lev[:, 1] > 1e-6, cam.height_m / lev[:, 1].clamp(min=1e-6), inf)
    t_wall = inf
    if spec.wall_kind is not None:
        t_wall = torch.where(lev[:, 2] > 1e-6, spec.wall_distance / lev[:, 2].clamp(min=1e-6), inf)
    floor = torch.isfinite(t_floor) & (t_floor <= t_wall)
    wall = torch.isfinite(t_wall) & ~floor
    elevation = (-lev[:, 1] / lev.norm(dim=1)).clamp(0.0, 1.0)[:, None]
    horizon, zenith = tex["sky"][0], tex["sky"][1]
    colour = horizon + (zenith - horizon) * elevation**0.6
    f = float(cam.focal)
    haze = lambda t: (1.0 - torch.exp(-t * math.log(2.0) / spec.haze_m))[:, None]  # noqa: E731
    pix = torch.nonzero(floor)[:, 0]
    tf, df = t_floor[pix], lev[pix]
    xz = torch.stack([tf * df[:, 0], tf * df[:, 2]], 1)
    albedo = floor_colour(spec, tex, xz[:, 0], xz[:, 1], tf / (f * df[:, 1].abs().clamp(min=1e-6)))
    colour[pix] = albedo + (horizon - albedo) * haze(tf)
    if bool(wall.any()):
        tw, dw = t_wall[wall], lev[wall]
        col = wall_colour(spec, tex, tw * dw[:, 0], cam.height_m - tw * dw[:, 1],
                          tw / (f * dw[:, 2].abs().clamp(min=1e-6)))  # fmt: skip
        colour[wall] = col + (horizon - col) * haze(tw)
    depth = torch.where(floor, t_floor, torch.where(wall, t_wall, torch.zeros_like(t_floor)))
    return BackgroundLayers(colour, depth, pix, xz, albedo, haze(tf), horizon, spec.shadow)


def shaded_background(layers: BackgroundLayers, ground: np.ndarray, radius: np.ndarray) -> torch.Tensor:
    """(H*W, 3) background colours with blob shadows under people at `ground` (P, 2)
    level-frame floor points with radii `radius` (P,), meters. A new tensor."""
    colour = layers.colour.clone()
    if len(radius) and len(layers.floor_pix):
        shade = _blob_shadows(layers.floor_xz[:, 0], layers.floor_xz[:, 1], ground, radius, layers.shadow)
        albedo = layers.floor_albedo * shade[:, None]
        colour[layers.floor_pix] = albedo + (layers.horizon - albedo) * layers.floor_haze
    return colour
