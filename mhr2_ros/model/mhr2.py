"""Multi-HMR 2 network: ViT encoder -> DETR decoder -> heads (paper, section 3).

    images (B, 3, H, W), normalised with PIXEL_MEAN / PIXEL_STD, H and W multiples
    of the patch size (any aspect ratio)
      -> encode         cls (B, De), patches (B, Hp*Wp, De), grid (Hp, Wp)
      -> decode         Decoded: queries (B, N, Dd), reference points, proposals
                        (linear De -> Dd inside the decoder)
      -> predict_heads  dict of tensors, see `heads.py` for the contract

The stages are separate methods so that a benchmark can time each one and the
trainer can run the body model on matched queries only.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn

from mhr2_ros.body.anny_body import ANNY_TO_CAMERA
from mhr2_ros.config import ModelConfig
from mhr2_ros.geometry import intrinsics_from_fov_batch, ray_rotation
from mhr2_ros.model.decoder import Decoded, DetrDecoder
from mhr2_ros.model.heads import CameraHead, QueryHeads
from mhr2_ros.model.vit import ViTEncoder

logger = logging.getLogger(__name__)

# Heads run on every image token by `token_heads` (the score and the 4096-d track head are left
# out: the score of a token is the proposal logit, and the track head would dominate the cost).
TOKEN_HEAD_KEYS = ("loc", "nearness", "rot6d", "shape")


class MultiHMR2(nn.Module):
    """The full network; `forward(images)` returns the head outputs dict."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = ViTEncoder(cfg)
        self.decoder = DetrDecoder(cfg)
        self.camera_head = CameraHead(cfg)  # on the CLS token
        self.query_heads = QueryHeads(cfg)  # on every decoded query

    def encode(self, images: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, Tuple[int, int]]:
        """images (B, 3, H, W) -> cls (B, De), patches (B, Hp*Wp, De), (Hp, Wp)."""
        return self.encoder(images)

    def decode(self, patches: torch.Tensor, grid_hw: Tuple[int, int]) -> Decoded:
        """patches (B, Hp*Wp, De) on grid (Hp, Wp) -> decoded queries (B, N, Dd) with their
        reference points and the dense proposals (see `decoder.Decoded`)."""
        return self.decoder(patches, grid_hw)

    def predict_heads(
        self, decoded: Decoded, cls: torch.Tensor, image_hw: Tuple[int, int], K: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """decoded (`decode`), cls (B, De), image_hw = (H, W) input pixels -> outputs.

        `K` (B, 3, 3) intrinsics of the network input, used by root_frame "allocentric" / "ray"
        only (the viewing ray of each query); None: from the predicted FOV. The heads run outside
        autocast, in their weights' dtype: under bf16 autocast a pixel location near 768
        would otherwise be quantised to ~3 px steps. They are a small fraction of the
        compute. With query selection the outputs also hold "proposal_logits" (B, P) and
        "proposal_loc" (B, P, 2) pixels (training).
        """
        dtype = self.camera_head.mlp.fc1.weight.dtype
        with torch.autocast(device_type=cls.device.type, enabled=False):
            out = self.query_heads(decoded.queries.to(dtype), image_hw, decoded.points)
            out["fov"] = self.camera_head(cls.to(dtype))  # (B,) radians, vertical FOV
            root_to_camera(out, image_hw, K, self.cfg.root_frame)
        if decoded.proposals is not None:
            h, w = image_hw
            out["proposal_logits"] = decoded.proposals["logits"]
            out["proposal_loc"] = decoded.proposals["points"] * decoded.proposals["points"].new_tensor([w, h])
        return out

    def token_heads(
        self, decoded: Decoded, image_hw: Tuple[int, int], fov: torch.Tensor, K: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """Training aid (`TrainConfig.token_supervision`, needs query_selection): the query heads
        run on every normalised image token, from the pelvis that token proposes, so that the
        tokens holding a pelvis can be supervised like matched queries (dense, CenterNet-style
        auxiliary losses). Returns "token_<key>" (B, P, ...) for TOKEN_HEAD_KEYS; `fov` (B,)
        and `K` as in `predict_heads`."""
        if decoded.proposals is None:
            raise ValueError("token heads need a model with query_selection (dense proposals)")
        dtype = self.camera_head.mlp.fc1.weight.dtype
        with torch.autocast(device_type=decoded.queries.device.type, enabled=False):
            out = self.query_heads(decoded.proposals["tokens"].to(dtype), image_hw,
                                   decoded.proposals["points"].detach(), keys=TOKEN_HEAD_KEYS)  # fmt: skip
            out["fov"] = fov
            root_to_camera(out, image_hw, K, self.cfg.root_frame)
        return {f"token_{k}": v for k, v in out.items() if k in TOKEN_HEAD_KEYS}

    def forward(
        self, images: torch.Tensor, token_heads: bool = False, K: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """images (B, 3, H, W) -> outputs (`heads.py`); `token_heads`: also `token_heads()`
        (training); `K` (B, 3, 3) input intrinsics for root_frame "allocentric" / "ray" (else the
        predicted FOV)."""
        image_hw = (images.shape[-2], images.shape[-1])
        cls, patches, grid_hw = self.encode(images)
        decoded = self.decode(patches, grid_hw)
        out = self.predict_heads(decoded, cls, image_hw, K)
        if token_heads:
            out.update(self.token_heads(decoded, image_hw, out["fov"], K))
        return out


def root_to_camera(out: Dict[str, torch.Tensor], image_hw: Tuple[int, int], K: Optional[torch.Tensor],
                   root_frame: str) -> None:
    """root_frame "allocentric" (or the flawed "ray", config.py): out["rot6d"] root (bone 0)
    predicted relative to the viewing ray of out["loc"] is rotated into the camera frame, in
    place; "camera" leaves it. The ray uses the detached location and camera (K (B, 3, 3), else
    the predicted FOV): the pose loss moves the pose, not the pelvis. The body model's rotations
    are in Anny axes (body/anny_body.py), so the ray's rotation, a camera-axes one, turns the root
    in Anny axes as ANNY_TO_CAMERA.T @ ray @ ANNY_TO_CAMERA; "ray" skipped that change of axes.
    A function, not only a method, so that the ONNX Runtime backend (whose graph stops before
    it) turns the root exactly as the network does."""
    if root_frame not in ("allocentric", "ray"):
        return
    if K is None:
        h, w = image_hw
        K = intrinsics_from_fov_batch(out["fov"].detach(), w, h)
    rot = ray_rotation(out["loc"].detach(), K[:, None].to(out["loc"].dtype))  # (B, N, 3, 3) camera axes
    if root_frame == "allocentric":
        axes = ANNY_TO_CAMERA.to(rot)
        rot = axes.T @ rot @ axes  # the same rotation in Anny axes
    root = out["rot6d"][..., 0, :].reshape(*rot.shape[:2], 2, 3)  # the two columns
    root = (rot[:, :, None] @ root[..., None]).squeeze(-1).reshape(*rot.shape[:2], 6)
    out["rot6d"] = torch.cat([root[:, :, None], out["rot6d"][:, :, 1:]], dim=2)


def build_model(cfg: ModelConfig) -> MultiHMR2:
    """A randomly initialised network for `cfg` (load weights separately)."""
    model = MultiHMR2(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    logger.debug("built MultiHMR2: %.1f M parameters, encoder %s", n_params / 1e6, cfg.pos_embed)
    return model


__all__ = ["MultiHMR2", "build_model", "root_to_camera", "TOKEN_HEAD_KEYS"]
