"""Training data: sources of `Sample`s and the batch stream.

Sources:
- `SyntheticSource`: the procedural generator rendering fresh independent scenes
  on the fly, on the training device unless the source's synth config names a
  render.device (`build_sources`).
- `ClipSource`: clips on disk in the documented format (docs/dataset_format.md):
  what `mhr2 synth` writes, and what BEDLAM or AnnyOne would be converted to.
- `CocoSource`: COCO keypoint JSON, 2D only.

`BatchStream` draws sources by weight, picks one training aspect ratio per batch
(centred crops, fixed largest side) and builds the tensors `training.step`
consumes. It runs in the main process and owns its RNG, so its state is saved
with a checkpoint and a resumed run sees the same batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import torch

from mhr2_ros.config import ModelConfig
from mhr2_ros.geometry import IDENTITY_6D
from mhr2_ros.inference.preprocess import to_tensor
from mhr2_ros.training.coco import coco_sample, read_coco_keypoints
from mhr2_ros.training.sample import Sample, crop_resize

log = logging.getLogger(__name__)

MIN_VISIBLE_PIXELS = 20  # a synthetic person with fewer visible pixels is not a target
# Target tensors of `to_target` with one row per person (gathered per matched pair by
# `training.step.gather_matched`); every other key is per image (K, fov, image_size, sup).
PER_PERSON_KEYS = ("loc", "position", "rot6d", "shape", "keypoints_2d", "keypoints_vis", "track", "track_valid")


def sample_from_truth(image: np.ndarray, truth, track=None) -> Sample:
    """A synthetic frame's ground truth as a Sample of the people who can be seen; `track`:
    `read_track_target`'s (targets, has_mask), or targets alone (all real), or None."""
    track, track_valid = track if isinstance(track, tuple) else (track, None)
    keep = truth.visible_pixels >= MIN_VISIBLE_PIXELS
    h, w = image.shape[:2]
    kp = truth.joints_2d[keep]
    inside = (kp[..., 0] >= 0) & (kp[..., 0] < w) & (kp[..., 1] >= 0) & (kp[..., 1] < h)
    return Sample(
        image=image, K=np.asarray(truth.K, np.float32), loc=truth.pelvis_2d[keep], keypoints_2d=kp,
        keypoints_vis=inside.astype(np.float32), data_type="synthetic", position=truth.position[keep],
        rot6d=truth.pose_6d[keep], shape=truth.shape[keep], track=None if track is None else track[keep],
        track_valid=None if track_valid is None else track_valid[keep],
    )  # fmt: skip


class SyntheticSource:
    """Independent synthetic scenes rendered on demand from (seed, index)."""

    def __init__(self, synth_config, seed: int, body=None) -> None:
        import dataclasses

        from mhr2_ros.training.synthetic.generator import SyntheticClip

        cfg = dataclasses.replace(synth_config, independent=True, frames=2**31 - 1)
        self.clip = SyntheticClip(cfg, seed, body)

    def sample(self, rng: np.random.Generator) -> Sample:
        frame = self.clip.frame(int(rng.integers(0, len(self.clip))))
        return sample_from_truth(frame.image, frame.truth)


class ClipSource:
    """Frames of one or more clips in the on-disk format (a path is a clip or a folder of
    clips), drawn uniformly over all frames; a frame's SAM2 track targets
    (`mhr2-sam2-targets`, CLIP/sam2_targets/) become the samples' `track`."""

    def __init__(self, paths: Sequence[Path]) -> None:
        from mhr2_ros.training.synthetic.dataset import clip_folders, load_clip

        self.readers = [load_clip(p) for p in clip_folders(paths)]
        self.index = [(r, i) for r in self.readers for i in range(len(r))]
        if not self.index:
            raise ValueError(f"no frames in {list(map(str, paths))}")

    def __len__(self) -> int:
        return len(self.index)

    def sample(self, rng: np.random.Generator) -> Sample:
        from mhr2_ros.training.sam2_targets import read_track_target

        reader, i = self.index[int(rng.integers(0, len(self.index)))]
        truth = reader.truth(i)
        image = reader.image(i, truth.image_size)  # the size from the gt already read: one npz open
        return sample_from_truth(image, truth, read_track_target(reader.path, i, len(truth.ids)))


class CocoSource:
    def __init__(self, annotation_file: Path, image_dir: Path) -> None:
        self.entries = read_coco_keypoints(annotation_file)
        self.image_dir = Path(image_dir)

    def sample(self, rng: np.random.Generator) -> Sample:
        return coco_sample(self.entries[int(rng.integers(0, len(self.entries)))], self.image_dir)


class InMemorySource:
    """A fixed list of samples (tests, overfitting checks, small pre-loaded sets)."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        if not samples:
            raise ValueError("InMemorySource needs at least one sample")
        self.samples = list(samples)

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.samples[int(rng.integers(0, len(self.samples)))]


def to_target(s: Sample, num_bones: int, device: torch.device) -> Dict:
    """Tensors of one sample for `training.step` (missing 3D filled, flags off):
    the PER_PERSON_KEYS present (M rows each) plus the per-image K, fov, image_size, sup."""
    m = len(s.loc)

    def filled(a, fill_shape, fill: float) -> np.ndarray:
        return np.full(fill_shape, fill, np.float32) if a is None else a

    identity = np.broadcast_to(np.asarray(IDENTITY_6D, np.float32), (m, num_bones, 6))
    people = {
        "loc": s.loc, "position": filled(s.position, (m, 3), 1.0), "rot6d": identity if s.rot6d is None else s.rot6d,
        "shape": filled(s.shape, (m, 6), 0.5), "keypoints_2d": s.keypoints_2d, "keypoints_vis": s.keypoints_vis,
        "track": s.track,  # optional: absent when no track targets were computed
        "track_valid": None if s.track is None else (
            np.ones(m, np.float32) if s.track_valid is None else s.track_valid),  # 1: a real target
    }  # fmt: skip
    target = {k: torch.from_numpy(np.array(people[k], np.float32)).to(device)
              for k in PER_PERSON_KEYS if people[k] is not None}  # fmt: skip
    target.update({
        "K": torch.from_numpy(np.asarray(s.K, np.float32)).to(device),
        "fov": torch.tensor(s.fov, device=device),
        "image_size": torch.tensor([s.image.shape[1], s.image.shape[0]], dtype=torch.float32, device=device),
        "sup": s.supervision(),
    })  # fmt: skip
    return target


@dataclass
class SourceSpec:
    source: object  # anything with .sample(rng) -> Sample
    weight: float = 1.0  # relative probability of drawing from it


class BatchStream:
    """Infinite stream of training batches; deterministic given its seed and state."""

    def __init__(self, sources: List[SourceSpec], model_cfg: ModelConfig, batch_size: int, seed: int,
                 device: torch.device) -> None:  # fmt: skip
        self.sources = sources
        w = np.array([s.weight for s in sources], dtype=np.float64)
        self.p = w / w.sum()
        self.cfg = model_cfg
        self.batch_size = batch_size
        self.device = device
        self.rng = np.random.default_rng(seed)

    def next(self) -> Dict:
        aspect = float(self.rng.choice(self.cfg.train_aspect_ratios))
        samples = []
        for _ in range(self.batch_size):
            src = self.sources[int(self.rng.choice(len(self.sources), p=self.p))].source
            s = crop_resize(src.sample(self.rng), aspect, self.cfg.image_size, self.cfg.patch_size)
            samples.append(s)
        images = torch.cat([to_tensor(s.image, self.device, torch.float32) for s in samples])
        return {"images": images, "targets": [to_target(s, self.cfg.num_bones, self.device) for s in samples]}

    def state_dict(self) -> Dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Dict) -> None:
        self.rng.bit_generator.state = state["rng"]


def build_sources(cfg, body=None, device=None) -> List[SourceSpec]:
    """SourceSpecs from a TrainConfig's `data` list. Synthetic sources render on `device`
    (the training device; None: the generator's default, the CPU) unless their synth
    config sets render.device."""
    from mhr2_ros.training.synthetic.config import config_from_dict

    specs = []
    for d in cfg.data:
        if d.kind == "synthetic":
            src = SyntheticSource(config_from_dict(_render_on(d.synth, device)), d.seed, body)
        elif d.kind == "clips":
            src = ClipSource([Path(p) for p in d.paths])
        else:
            if len(d.paths) != 2:
                raise ValueError("a coco source needs paths: [annotation.json, image_dir]")
            src = CocoSource(Path(d.paths[0]), Path(d.paths[1]))
        specs.append(SourceSpec(src, d.weight))
    return specs


def _render_on(synth: dict, device) -> dict:
    """The synth overrides with render.device = `device` when they do not choose one."""
    render = synth.get("render") or {}
    if device is None or not isinstance(render, dict) or "device" in render:
        return synth
    return {**synth, "render": {**render, "device": str(device)}}
