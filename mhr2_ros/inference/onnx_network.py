"""The network through ONNX Runtime: a `.onnx` file written by `mhr2 export` in place of the
PyTorch module, for deployment (ONNX Runtime's CPU or CUDA provider; the file itself is
plain ONNX for other runtimes). The Detector runs everything around it as usual.

The graph (`GRAPH_OUTPUTS`, one batch of normalised images in, any size whose sides are
multiples of the patch size) stops at the head outputs with two differences from
`MultiHMR2.predict_heads`, both finished here in torch:
- the pelvis is "loc_fraction", image fractions in [0, 1]: multiplied by (W, H) here, so
  no image size is baked into the graph (a size turned into a constant would be exact at
  the exported size and silently wrong at every other);
- the root rotation is still in the head's own frame: `root_to_camera` turns it with the
  given K or the predicted FOV, as the module does (K is not a graph input).

The file is self-describing: its metadata holds the ModelConfig and the checkpoint's JSON
(provenance, inference settings), under the METADATA_* keys. onnxruntime is imported only
here, when an ONNX file is used (`pip install 'mhr2_ros[onnx]'`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from mhr2_ros.config import ModelConfig, from_dict
from mhr2_ros.errors import CheckpointError, ConfigError
from mhr2_ros.model.mhr2 import root_to_camera

log = logging.getLogger(__name__)

ONNX_FORMAT = "mhr2_ros-onnx/1"
GRAPH_INPUT = "images"  # (B, 3, H, W) float32, normalised with PIXEL_MEAN / PIXEL_STD
# graph outputs, in this order: fov (B,) rad; logits (B, N); loc_fraction (B, N, 2) (x, y) in [0, 1];
# nearness (B, N); rot6d (B, N, bones, 6), root in the head's frame; shape (B, N, S); track (B, N, D)
GRAPH_OUTPUTS = ("fov", "logits", "loc_fraction", "nearness", "rot6d", "shape", "track")
METADATA_FORMAT = "mhr2_ros.format"
METADATA_MODEL = "mhr2_ros.model"  # JSON of the ModelConfig
METADATA_CHECKPOINT = "mhr2_ros.checkpoint"  # JSON of the checkpoint's metadata (its .json less "model")
METADATA_INPUT_HW = "mhr2_ros.input_hw"  # JSON [H, W]: the one input size of a fixed-size graph; absent: any
INSTALL_HINT = "pip install 'mhr2_ros[onnx]' (onnxruntime-gpu instead of onnxruntime for the CUDA providers)"
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"


def import_onnxruntime():
    """onnxruntime, or a ConfigError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"ONNX weights need onnxruntime, which does not import here ({exc}); {INSTALL_HINT}") from exc
    return onnxruntime


def choose_providers(device: torch.device, available: List[str], explicit: bool) -> List[str]:
    """ONNX Runtime execution providers for the Detector's torch device.

    cuda:N -> the CUDA provider on GPU N, then the CPU one for what it cannot run. When this
    onnxruntime has no CUDA provider, an explicit cuda device is an error; "auto" (explicit
    False) falls back to the CPU with a warning."""
    if device.type != "cuda":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER not in available:
        message = f"device {device} asks for onnxruntime's {CUDA_PROVIDER}, but this onnxruntime has only {available}"
        if explicit:
            raise ConfigError(f"{message}; install onnxruntime-gpu, or use device cpu")
        log.warning("%s: the network runs on the CPU", message)
        return [CPU_PROVIDER]
    return [(CUDA_PROVIDER, {"device_id": device.index or 0}), CPU_PROVIDER]


def read_onnx_metadata(path: Path, props: Dict[str, str]) -> Tuple[ModelConfig, dict, Optional[Tuple[int, int]]]:
    """(ModelConfig, checkpoint metadata, the one input (H, W) or None: any) from an exported
    file's metadata properties."""
    if props.get(METADATA_FORMAT) != ONNX_FORMAT:
        raise CheckpointError(
            f"{path}: not an ONNX file written by `mhr2 export` (metadata {METADATA_FORMAT} is "
            f"{props.get(METADATA_FORMAT)!r}, expected {ONNX_FORMAT!r}); export the .safetensors weights with "
            "`mhr2 export`")
    try:
        model = json.loads(props[METADATA_MODEL])
        metadata = json.loads(props.get(METADATA_CHECKPOINT, "{}"))
        input_hw = json.loads(props[METADATA_INPUT_HW]) if METADATA_INPUT_HW in props else None
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: its mhr2_ros metadata is missing or not JSON ({exc})") from exc
    fixed = None if input_hw is None else (int(input_hw[0]), int(input_hw[1]))
    return from_dict(ModelConfig, model, source=f"{path} metadata"), metadata, fixed


class OnnxNetwork:
    """`network(images, K)` -> the head outputs dict of `MultiHMR2.predict_heads` (without the
    training-only proposals), as torch tensors on `device`."""

    def __init__(self, path: str | Path, device: torch.device, explicit_device: bool = True) -> None:
        ort = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"ONNX weights {self.path} do not exist")
        self.device = device
        providers = choose_providers(device, ort.get_available_providers(), explicit_device)
        options = ort.SessionOptions()
        # ONNX Runtime's threads spin-wait after a run by default, taking the cores from the torch
        # steps that follow it: the body model took 17.8 instead of 12.1 ms per frame on 2 cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for a bad file
            raise CheckpointError(f"{self.path}: onnxruntime cannot load it: {exc}") from exc
        props = self.session.get_modelmeta().custom_metadata_map
        self.model_cfg, self.metadata, self.input_hw = read_onnx_metadata(self.path, props)
        names = tuple(o.name for o in self.session.get_outputs())
        if names != GRAPH_OUTPUTS or [i.name for i in self.session.get_inputs()] != [GRAPH_INPUT]:
            raise CheckpointError(f"{self.path}: graph outputs {names}, expected {GRAPH_OUTPUTS} from input "
                                  f"{GRAPH_INPUT!r}; export it again with this version's `mhr2 export`")
        self.providers = self.session.get_providers()
        self.version = ort.__version__
        log.info("%s: onnxruntime providers %s", self.path, self.providers)

    def __call__(self, images: torch.Tensor, K: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """images (B, 3, H, W) normalised, K (B, 3, 3) input intrinsics or None (predicted FOV)."""
        h, w = images.shape[-2:]
        if self.input_hw is not None and (h, w) != self.input_hw:
            raise ConfigError(f"{self.path} was exported for {self.input_hw[0]}x{self.input_hw[1]} (HxW) network "
                              f"inputs only (a learned position table), this image needs {h}x{w}: export again with "
                              f"`mhr2 export --check-size {h}x{w}`")
        grid = (h // self.model_cfg.patch_size) * (w // self.model_cfg.patch_size)
        if self.model_cfg.query_selection and grid < self.model_cfg.num_queries:
            raise ConfigError(f"an input of {h}x{w} (HxW) pixels has {grid} patches, fewer than the "
                              f"{self.model_cfg.num_queries} queries the exported graph selects")
        feed = {GRAPH_INPUT: images.detach().float().cpu().numpy()}
        arrays = self.session.run(list(GRAPH_OUTPUTS), feed)
        out = {name: torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
               for name, a in zip(GRAPH_OUTPUTS, arrays)}
        out["loc"] = out.pop("loc_fraction") * out["fov"].new_tensor([float(w), float(h)])  # (B, N, 2) pixels
        root_to_camera(out, (h, w), K, self.model_cfg.root_frame)
        return out


__all__ = ["OnnxNetwork", "GRAPH_OUTPUTS", "GRAPH_INPUT", "choose_providers", "read_onnx_metadata",
           "import_onnxruntime", "ONNX_FORMAT"]
