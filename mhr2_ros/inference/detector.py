"""Detector: the numpy-in, numpy-out predictor around the Multi-HMR 2 network.

    detector = Detector.from_checkpoint("weights/mhr2_tiny.safetensors", device="cuda")
    frame = detector(image_rgb)            # HxWx3 uint8 RGB; K=None -> predicted FOV
    frame = detector(image_rgb, K=K)       # 3x3 intrinsics of this image, in pixels

Stages (each timed in FrameResult.timings): preprocess, encoder, decoder,
heads, body (selected queries only) and postprocess. With ONNX weights (`mhr2 export`;
`Detector.from_checkpoint("model.onnx")`) ONNX Runtime runs encoder, decoder and heads as
one graph, timed as "network" (then "heads" is only the torch steps after it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Optional

import numpy as np
import torch

from mhr2_ros.body import BodyModel, BodyOutput
from mhr2_ros.checkpoint import DEFAULT_WEIGHTS, config_differences, load_model
from mhr2_ros.config import InferenceConfig, ModelConfig, override
from mhr2_ros.devices import resolve_device
from mhr2_ros.errors import ConfigError, InputError
from mhr2_ros.geometry import fov_from_focal
from mhr2_ros.inference.depth_fusion import check_depth_image, depth_scales
from mhr2_ros.inference.floor_contact import check_floor_plane, floor_scales
from mhr2_ros.inference.level import Leveller, check_gravity
from mhr2_ros.inference.postprocess import assemble_humans, intrinsics_for, queries_to_camera
from mhr2_ros.inference.preprocess import InputGeometry, compute_geometry, resize_and_pad, to_tensor
from mhr2_ros.inference.results import FLOOR_DEPTH, MEASURED_DEPTH, NETWORK_DEPTH, FrameResult
from mhr2_ros.inference.select import merge_duplicates, select_queries
from mhr2_ros.io.images import check_rgb8
from mhr2_ros.model import build_model

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _compiled(model: torch.nn.Module) -> SimpleNamespace:
    """The three stages __call__ runs, each torch.compiled (compiling the module itself
    would cover only its forward, which inference never calls)."""
    return SimpleNamespace(
        encode=torch.compile(model.encode), decode=torch.compile(model.decode),
        predict_heads=torch.compile(model.predict_heads),
    )  # fmt: skip


class Detector:
    def __init__(
        self, model: Optional[torch.nn.Module], model_cfg: ModelConfig, cfg: Optional[InferenceConfig] = None,
        metadata: Optional[dict] = None, onnx=None,
    ) -> None:
        """`model`: the PyTorch network, or None with `onnx`: an OnnxNetwork (`from_onnx`), the
        exported graph run by ONNX Runtime on the providers of `cfg.device`."""
        self.cfg = cfg or InferenceConfig()
        self.metadata = metadata or {}  # from the checkpoint JSON: provenance, "trained", ...
        self.checkpoint_merge_radius = _checkpoint_merge_radius(self.metadata)
        self.checkpoint_pad_rows = _checkpoint_pad_rows(self.metadata)
        self.model_cfg = model_cfg
        self.device = resolve_device(self.cfg.device)
        if (model is None) == (onnx is None):
            raise ValueError("Detector needs exactly one of a PyTorch model and an ONNX file")
        self.model = None if model is None else model.to(self.device).eval()
        self.onnx = onnx
        self.body = BodyModel(model_cfg.rig).to(self.device)
        if self.body.num_bones != model_cfg.num_bones:
            raise ConfigError(
                f"rig {model_cfg.rig!r} has {self.body.num_bones} bones but the model predicts "
                f"num_bones={model_cfg.num_bones}; the config does not match the weights"
            )
        self._network = _compiled(self.model) if self.cfg.compile and self.model is not None else self.model
        self.faces = self.body.faces.cpu().numpy().astype(np.int32)  # (F, 3) mesh triangles

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path = DEFAULT_WEIGHTS,
        device: Optional[str] = None,
        config: Optional[InferenceConfig] = None,
        model_config: Optional[ModelConfig] = None,
    ) -> "Detector":
        """Load weights (.safetensors + .json beside it). `model_config` replaces the
        JSON (it must then match the tensors, else CheckpointError names the keys).
        A .onnx file (`mhr2 export`) carries its own config: see `from_onnx`."""
        cfg = override(config or InferenceConfig(), device=device)
        if Path(path).suffix == ".onnx":
            return cls.from_onnx(path, config=cfg, model_config=model_config)
        model, model_cfg, metadata = load_model(Path(path), model_config)
        return cls(model, model_cfg, cfg, metadata)

    @classmethod
    def from_onnx(
        cls, path: str | Path, device: Optional[str] = None, config: Optional[InferenceConfig] = None,
        model_config: Optional[ModelConfig] = None,
    ) -> "Detector":
        """The network of an ONNX file written by `mhr2 export`, run by ONNX Runtime; its
        config and checkpoint metadata come from the file (`model_config`, if given, must equal it)."""
        cfg = override(config or InferenceConfig(), device=device)
        network = _onnx_network(path, resolve_device(cfg.device), cfg)
        diffs = config_differences(network.model_cfg, model_config) if model_config is not None else []
        if diffs:
            raise ConfigError(f"{path}: an ONNX graph is exported for one model config; the given one differs "
                              f"in {'; '.join(diffs)} (file vs given): leave the config out")
        return cls(None, network.model_cfg, cfg, network.metadata, onnx=network)

    @classmethod
    def from_random_init(
        cls, model_cfg: ModelConfig, device: Optional[str] = None,
        config: Optional[InferenceConfig] = None, seed: int = 0,
    ) -> "Detector":
        """An untrained network, only on explicit request (tests, benchmarks)."""
        log.warning("using a randomly initialised network: its detections are meaningless")
        torch.manual_seed(seed)
        model = build_model(model_cfg)
        return cls(model, model_cfg, override(config or InferenceConfig(), device=device), {"trained": False})

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def __call__(self, image: np.ndarray, K: Optional[np.ndarray] = None, depth: Optional[np.ndarray] = None,
                 floor: Optional[np.ndarray] = None, gravity: Optional[np.ndarray] = None) -> FrameResult:
        """`depth`: an optional depth image registered to `image` (float meters, or uint16
        millimetres; 0 / NaN: no measurement) that sets each person's distance (depth_fusion.py).
        `floor`: an optional floor plane (n, d) in the camera frame (floor_contact.py) that sets the
        distance of each person the depth image did not measure, and levels the image of a rolled
        camera first (level.py, cfg.level_roll_deg). `gravity`: without a floor, its direction (3,)
        in the camera frame (x right, y down, z forward), which levels a rolled camera alone."""
        timer = _StageTimer(self.device)
        image = check_rgb8(image)
        h, w = image.shape[:2]
        K = _check_intrinsics(K)
        depth = None if depth is None else check_depth_image(depth, (h, w))
        floor = None if floor is None else check_floor_plane(floor)
        down = floor[:3] if floor is not None else None if gravity is None else check_gravity(gravity)
        lev = None
        if down is not None and self.cfg.level_roll_deg >= 0:  # a rolled camera, seen level (level.py)
            lev = Leveller.from_gravity(down, K, (h, w), self.cfg.level_roll_deg)
        if lev is not None:  # from here on the level view (same size and K), until lev.to_camera
            image, depth, floor = lev.image(image), lev.depth(depth), lev.floor(floor)
        geom = self.input_geometry(h, w)
        x = to_tensor(resize_and_pad(image, geom), self.device, torch.float32)
        timer.lap("preprocess")

        out = self._run_network(x, geom, K, timer)
        out = {k: v[0].float() for k, v in out.items()}  # drop the batch of one
        timer.lap("heads")

        cam = queries_to_camera(out, geom, K, self.model_cfg.nearness_ref_focal)
        keep = self.select(cam)
        keep_t = torch.as_tensor(keep, device=self.device, dtype=torch.long)
        body = self.body(out["rot6d"][keep_t], out["shape"][keep_t])
        timer.lap("body")
        sources = np.full(len(keep), NETWORK_DEPTH, dtype=object)
        if depth is not None:
            body, measured = _fuse_depth(cam, keep, body, depth, (h, w), self.faces)
            sources[measured] = MEASURED_DEPTH
            timer.lap("depth")
        if floor is not None:
            unmeasured = sources == NETWORK_DEPTH  # a depth image's measurement stands
            body, on_floor = _stand_on_floor(cam, keep, body, floor, unmeasured, self.cfg.floor_angle_sigma)
            sources[on_floor] = FLOOR_DEPTH
            timer.lap("floor")

        humans = assemble_humans(
            cam, keep, out, body, (h, w),
            vertices=self.cfg.return_vertices or lev is not None, track=self.cfg.return_track_features,
        )  # fmt: skip
        for human, source in zip(humans, sources):
            human.depth_source = source
        frame = FrameResult(
            humans=humans, K=cam.K, K_source=cam.K_source,
            fov_y=fov_from_focal(float(cam.K[1, 1]), h), image_size=(h, w),
        )  # fmt: skip
        if lev is not None:  # back in the real camera; its boxes from the meshes
            lev.to_camera(frame, keep_vertices=self.cfg.return_vertices)
            frame.level_roll_deg = math.degrees(lev.angle)
        timer.lap("postprocess")
        frame.timings = timer.done()
        return frame

    def _run_network(self, x: torch.Tensor, geom, K: Optional[np.ndarray], timer) -> Dict[str, torch.Tensor]:
        """The head outputs of one input batch; laps "encoder" and "decoder" (PyTorch) or
        "network" (ONNX Runtime runs the graph as one); the caller laps "heads"."""
        if self.onnx is not None:
            out = self.onnx(x, self._input_K(geom, K))
            timer.lap("network")
            return out
        with self._autocast():
            cls_tok, patches, grid = self._network.encode(x)
            timer.lap("encoder")
            decoded = self._network.decode(patches, grid)
            timer.lap("decoder")
            return self._network.predict_heads(decoded, cls_tok, geom.input_hw, self._input_K(geom, K))

    def _input_K(self, geom, K: Optional[np.ndarray]) -> Optional[torch.Tensor]:
        """(1, 3, 3) given intrinsics in network-input pixels (root_frame "allocentric" / "ray"
        need the true rays), or None: the network uses its predicted FOV."""
        if K is None:
            return None
        K_in = intrinsics_for(geom, K, fov_pred=0.0)[1]  # the FOV is unused when K is given
        return torch.as_tensor(K_in, dtype=torch.float32, device=self.device)[None]

    @property
    def runtime(self) -> str:
        """What runs the network, for reports: "PyTorch 2.13.0 on cpu, float32" or
        "ONNX Runtime 1.32.0 (CPUExecutionProvider)"."""
        if self.onnx is not None:
            return f"ONNX Runtime {self.onnx.version} ({', '.join(self.onnx.providers)})"
        compiled = ", compiled" if self.cfg.compile else ""
        return f"PyTorch {torch.__version__} on {self.device}, {self.cfg.dtype}{compiled}"

    @property
    def merge_radius(self) -> float:
        """Duplicate-merging radius in use, meters: the config's, else the checkpoint's (0: off)."""
        return self.checkpoint_merge_radius if self.cfg.merge_radius is None else self.cfg.merge_radius

    @property
    def pad_rows(self) -> bool:
        """Whether the aspect padding adds rows above and below wide images: the config's, else the
        checkpoint's (true when absent: the paper's padding)."""
        return self.checkpoint_pad_rows if self.cfg.pad_rows is None else self.cfg.pad_rows

    def input_geometry(self, height: int, width: int) -> InputGeometry:
        """The network input an image of (height, width) gets under the padding settings in use."""
        ratios = self.model_cfg.train_aspect_ratios if self.cfg.pad_to_train_aspect else None
        return compute_geometry(height, width, self.model_cfg.image_size, self.model_cfg.patch_size, ratios,
                                self.pad_rows)  # fmt: skip

    @property
    def padding(self) -> str:
        """The aspect padding in use, in words (what `mhr2 eval` records)."""
        if not self.cfg.pad_to_train_aspect:
            return "none"
        return "nearest training aspect" + ("" if self.pad_rows else ", sides only")

    def select(self, cam) -> np.ndarray:
        """Indices of the queries to keep, best first (optional duplicate merging, which
        rewrites `cam.scores`; threshold; optional 3D NMS)."""
        c = self.cfg
        if self.merge_radius > 0:
            cam.scores = merge_duplicates(cam.scores, cam.pelvis_2d, cam.depth, float(cam.K[1, 1]), self.merge_radius)
        return select_queries(cam.scores, cam.positions, c.score_threshold, c.nms_distance, c.max_humans)

    def _autocast(self):
        dtype = DTYPES[self.cfg.dtype]
        if dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)


def _fuse_depth(cam, keep: np.ndarray, body: BodyOutput, depth: np.ndarray, image_hw, faces: np.ndarray):
    """Each kept person scaled to the depth image (depth_fusion.py); returns (scaled body,
    (M,) bool: scale measured)."""
    verts = body.vertices.float().cpu().numpy() + cam.positions[keep][:, None]  # (M, V, 3) camera frame
    found = depth_scales(verts, cam.K.astype(np.float64), depth, image_hw, faces)
    return _scale_people(cam, keep, body, found.scale), found.measured


def _stand_on_floor(cam, keep: np.ndarray, body: BodyOutput, floor: np.ndarray, free: np.ndarray,
                    angle_sigma: float):  # fmt: skip
    """The kept people of `free` (M,) bool scaled towards the floor (floor_contact.py); returns
    (scaled body, (M,) bool: on the floor)."""
    verts = body.vertices.float().cpu().numpy() + cam.positions[keep][:, None]  # (M, V, 3) camera frame
    found = floor_scales(verts, floor, angle_sigma)
    on_floor = found.measured & free
    return _scale_people(cam, keep, body, np.where(on_floor, found.scale, 1.0)), on_floor


def _scale_people(cam, keep: np.ndarray, body: BodyOutput, scale: np.ndarray) -> BodyOutput:
    """Each kept person scaled by `scale` (M,) about the camera centre: their position and depth
    in `cam` (in place) and the body's vertices, joints and height; pixels do not move."""
    cam.positions[keep] *= scale[:, None]
    cam.depth[keep] *= scale
    s = torch.as_tensor(scale, dtype=body.vertices.dtype, device=body.vertices.device)
    return dataclasses.replace(body, vertices=body.vertices * s[:, None, None], joints=body.joints * s[:, None, None],
                               height=body.height * s)  # fmt: skip


def _onnx_network(path, device: torch.device, cfg: InferenceConfig):
    """OnnxNetwork for `path`; refuses the settings that only the PyTorch network has."""
    from mhr2_ros.inference.onnx_network import OnnxNetwork

    if cfg.dtype != "float32" or cfg.compile:
        raise ConfigError(f"{path}: ONNX weights run in float32 through ONNX Runtime; dtype {cfg.dtype!r} and "
                          f"compile {cfg.compile} apply to .safetensors weights only")
    return OnnxNetwork(path, device, explicit_device=cfg.device != "auto")


def _checkpoint_merge_radius(metadata: dict) -> float:
    """The checkpoint JSON's "inference": {"merge_radius": meters}, 0 when absent."""
    value = (metadata.get("inference") or {}).get("merge_radius", 0.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f'checkpoint JSON: "inference": {{"merge_radius": ...}} must be a number of meters >= 0, '
                          f"got {value!r}")  # fmt: skip
    return float(value)


def _checkpoint_pad_rows(metadata: dict) -> bool:
    """The checkpoint JSON's "inference": {"pad_rows": true / false}, true when absent."""
    value = (metadata.get("inference") or {}).get("pad_rows", True)
    if not isinstance(value, bool):
        raise ConfigError(f'checkpoint JSON: "inference": {{"pad_rows": ...}} must be true or false, got {value!r}')
    return value


def _check_intrinsics(K) -> Optional[np.ndarray]:
    if K is None:
        return None
    K = np.asarray(K, dtype=np.float64)
    if (K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0
            or not np.allclose(K[2], [0.0, 0.0, 1.0])):  # fmt: skip
        raise InputError(
            f"intrinsics must be a finite 3x3 matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]] with positive "
            f"fx, fy (pixels); got {K.tolist()}"
        )
    return K


class _StageTimer:
    """Wall-clock per stage; synchronises CUDA so a stage's kernels count to it."""

    def __init__(self, device: torch.device) -> None:
        self.sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
        self.t0 = self.last = time.perf_counter()
        self.times: Dict[str, float] = {}

    def lap(self, name: str) -> None:
        self.sync()
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now

    def done(self) -> Dict[str, float]:
        self.times["total"] = self.last - self.t0
        return self.times

