"""Frame renderer: shaded people and boxes over the procedural background, with
depth and per-person visible instance masks, on any torch device.

Shading is Lambert in linear RGB with a sun (direction drawn per clip), a fill light
at the camera and ambient light, on vertex normals interpolated per pixel; normals
are turned toward the camera so the mesh's winding does not matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch

from mhr2_ros.training.synthetic.background import BackgroundLayers, shaded_background
from mhr2_ros.training.synthetic.camera import Camera
from mhr2_ros.training.synthetic.meshes import SceneMeshes, assemble, corner_normals
from mhr2_ros.training.synthetic.raster import barycentrics, rasterize
from mhr2_ros.training.synthetic.textures import pattern_albedo

GAMMA = 2.2  # sRGB <-> linear approximation
FILL = 0.2  # strength of the light at the camera


@dataclass(frozen=True)
class RenderConfig:
    """Lighting and image degradations, drawn once per clip (per frame for independent scenes)."""

    device: str = "cpu"  # torch device that renders: "cpu", "cuda", "cuda:1"
    ambient: Tuple[float, float] = (0.2, 0.45)  # ambient light (linear units, 1 = full albedo)
    sun: Tuple[float, float] = (0.5, 1.0)  # sun strength on a surface facing it
    sun_elevation_deg: Tuple[float, float] = (25.0, 80.0)  # sun height above the horizon, degrees
    exposure: Tuple[float, float] = (0.85, 1.2)  # overall brightness gain
    noise_std: Tuple[float, float] = (0.5, 3.0)  # sensor noise std, 8-bit levels
    blur_sigma: Tuple[float, float] = (0.0, 0.7)  # blur of the image, std in pixels (softens jagged edges)
    budget: int = 1 << 21  # rasteriser candidate pixels per pass (~60 bytes each)


@dataclass(frozen=True)
class Lighting:
    """Lighting and degradations drawn from a RenderConfig."""

    sun_dir: np.ndarray  # (3,) unit vector toward the sun, level frame
    ambient: float  # ambient light
    sun: float  # sun strength
    exposure: float  # brightness gain
    noise_std: float  # sensor noise std, 8-bit levels
    blur_sigma: float  # Gaussian blur, pixels


@dataclass
class Rendered:
    """One rendered frame, numpy on the CPU."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 camera z in meters, 0 where nothing (sky)
    owner: np.ndarray  # (H, W) int32 index of the visible person (slot), -1 elsewhere
    visible: np.ndarray  # (P,) int64 visible pixels per person
    unoccluded: np.ndarray  # (P,) int64 pixels each person covers rendered alone


def sample_lighting(rng: np.random.Generator, cfg: RenderConfig) -> Lighting:
    el, az = math.radians(rng.uniform(*cfg.sun_elevation_deg)), rng.uniform(0, 2 * math.pi)
    sun_dir = np.array([math.cos(el) * math.sin(az), -math.sin(el), math.cos(el) * math.cos(az)])
    return Lighting(sun_dir, float(rng.uniform(*cfg.ambient)), float(rng.uniform(*cfg.sun)),
                    float(rng.uniform(*cfg.exposure)), float(rng.uniform(*cfg.noise_std)),
                    float(rng.uniform(*cfg.blur_sigma)))  # fmt: skip


def _shade(points, normals, albedo, light: Lighting, sun_cam: torch.Tensor) -> torch.Tensor:
    """(N, 3) linear colours of surface points (N, 3) with normals (N, 3) and albedo (N, 3)."""
    view = torch.nn.functional.normalize(points, dim=1)  # camera -> point
    n = torch.nn.functional.normalize(normals, dim=1)
    n = torch.where(((n * view).sum(1, keepdim=True) > 0), -n, n)  # face the camera
    sun = (n * sun_cam).sum(1).clamp(min=0.0)
    fill = (-(n * view).sum(1)).clamp(min=0.0)
    return albedo * (light.ambient + light.sun * sun + FILL * fill)[:, None]


BINOMIAL_SIGMA = math.sqrt(0.5)  # std of the [1, 2, 1] / 4 kernel, pixels


def _blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Slight blur of an (H, W, 3) image: the binomial [1, 2, 1] / 4 kernel along rows
    and columns (edge pixels replicated), blended with the image to reach a std of
    about `sigma` pixels (at most BINOMIAL_SIGMA). Plain slicing: fast on every device."""
    if sigma < 0.1:
        return img
    p = torch.cat([img[:1], img, img[-1:]], 0)
    rows = p[:-2] + 2.0 * p[1:-1] + p[2:]
    q = torch.cat([rows[:, :1], rows, rows[:, -1:]], 1)
    blurred = (q[:, :-2] + 2.0 * q[:, 1:-1] + q[:, 2:]) * 0.0625
    return img + (blurred - img) * min(sigma / BINOMIAL_SIGMA, 1.0)


def render_frame(scene: SceneMeshes, cam: Camera, background: BackgroundLayers, light: Lighting,
                 noise_rng: np.random.Generator, device="cpu", budget: int = 1 << 21) -> Rendered:  # fmt: skip
    """Render one frame; `noise_rng` draws the sensor noise (numpy: same on every device)."""
    P = scene.people.shape[0]
    H, W = cam.height, cam.width
    soup = assemble(scene, cam, device)
    K = torch.as_tensor(cam.K, dtype=torch.float32, device=device)
    raster = rasterize(soup.verts, soup.faces, K, H, W, soup.owner, P, budget=budget)
    colour, depth = shaded_background(background, scene.ground, scene.radius), background.depth
    hit = (raster.face >= 0) & ((depth == 0) | (raster.depth < depth))
    pix = torch.nonzero(hit)[:, 0]
    face = raster.face[pix]
    if len(pix):
        w = barycentrics(raster.uv, raster.inv_z, soup.faces, pix, face, W)[..., None]  # (N, 3, 1)
        corners = soup.faces[face]  # (N, 3) vertex indices
        used, where = torch.unique(corners, return_inverse=True)
        normals = corner_normals(soup, used)[where]  # (N, 3, 3)
        a = pattern_albedo((soup.attrs[corners] * w).sum(1)) ** GAMMA
        sun = torch.as_tensor(cam.R @ light.sun_dir, dtype=torch.float32, device=device)
        colour[pix] = _shade((soup.verts[corners] * w).sum(1), (normals * w).sum(1), a, light, sun)
        depth = depth.clone()
        depth[pix] = raster.depth[pix]
    slot = torch.full((H * W,), -1, dtype=torch.int64, device=device)
    slot[pix] = soup.owner[face]
    srgb = (colour * light.exposure).clamp(0.0, 1.0) ** (1.0 / GAMMA) * 255.0
    srgb = _blur(srgb.reshape(H, W, 3), light.blur_sigma)
    noise = noise_rng.standard_normal((H, W, 3), dtype=np.float32) * np.float32(light.noise_std)
    image = (srgb + torch.as_tensor(noise, device=device)).round().clamp(0, 255).to(torch.uint8)
    people_slot = slot[slot >= 0]
    visible = torch.bincount(people_slot, minlength=P)[:P]
    unoccluded = raster.covered.sum(1) if raster.covered is not None else torch.zeros(P, dtype=torch.int64)
    return Rendered(
        image=image.cpu().numpy(), depth=depth.reshape(H, W).cpu().numpy().astype(np.float32),
        owner=slot.reshape(H, W).to(torch.int32).cpu().numpy(), visible=visible.cpu().numpy(),
        unoccluded=unoccluded.cpu().numpy(),
    )  # fmt: skip
