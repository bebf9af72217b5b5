"""Every message of one frame, built the same way for the node and for `mhr2 bag`.

The node publishes what this returns; the offline bag writer records it. Keeping
the choice of messages here (what is on, which people get TF and markers) means
the tests of this module cover what the robot publishes.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

import numpy as np

from mhr2_ros.inference.results import FrameResult
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.hri import DEFAULT_NAMESPACE, IDS_LIST, HriFrame, build_hri
from mhr2_ros.ros.markers import MarkerOptions, MarkerTracker
from mhr2_ros.ros.messages import (
    CovariancePrior,
    HumanOptions,
    SourceHeader,
    build_human_array,
    build_mesh_topology,
)
from mhr2_ros.ros.people import PEOPLE, build_people
from mhr2_ros.ros.persons import person_views
from mhr2_ros.ros.tf import build_transforms, frame_id_problem

log = logging.getLogger(__name__)

# Outputs whose messages come from packages a robot may not have: switch -> (a type of
# it, the package to install).
OPTIONAL_OUTPUTS = {"publish_people": (PEOPLE, "people_msgs"), "publish_hri": (IDS_LIST, "hri_msgs")}


@dataclass(frozen=True)
class OutputOptions:
    publish_tf: bool = True  # body_<id> transforms
    publish_body_parts: bool = True  # with publish_tf: the REP-155 part frames (head_<id>, ...) under body_<id>
    publish_markers: bool = True  # RViz MarkerArray
    publish_meshes: bool = False  # mesh vertices inside HumanArray
    publish_people: bool = False  # people_msgs/People
    publish_hri: bool = False  # ROS4HRI (REP-155) body topics
    hri_namespace: str = DEFAULT_NAMESPACE  # where the ROS4HRI topics live: <ns>/bodies/...
    marker_mesh: bool = True  # mesh TRIANGLE_LIST among the markers
    marker_mesh_resolution: float = 0.02  # meters: clustering cell of the mesh marker; 0: full mesh
    marker_lifetime: float = 0.0  # seconds; 0: until deleted
    prior: CovariancePrior = field(default_factory=CovariancePrior)

    @property
    def needs_vertices(self) -> bool:
        """Whether the detector must return vertices for these outputs."""
        return self.publish_meshes or (self.publish_markers and self.marker_mesh)


@dataclass
class FrameOutputs:
    humans: object  # mhr2_ros/HumanArray (always)
    transforms: List[object]  # geometry_msgs/TransformStamped; empty when publish_tf is off
    markers: Optional[object]  # visualization_msgs/MarkerArray or None
    people: Optional[object]  # people_msgs/People or None
    hri: Optional[HriFrame] = None  # ROS4HRI messages (publish_hri) or None


class OutputBuilder:
    """Stateful only through the markers (to delete those of vanished people)."""

    def __init__(self, f: MessageFactory, faces: Optional[np.ndarray], options: OutputOptions = OutputOptions()):
        self.f = f
        self.faces = faces
        self._markers = MarkerTracker(f, faces)
        self._warned_frames = set()
        self._markers_shown = False  # markers are on screen (published since the last clear)
        self.options = options

    @property
    def options(self) -> OutputOptions:
        return self._options

    @options.setter
    def options(self, options: OutputOptions) -> None:
        self._options = options
        self._markers.options = MarkerOptions(
            mesh=options.marker_mesh, mesh_resolution=options.marker_mesh_resolution, lifetime=options.marker_lifetime
        )

    def build(
        self, frame: FrameResult, header: SourceHeader, tracks: Optional[Iterable] = None,
        intrinsics_source: Optional[str] = None, image: Optional[np.ndarray] = None,
    ) -> FrameOutputs:  # fmt: skip
        """Every output of one detected image; `image`: its (H, W, 3) uint8 RGB pixels, in the frame's
        pixel coordinates (the ROS4HRI cropped topics; None: none)."""
        o = self._options
        persons = person_views(frame, tracks)
        humans = build_human_array(
            self.f, frame, header, persons, HumanOptions(o.publish_meshes, o.prior), intrinsics_source
        )
        tf_ok = o.publish_tf and self._frame_ok(header.frame_id)
        transforms = build_transforms(self.f, header, persons, o.publish_body_parts) if tf_ok else []
        markers = self._markers.build(header, persons) if o.publish_markers else self._markers_off(header)
        self._markers_shown = o.publish_markers
        people = build_people(self.f, header, persons) if o.publish_people else None
        hri = build_hri(self.f, header, persons, frame.image_size, o.hri_namespace, image) if o.publish_hri else None
        return FrameOutputs(humans, transforms, markers, people, hri)

    def clear_markers(self, header: SourceHeader) -> object:
        self._markers_shown = False
        return self._markers.clear(header)

    def _markers_off(self, header: SourceHeader) -> Optional[object]:
        """None, except once after publish_markers went off: a DELETEALL, so RViz does not
        keep the last markers forever (their lifetime is 0 by default)."""
        return self.clear_markers(header) if self._markers_shown else None

    def mesh_topology(self, stamp_ns: int, num_vertices: int, rig: str) -> object:
        if self.faces is None:
            raise ValueError("no mesh faces given to the OutputBuilder")
        return build_mesh_topology(self.f, self.faces, num_vertices, stamp_ns, rig)

    def _frame_ok(self, frame_id: str) -> bool:
        """TF needs a valid parent frame; say so once per bad frame id, not per image."""
        problem = frame_id_problem(frame_id)
        if problem and frame_id not in self._warned_frames:
            self._warned_frames.add(frame_id)
            log.warning("no TF published: image frame_id %r %s (set the camera_frame parameter)", frame_id, problem)
        return not problem


def available_options(options: OutputOptions, f: MessageFactory) -> Tuple[OutputOptions, Tuple[str, ...]]:
    """`options` with the outputs `f` cannot build switched off, and the packages they lack
    (a node without people_msgs publishes everything else instead of failing each image)."""
    lacking = [name for name, (typename, _) in OPTIONAL_OUTPUTS.items() if not f.has_type(typename)]
    off = {name: False for name in lacking if getattr(options, name)}
    missing = tuple(OPTIONAL_OUTPUTS[name][1] for name in off)
    return (dataclasses.replace(options, **off) if off else options), missing


def replace_options(options: OutputOptions, **changes) -> OutputOptions:
    """A copy with `changes` applied (CovariancePrior fields are accepted flat)."""
    prior_names = {f.name for f in dataclasses.fields(CovariancePrior)}
    prior_changes = {k: changes.pop(k) for k in list(changes) if k in prior_names}
    prior = dataclasses.replace(options.prior, **prior_changes)
    return dataclasses.replace(options, prior=prior, **changes)
