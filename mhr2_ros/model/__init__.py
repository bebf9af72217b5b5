"""Network stage: ViT encoder, DETR decoder, camera and per-query heads.

`build_model(cfg)` makes a `MultiHMR2`; `load_dino_backbone(model.encoder, path)`
initialises its encoder from a local DINOv2 / DINOv3 file. Nothing is downloaded.
"""

from mhr2_ros.model.dino_weights import load_dino_backbone
from mhr2_ros.model.heads import OUTPUT_KEYS
from mhr2_ros.model.mhr2 import MultiHMR2, build_model
from mhr2_ros.model.vit import PIXEL_MEAN, PIXEL_STD, ViTEncoder

__all__ = [
    "build_model",
    "MultiHMR2",
    "ViTEncoder",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "OUTPUT_KEYS",
    "load_dino_backbone",
]
