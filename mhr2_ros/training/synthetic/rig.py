"""Anatomical degrees of freedom on Anny's 163-bone "makehuman" rig.

How the rig's pose parameters act (determined by experiment, see
docs/dataset_format.md "Pose parameters"): BodyModel feeds Anny the 'local-ref'
parameterisation, in which each bone's delta rotation D_c is expressed in
*world-aligned* axes of the rest pose (Anny axes: +X body-left, +Y backward, +Z up),
applied about the bone's head, and then carried along by every ancestor's delta.
Rotating one bone by +45 degrees about each axis and looking where its child's head
went gave:

    upperleg01 +X: knee moves backward (hip extension)      -> hip flexion is -X
    lowerleg01 +X: ankle moves backward (knee flexion)       -> knee flexion is +X
    foot       +X: toes move down (plantar flexion)          -> dorsiflexion is -X
    spine03    +X: neck moves forward and down               -> trunk flexion is +X
    spine03    +Y: neck moves toward +X (the body's left)     -> left side bend is +Y
    upperarm01.L +Y: elbow moves inward and down (adduction) -> left abduction is -Y
    upperarm01.R +Y: elbow moves outward and up (abduction)  -> right abduction is +Y
    Z rotations turn a limb about the vertical (axial rotation for a hanging limb).

Y and Z signs therefore mirror between the left and right sides; X signs do not.
The rest pose is an A-pose (arms about 40 degrees from the vertical, elbows bent
about 45 degrees with the forearms pointing forward), so the shoulder gets a rest
offset that first brings the arm straight down, and the elbow flexes about the hinge
of its rest geometry; both are measured on the rest skeleton, never hard-coded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

SIDES = ("L", "R")
AXES = {"x": np.array([1.0, 0.0, 0.0]), "y": np.array([0.0, 1.0, 0.0]), "z": np.array([0.0, 0.0, 1.0])}
DOWN = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class Motion:
    """One rotational degree of freedom of a joint."""

    name: str  # "flex", "abd", "rot", "bend", "twist"
    axis: str  # "x", "y", "z" (Anny local-ref axes) or "hinge" (measured on the rest skeleton)
    sign: float  # rotation sign of a positive anatomical angle, left side (or centre)
    limits: Tuple[float, float]  # degrees, anatomical range (positive = the name's direction)


@dataclass(frozen=True)
class Joint:
    """A group of bones rotated together; angles are split equally over the bones."""

    name: str
    bones: Tuple[str, ...]  # bone names, "{s}" stands for the side letter
    sided: bool  # one joint per side (L, R) or a single central one
    motions: Tuple[Motion, ...]  # composed right to left: D = R(m0) @ R(m1) @ ... @ rest offset


# Joint limits are approximate active ranges of motion of adults (degrees).
JOINTS: Tuple[Joint, ...] = (
    # The whole body about the pelvis (the root bone), composed under the heading yaw.
    Joint("pelvis", ("root",), False, (
        Motion("list", "y", +1.0, (-20.0, 20.0)),  # top toward the left
        Motion("tilt", "x", +1.0, (-20.0, 60.0)),  # top forward (leaning over)
    )),
    Joint("spine", ("spine04", "spine03", "spine02", "spine01"), False, (
        Motion("bend", "y", +1.0, (-35.0, 35.0)),  # toward the left
        Motion("flex", "x", +1.0, (-25.0, 80.0)),  # forward
        Motion("twist", "z", +1.0, (-40.0, 40.0)),  # chest turns left
    )),
    Joint("neck", ("neck01", "neck02", "neck03", "head"), False, (
        Motion("bend", "y", +1.0, (-40.0, 40.0)),
        Motion("flex", "x", +1.0, (-45.0, 60.0)),  # chin down
        Motion("twist", "z", +1.0, (-70.0, 70.0)),  # face turns left
    )),
    Joint("hip", ("upperleg01.{s}",), True, (
        Motion("abd", "y", -1.0, (-25.0, 50.0)),  # thigh outward
        Motion("flex", "x", -1.0, (-30.0, 125.0)),  # thigh forward
        Motion("rot", "z", -1.0, (-60.0, 40.0)),  # internal rotation
    )),
    Joint("knee", ("lowerleg01.{s}",), True, (Motion("flex", "x", +1.0, (0.0, 150.0)),)),
    Joint("ankle", ("foot.{s}",), True, (Motion("flex", "x", -1.0, (-45.0, 25.0)),)),  # toes up
    Joint("shoulder", ("upperarm01.{s}",), True, (
        Motion("abd", "y", -1.0, (-10.0, 170.0)),  # arm out to the side, 0 = hanging
        Motion("flex", "x", -1.0, (-60.0, 175.0)),  # arm forward and up
        Motion("rot", "z", -1.0, (-80.0, 90.0)),  # internal rotation
    )),
    Joint("elbow", ("lowerarm01.{s}",), True, (Motion("flex", "hinge", +1.0, (0.0, 150.0)),)),
)  # fmt: skip


def dof_names() -> Tuple[str, ...]:
    """Names of the pose vector's entries: 'joint.motion' or 'joint.side.motion'."""
    names = []
    for joint in JOINTS:
        for side in SIDES if joint.sided else (None,):
            prefix = f"{joint.name}.{side}" if side else joint.name
            names.extend(f"{prefix}.{m.name}" for m in joint.motions)
    return tuple(names)


DOF_NAMES = dof_names()
DOF_INDEX = {name: i for i, name in enumerate(DOF_NAMES)}


def dof_limits() -> np.ndarray:
    """(D, 2) lower and upper limits in degrees, DOF_NAMES order."""
    lims = [m.limits for j in JOINTS for _ in (SIDES if j.sided else (None,)) for m in j.motions]
    return np.array(lims, dtype=np.float64)


def axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: (3,) or (N, 3) unit axes and (N,) angles in radians -> (N, 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    axis = np.broadcast_to(np.asarray(axis, dtype=np.float64), angle.shape + (3,))
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.stack([
        np.stack([c + x * x * t, x * y * t - z * s, x * z * t + y * s], -1),
        np.stack([y * x * t + z * s, c + y * y * t, y * z * t - x * s], -1),
        np.stack([z * x * t - y * s, z * y * t + x * s, c + z * z * t], -1),
    ], -2)  # fmt: skip


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3, 3) taking direction a to direction b."""
    a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis)
    if sin < 1e-9:
        return np.eye(3)
    return axis_angle_matrix(axis / sin, np.array([math.atan2(sin, float(a @ b))]))[0]


@dataclass
class RigAxes:
    """What the DOFs need from the rest skeleton (mean phenotype), per side."""

    bone_index: Dict[str, int]  # bone name -> index in the 163 bones
    shoulder_offset: Dict[str, np.ndarray]  # side -> (3, 3) rest A-pose arm -> arm straight down
    elbow_hinge: Dict[str, np.ndarray]  # side -> (3,) unit axis; + rotation flexes the elbow
    elbow_rest_deg: Dict[str, float]  # side -> flexion of the rest pose, degrees

    @classmethod
    def from_rest(cls, bone_names: Sequence[str], heads: np.ndarray) -> "RigAxes":
        """Measure the rest skeleton: (163, 3) bone heads in Anny axes, meters."""
        index = {n: i for i, n in enumerate(bone_names)}
        offset, hinge, rest = {}, {}, {}
        for s in SIDES:
            shoulder, elbow, wrist = (heads[index[f"{b}.{s}"]] for b in ("upperarm01", "lowerarm01", "wrist"))
            upper, fore = elbow - shoulder, wrist - elbow
            offset[s] = _rotation_between(upper, DOWN)
            axis = np.cross(upper, fore)
            hinge[s] = axis / np.linalg.norm(axis)
            cos = upper @ fore / (np.linalg.norm(upper) * np.linalg.norm(fore))
            rest[s] = math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))
        return cls(index, offset, hinge, rest)

    def bone(self, name: str) -> int:
        try:
            return self.bone_index[name]
        except KeyError:
            raise KeyError(f"bone {name!r} is not in this rig") from None


def _joint_rotation(joint: Joint, side: Optional[str], angles_deg: np.ndarray, rig: RigAxes) -> np.ndarray:
    """(N, 3, 3) delta of each of the joint's bones for (N, len(motions)) angles."""
    n = angles_deg.shape[0]
    total = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    share = 1.0 / len(joint.bones)
    for k, motion in enumerate(joint.motions):
        angle = np.radians(angles_deg[:, k]) * share
        if motion.axis == "hinge":  # elbow: the rest flexion is subtracted
            angle = angle - math.radians(rig.elbow_rest_deg[side]) * share
            axis = rig.elbow_hinge[side]
        else:
            mirror = -1.0 if side == "R" and motion.axis in ("y", "z") else 1.0
            axis = AXES[motion.axis] * motion.sign * mirror
        total = total @ axis_angle_matrix(axis, angle)
    if joint.name == "shoulder":
        total = total @ rig.shoulder_offset[side]
    return total


def pose_rotations(dofs: np.ndarray, yaw: np.ndarray, rig: RigAxes, num_bones: int,
                   root: Optional[np.ndarray] = None) -> np.ndarray:  # fmt: skip
    """Local-ref bone rotations (N, num_bones, 3, 3) from (N, D) DOF angles (degrees,
    DOF_NAMES order) and (N,) yaw (radians about Anny's vertical; 0 faces the camera).

    `root` (N, 3, 3), when given, is applied after the yaw (e.g. the camera tilt)."""
    dofs = np.asarray(dofs, dtype=np.float64)
    n = dofs.shape[0]
    rots = np.broadcast_to(np.eye(3), (n, num_bones, 3, 3)).copy()
    col = 0
    for joint in JOINTS:
        for side in SIDES if joint.sided else (None,):
            width = len(joint.motions)
            delta = _joint_rotation(joint, side, dofs[:, col : col + width], rig)
            for bone in joint.bones:
                rots[:, rig.bone(bone.format(s=side))] = delta
            col += width
    # The root's delta is the body's orientation: yaw about the vertical, then the
    # pelvis tilt set above in the body's own axes, then the optional outer rotation.
    root_index = rig.bone("root")
    heading = axis_angle_matrix(AXES["z"], np.asarray(yaw, dtype=np.float64))
    rots[:, root_index] = heading @ rots[:, root_index]
    if root is not None:
        rots[:, root_index] = np.asarray(root) @ rots[:, root_index]
    return rots


def rotations_to_6d(rots: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns (geometry.rotation_6d_to_matrix)."""
    return np.concatenate([rots[..., :, 0], rots[..., :, 1]], axis=-1)


def pose_vector(values: Mapping[str, float], base: Optional[np.ndarray] = None) -> np.ndarray:
    """(D,) DOF vector from {dof name: degrees}; unnamed DOFs keep `base` (default 0)."""
    vec = np.zeros(len(DOF_NAMES)) if base is None else np.array(base, dtype=np.float64)
    for name, deg in values.items():
        if name not in DOF_INDEX:
            raise KeyError(f"unknown pose DOF {name!r}; known: {', '.join(DOF_NAMES)}")
        vec[DOF_INDEX[name]] = deg
    return vec


def mirror_pose(vec: np.ndarray) -> np.ndarray:
    """Swap left and right (a right-hand wave becomes a left-hand wave); central
    bend and twist change sign, flexion does not."""
    out = np.array(vec, dtype=np.float64)
    for name, i in DOF_INDEX.items():
        parts = name.split(".")
        if len(parts) == 3:
            other = DOF_INDEX[f"{parts[0]}.{'R' if parts[1] == 'L' else 'L'}.{parts[2]}"]
            out[i] = vec[other]
        elif parts[1] in ("bend", "twist"):
            out[i] = -vec[i]
    return out


def names_with(prefix: str, sides: Sequence[str] = SIDES) -> Tuple[str, ...]:
    """DOF names of a sided joint motion for the given sides, e.g. 'hip.{s}.flex'."""
    return tuple(prefix.format(s=s) for s in sides)
