"""The fixed synthetic benchmark of `mhr2 eval`: which frames it holds (evaluation.benchmark
runs it). Without torch or numpy: the `mhr2 eval` parser shows its sizes as defaults."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Tuple

TRAINING_SEED_MIN = 1000  # training data uses seeds >= 1000; the benchmark uses seeds < 1000
# The detection protocol (metrics.match_people): a prediction and a person pair up when the
# boxes around their 2D joints overlap at least MATCH_IOU (the paper's protocol: AGORA's
# evaluation, iou_thresh 0.1); BOX_IOU is the stricter box test (COCO's 0.5) reported beside it.
MATCH_IOU = 0.1
BOX_IOU = 0.5


@dataclass(frozen=True)
class SyntheticBenchmark:
    """The fixed synthetic benchmark: independent images for detection and mesh
    metrics, plus short clips for tracking. Seeds are below TRAINING_SEED_MIN."""

    images: int = 100  # independent frames (every frame a new scene)
    image_seed: int = 0  # seed of the image set
    clips: int = 3  # tracked clips (IDF1, MOTA, HOTA)
    clip_frames: int = 40  # frames per clip
    clip_seed: int = 1  # seed of the first clip; clip i uses clip_seed + i
    clip_people: int = 3  # people per clip
    people: Tuple[int, int] = (1, 6)  # people per image (uniform range)
    size: Tuple[int, int] = (384, 288)  # image width, height in pixels
    distance_m: Tuple[float, float] = (1.5, 12.0)  # people's distance from the camera
    fov_deg: Tuple[float, float] = (40.0, 90.0)  # vertical field of view range

    def __post_init__(self) -> None:
        last = max(self.image_seed, self.clip_seed + max(self.clips - 1, 0))
        if last >= TRAINING_SEED_MIN:
            raise ValueError(f"benchmark seeds must stay below {TRAINING_SEED_MIN} (training seeds), got {last}")

    def synth_config(self, independent: bool):
        """The SynthConfig of the image set (independent) or of one clip, with vertices."""
        from mhr2_ros.training.synthetic.config import SynthConfig, validate

        base = SynthConfig()
        people = self.people if independent else (self.clip_people, self.clip_people)
        return validate(dataclasses.replace(
            base, frames=self.images if independent else self.clip_frames, independent=independent,
            vertices=True,
            camera=dataclasses.replace(base.camera, size=self.size, fov_deg=self.fov_deg),
            placement=dataclasses.replace(base.placement, people=people, distance_m=self.distance_m),
        ))  # fmt: skip
