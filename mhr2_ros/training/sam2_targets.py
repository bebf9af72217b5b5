"""SAM2 track-feature targets (paper, "Regressing track features", Figure 3).

For every person of a frame: (a) the SAM2 image encoder encodes the image, (b) SAM2's
memory encoder fuses that feature map with the person's ground-truth visible mask,
(c) the 64-channel memory map (64 x 64 at SAM2's 1024 px input) is 8 x 8 average-pooled
to 64 x 8 x 8 and flattened channel-major: a 4096-d target that the model's track head
regresses (losses.loss_track).

The two encoders are SAM2's own classes (sam2.modeling.*), built from the yaml config
sam2 ships and loaded strictly from a local checkpoint as SAM2 releases it (a .pt dict
with a "model" state dict). sam2.build_sam and the predictors are not used: they import
torchvision. The mask goes in as SAM2 feeds a mask prompt to its memory encoder
(SAM2Base._use_mask_as_output, then _encode_new_memory): resized to the input size
(bilinear, antialiased, >= 0.5), logits +-10, sigmoid, then the config's
sigmoid_scale_for_mem_enc / sigmoid_bias_for_mem_enc. The image is resized to a square
(bilinear, antialiased) and normalised with ImageNet statistics, as SAM2's image predictor.

Layout beside each clip (docs/dataset_format.md): sam2_targets/manifest.json, and
sam2_targets/NNNNNN.npz per frame with `track` float16 (P, 4096) and `has_mask` bool (P,)
in the ground-truth person order; a person without visible mask pixels (at the SAM2 input
size) gets a zero row and has_mask False.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from mhr2_ros.checkpoint import load_state_strict
from mhr2_ros.errors import CheckpointError, ConfigError, InputError
from mhr2_ros.model.tensor_files import load_tensors_only
from mhr2_ros.io.atomic import atomic_write
from mhr2_ros.training.sam2_spec import MODEL_CONFIGS, POOLED_SIDE, SIZE_MULTIPLE

log = logging.getLogger(__name__)

TARGETS_DIR = "sam2_targets"  # folder of a clip that holds its targets
MANIFEST = "manifest.json"  # what computed the targets of a clip
FORMAT = "mhr2_ros/sam2_targets/1"
MASK_LOGIT = 10.0  # SAM2 turns a binary mask prompt into logits of +-10 (_use_mask_as_output)
IMAGE_MEAN = (0.485, 0.456, 0.406)  # SAM2's ImageNet normalisation, RGB in [0, 1]
IMAGE_STD = (0.229, 0.224, 0.225)
ENCODER_PREFIXES = ("image_encoder.", "memory_encoder.")  # the checkpoint parts used
CHECKPOINT_HINT = ("  check --model-config: sam2.1_hiera_tiny.pt goes with sam2.1_hiera_t, _small with _s, "
                   "_base_plus with _b+, _large with _l (sam2_hiera_*.pt with the sam2_hiera_* configs)")  # fmt: skip


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def target_path(clip: Path, index: int) -> Path:
    return Path(clip) / TARGETS_DIR / f"{index:06d}.npz"


def read_track_target(clip: Path, index: int, people: int) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """((people, 4096) float32 targets, (people,) bool has_mask) of frame `index` of `clip`,
    None when not computed. A person without mask pixels at SAM2's input size has a zero
    row that is no target (has_mask False)."""
    path = target_path(clip, index)
    if not path.is_file():
        return None
    check_targets_match_clip(str(Path(clip).resolve()))
    with np.load(path, allow_pickle=False) as data:
        track = data["track"].astype(np.float32)
        has_mask = data["has_mask"].astype(bool) if "has_mask" in data else np.ones(len(track), bool)
    if track.shape[0] != people:
        raise InputError(f"{path}: {track.shape[0]} track targets for {people} people in the ground truth; "
                         "recompute them with mhr2-sam2-targets --overwrite")  # fmt: skip
    return track, has_mask


@functools.lru_cache(maxsize=None)
def check_targets_match_clip(clip: str) -> None:
    """InputError if the clip's targets were computed for other frames (clip.json changed,
    e.g. re-rendered with another seed); checked once per clip and process."""
    manifest = Path(clip) / TARGETS_DIR / MANIFEST
    if not manifest.is_file():
        raise InputError(f"{manifest} is missing: the targets beside it are of unknown origin; "
                         "recompute them with mhr2-sam2-targets --overwrite")  # fmt: skip
    if json.loads(manifest.read_text()).get("clip_sha256") != file_sha256(Path(clip) / "clip.json"):
        raise InputError(f"{manifest.parent} holds targets of another clip (clip.json changed since); "
                         "recompute them with mhr2-sam2-targets --overwrite")  # fmt: skip


# ------------------------------------------------------------------------------ model
def load_sam2_config(name: str):
    """The OmegaConf config sam2 ships under `name` (a MODEL_CONFIGS key, '.yaml' allowed)."""
    import importlib.resources

    from omegaconf import OmegaConf

    key = name[: -len(".yaml")] if name.endswith(".yaml") else name
    if key not in MODEL_CONFIGS:
        raise ConfigError(f"unknown SAM2 model config {name!r}; expected one of {', '.join(MODEL_CONFIGS)}")
    return OmegaConf.load(str(importlib.resources.files("sam2") / MODEL_CONFIGS[key]))


def read_sam2_checkpoint(path: Path) -> Dict[str, torch.Tensor]:
    """The "model" state dict of a SAM2 .pt checkpoint (tensors only: nothing is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"SAM2 checkpoint not found: {path}; pass --checkpoint PATH to a local "
                              "SAM2 .pt file (e.g. sam2.1_hiera_large.pt); nothing is downloaded")  # fmt: skip
    data = load_tensors_only(path, "SAM2 checkpoint")
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{path}: not a SAM2 checkpoint (expected a dict with a 'model' state dict)")
    return data["model"]


class Sam2TrackEncoder(torch.nn.Module):
    """SAM2's image and memory encoders: images and person masks in, 4096-d targets out."""

    def __init__(self, model_config: str, image_size: Optional[int] = None) -> None:
        super().__init__()
        from hydra.utils import instantiate

        cfg = load_sam2_config(model_config).model
        self.model_config = model_config
        self.image_size = int(image_size or cfg.image_size)
        if self.image_size < SIZE_MULTIPLE or self.image_size % SIZE_MULTIPLE:
            raise ConfigError(f"SAM2 image size {self.image_size}: expected a multiple of {SIZE_MULTIPLE} "
                              f"(SAM2 checkpoints are trained at {cfg.image_size})")  # fmt: skip
        self.image_encoder = instantiate(cfg.image_encoder)
        self.memory_encoder = instantiate(cfg.memory_encoder)
        self.mem_scale = float(cfg.get("sigmoid_scale_for_mem_enc", 1.0))
        self.mem_bias = float(cfg.get("sigmoid_bias_for_mem_enc", 0.0))
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @classmethod
    def from_checkpoint(cls, path: Path, model_config: str, image_size: Optional[int] = None,
                        device: str = "cpu") -> "Sam2TrackEncoder":  # fmt: skip
        state = read_sam2_checkpoint(path)
        encoder = cls(model_config, image_size)
        encoder.load_encoders(state, str(path))
        return encoder.to(device)

    def load_encoders(self, state: Dict[str, torch.Tensor], source: str) -> None:
        """Strictly load the image_encoder.* and memory_encoder.* tensors of a SAM2 state dict
        (the other SAM2 parts, mask decoder and memory attention, are not needed)."""
        used = {k: v for k, v in state.items() if k.startswith(ENCODER_PREFIXES)}
        if not used:
            raise CheckpointError(f"{source}: no image_encoder.* or memory_encoder.* tensors; not a SAM2 checkpoint")
        load_state_strict(self, used, source, CHECKPOINT_HINT)
        log.info("loaded %d SAM2 encoder tensors from %s (%d others unused)", len(used), source, len(state) - len(used))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def _images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """(B, 3, S, S) normalised input from (H, W, 3) uint8 RGB images of any sizes."""
        out = []
        for img in images:
            x = torch.from_numpy(np.ascontiguousarray(img)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
            out.append(self._resize(x))
        return (torch.cat(out) - self.mean) / self.std

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, S, S), bilinear and antialiased like SAM2's transforms."""
        return F.interpolate(x, size=(self.image_size,) * 2, mode="bilinear", align_corners=False, antialias=True)

    def _masks(self, masks: np.ndarray) -> torch.Tensor:
        """(N, H, W) bool -> (N, 1, S, S) bool at the input size, as SAM2 resizes a mask prompt."""
        m = torch.from_numpy(np.ascontiguousarray(masks)).to(self.device)[:, None].float()
        return self._resize(m) >= 0.5

    def _memory(self, pix_feat: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """(N, 4096) pooled memory features of bool masks (N, 1, S, S) on features (N, C, h, w)."""
        logits = masks.float() * (2 * MASK_LOGIT) - MASK_LOGIT
        mask_for_mem = torch.sigmoid(logits) * self.mem_scale + self.mem_bias
        mem = self.memory_encoder(pix_feat, mask_for_mem, skip_mask_sigmoid=True)["vision_features"]
        pooled = F.avg_pool2d(mem, kernel_size=mem.shape[-1] // POOLED_SIDE)
        return pooled.flatten(1)

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray],
               mask_batch: int = 32) -> List[Tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Per image (H, W, 3) uint8 RGB and its (P, H, W) bool person masks: (P, 4096)
        float32 targets and (P,) bool has_mask (zero rows where the resized mask is empty)."""
        if len(images) != len(masks):
            raise ValueError(f"{len(images)} images but {len(masks)} mask stacks")
        feats = self.image_encoder(self._images(images))["vision_features"]  # (B, C, S/16, S/16)
        resized = [self._masks(m) if len(m) else None for m in masks]
        owners = [(b, p) for b, r in enumerate(resized) if r is not None for p in range(len(r)) if r[p].any()]
        results = [(np.zeros((len(m), POOLED_SIDE**2 * self.memory_dim), np.float32), np.zeros(len(m), bool))
                   for m in masks]  # fmt: skip
        for start in range(0, len(owners), mask_batch):
            chunk = owners[start : start + mask_batch]
            pix = feats[[b for b, _ in chunk]]
            m = torch.cat([resized[b][p : p + 1] for b, p in chunk])
            rows = self._memory(pix, m).float().cpu().numpy()
            for (b, p), row in zip(chunk, rows):
                results[b][0][p] = row
                results[b][1][p] = True
        return results

    @property
    def memory_dim(self) -> int:
        return int(self.memory_encoder.out_proj.out_channels)


# ------------------------------------------------------------------------------ dataset
def make_manifest(encoder: Sam2TrackEncoder, checkpoint: Path) -> Dict:
    """What identifies targets: format, checkpoint (name and hash), config, input size."""
    dim = POOLED_SIDE**2 * encoder.memory_dim
    return {"format": FORMAT, "checkpoint": Path(checkpoint).name, "checkpoint_sha256": file_sha256(checkpoint),
            "model_config": encoder.model_config, "image_size": encoder.image_size, "dim": dim, "dtype": "float16",
            "feature": f"memory encoder {encoder.memory_dim} x {POOLED_SIDE} x {POOLED_SIDE}, average-pooled, "
                       "flattened channel-major", "sam2_version": importlib.metadata.version("sam2")}  # fmt: skip


IDENTITY_KEYS = ("format", "clip_sha256", "checkpoint_sha256", "model_config", "image_size")  # must match to resume


def prepare_clip(clip: Path, manifest: Dict, overwrite: bool) -> None:
    """Write the clip's manifest, refusing to mix targets of another clip, checkpoint or config;
    `overwrite` first deletes the clip's targets (a rerun without it continues a killed run)."""
    path = Path(clip) / TARGETS_DIR / MANIFEST
    manifest = {**manifest, "clip_sha256": file_sha256(Path(clip) / "clip.json")}
    frames = sorted(path.parent.glob("[0-9]*.npz"))
    if overwrite:
        for frame in frames:
            frame.unlink()
    elif path.is_file():
        old = json.loads(path.read_text())
        diffs = [f"{k}: {old.get(k)} vs {manifest[k]}" for k in IDENTITY_KEYS if old.get(k) != manifest[k]]
        if diffs:
            raise InputError(f"{path.parent} holds targets of another SAM2 setup ({'; '.join(diffs)} "
                             "(existing vs now)); pass --overwrite to recompute them all")  # fmt: skip
    elif frames:
        raise InputError(f"{path.parent} holds targets but no {MANIFEST}: their origin is unknown; "
                         "pass --overwrite to recompute them all")  # fmt: skip
    with atomic_write(path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def find_clips(paths: Sequence[Path]) -> List[Path]:
    """Clip folders (with clip.json) named directly or as sub-folders of a dataset folder."""
    clips: List[Path] = []
    for path in map(Path, paths):
        found = [path] if (path / "clip.json").is_file() else sorted(p.parent for p in path.glob("*/clip.json"))
        if not found:
            raise InputError(f"{path}: no clip (a folder with clip.json, or sub-folders with one) "
                             "written by `mhr2 synth` (docs/dataset_format.md)")  # fmt: skip
        clips.extend(found)
    return clips


@dataclass
class TargetStats:
    computed: int = 0  # frames encoded and written by this run
    skipped: int = 0  # frames whose target file already existed
    people: int = 0  # person targets written
    empty: int = 0  # of which without visible mask (zero target, has_mask False)


def compute_targets(paths: Sequence[Path], encoder: Sam2TrackEncoder, checkpoint: Path, batch_size: int = 4,
                    overwrite: bool = False, progress: bool = True) -> TargetStats:  # fmt: skip
    """Targets of every frame of the clips in `paths`, `batch_size` frames per encoder pass.
    Frames whose file exists are skipped: a killed run resumes. `overwrite` recomputes all."""
    from tqdm import tqdm

    from mhr2_ros.training.synthetic.dataset import load_clip, save_npz

    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1, got {batch_size}")
    readers = [load_clip(c) for c in find_clips(paths)]
    manifest = make_manifest(encoder, checkpoint)
    stats, pending = TargetStats(), []
    for reader in readers:
        prepare_clip(reader.path, manifest, overwrite)
        todo = [i for i in range(len(reader)) if not target_path(reader.path, i).is_file()]
        stats.skipped += len(reader) - len(todo)
        pending += [(reader, i) for i in todo]
    log.info("%d clips: %d frames to encode, %d already done", len(readers), len(pending), stats.skipped)
    with tqdm(total=len(pending), unit="frame", disable=not progress) as bar:
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            images, masks = zip(*[_frame_inputs(r, i) for r, i in batch])
            for (reader, i), (track, has_mask) in zip(batch, encoder.encode(images, masks)):
                if not np.isfinite(track.astype(np.float16)).all():
                    raise RuntimeError(f"{reader.path} frame {i}: non-finite SAM2 target (float16 overflow?)")
                save_npz(target_path(reader.path, i), {"track": track.astype(np.float16), "has_mask": has_mask})
                stats.computed += 1
                stats.people += len(has_mask)
                stats.empty += int((~has_mask).sum())
            bar.update(len(batch))
    return stats


def _frame_inputs(reader, index: int) -> Tuple[np.ndarray, np.ndarray]:
    """RGB image and (P, H, W) visible masks in the ground-truth person order."""
    ids = reader.truth(index).ids
    instance = reader.instance(index)
    return reader.image(index), instance[None] == np.asarray(ids).reshape(-1, 1, 1)
