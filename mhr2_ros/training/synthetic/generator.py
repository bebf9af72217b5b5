"""The generator's entry point: a seeded clip of rendered frames with ground truth.

    clip = SyntheticClip(SynthConfig(frames=30), seed=0)   # plans; renders nothing yet
    for frame in clip:                                      # or clip.frame(i), any order
        frame.image, frame.depth, frame.instance, frame.truth

Random streams are derived from the seed with numpy SeedSequence entropy lists, one
per purpose (the clip's plan, each independent scene, each frame's sensor noise), so
frames can be rendered in any order and still be identical.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Dict, Iterator, Optional

import numpy as np

from mhr2_ros.training.synthetic.assets import SynthAssets, assets_for
from mhr2_ros.training.synthetic.bodies import frame_dofs, pose_bodies
from mhr2_ros.training.synthetic.config import SynthConfig, config_to_dict, validate
from mhr2_ros.training.synthetic.plan import ClipPlan, plan_clip
from mhr2_ros.training.synthetic.meshes import SceneMeshes
from mhr2_ros.training.synthetic.render import render_frame
from mhr2_ros.training.synthetic.truth import FrameTruth, mask_boxes, projected_boxes
from mhr2_ros.geometry import project

log = logging.getLogger(__name__)
FORMAT_VERSION = 1
SHADOW_RADIUS_PER_HEIGHT = 0.22  # blob shadow radius / body height
_PLAN, _SCENE, _NOISE = 0, 1, 2  # SeedSequence purposes


@dataclass
class SynthFrame:
    """One frame: what a camera would give, and the exact ground truth."""

    index: int  # frame number in the clip
    time: float  # seconds since the first frame
    image: np.ndarray  # (H, W, 3) uint8 RGB
    depth: np.ndarray  # (H, W) float32 camera z in meters, 0 where no surface
    instance: np.ndarray  # (H, W) int32 id of the visible person, -1 elsewhere
    truth: FrameTruth


@functools.lru_cache(maxsize=1)
def default_body():
    """The makehuman-rig BodyModel, built once per process."""
    from mhr2_ros.body import BodyModel

    return BodyModel("makehuman")


def _rng(seed: int, purpose: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), purpose, int(index)]))


class SyntheticClip:
    """A planned clip; frames render on demand (CPU or CUDA per config.render.device)."""

    def __init__(self, config: SynthConfig, seed: int, body=None) -> None:
        self.config = validate(config)
        self.seed = int(seed)
        self.assets: SynthAssets = assets_for(body if body is not None else default_body())
        self._plan: Optional[ClipPlan] = None
        if not config.independent:
            self._plan = plan_clip(config, _rng(seed, _PLAN), self.assets, config.frames)

    def __len__(self) -> int:
        return self.config.frames

    def __iter__(self) -> Iterator[SynthFrame]:
        for i in range(len(self)):
            yield self.frame(i)

    def plan_for(self, index: int) -> ClipPlan:
        """The plan frame `index` comes from (a fresh scene per frame when independent)."""
        if self._plan is not None:
            return self._plan
        return plan_clip(self.config, _rng(self.seed, _SCENE, index), self.assets, 1)

    def frame(self, index: int) -> SynthFrame:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} out of range 0..{len(self) - 1}")
        plan = self.plan_for(index)
        f = 0 if self.config.independent else index
        return render_planned(plan, f, index, self.assets, self.config, _rng(self.seed, _NOISE, index))

    @property
    def info(self) -> Dict:
        """JSON-able description of the clip (what clip.json holds besides the format)."""
        info = {"format_version": FORMAT_VERSION, "seed": self.seed, "frames": len(self),
                "fps": self.config.motion.fps, "independent": self.config.independent,
                "config": config_to_dict(self.config)}  # fmt: skip
        if self._plan is not None:
            cam = self._plan.camera
            info["image_size"] = [cam.height, cam.width]
            info["people"] = [_person_info(p, h) for p, h in zip(self._plan.people, self._plan.heights)]
        return info


def _person_info(p, height: float) -> Dict:
    return {"id": p.id, "shape": [round(float(v), 6) for v in p.phenotype.shape],
            "age_years": round(p.phenotype.age_years, 3), "age_group": p.phenotype.age_group,
            "height_m": round(float(height), 4), "behaviour": p.behaviour, "route": p.route,
            "label": p.label, "gesture": p.gesture}  # fmt: skip


def generate_clip(config: SynthConfig, seed: int, body=None) -> Iterator[SynthFrame]:
    """Frames of the clip (config, seed), in order, rendered in memory."""
    return iter(SyntheticClip(config, seed, body))


def render_planned(plan: ClipPlan, f: int, index: int, assets: SynthAssets, cfg: SynthConfig,
                   noise_rng: np.random.Generator) -> SynthFrame:  # fmt: skip
    """Pose, render and annotate frame f of a plan."""
    traj, cam = plan.trajectories, plan.camera
    dofs = frame_dofs(plan.people, traj, f)
    posed = pose_bodies(assets.body, assets.rig, plan.people, dofs, traj.yaw[f], traj.position[f], cam)
    scene = SceneMeshes(
        people=posed.vertices, people_attrs=plan.attrs, faces=assets.body.faces.cpu(),
        vertex_faces=assets.vertex_faces, boxes=plan.boxes, ground=posed.ground,
        radius=SHADOW_RADIUS_PER_HEIGHT * plan.heights,
    )  # fmt: skip
    device = cfg.render.device
    out = render_frame(scene, cam, plan.layers(device), plan.lighting, noise_rng, device, cfg.render.budget)
    ids = np.array([p.id for p in plan.people], dtype=np.int32)
    instance = np.where(out.owner >= 0, ids[np.clip(out.owner, 0, None)] if len(ids) else -1, -1).astype(np.int32)
    truth = _truth(plan, posed, out, ids, cfg.vertices)
    return SynthFrame(index, float(traj.time[f]), out.image, out.depth, instance, truth)


def _truth(plan: ClipPlan, posed, out, ids: np.ndarray, keep_vertices: bool) -> FrameTruth:
    cam = plan.camera
    K = cam.K.astype(np.float64)
    verts = posed.vertices.double().numpy()
    joints = posed.joints.double().numpy()
    box, crosses = projected_boxes(project(verts, K), cam.width, cam.height) if len(ids) else \
        (np.zeros((0, 4), np.float32), np.zeros(0, bool))  # fmt: skip
    unoccluded = out.unoccluded.astype(np.int32)
    visible = out.visible.astype(np.int32)
    f32 = lambda a: np.asarray(a, dtype=np.float32)  # noqa: E731
    return FrameTruth(
        K=f32(cam.K), fov_y=float(cam.fov_y), image_size=(cam.height, cam.width), camera_rotation=f32(cam.R),
        camera_height=float(cam.height_m), floor_plane=f32(cam.floor_plane()), ids=ids,
        shape=posed.shape.numpy(), pose_6d=posed.pose_6d.numpy(), position=f32(posed.position),
        pelvis_2d=f32(project(posed.position.astype(np.float64), K)).reshape(-1, 2),
        depth=f32(posed.position[:, 2]), orientation=f32(posed.orientation), height=f32(posed.height),
        joints_3d=f32(joints), joints_2d=f32(project(joints, K)), box=box,
        box_visible=mask_boxes(out.owner, len(ids)), visible_pixels=visible, unoccluded_pixels=unoccluded,
        visibility=f32(np.where(unoccluded > 0, visible / np.maximum(unoccluded, 1), 0.0)),
        truncated=(visible > 0) & crosses,  # in view (a pixel seen) and cut by the border
        age_years=f32([p.phenotype.age_years for p in plan.people]),
        label=np.array([p.label for p in plan.people], dtype="<U24"),
        vertices=f32(verts) if keep_vertices else None,
    )  # fmt: skip
