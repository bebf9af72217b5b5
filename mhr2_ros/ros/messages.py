"""Pure builders: FrameResult (+ tracks) + source header -> mhr2_ros messages.

Every function takes a MessageFactory, so the same code fills rclpy messages on a
robot and rosbags messages in tests and in `mhr2 bag` (see factory.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from mhr2_ros.body import JOINT_NAMES, SHAPE_NAMES
from mhr2_ros.geometry import matrix_to_quaternion_xyzw
from mhr2_ros.inference.covariance import LINEAR, POSE_DOF, CovariancePrior, pose_covariance
from mhr2_ros.inference.results import DEPTH_SOURCES, GIVEN_K, PREDICTED_K, FrameResult
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.persons import STATES, PersonView

HUMAN = "mhr2_ros/msg/Human"
HUMAN_ARRAY = "mhr2_ros/msg/HumanArray"
MESH_TOPOLOGY = "mhr2_ros/msg/MeshTopology"

UNKNOWN_VARIANCE = 1.0e6  # Human.UNKNOWN_VARIANCE: variance of what is not estimated
HEADING_NETWORK, HEADING_VELOCITY = 0, 1  # Human.HEADING_*: where the heading comes from
INTRINSICS_SOURCES = ("camera_info", GIVEN_K, PREDICTED_K)  # HumanArray.INTRINSICS_*


@dataclass(frozen=True)
class SourceHeader:
    """The source image's header: capture time and optical frame."""

    stamp_ns: int  # nanoseconds since the epoch (or sim time)
    frame_id: str  # camera optical frame, e.g. camera_color_optical_frame


@dataclass(frozen=True)
class HumanOptions:
    with_vertices: bool = False  # fill Human.vertices (publish_meshes)
    prior: CovariancePrior = field(default_factory=CovariancePrior)


def twist_covariance(person: PersonView) -> np.ndarray:
    """6x6 twist covariance: the tracker's linear block, angular unknown."""
    cov = np.diag(np.full(POSE_DOF, UNKNOWN_VARIANCE))
    if person.velocity_cov is not None:
        cov[LINEAR, LINEAR] = person.velocity_cov
    return cov


def _point(f: MessageFactory, xyz) -> object:
    x, y, z = (float(v) for v in xyz)
    return f.new("geometry_msgs/msg/Point", x=x, y=y, z=z)


def pose_message(f: MessageFactory, position, rotation) -> object:
    """geometry_msgs/Pose from a position (3,) and a rotation matrix (3, 3)."""
    qx, qy, qz, qw = matrix_to_quaternion_xyzw(rotation).tolist()
    quaternion = f.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw)
    return f.new("geometry_msgs/msg/Pose", position=_point(f, position), orientation=quaternion)


def build_human(f: MessageFactory, person: PersonView, focal: float, options: HumanOptions,
                k_predicted: bool = False) -> object:
    """Human of one person; `k_predicted`: the frame's K is the network's (a wider covariance prior)."""
    h = person.human
    position, rotation = person.position, person.rotation  # a track not seen now: where the motion model puts it
    covariance = pose_covariance(position, rotation, focal, options.prior, h.depth_source, k_predicted,
                                 person.heading_from_velocity)
    if person.predicted_cov is not None:  # the prediction's spread on top of a detection's: conservative
        covariance[LINEAR, LINEAR] += person.predicted_cov
    pose = f.new(
        "geometry_msgs/msg/PoseWithCovariance",
        pose=pose_message(f, position, rotation), covariance=covariance.reshape(-1),
    )
    vx, vy, vz = (0.0, 0.0, 0.0) if person.velocity is None else person.velocity.tolist()
    twist = f.new(
        "geometry_msgs/msg/TwistWithCovariance",
        twist=f.new("geometry_msgs/msg/Twist", linear=f.new("geometry_msgs/msg/Vector3", x=vx, y=vy, z=vz)),
        covariance=twist_covariance(person).reshape(-1),
    )
    vertices = person.body_points(h.vertices) if options.with_vertices and h.vertices is not None else np.zeros((0, 3))
    return f.new(
        HUMAN,
        id=person.id,
        tracking_state=STATES.index(person.state),
        confidence=float(h.score),
        depth_source=DEPTH_SOURCES.index(h.depth_source),
        heading_source=HEADING_VELOCITY if person.heading_from_velocity else HEADING_NETWORK,
        pelvis=pose,
        velocity=twist,
        box=np.asarray(h.box, np.float32),
        pelvis_pixel=np.asarray(h.pelvis_2d, np.float32),
        height=float(h.height),
        keypoints=f.points(person.body_points(h.joints_3d)),
        keypoints_2d=np.asarray(h.keypoints_2d, np.float32).reshape(-1),
        shape=np.asarray(h.shape, np.float32),
        vertices=np.asarray(vertices, np.float32).reshape(-1),
    )


def build_human_array(
    f: MessageFactory, frame: FrameResult, header: SourceHeader, persons: Sequence[PersonView],
    options: HumanOptions = HumanOptions(), intrinsics_source: Optional[str] = None,
) -> object:  # fmt: skip
    """HumanArray with header = the source image's header.

    `intrinsics_source` overrides frame.K_source when the caller knows better
    ("camera_info" when K came from a camera_info topic).
    """
    source = intrinsics_source or frame.K_source
    if source not in INTRINSICS_SOURCES:
        raise ValueError(f"intrinsics source {source!r} is not one of {INTRINSICS_SOURCES}")
    K = np.asarray(frame.K, dtype=np.float64)
    focal = float(K[1, 1])
    height, width = (int(v) for v in frame.image_size)
    humans: List[object] = [build_human(f, p, focal, options, source == PREDICTED_K) for p in persons]
    return f.new(
        HUMAN_ARRAY,
        header=f.header(header.stamp_ns, header.frame_id),
        k=K.reshape(-1),
        intrinsics_source=source,
        fov_y=float(frame.fov_y),
        image_height=height,
        image_width=width,
        joint_names=list(JOINT_NAMES),
        shape_names=list(SHAPE_NAMES),
        humans=humans,
    )


def build_mesh_topology(
    f: MessageFactory, faces: np.ndarray, num_vertices: int, stamp_ns: int, rig: str, body_model: str = "anny"
) -> object:
    """MeshTopology: the constant triangles of Human.vertices (published once, latched)."""
    faces = np.asarray(faces)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must be an (F, 3) array, got shape {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
        raise ValueError(f"faces index outside [0, {num_vertices})")
    return f.new(
        MESH_TOPOLOGY,
        header=f.header(stamp_ns, ""),
        body_model=body_model,
        rig=rig,
        num_vertices=int(num_vertices),
        faces=faces.astype(np.uint32).reshape(-1),
    )
