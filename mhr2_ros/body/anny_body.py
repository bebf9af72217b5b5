"""Anny body model wrapper: (6D bone rotations, phenotypes) -> mesh, joints, pelvis.

Anny's own frame is Z up, -Y forward (the face looks towards -Y), +X the body's
left, with the pelvis (the `root` bone head) at the origin. Everything this
wrapper returns is rotated into the camera (optical) frame and centred on the
pelvis, so the detector only has to add the pelvis position:

    x_cam = ANNY_TO_CAMERA @ x_anny

With an identity root rotation the person stands upright facing the camera.
The pelvis orientation is reported as the rotation from the REP-103 body frame
(x forward out of the chest, y to the body's left, z up) to the camera frame,
which is what a `body_<id>` TF frame needs.
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from dataclasses import dataclass

import torch

# Joint names, order and skeleton live in body/joints.py (torch-free: ROS parameter checks read them).
from mhr2_ros.body.joints import (  # noqa: F401  (JOINT_NAMES, PELVIS re-exported: dataset.py, clip_check.py)
    BONE_JOINTS, COCO_NAMES, FOOT_NAMES, JOINT_NAMES, PART_BONES, PELVIS,
)  # fmt: skip
from mhr2_ros.errors import ConfigError
from mhr2_ros.geometry import rotation_6d_to_matrix
from mhr2_ros.inference.results import SHAPE_NAMES

log = logging.getLogger(__name__)


# Anny axes -> camera axes: X (body left) -> x (image right), Z (up) -> -y, Y (backward) -> z.
ANNY_TO_CAMERA = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# REP-103 body axes (forward, left, up) expressed in Anny axes: (-Y, +X, +Z).
BODY_TO_ANNY = torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
ANNY_UP_AXIS = 2
ANNY_NO_WARP_WARNING = "Fallback to lbs skinning"  # the start of anny's warning when Warp cannot be imported


@dataclass
class BodyOutput:
    """Batched body model output; camera axes, pelvis at the origin, meters."""

    vertices: torch.Tensor  # (B, V, 3) posed mesh vertices
    joints: torch.Tensor  # (B, J, 3) joints in JOINT_NAMES order; joints[:, PELVIS] == 0
    orientation: torch.Tensor  # (B, 3, 3) REP-103 body frame -> camera frame
    height: torch.Tensor  # (B,) standing (rest pose) height in meters
    # (B, P, 3, 3) body axes -> camera per joints.BODY_PARTS bone: the bone's turn from the rest pose
    # applied to the body axes (every part is `orientation` at the rest pose; the root's would be it)
    part_rotations: torch.Tensor


@functools.lru_cache(maxsize=4)
def _build_anny(rig: str):
    """Build the Anny model once per process: the first build takes about a minute
    and is cached on disk under ~/.cache/anny by the anny package."""
    try:
        import warp  # anny skins with NVIDIA Warp where it is installed; keep its banner off stdout

        warp.config.log_level = warp.LOG_WARNING
        has_warp = True
    except ImportError:  # anny then skins in torch: the same result with more memory
        has_warp = False
    import anny

    log.info("loading the Anny body model (rig %r); the very first build takes about a minute, then it is cached", rig)
    try:
        with warnings.catch_warnings():
            if not has_warp:  # anny's warning would repeat in every data worker; said once here, at DEBUG
                warnings.filterwarnings("ignore", message=ANNY_NO_WARP_WARNING)
                log.debug("NVIDIA Warp is not installed: Anny skins in torch (the same result, more memory)")
            model = anny.Anny(rig=rig)
    except (ValueError, AssertionError, FileNotFoundError) as exc:
        raise ConfigError(f"cannot build the Anny body model with rig {rig!r}: {exc}") from exc
    regressor = anny.KeypointsRegressor.coco(model, labels=list(COCO_NAMES + FOOT_NAMES))
    return model, regressor


class BodyModel(torch.nn.Module):
    """Differentiable Anny forward for a batch of people.

    Only the queries that were selected (inference) or matched (training) go
    through it: it is the expensive part of a query.
    """

    def __init__(self, rig: str = "makehuman") -> None:
        super().__init__()
        anny_model, regressor = _build_anny(rig)
        # Private float32 copies: the cached models stay untouched (float64, CPU).
        if tuple(anny_model.phenotype_labels) != SHAPE_NAMES:
            raise ConfigError(
                f"Anny phenotypes {anny_model.phenotype_labels} differ from SHAPE_NAMES {SHAPE_NAMES}"
            )
        self.anny = _copy_module(anny_model).to(torch.float32)
        self.regressor = _copy_module(regressor).to(torch.float32)
        self.rig = rig
        self.bone_names = tuple(self.anny.bone_labels)
        self._bone_joint_ids = [self.bone_names.index(bone) for _, bone in BONE_JOINTS]
        # the part bones and their ancestors by depth in the tree: a bone's turn is its parent's turn
        # times its own local-ref delta, one batched product per depth
        self._part_tree = PartTree(list(self.anny.bone_parents), [self.bone_names.index(b) for b in PART_BONES])
        self.register_buffer("anny_to_camera", ANNY_TO_CAMERA.clone(), persistent=False)
        self.register_buffer("body_to_anny", BODY_TO_ANNY.clone(), persistent=False)
        faces = self.anny.get_triangular_faces().to(torch.int64)
        self.register_buffer("faces", faces, persistent=False)  # (F, 3) vertex indices

    @property
    def num_bones(self) -> int:
        return len(self.bone_names)

    @property
    def num_vertices(self) -> int:
        return int(self.anny.template_vertices.shape[0])

    def forward(self, rot6d: torch.Tensor, shape: torch.Tensor) -> BodyOutput:
        """rot6d: (B, num_bones, 6) local bone rotations, root first; shape: (B, 6)
        phenotypes in [0, 1], SHAPE_NAMES order.

        Every rotation, the root's included, is in Anny axes: a root rotation R turns the
        body about the pelvis by ANNY_TO_CAMERA @ R @ ANNY_TO_CAMERA.T in camera axes."""
        batch = rot6d.shape[0]
        if rot6d.shape[1:] != (self.num_bones, 6):
            raise ValueError(
                f"rot6d must be (B, {self.num_bones}, 6) for rig {self.rig!r}, got {tuple(rot6d.shape)}"
            )
        if tuple(shape.shape) != (batch, len(SHAPE_NAMES)):
            raise ValueError(
                f"shape must be (B, {len(SHAPE_NAMES)}) phenotypes {SHAPE_NAMES} with the B={batch} "
                f"of rot6d, got {tuple(shape.shape)}"
            )
        if batch == 0:
            return self._empty(rot6d)
        with torch.autocast(rot6d.device.type, enabled=False):  # skinning in bf16 costs millimetres
            return self._posed(rot6d, shape)

    def rest_height(self, shape: torch.Tensor) -> torch.Tensor:
        """(B, 6) phenotypes in [0, 1] -> (B,) standing (rest pose) heights in meters: `forward`'s
        `height` bit for bit (a test holds it) at about a fifth of the cost, from the shape blend
        alone, without bones or skinning (the synthetic scenes size people before posing them).
        Reads Anny's phenotype blend through its own methods (anny 0.6.2, pinned in setup.cfg)."""
        if shape.ndim != 2 or shape.shape[1] != len(SHAPE_NAMES):
            raise ValueError(
                f"shape must be (B, {len(SHAPE_NAMES)}) phenotypes {SHAPE_NAMES}, got {tuple(shape.shape)}")
        if shape.shape[0] == 0:
            return shape.new_zeros(0)
        with torch.autocast(shape.device.type, enabled=False):
            _, phenotypes, local, facial = self.anny.get_tensor_inputs(None, shape.float().clamp(0.0, 1.0), None, None)
            coeffs = self.anny._get_phenotype_blendshape_coefficients(phenotypes, local, facial)
            rest = self.anny.get_rest_vertices(coeffs)[..., ANNY_UP_AXIS]  # (B, V)
            return _height(rest).to(shape.dtype)

    def part_rotations(self, rot6d: torch.Tensor) -> torch.Tensor:
        """(B, num_bones, 6) local bone rotations -> (B, P, 3, 3) `forward`'s part_rotations, from the
        kinematic chain alone (no shape, no skinning: what the evaluation needs of ground truth)."""
        if rot6d.ndim != 3 or rot6d.shape[1:] != (self.num_bones, 6):
            raise ValueError(f"rot6d must be (B, {self.num_bones}, 6) for rig {self.rig!r}, got {tuple(rot6d.shape)}")
        with torch.autocast(rot6d.device.type, enabled=False):
            return self._part_rotations(rotation_6d_to_matrix(rot6d.float())).to(rot6d.dtype)

    def _part_rotations(self, rotations: torch.Tensor) -> torch.Tensor:
        """(B, num_bones, 3, 3) local-ref deltas (Anny's rest axes) -> (B, P, 3, 3) body axes -> camera
        per BODY_PARTS bone: a bone's skinning turn is the product of the deltas from the root down to
        it (test_body_conventions holds it to Anny's own bone poses)."""
        tree = self._part_tree
        turns = rotations[:, tree.roots]  # (B, n, 3, 3): the turns of the bones reached so far
        for bones, parent_slots in tree.levels:
            turns = torch.cat([turns, turns[:, parent_slots] @ rotations[:, bones]], dim=1)
        return self.anny_to_camera @ turns[:, tree.part_slots] @ self.body_to_anny

    def _posed(self, rot6d: torch.Tensor, shape: torch.Tensor) -> BodyOutput:
        batch, dtype = rot6d.shape[0], rot6d.dtype
        rotations = rotation_6d_to_matrix(rot6d.float())  # (B, J, 3, 3)
        pose = torch.zeros(batch, self.num_bones, 4, 4, device=rot6d.device)
        pose[..., :3, :3] = rotations
        pose[..., 3, 3] = 1.0
        out = self.anny(  # 'local-ref' (Anny's default): deltas in rest world axes, see training/synthetic/rig.py
            pose_parameters=pose, phenotype_kwargs=shape.float().clamp(0.0, 1.0), pose_parameterization="local-ref"
        )
        pelvis = out["bone_poses"][:, 0, :3, 3]  # (B, 3) Anny frame; the root head
        vertices = out["vertices"] - pelvis[:, None]
        bone_heads = out["bone_poses"][:, self._bone_joint_ids, :3, 3] - pelvis[:, None]
        keypoints = self.regressor({"vertices": vertices})  # (B, 23, 3)
        joints = torch.cat([bone_heads, keypoints], dim=1)
        height = _height(out["rest_vertices"][..., ANNY_UP_AXIS])
        root_rotation = out["bone_poses"][:, 0, :3, :3]  # (B, 3, 3) in the Anny frame; its rest is identity
        to_cam = self.anny_to_camera
        return BodyOutput(
            vertices=(vertices @ to_cam.T).to(dtype),
            joints=(joints @ to_cam.T).to(dtype),
            orientation=(to_cam @ root_rotation @ self.body_to_anny).to(dtype),
            height=height.to(dtype),
            part_rotations=self._part_rotations(rotations).to(dtype),
        )

    def _empty(self, like: torch.Tensor) -> BodyOutput:
        z = like.new_zeros
        return BodyOutput(
            vertices=z(0, self.num_vertices, 3),
            joints=z(0, len(JOINT_NAMES), 3),
            orientation=z(0, 3, 3),
            height=z(0),
            part_rotations=z(0, len(PART_BONES), 3, 3),
        )


class PartTree:
    """The bones `targets` hang from, level by level: `roots` (the parentless ones), then per depth
    (bone indices, the slots of their parents among the bones before them); `part_slots`: where each
    target ends up. Slots number the bones in that order (roots first)."""

    def __init__(self, parents: list, targets: list) -> None:
        needed = set()
        for bone in targets:
            while bone >= 0 and bone not in needed:
                needed.add(bone)
                bone = parents[bone]
        self.roots = sorted(b for b in needed if parents[b] < 0)
        slot = {b: i for i, b in enumerate(self.roots)}
        level, self.levels = self.roots, []
        while True:
            level = sorted(b for b in needed if parents[b] in level)
            if not level:
                break
            self.levels.append((level, [slot[parents[b]] for b in level]))
            slot.update({b: len(slot) + i for i, b in enumerate(level)})
        self.part_slots = [slot[b] for b in targets]


def _height(rest_up: torch.Tensor) -> torch.Tensor:
    """(B, V) up coordinates of rest-pose vertices -> (B,) heights: top to bottom."""
    return rest_up.max(dim=1).values - rest_up.min(dim=1).values


def _copy_module(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module)
