"""RViz markers: mesh (TRIANGLE_LIST), skeleton (LINE_LIST), id (TEXT_VIEW_FACING)
and velocity (ARROW) per visible person, in the image's optical frame.

Marker ids come from the track ids (CRC-32, so a person keeps its id across frames
and runs), one namespace per kind. MarkerTracker remembers what it published and
DELETEs the markers of people who vanished, so RViz never shows a ghost.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from mhr2_ros.body import SKELETON_EDGES
from mhr2_ros.io.overlay import color_for
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.persons import PersonView

MARKER = "visualization_msgs/msg/Marker"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
# visualization_msgs/Marker constants (checked against the message in the tests).
ARROW, LINE_LIST, TEXT_VIEW_FACING, TRIANGLE_LIST = 0, 5, 9, 11
ADD, DELETE, DELETEALL = 0, 2, 3

NS_MESH, NS_SKELETON, NS_LABEL, NS_VELOCITY = "mhr2/mesh", "mhr2/skeleton", "mhr2/label", "mhr2/velocity"
NAMESPACES = (NS_MESH, NS_SKELETON, NS_LABEL, NS_VELOCITY)
MAX_MARKER_ID = 0x7FFFFFFF  # Marker.id is int32

LINE_WIDTH = 0.02  # meters, skeleton lines
TEXT_HEIGHT = 0.15  # meters, id labels
LABEL_ABOVE = 0.6  # label height above the pelvis, in body heights
ARROW_SHAFT, ARROW_HEAD, ARROW_HEAD_LENGTH = 0.03, 0.06, 0.08  # meters
ARROW_SECONDS = 1.0  # the arrow spans the distance covered in this time
MIN_SPEED = 0.05  # m/s: slower people get no arrow (it would be a dot)
MESH_ALPHA = 0.6
BODY_UP = 2  # column of Human.orientation holding the body's z (up) axis in the camera frame


@dataclass(frozen=True)
class MarkerOptions:
    mesh: bool = True  # mesh TRIANGLE_LIST
    mesh_resolution: float = 0.02  # meters: vertex clustering cell of the mesh marker; 0: full mesh
    lifetime: float = 0.0  # seconds; 0: until deleted


def decimate_mesh(vertices: np.ndarray, faces: np.ndarray, cell: float) -> Tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: one vertex (the mean) per `cell`-sized voxel, triangles that
    collapse dropped. The full Anny mesh is 27k triangles, 82k marker points per
    person, which takes rclpy about a quarter second to build; at 2 cm it is ~7k
    triangles and looks the same in RViz."""
    vertices = np.asarray(vertices, np.float64)
    if cell <= 0:
        return vertices, faces
    cells = np.floor(vertices / cell).astype(np.int64)
    cells -= cells.min(axis=0)
    span = cells.max(axis=0) + 1
    keys = (cells[:, 0] * span[1] + cells[:, 1]) * span[2] + cells[:, 2]
    _, cluster = np.unique(keys, return_inverse=True)
    cluster = cluster.reshape(-1)
    count = int(cluster.max()) + 1
    centers = np.zeros((count, 3))
    np.add.at(centers, cluster, vertices)
    centers /= np.bincount(cluster, minlength=count)[:, None]
    tri = cluster[faces]
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    tri = tri[(a != b) & (b != c) & (a != c)]
    return centers, tri


def marker_id(person_id: str) -> int:
    """Deterministic int32 marker id of a person id."""
    return zlib.crc32(person_id.encode("utf-8")) & MAX_MARKER_ID


class MarkerTracker:
    """Builds one MarkerArray per frame; DELETEs markers of people who vanished.

    Ids are CRC-32 of the person id; in the rare case two live people collide, the
    later one takes the next free id (deterministic for a given sequence of frames).
    """

    def __init__(self, f: MessageFactory, faces: Optional[np.ndarray], options: MarkerOptions = MarkerOptions()):
        self.f = f
        self.faces = None if faces is None else np.asarray(faces, dtype=np.int64)
        self.options = options
        self._ids: Dict[str, int] = {}  # live person id -> marker id
        self._published: Dict[str, Set[str]] = {}  # person id -> namespaces last published

    def build(self, header: SourceHeader, persons: Sequence[PersonView]) -> object:
        markers: List[object] = []
        seen = set()
        for person in persons:
            if not person.visible or person.id in seen:
                continue
            seen.add(person.id)
            mid = self._allocate(person.id)
            kinds = self._person_markers(header, person, mid)
            markers.extend(m for _, m in kinds)
            stale = self._published.get(person.id, set()) - {ns for ns, _ in kinds}
            markers.extend(self._delete(header, ns, mid) for ns in sorted(stale))
            self._published[person.id] = {ns for ns, _ in kinds}
        for gone in [pid for pid in self._published if pid not in seen]:
            mid = self._ids.pop(gone)
            markers.extend(self._delete(header, ns, mid) for ns in sorted(self._published.pop(gone)))
        return self.f.new(MARKER_ARRAY, markers=markers)

    def clear(self, header: SourceHeader) -> object:
        """DELETEALL (when the node deactivates); forgets every id."""
        self._ids.clear()
        self._published.clear()
        return self.f.new(MARKER_ARRAY, markers=[self._base(header, "", 0, 0, DELETEALL)])

    # ------------------------------------------------------------------ internals
    def _allocate(self, person_id: str) -> int:
        if person_id in self._ids:
            return self._ids[person_id]
        taken = set(self._ids.values())
        mid = marker_id(person_id)
        while mid in taken:
            mid = (mid + 1) & MAX_MARKER_ID
        self._ids[person_id] = mid
        return mid

    def _person_markers(self, header: SourceHeader, person: PersonView, mid: int) -> List[Tuple[str, object]]:
        rgb = tuple(c / 255.0 for c in color_for(person.id, person.index))
        out = []
        h = person.human
        if self.options.mesh and self.faces is not None and h.vertices is not None:
            out.append((NS_MESH, self._mesh(header, mid, person.body_points(h.vertices), rgb)))
        out.append((NS_SKELETON, self._skeleton(header, mid, person.body_points(h.joints_3d), rgb)))
        out.append((NS_LABEL, self._label(header, person, mid, rgb)))
        arrow = self._velocity(header, person, mid, rgb)
        if arrow is not None:
            out.append((NS_VELOCITY, arrow))
        return out

    def _base(self, header: SourceHeader, ns: str, mid: int, kind: int, action: int = ADD, **fields) -> object:
        f = self.f
        lifetime_ns = int(round(self.options.lifetime * 1e9))
        return f.new(
            MARKER, header=f.header(header.stamp_ns, header.frame_id), ns=ns, id=mid, type=kind,
            action=action, lifetime=f.new("builtin_interfaces/msg/Duration",
                                          sec=lifetime_ns // 1_000_000_000, nanosec=lifetime_ns % 1_000_000_000),
            **fields,
        )  # fmt: skip

    def _delete(self, header: SourceHeader, ns: str, mid: int) -> object:
        return self._base(header, ns, mid, ARROW, DELETE)

    def _color(self, rgb, alpha: float = 1.0) -> object:
        r, g, b = rgb
        return self.f.new("std_msgs/msg/ColorRGBA", r=r, g=g, b=b, a=alpha)

    def _identity_pose(self) -> object:
        f = self.f
        return f.new("geometry_msgs/msg/Pose", orientation=f.new("geometry_msgs/msg/Quaternion", w=1.0))

    def _scale(self, x: float, y: float, z: float) -> object:
        return self.f.new("geometry_msgs/msg/Vector3", x=x, y=y, z=z)

    def _mesh(self, header, mid, vertices, rgb) -> object:
        points, faces = decimate_mesh(vertices, self.faces, self.options.mesh_resolution)
        corners = points[faces.reshape(-1)]
        return self._base(
            header, NS_MESH, mid, TRIANGLE_LIST, pose=self._identity_pose(), scale=self._scale(1.0, 1.0, 1.0),
            color=self._color(rgb, MESH_ALPHA), points=self.f.points(corners),
        )  # fmt: skip

    def _skeleton(self, header, mid, joints, rgb) -> object:
        ends = np.asarray(joints, np.float64)[np.asarray(SKELETON_EDGES).reshape(-1)]
        return self._base(
            header, NS_SKELETON, mid, LINE_LIST, pose=self._identity_pose(),
            scale=self._scale(LINE_WIDTH, 0.0, 0.0), color=self._color(rgb), points=self.f.points(ends),
        )  # fmt: skip

    def _label(self, header, person: PersonView, mid, rgb) -> object:
        h = person.human
        up = np.asarray(h.orientation, np.float64)[:, BODY_UP]
        where = np.asarray(h.position, np.float64) + up * LABEL_ABOVE * float(h.height)
        pose = self.f.new(
            "geometry_msgs/msg/Pose", position=self.f.points(where[None])[0],
            orientation=self.f.new("geometry_msgs/msg/Quaternion", w=1.0),
        )  # fmt: skip
        return self._base(
            header, NS_LABEL, mid, TEXT_VIEW_FACING, pose=pose, scale=self._scale(0.0, 0.0, TEXT_HEIGHT),
            color=self._color(rgb), text=f"{person.id} {h.score:.2f}",
        )  # fmt: skip

    def _velocity(self, header, person: PersonView, mid, rgb) -> Optional[object]:
        if person.velocity is None or float(np.linalg.norm(person.velocity)) < MIN_SPEED:
            return None
        start = np.asarray(person.human.position, np.float64)
        ends = np.stack([start, start + person.velocity * ARROW_SECONDS])
        return self._base(
            header, NS_VELOCITY, mid, ARROW, pose=self._identity_pose(),
            scale=self._scale(ARROW_SHAFT, ARROW_HEAD, ARROW_HEAD_LENGTH), color=self._color(rgb),
            points=self.f.points(ends),
        )  # fmt: skip
