"""Training data: sources of `Sample`s and the batch stream.

Sources:
- `SyntheticSource`: the procedural generator rendering fresh independent scenes
  on the fly, on the training device unless the source's synth config names a
  render.device (`build_sources`).
- `ClipSource`: clips on disk in the documented format (docs/dataset_format.md):
  what `mhr2 synth` writes, and what BEDLAM or AnnyOne would be converted to.
- `CocoSource`: COCO keypoint JSON, 2D only.

Every source splits `sample(rng)` in two: `draw(rng)`, a cheap key (a frame index),
and `load(key)`, the costly part (rendering, disk reads).

`BatchStream` draws sources by weight, picks one training aspect ratio per batch
(centred crops, fixed largest side) and builds the tensors `training.step`
consumes. It owns its RNG and draws every batch's plan in the training process, so
its state is saved with a checkpoint and a resumed run sees the same batches; with
`workers` > 0 worker processes load and crop the planned samples ahead
(training/loader.py), synthetic scenes rendered on their CPUs.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from mhr2_ros.config import ModelConfig
from mhr2_ros.geometry import IDENTITY_6D
from mhr2_ros.inference.preprocess import to_tensor
from mhr2_ros.training.coco import coco_sample, read_coco_keypoints
from mhr2_ros.training.loader import PickledSources, SourcesFromConfig, WorkerPool
from mhr2_ros.training.replay import ReplayStream
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

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, len(self.clip)))

    def load(self, key: int) -> Sample:
        frame = self.clip.frame(key)
        return sample_from_truth(frame.image, frame.truth)

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.load(self.draw(rng))


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
        _warn_evaluation_seeds(self.readers)

    def __len__(self) -> int:
        return len(self.index)

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, len(self.index)))

    def load(self, key: int) -> Sample:
        from mhr2_ros.training.sam2_targets import read_track_target

        reader, i = self.index[key]
        truth = reader.truth(i)
        image = reader.image(i, truth.image_size)  # the size from the gt already read: one npz open
        return sample_from_truth(image, truth, read_track_target(reader.path, i, len(truth.ids)))

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.load(self.draw(rng))


def _warn_evaluation_seeds(readers) -> None:
    """Rendered clips (clip.json records the generator's seed) with a seed of `mhr2 eval`'s
    benchmark or tuning sets: training on them would evaluate on training scenes."""
    from mhr2_ros.evaluation.benchmark_spec import TRAINING_SEED_MIN

    def seed_of(reader):
        seed = reader.info.get("seed")
        return seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    low = [r for r in readers if seed_of(r) is not None and seed_of(r) < TRAINING_SEED_MIN]
    if low:
        names = ", ".join(f"{r.path} (seed {seed_of(r)})" for r in low[:3]) + (", ..." if len(low) > 3 else "")
        log.warning("%d training clip(s) were rendered with seeds below %d, the seeds of mhr2 eval's benchmark and "
                    "tuning sets (same settings and seed: same scenes): %s", len(low), TRAINING_SEED_MIN, names)


class CocoSource:
    def __init__(self, annotation_file: Path, image_dir: Path) -> None:
        self.entries = read_coco_keypoints(annotation_file)
        self.image_dir = Path(image_dir)

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, len(self.entries)))

    def load(self, key: int) -> Sample:
        return coco_sample(self.entries[key], self.image_dir)

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.load(self.draw(rng))


class InMemorySource:
    """A fixed list of samples (tests, overfitting checks, small pre-loaded sets)."""

    def __init__(self, samples: Sequence[Sample]) -> None:
        if not samples:
            raise ValueError("InMemorySource needs at least one sample")
        self.samples = list(samples)

    def draw(self, rng: np.random.Generator) -> int:
        return int(rng.integers(0, len(self.samples)))

    def load(self, key: int) -> Sample:
        return self.samples[key]

    def sample(self, rng: np.random.Generator) -> Sample:
        return self.load(self.draw(rng))


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
    source: object  # anything with .sample(rng) -> Sample; data workers need .draw(rng) -> key and .load(key)
    weight: float = 1.0  # relative probability of drawing from it


class BatchStream:
    """Infinite stream of training batches; deterministic given its seed and state.

    `workers` 0: every sample is loaded in this process (`source.sample(rng)`), synthetic
    scenes rendered on the training device. `workers` N > 0: N spawned processes load and
    crop the samples (synthetic scenes rendered on their CPUs) a few batches ahead, built
    from `recipe` (a picklable callable returning the sources in this stream's order;
    None: these sources, pickled); this process draws every batch's plan from its RNG, in
    the order of `workers` 0, so a seed gives the same batches either way (bit for bit when
    this process runs torch on one thread, as the workers do: the body model's last bits can
    depend on the thread count). Call `close()`
    (or use it as a context manager) to end the workers."""

    def __init__(self, sources: List[SourceSpec], model_cfg: ModelConfig, batch_size: int, seed: int,
                 device: torch.device, workers: int = 0, recipe: Optional[Callable] = None) -> None:  # fmt: skip
        self.sources = sources
        w = np.array([s.weight for s in sources], dtype=np.float64)
        self.p = w / w.sum()
        self.cfg = model_cfg
        self.batch_size = batch_size
        self.device = device
        self._rng = np.random.default_rng(seed)
        if workers < 0:
            raise ValueError(f"workers must be >= 0 (0: load in this process), got {workers}")
        if workers and not all(hasattr(s.source, "draw") and hasattr(s.source, "load") for s in sources):
            raise ValueError("data workers need sources with draw(rng) and load(key): "
                             f"{[type(s.source).__name__ for s in sources]}; use workers 0")  # fmt: skip
        self.workers = workers
        recipe = recipe or PickledSources([s.source for s in sources])
        self._pool = WorkerPool(workers, recipe, model_cfg.image_size, model_cfg.patch_size) if workers else None
        # Enough batches in flight for two samples per worker, at least two batches.
        self._ahead = max(2, -(-2 * workers // batch_size))
        self._pending: deque = deque()  # (RNG state before the batch's plan, its sample futures)

    @property
    def rng(self) -> np.random.Generator:
        return self._rng

    @rng.setter
    def rng(self, rng: np.random.Generator) -> None:  # a new stream: what was planned is void
        self._discard()
        self._rng = rng

    def next(self) -> Dict:
        if not self.workers:
            aspect = float(self.rng.choice(self.cfg.train_aspect_ratios))
            samples = []
            for _ in range(self.batch_size):
                src = self.sources[int(self.rng.choice(len(self.sources), p=self.p))].source
                s = crop_resize(src.sample(self.rng), aspect, self.cfg.image_size, self.cfg.patch_size)
                samples.append(s)
            return self._tensors(samples)
        self._fill()
        _, plan = self._pending.popleft()
        self._fill()  # the workers start on the next batch while this one is gathered
        return self._tensors([self._result(future, source, key) for future, source, key in plan])

    def ready(self) -> bool:
        """True when `next` would return without waiting: every sample of its batch is loaded.
        Always False with `workers` 0, which load inside `next`."""
        if not self.workers:
            return False
        self._fill()
        return all(future.done() for future, _, _ in self._pending[0][1])

    def _fill(self) -> None:
        """Plan and submit batches until `_ahead` are in flight: the RNG calls of `workers` 0."""
        while len(self._pending) < self._ahead:
            state = self.rng.bit_generator.state
            aspect = float(self.rng.choice(self.cfg.train_aspect_ratios))
            plan = []
            for _ in range(self.batch_size):
                i = int(self.rng.choice(len(self.sources), p=self.p))
                key = self.sources[i].source.draw(self.rng)
                plan.append((self._pool.submit(i, key, aspect), i, key))
            self._pending.append((state, plan))

    def _result(self, future, source: int, key) -> Sample:
        """A worker's sample; its error as raised there (the worker's traceback as the cause)."""
        try:
            return future.result()
        except BrokenProcessPool as exc:
            raise RuntimeError(f"a data worker process died (killed, or out of memory?) loading sample {key!r} "
                               f"of data source {source}; try fewer data_workers, or 0") from exc  # fmt: skip
        except Exception:
            log.error("data worker failed loading sample %r of data source %d (%s)", key, source,
                      type(self.sources[source].source).__name__)  # fmt: skip
            raise

    def _tensors(self, samples: List[Sample]) -> Dict:
        images = torch.cat([to_tensor(s.image, self.device, torch.float32) for s in samples])
        return {"images": images, "targets": [to_target(s, self.cfg.num_bones, self.device) for s in samples]}

    def _discard(self) -> None:
        """Forget the planned batches (their samples are computed for nothing)."""
        for _, plan in self._pending:
            for future, _, _ in plan:
                future.cancel()
        self._pending.clear()

    def state_dict(self) -> Dict:
        """The RNG state before the first batch `next` has not returned yet."""
        state = self._pending[0][0] if self._pending else self.rng.bit_generator.state
        return {"rng": state}

    def load_state_dict(self, state: Dict) -> None:
        self._discard()
        self.rng.bit_generator.state = state["rng"]

    def close(self) -> None:
        """End the worker processes (waits for the samples they are loading); idempotent."""
        self._discard()
        if self._pool is not None:
            self._pool.close()

    def __enter__(self) -> "BatchStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_stream(cfg, model_cfg: ModelConfig, body, device: torch.device, seed: int):
    """The BatchStream of a TrainConfig: its sources (synthetic ones rendering on `device`
    with `body`) and `cfg.data_workers` workers, which get the clip and COCO sources as built
    here and build their own synthetic ones from `cfg.data`; wrapped in a ReplayStream when
    `cfg.data_reuse` > 1."""
    sources = build_sources(cfg, body, device)
    built = [None if d.kind == "synthetic" else spec.source for d, spec in zip(cfg.data, sources)]
    recipe = SourcesFromConfig(list(cfg.data), model_cfg.rig, built)
    stream = BatchStream(sources, model_cfg, cfg.batch_size, seed, device, cfg.data_workers, recipe)
    if cfg.data_reuse > 1:
        return ReplayStream(stream, cfg.data_reuse, cfg.replay_batches, seed, cfg.replay_adaptive)
    return stream


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
