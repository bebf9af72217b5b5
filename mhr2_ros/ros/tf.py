"""TF: one `body_<id>` frame per visible person, child of the image's optical frame, and
optionally its REP-155 body part frames as children of it.

REP-155 names a person's body frame `body_<id>`; REP-103 gives its axes (x forward
out of the chest, y to the body's left, z up), which is what Human.orientation
maps to the camera frame (a walking track's faces its velocity: tracking/heading.py). The
translation is the pelvis position. Frames are stamped with the image time so TF lookups
interpolate against the right instant.

The part frames `<part>_<id>` (head_h3, l_wrist_h3, ...; body.joints.BODY_PARTS: REP-155's
kinematic model of the human, which asks for them to be children of `body_<id>`) sit on the
body's joints and turn with its bones: at Anny's rest pose every one of them has the body
frame's axes, so `head_<id>`'s x is where the face looks. They are the network's body relative
to its pelvis, under whichever `body_<id>` is published (a walker turned to face their
velocity turns whole, as PersonView.body_points turns its joints).
"""

from __future__ import annotations

import re
from typing import List, Optional, Sequence

import numpy as np

from mhr2_ros.body.joints import PART_NAMES, part_origins
from mhr2_ros.geometry import gravity_from_pose, homogeneous, matrix_to_quaternion_xyzw
from mhr2_ros.inference.floor_contact import floor_plane_in_camera
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.persons import PersonView
from mhr2_ros.ros.tf_tree import rotation_translation

BODY_PREFIX = "body_"
TF_TOPIC = "/tf"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
# tf2 frame ids: no leading slash (tf2 rejects it), ROS name characters, '/'-separated parts.
_FRAME_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z0-9_]+)*$")


def is_valid_frame_id(name: str) -> bool:
    """True for a frame id tf2 accepts and tools handle: no leading or trailing '/',
    no empty part, only letters, digits and '_'."""
    return bool(_FRAME_ID.match(name or ""))


def frame_id_problem(name: str) -> str:
    """'' when `name` is a valid frame id, else what is wrong, in words."""
    if not name:
        return "is empty"
    if name.startswith("/"):
        return "starts with '/' (tf2 frame ids have no leading slash)"
    if not is_valid_frame_id(name):
        return "may only hold letters, digits, '_' and inner '/', and must not start with a digit"
    return ""


def floor_from_transform(transform) -> np.ndarray:
    """The floor plane (n, d) in the image's optical frame from a geometry_msgs/TransformStamped
    tf2 looked up with the optical frame as target and the floor frame (z = 0 the floor, z up) as
    source (inference/floor_contact.py); InputError when the camera is not above that floor."""
    return floor_plane_in_camera(*rotation_translation(transform))


def camera_pose_from_transform(transform) -> np.ndarray:
    """(4, 4) the camera's pose in a fixed frame (fixed <- camera optical, Tracker.update's camera_pose)
    from a geometry_msgs/TransformStamped tf2 looked up with the fixed frame as target and the image's
    frame as source."""
    return homogeneous(*rotation_translation(transform))


def fixed_frame_gravity(camera_pose: Optional[np.ndarray], fixed_frame: str, frame_id: str) -> Optional[np.ndarray]:
    """Gravity in the image's frame from its (4, 4) pose in `fixed_frame` (z up, REP-105's odom and
    map), which levels a rolled camera that has no floor (the detector prefers a floor's); None without
    a pose, or when fixed_frame is the image's own frame `frame_id` (a static camera: its pose then
    says nothing of gravity)."""
    if camera_pose is None or not fixed_frame or fixed_frame == frame_id:
        return None
    return gravity_from_pose(camera_pose)


def body_frame(person_id: str) -> str:
    """REP-155 body frame name of a (TF-safe) person id."""
    name = f"{BODY_PREFIX}{person_id}"
    if not is_valid_frame_id(name):
        raise ValueError(f"person id {person_id!r} does not make a valid TF frame ({name!r})")
    return name


def part_frame(part: str, person_id: str) -> str:
    """REP-155 frame name of a body part (BODY_PARTS' names, e.g. l_wrist) of a (TF-safe) person id."""
    return f"{part}_{person_id}"


def build_transforms(
    f: MessageFactory, header: SourceHeader, persons: Sequence[PersonView], parts: bool = False
) -> List[object]:
    """geometry_msgs/TransformStamped per visible person (occluded tracks get none:
    their last pose is not a measurement of this instant), each followed by its body part
    frames when `parts` is set and the detection has part rotations."""
    problem = frame_id_problem(header.frame_id)
    if problem:
        raise ValueError(f"image frame_id {header.frame_id!r} {problem}")
    out = []
    for person in persons:
        if not person.visible:
            continue
        body = body_frame(person.id)
        out.append(_transform(f, header.stamp_ns, header.frame_id, body, person.human.position, person.rotation))
        if parts and person.human.part_rotations is not None:
            out += [_transform(f, header.stamp_ns, body, part_frame(name, person.id), origin, rotation)
                    for name, origin, rotation in zip(PART_NAMES, *body_parts(person.human))]  # fmt: skip
    return out


def body_parts(human) -> tuple:
    """((P, 3) m, (P, 3, 3)): the BODY_PARTS' origins and axes in the detection's body frame
    (pelvis at the origin, Human.orientation's axes)."""
    orientation = np.asarray(human.orientation, np.float64)
    origins = (part_origins(human.joints_3d) - np.asarray(human.position, np.float64)) @ orientation  # rows: O^T x
    return origins, orientation.T @ np.asarray(human.part_rotations, np.float64)


def _transform(f: MessageFactory, stamp_ns: int, parent: str, child: str, translation, rotation) -> object:
    x, y, z = (float(v) for v in translation)
    qx, qy, qz, qw = matrix_to_quaternion_xyzw(rotation).tolist()
    transform = f.new(
        "geometry_msgs/msg/Transform",
        translation=f.new("geometry_msgs/msg/Vector3", x=x, y=y, z=z),
        rotation=f.new("geometry_msgs/msg/Quaternion", x=qx, y=qy, z=qz, w=qw),
    )
    return f.new("geometry_msgs/msg/TransformStamped", header=f.header(stamp_ns, parent), child_frame_id=child,
                 transform=transform)  # fmt: skip


def tf_message(f: MessageFactory, transforms: Sequence[object]) -> object:
    """tf2_msgs/TFMessage, as recorded on /tf in a bag."""
    return f.new(TF_MESSAGE, transforms=list(transforms))
