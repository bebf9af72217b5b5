"""A TF tree read from a bag's /tf and /tf_static, for `mhr2 bag --floor-frame` (no ROS).

As tf2's buffer: a static edge (/tf_static: a camera's mount, what robot_state_publisher puts
there) holds at every time; a dynamic edge (/tf: a pan-tilt head, a mast) keeps its recent
transforms (HISTORY_NS, tf2's default cache), and a lookup at a stamp interpolates each edge
between the two transforms around it (translation linearly, rotation along the shortest arc).
As tf2, it refuses a stamp outside a dynamic edge's history (`TfExtrapolation`): a robot whose
odometry starts after the camera, or stops, has no pose there, not the nearest one. The reader
(io/rosbag.py) holds each image until the transforms recorded up to `floor_tf_timeout` after it
are in, as the node waits for them. The node uses tf2 itself (node.py).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import quaternion_xyzw_to_matrix

NS_PER_S = 1e9
HISTORY_NS = 10_000_000_000  # a dynamic edge keeps the transforms of its last 10 s (tf2's cache time)
TF_WAIT_S = 0.05  # s of recording after an image whose transforms serve it: the node's floor_tf_timeout default


class TfExtrapolation(InputError):
    """A lookup at a stamp outside the history of a dynamic edge on its path (tf2's ExtrapolationException)."""


def quaternion_translation(transform) -> Tuple[np.ndarray, np.ndarray]:
    """(unit quaternion (4,) x, y, z, w, t (3,)) of a geometry_msgs/TransformStamped."""
    t, q = transform.transform.translation, transform.transform.rotation
    xyzw = np.array([q.x, q.y, q.z, q.w], dtype=np.float64)
    return xyzw / np.linalg.norm(xyzw), np.array([t.x, t.y, t.z], dtype=np.float64)


def rotation_translation(transform) -> Tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) of a geometry_msgs/TransformStamped: p_parent = R @ p_child + t."""
    q, t = quaternion_translation(transform)
    return quaternion_xyzw_to_matrix(q), t


def slerp(q0: np.ndarray, q1: np.ndarray, a: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) a of the way from q0 to q1 along the shortest arc."""
    dot = float(q0 @ q1)
    if dot < 0.0:  # q and -q are one rotation: turn the short way
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly equal: linear is exact enough and avoids dividing by sin ~ 0
        q = q0 + a * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1.0 - a) * theta) * q0 + np.sin(a * theta) * q1) / np.sin(theta)


@dataclass
class _Edge:
    """One child frame's transforms to its parent, oldest first (a static edge holds one, which
    `at` returns whatever the stamp)."""

    parent: str
    static: bool = False  # from /tf_static
    stamps: List[int] = field(default_factory=list)  # ns
    quaternions: List[np.ndarray] = field(default_factory=list)  # (4,) x, y, z, w
    translations: List[np.ndarray] = field(default_factory=list)  # (3,) m

    def insert(self, stamp: int, q: np.ndarray, t: np.ndarray) -> None:
        k = bisect.bisect_right(self.stamps, stamp)  # in stamp order, whatever the bag order
        self.stamps.insert(k, stamp)
        self.quaternions.insert(k, q)
        self.translations.insert(k, t)
        drop = bisect.bisect_left(self.stamps, self.stamps[-1] - HISTORY_NS)
        if drop:
            del self.stamps[:drop], self.quaternions[:drop], self.translations[:drop]

    def covers(self, stamp: Optional[int]) -> bool:
        """Whether `at(stamp)` interpolates: a static edge at any stamp, a dynamic one within its history."""
        return self.static or stamp is None or self.stamps[0] <= stamp <= self.stamps[-1]

    def at(self, stamp: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
        """(R, t) at `stamp` (None: the newest), interpolated; a stamp outside the history (see
        `covers`) gets the nearest end."""
        k = len(self.stamps) if stamp is None else bisect.bisect_left(self.stamps, stamp)
        if k >= len(self.stamps) or k == 0:
            i = min(k, len(self.stamps) - 1)
            return quaternion_xyzw_to_matrix(self.quaternions[i]), self.translations[i]
        t0, t1 = self.stamps[k - 1], self.stamps[k]
        a = (stamp - t0) / (t1 - t0) if t1 > t0 else 1.0
        q = slerp(self.quaternions[k - 1], self.quaternions[k], a)
        return quaternion_xyzw_to_matrix(q), (1.0 - a) * self.translations[k - 1] + a * self.translations[k]


class TfTree:
    """child frame -> its edge to the parent (p_parent = R @ p_child + t), static or timed."""

    def __init__(self) -> None:
        self.edges: Dict[str, _Edge] = {}

    def add(self, transforms: Iterable, static: bool = False) -> None:
        """geometry_msgs/TransformStamped messages (a TFMessage's `transforms`); `static`: from
        /tf_static (each replaces its edge and holds at every time)."""
        for tf in transforms:
            parent, child = tf.header.frame_id.lstrip("/"), tf.child_frame_id.lstrip("/")
            q, t = quaternion_translation(tf)
            edge = self.edges.get(child)
            if static or edge is None or edge.parent != parent or edge.static:
                edge = self.edges[child] = _Edge(parent, static)  # a new parent (or static) starts a new history
            stamp = tf.header.stamp.sec * 1_000_000_000 + tf.header.stamp.nanosec
            edge.insert(stamp, q, t)

    def _to_root(self, frame: str) -> List[str]:
        """frame, its parent, ..., the root of its tree."""
        chain = [frame]
        while chain[-1] in self.edges and len(chain) <= len(self.edges):  # the bound stops a cycle
            chain.append(self.edges[chain[-1]].parent)
        return chain

    def _from(self, chain: List[str], stamp: Optional[int]) -> Tuple[np.ndarray, np.ndarray]:
        """(R, t) taking points of chain[0] into chain[-1], along the parents, at `stamp`;
        TfExtrapolation when an edge's history does not reach it."""
        R, t = np.eye(3), np.zeros(3)
        for child in chain[:-1]:
            edge = self.edges[child]
            if not edge.covers(stamp):
                first, last = edge.stamps[0] / NS_PER_S, edge.stamps[-1] / NS_PER_S
                when = "before" if stamp < edge.stamps[0] else "after"
                raise TfExtrapolation(
                    f"no transform {edge.parent!r} -> {child!r} at {stamp / NS_PER_S:.3f} s: the bag's /tf has it "
                    f"from {first:.3f} to {last:.3f} s, and this image is {when} that (tf2 does not extrapolate)")
            r, tr = edge.at(stamp)
            R, t = r @ R, r @ t + tr
        return R, t

    def lookup(self, target: str, source: str, stamp_ns: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(R, t) with p_target = R @ p_source + t at `stamp_ns` (None: the newest transforms);
        InputError when the two frames are not joined, TfExtrapolation (an InputError) when a moving
        edge between them has no transforms on both sides of the stamp."""
        up_source, up_target = self._to_root(source), self._to_root(target)
        common = next((f for f in up_source if f in up_target), None)
        if common is None:
            known = sorted(set(self.edges) | {e.parent for e in self.edges.values()})
            raise InputError(f"no TF path from {source!r} to {target!r} in the bag's /tf and /tf_static so far; "
                             f"frames there: {known}")
        R_s, t_s = self._from(up_source[: up_source.index(common) + 1], stamp_ns)  # source -> common
        R_t, t_t = self._from(up_target[: up_target.index(common) + 1], stamp_ns)  # target -> common
        R = R_t.T @ R_s  # common -> target after source -> common
        return R, R_t.T @ (t_s - t_t)
