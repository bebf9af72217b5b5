"""A TF tree read from a bag's /tf and /tf_static, for `mhr2 bag --floor-frame` (no ROS).

Each edge keeps its latest transform in bag order (no interpolation in time): exact for the
static chain of a camera mount (base_footprint -> base_link -> camera_link -> optical frame,
what robot_state_publisher puts on /tf_static) and within one message period for a moving joint
(a pan-tilt head on /tf). The node uses tf2 itself (node.py).
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import quaternion_xyzw_to_matrix


def rotation_translation(transform) -> Tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) of a geometry_msgs/TransformStamped: p_parent = R @ p_child + t."""
    t, q = transform.transform.translation, transform.transform.rotation
    return quaternion_xyzw_to_matrix([q.x, q.y, q.z, q.w]), np.array([t.x, t.y, t.z], dtype=np.float64)


class TfTree:
    """child frame -> (parent frame, R, t) with p_parent = R @ p_child + t, the latest of each."""

    def __init__(self) -> None:
        self.edges: Dict[str, Tuple[str, np.ndarray, np.ndarray]] = {}

    def add(self, transforms: Iterable) -> None:
        """geometry_msgs/TransformStamped messages (a TFMessage's `transforms`)."""
        for tf in transforms:
            parent, child = tf.header.frame_id.lstrip("/"), tf.child_frame_id.lstrip("/")
            self.edges[child] = (parent, *rotation_translation(tf))

    def _to_root(self, frame: str) -> List[str]:
        """frame, its parent, ..., the root of its tree."""
        chain = [frame]
        while chain[-1] in self.edges and len(chain) <= len(self.edges):  # the bound stops a cycle
            chain.append(self.edges[chain[-1]][0])
        return chain

    def _from(self, chain: List[str]) -> Tuple[np.ndarray, np.ndarray]:
        """(R, t) taking points of chain[0] into chain[-1], along the parents."""
        R, t = np.eye(3), np.zeros(3)
        for child in chain[:-1]:
            _, r, tr = self.edges[child]
            R, t = r @ R, r @ t + tr
        return R, t

    def lookup(self, target: str, source: str) -> Tuple[np.ndarray, np.ndarray]:
        """(R, t) with p_target = R @ p_source + t; InputError when the two frames are not joined."""
        up_source, up_target = self._to_root(source), self._to_root(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            known = sorted(set(self.edges) | {p for p, _, _ in self.edges.values()})
            raise InputError(f"no TF path from {source!r} to {target!r} in the bag's /tf and /tf_static so far; "
                             f"frames there: {known}")
        R_s, t_s = self._from(up_source[: up_source.index(common) + 1])  # source -> common
        R_t, t_t = self._from(up_target[: up_target.index(common) + 1])  # target -> common
        R = R_t.T @ R_s  # common -> target after source -> common
        return R, R_t.T @ (t_s - t_t)
