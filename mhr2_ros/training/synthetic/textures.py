"""Per-person appearance: skin, hair, clothes and shoes coloured by body region.

Regions come from two sources on the Anny mesh: Anny's own body-part segmentation
(anny/data/segmentation: a texture image whose colours label head, hands, feet,
eyes, mouth; read through each face's UV centre, as Anny does) and, for the clothes,
the bone that skins each vertex most, plus the rest-pose height for the waistline
and the hairline. Colours are per vertex, interpolated across faces by the renderer.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np
import torch
import yaml

REGIONS = ("skin", "hair", "shirt", "sleeve", "forearm", "trousers", "shin", "shoes", "eyes", "mouth")
R = {name: i for i, name in enumerate(REGIONS)}

# Skin tones from very light to very dark (sRGB, 0-1).
SKIN_TONES = np.array([
    [0.98, 0.87, 0.78], [0.94, 0.78, 0.66], [0.87, 0.69, 0.55], [0.78, 0.58, 0.44],
    [0.66, 0.47, 0.33], [0.53, 0.36, 0.25], [0.40, 0.27, 0.19], [0.29, 0.20, 0.15],
])  # fmt: skip
HAIR_COLOURS = np.array([
    [0.06, 0.05, 0.05], [0.20, 0.13, 0.08], [0.38, 0.25, 0.14], [0.70, 0.56, 0.35],
    [0.55, 0.25, 0.12], [0.60, 0.60, 0.60], [0.88, 0.88, 0.86],
])  # fmt: skip
GREY_HAIR = (5, 6)  # rows of HAIR_COLOURS that elders mostly get


@dataclass(frozen=True)
class AppearanceConfig:
    """How clothes vary between people."""

    short_sleeves: float = 0.35  # probability that the forearms are bare
    sleeveless: float = 0.08  # probability that the upper arms are bare too
    shorts: float = 0.25  # probability that the shins are bare
    dress: float = 0.12  # probability that the shirt colour continues over the hips and thighs
    pattern: float = 0.4  # probability that the shirt has stripes or checks
    bald: float = 0.08  # probability of no hair colour (skin on the scalp)
    colour_noise: float = 0.04  # per-vertex brightness noise (fraction) on clothes


@dataclass
class BodyRegions:
    """Per-vertex region labels and rest-pose coordinates of the mean body."""

    labels: np.ndarray  # (V,) int, index into REGIONS
    rest: np.ndarray  # (V, 3) rest-pose vertices of the mean body, Anny axes, meters


def _segmentation_labels(anny_model) -> Dict[str, np.ndarray]:
    """Anny's body-part name -> (F,) bool face mask, from its segmentation texture."""
    import anny

    folder = Path(anny.__file__).parent / "data" / "segmentation"
    image = cv2.imread(str(folder / "body_parts_segmentation.png"), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"Anny segmentation image missing under {folder}")
    image = image[..., ::-1]  # BGR -> RGB, the YAML's order
    colours = yaml.safe_load((folder / "body_parts_segmentation.yaml").read_text())["colors"]
    uv = anny_model.texture_coordinates[anny_model.face_texture_coordinate_indices].mean(1).cpu().double().numpy()
    h, w = image.shape[:2]
    u = np.clip(np.round(uv[:, 0] * w).astype(np.int64), 0, w - 1)
    v = np.clip(np.round((1.0 - uv[:, 1]) * h).astype(np.int64), 0, h - 1)
    face_colours = image[v, u]
    return {name: np.all(face_colours == np.asarray(c), axis=-1) for name, c in colours.items()}


def _bone_region(name: str) -> str:
    """Clothing region of the vertices a bone skins most."""
    if name.startswith(("upperleg", "pelvis", "root")):
        return "trousers"
    if name.startswith("lowerleg"):
        return "shin"
    if name.startswith(("foot", "toe")):
        return "shoes"
    if name.startswith("upperarm"):
        return "sleeve"
    if name.startswith("lowerarm"):
        return "forearm"
    if name.startswith(("wrist", "finger", "metacarpal")):
        return "skin"
    if name.startswith(("spine", "breast", "clavicle", "shoulder")):
        return "shirt"
    return "skin"  # neck, head and face bones


def build_regions(body, rest_vertices: np.ndarray, rest_heads: Dict[str, np.ndarray]) -> BodyRegions:
    """Label every vertex. `rest_vertices` (V, 3) and `rest_heads` (bone -> (3,)) are the
    mean body at rest in Anny axes (pelvis at the origin)."""
    anny_model = body.anny
    faces = body.faces.cpu().numpy()
    dominant = anny_model.vertex_bone_indices.gather(
        1, anny_model.vertex_bone_weights.argmax(1, keepdim=True)
    )[:, 0].cpu().numpy()  # (V,) bone index with the largest skinning weight
    names = body.bone_names
    labels = np.array([R[_bone_region(names[i])] for i in dominant], dtype=np.int64)
    z = rest_vertices[:, 2]
    torso = np.isin(labels, (R["shirt"], R["trousers"]))
    waist = 0.5 * (rest_heads["spine04"][2] + rest_heads["spine03"][2])
    labels[torso & (z < waist)] = R["trousers"]
    labels[torso & (z >= waist)] = R["shirt"]
    seg = _segmentation_labels(anny_model)
    for part, region in (("head", "skin"), ("hand.L", "skin"), ("hand.R", "skin"), ("foot.L", "shoes"),
                         ("foot.R", "shoes"), ("mouth_cavity", "mouth"), ("tongue", "mouth"),
                         ("eye_front.L", "eyes"), ("eye_front.R", "eyes"), ("eye_back.L", "eyes"),
                         ("eye_back.R", "eyes"), ("eye_cavity.L", "mouth"), ("eye_cavity.R", "mouth")):  # fmt: skip
        if part in seg:
            labels[np.unique(faces[seg[part]])] = R[region]
    # Hair: scalp above the eyes and behind the face.
    eye = 0.5 * (rest_heads["eye.L"] + rest_heads["eye.R"])
    head = labels == R["skin"]
    scalp = head & ((z > eye[2] + 0.035) | ((z > eye[2] - 0.06) & (rest_vertices[:, 1] > eye[1] + 0.09)))
    labels[scalp & (z > rest_heads["neck03"][2])] = R["hair"]
    return BodyRegions(labels=labels, rest=rest_vertices)


@dataclass(frozen=True)
class Appearance:
    """One person's colours (sRGB in [0, 1]) and clothing choices."""

    colours: np.ndarray  # (len(REGIONS), 3) base colour per region
    pattern: str  # "plain", "stripes", "checks"
    pattern_scale: float  # meters per stripe period
    pattern_colour: np.ndarray  # (3,) second colour of the pattern
    seed: int  # per-vertex noise seed


def _random_colour(rng: np.random.Generator, sat: Tuple[float, float], val: Tuple[float, float]) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(*sat), rng.uniform(*val)))


def _trousers_colour(rng: np.random.Generator) -> np.ndarray:
    kind = rng.choice(4)
    if kind == 0:  # denim
        return np.array(colorsys.hsv_to_rgb(rng.uniform(0.58, 0.62), rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.6)))
    if kind == 1:  # black / grey
        return np.full(3, rng.uniform(0.05, 0.5))
    if kind == 2:  # khaki / brown
        return np.array(colorsys.hsv_to_rgb(rng.uniform(0.08, 0.13), rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.75)))
    return _random_colour(rng, (0.2, 0.8), (0.2, 0.8))


def sample_appearance(rng: np.random.Generator, cfg: AppearanceConfig, age_years: float) -> Appearance:
    """Draw a person's colours; infants wear one-piece clothes, elders grey hair."""
    colours = np.zeros((len(REGIONS), 3))
    skin = SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.92, 1.05)
    shirt = _random_colour(rng, (0.0, 0.85), (0.15, 0.95))
    trousers = shirt if age_years < 2.0 else _trousers_colour(rng)
    if age_years > 60 and rng.uniform() < 0.7:
        hair = HAIR_COLOURS[rng.choice(GREY_HAIR)]
    else:
        hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS) - 2)]
    shoes = np.full(3, rng.uniform(0.05, 0.3)) if rng.uniform() < 0.6 else _random_colour(rng, (0, 0.6), (0.3, 0.95))
    colours[R["skin"]] = skin
    colours[R["hair"]] = skin if rng.uniform() < cfg.bald else hair
    colours[R["shirt"]] = colours[R["sleeve"]] = colours[R["forearm"]] = shirt
    colours[R["trousers"]] = colours[R["shin"]] = trousers
    if rng.uniform() < cfg.short_sleeves:
        colours[R["forearm"]] = skin
        if rng.uniform() < cfg.sleeveless / max(cfg.short_sleeves, 1e-9):
            colours[R["sleeve"]] = skin
    if rng.uniform() < cfg.dress:
        colours[R["trousers"]] = shirt
        colours[R["shin"]] = skin
    elif rng.uniform() < cfg.shorts:
        colours[R["shin"]] = skin
    colours[R["shoes"]] = shoes
    colours[R["eyes"]] = (0.12, 0.1, 0.09)
    colours[R["mouth"]] = (0.35, 0.12, 0.12)
    pattern = str(rng.choice(["stripes", "checks"])) if rng.uniform() < cfg.pattern else "plain"
    return Appearance(
        colours=np.clip(colours, 0.0, 1.0), pattern=pattern, pattern_scale=float(rng.uniform(0.03, 0.12)),
        pattern_colour=_random_colour(rng, (0.0, 0.8), (0.1, 1.0)), seed=int(rng.integers(2**31)),
    )  # fmt: skip


ATTRIBUTES = 9  # per-vertex shading attributes: base sRGB (3), pattern sRGB (3), pattern (u, v), pattern mask


def vertex_attributes(regions: BodyRegions, look: Appearance, cfg: AppearanceConfig) -> torch.Tensor:
    """(V, ATTRIBUTES) float32 per-vertex attributes of one person.

    The shirt pattern is evaluated per pixel by the renderer from the interpolated
    pattern coordinates (rest-pose height and width divided by the period), so stripes
    and checks stay crisp and follow the body as it moves."""
    colours = look.colours[regions.labels].copy()
    shirt = np.isin(regions.labels, (R["shirt"], R["sleeve"], R["forearm"], R["trousers"])) & np.all(
        colours == look.colours[R["shirt"]], axis=1
    )  # shirt-coloured parts only (not bare arms)
    noise = np.random.default_rng(look.seed).normal(0.0, cfg.colour_noise, size=(len(colours), 1))
    clothes = ~np.isin(regions.labels, (R["skin"], R["eyes"], R["mouth"]))
    colours[clothes] *= 1.0 + noise[clothes]
    uv = np.zeros((len(colours), 2))
    mask = np.zeros((len(colours), 1))
    if look.pattern != "plain":
        uv[:, 0] = regions.rest[:, 2] / look.pattern_scale  # stripes across the body
        if look.pattern == "checks":
            uv[:, 1] = regions.rest[:, 0] / look.pattern_scale
        mask[shirt] = 1.0
    second = np.broadcast_to(look.pattern_colour, colours.shape)
    attrs = np.concatenate([np.clip(colours, 0.0, 1.0), second, uv, mask], axis=1)
    return torch.as_tensor(attrs, dtype=torch.float32)


def pattern_albedo(attrs: torch.Tensor) -> torch.Tensor:
    """(N, 3) sRGB colours from (N, ATTRIBUTES) interpolated attributes."""
    u, v, mask = attrs[:, 6], attrs[:, 7], attrs[:, 8]
    stripe = ((torch.floor(u) + torch.floor(v)) % 2 == 1) & (mask > 0.5)
    return torch.where(stripe[:, None], attrs[:, 3:6], attrs[:, 0:3])
