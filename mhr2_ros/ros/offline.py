"""rosbag2 in, rosbag2 out: what the node would have published, recorded.

Each image of the input topic gives one HumanArray, /tf transforms, markers (and
optionally people and the ROS4HRI body topics) stamped with the image's header and recorded at the image's
receive time, plus the mesh topology once on a transient-local topic. The output
plays with `ros2 bag play` and opens in RViz or Foxglove like a live run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Set, Tuple

import numpy as np
from tqdm import tqdm

from mhr2_ros.errors import InputError
from mhr2_ros.geometry import homogeneous
from mhr2_ros.inference.floor_contact import floor_plane_in_camera
from mhr2_ros.io.ros_image import depth_in_sync
from mhr2_ros.io.rosbag import BagFrame, BagImageReader, BagWriter
from mhr2_ros.ros.camera import LensDistortion, intrinsics_from_camera_info
from mhr2_ros.ros.messages import HUMAN_ARRAY, MESH_TOPOLOGY, SourceHeader
from mhr2_ros.ros.outputs import OutputBuilder
from mhr2_ros.ros.people import PEOPLE
from mhr2_ros.ros.persons import VISIBLE_STATES, PersonView, person_views
from mhr2_ros.ros.markers import MARKER_ARRAY
from mhr2_ros.ros.imu_gravity import turned
from mhr2_ros.ros.tf import TF_MESSAGE, TF_TOPIC, fixed_frame_gravity, tf_message

log = logging.getLogger(__name__)

NS_PER_S = 1e9
CameraFn = Callable[[int, int], Optional[np.ndarray]]  # (height, width) -> K or None


def topic_name(namespace: str, base: str) -> str:
    """'/ns/base' (or '/base'): the node's relative topic under its namespace."""
    ns = namespace.strip("/")
    return f"/{ns}/{base}" if ns else f"/{base}"


@dataclass
class BagOptions:
    namespace: str = ""  # output topics: /<namespace>/humans, ...
    camera: Optional[CameraFn] = None  # user intrinsics (--fov / --intrinsics); beat camera_info
    intrinsics_matrix: str = "k"  # camera_info matrix: k (raw images) or p (rectified)
    # raw images whose camera_info K is used and whose lens distortion is worth it are rectified before the
    # detector (the node's rectify; inference/rectify.py); False: warned about
    rectify: bool = True
    camera_frame: str = ""  # frame id for images whose header has none
    copy_input: bool = False  # also record the input image (and camera_info, depth) messages
    # seconds: a frame's depth image (the reader's depth_topic) is used when its stamp is within this
    # of the image's, as the node's depth_sync_tolerance (None: depth images are not used)
    depth_sync_tolerance: Optional[float] = None
    floor: Optional[np.ndarray] = None  # (4,) floor plane (n, d) in the camera frame (a fixed mount), or None
    gravity: Optional[np.ndarray] = None  # (3,) gravity in the camera frame of a fixed mount without a floor
    # TF frame whose z = 0 plane is the floor, looked up in the reader's tf_tree at each image's
    # stamp (the bag's /tf and /tf_static, as the node's floor_frame); '' : none
    floor_frame: str = ""
    # TF frame fixed in the world (odom, map; z up) looked up like floor_frame: the tracker then knows the
    # camera's motion (velocities over the ground, walkers facing where they go), and without a floor the
    # detector levels a rolled camera by its gravity; '' : none
    fixed_frame: str = ""
    # the reader's IMU gravity (BagFrame.imu_down, BagImageReader imu_topic) levels a rolled camera that has
    # neither a floor nor a fixed frame, turned into the image's frame by the bag's TF
    imu: bool = False
    max_frames: Optional[int] = None
    progress: bool = True


@dataclass
class BagSummary:
    frames: int = 0  # images processed
    people: int = 0  # detections over all frames
    failures: List[Tuple[int, str]] = field(default_factory=list)  # (image index, why)
    track_ids: Set[str] = field(default_factory=set)  # distinct Human ids published (with a tracker)
    # "floor_frame" / "fixed_frame" / "imu_topic" -> images whose transform the bag's TF did not give (no path,
    # or outside the history of a moving edge): those people kept the network's depth / the tracker its last
    # pose / the image was not levelled by the IMU's gravity
    tf_misses: Dict[str, int] = field(default_factory=dict)
    level_rolls: List[float] = field(default_factory=list)  # degrees, per image levelled (FrameResult.level_roll_deg)


class _Topics:
    """Output topic names and their registration with the writer."""

    def __init__(self, writer: BagWriter, outputs: OutputBuilder, namespace: str) -> None:
        o = outputs.options
        self.humans = topic_name(namespace, "humans")
        self.markers = topic_name(namespace, "markers") if o.publish_markers else None
        self.people = topic_name(namespace, "people") if o.publish_people else None
        self.mesh = topic_name(namespace, "mesh_topology") if outputs.faces is not None else None
        self.tf = TF_TOPIC if o.publish_tf else None
        writer.add_topic(self.humans, HUMAN_ARRAY)
        for topic, msgtype in ((self.markers, MARKER_ARRAY), (self.people, PEOPLE), (self.tf, TF_MESSAGE)):
            if topic:
                writer.add_topic(topic, msgtype)
        if self.mesh:
            writer.add_topic(self.mesh, MESH_TOPOLOGY, latched=True)


def _intrinsics(frame: BagFrame, options: BagOptions) -> Tuple[Optional[np.ndarray], Optional[str]]:
    """(K, source) for one frame: user intrinsics, else camera_info, else (None, None)."""
    h, w = frame.image.shape[:2]
    if options.camera is not None:
        K = options.camera(h, w)
        if K is not None:
            return K, "given"
    K = intrinsics_from_camera_info(frame.camera_info, h, w, options.intrinsics_matrix)
    return (K, "camera_info") if K is not None else (None, None)


def ros1_copy_problem(path) -> str:
    return (f"--copy-input: {path} is a ROS 1 bag, whose messages cannot be copied unchanged into the rosbag2 "
            "output; drop --copy-input, or convert the bag first (rosbags-convert --src IN.bag --dst OUT)")


def _copier(writer: BagWriter):
    """on_message callback recording input messages unchanged (topics added lazily)."""

    def copy(topic: str, msgtype: str, timestamp: int, data) -> None:
        if topic not in writer.counts:
            writer.add_topic(topic, msgtype)
        writer.write_raw(topic, timestamp, data)

    return copy


def process_bag(
    reader: BagImageReader, writer: BagWriter, detector, outputs: OutputBuilder,
    options: BagOptions = BagOptions(), tracker=None,
) -> BagSummary:  # fmt: skip
    """Run `detector` (and `tracker`: .update(frame, stamp_seconds, camera_pose=) -> tracks) on every
    image; the caller closes `writer` (also when this raises, keeping the partial bag)."""
    topics = _Topics(writer, outputs, options.namespace)
    if options.copy_input:
        if reader.ros1:
            raise InputError(ros1_copy_problem(reader.path))
        reader.on_message = _copier(writer)
    summary = BagSummary()
    floors = _FloorSource(options, _TfLookup(reader.tf_tree, "its people keep the network's depth"))
    without = "the tracker assumes the camera where it last was" if tracker is not None else "no levelling by gravity"
    poses = _PoseSource(options, _TfLookup(reader.tf_tree, without))
    gravities = _GravitySource(options, _TfLookup(reader.tf_tree, "its IMU's gravity is not used"))
    lens = LensDistortion()
    frames = tqdm(reader, total=reader.length, unit="frame", disable=not options.progress)
    for frame in frames:
        if options.max_frames is not None and summary.frames >= options.max_frames:
            break
        if frame.image is None:
            summary.failures.append((frame.index, frame.error or "undecodable"))
            log.warning("skipping image %d: %s", frame.index, frame.error)
            continue
        if topics.mesh and summary.frames == 0:
            body = detector.body
            topology = outputs.mesh_topology(frame.stamp_ns, body.num_vertices, body.rig)
            writer.write(topics.mesh, frame.timestamp_ns, topology)
        pose = poses(frame)  # the tracker's camera motion, and gravity for a rolled camera
        persons, roll = _process_frame(frame, floors(frame), pose, gravities(frame, pose), writer, detector, outputs,
                                       topics, options, tracker, lens)  # fmt: skip
        if roll is not None:
            summary.level_rolls.append(roll)
        people = sum(p.state in VISIBLE_STATES for p in persons)
        summary.frames += 1
        summary.people += people
        if tracker is not None:
            summary.track_ids.update(p.id for p in persons)
        frames.set_postfix(people=people)
    sources = (("floor_frame", floors, options.floor_frame), ("fixed_frame", poses, options.fixed_frame),
               ("imu_topic", gravities, options.imu))  # fmt: skip
    summary.tf_misses = {name: source.lookup.misses for name, source, used in sources if used}
    return summary


class _TfLookup:
    """(frame, target, source) -> (R, t) from the bag's TF at the image's stamp, or None where there is
    none (no path, or a stamp outside a moving edge's history: warned once per pair and kind of
    failure, with `consequence`; `misses` counts the images)."""

    def __init__(self, tree, consequence: str) -> None:
        self.tree, self.consequence, self.warned, self.misses = tree, consequence, set(), 0

    def __call__(self, frame: BagFrame, target: str, source: str) -> Optional[tuple]:
        try:
            return self.tree.lookup(target, source, frame.stamp_ns)
        except InputError as exc:
            self.misses += 1
            if (target, source, type(exc)) not in self.warned:
                self.warned.add((target, source, type(exc)))
                log.warning("image %d: %s; %s", frame.index, exc, self.consequence)
            return None


class _FloorSource:
    """frame -> its floor plane: the fixed mount's, or the floor frame's in the bag's TF at that image."""

    def __init__(self, options: BagOptions, lookup: _TfLookup) -> None:
        self.options, self.lookup = options, lookup

    def __call__(self, frame: BagFrame) -> Optional[np.ndarray]:
        if not self.options.floor_frame:
            return self.options.floor
        found = self.lookup(frame, frame.frame_id or self.options.camera_frame, self.options.floor_frame)
        return None if found is None else floor_plane_in_camera(*found)


class _PoseSource:
    """frame -> the camera's pose in the fixed frame (4, 4) at that image, or None (no fixed frame)."""

    def __init__(self, options: BagOptions, lookup: _TfLookup) -> None:
        self.options, self.lookup = options, lookup

    def __call__(self, frame: BagFrame) -> Optional[np.ndarray]:
        if not self.options.fixed_frame:
            return None
        found = self.lookup(frame, self.options.fixed_frame, frame.frame_id or self.options.camera_frame)
        return None if found is None else homogeneous(*found)


class _GravitySource:
    """(frame, pose) -> gravity in the image's frame for levelling without a floor: the fixed mount's,
    else the fixed frame's (z up), else the IMU's turned by the bag's TF; None without any."""

    def __init__(self, options: BagOptions, lookup: _TfLookup) -> None:
        self.options, self.lookup = options, lookup

    def __call__(self, frame: BagFrame, pose: Optional[np.ndarray]) -> Optional[np.ndarray]:
        o = self.options
        camera = frame.frame_id or o.camera_frame
        gravity = o.gravity if o.gravity is not None else fixed_frame_gravity(pose, o.fixed_frame, camera)
        if gravity is not None or not o.imu:
            return gravity

        def rotation(target: str, source: str) -> Optional[np.ndarray]:
            found = self.lookup(frame, target, source)
            return None if found is None else found[0]

        return turned(frame.imu_down, frame.imu_frame, camera, rotation)


def _process_frame(
    frame: BagFrame, floor: Optional[np.ndarray], pose: Optional[np.ndarray], gravity: Optional[np.ndarray], writer,
    detector, outputs: OutputBuilder, topics: _Topics, options, tracker, lens: LensDistortion,
) -> Tuple[List[PersonView], Optional[float]]:  # fmt: skip
    """Detect (and track) one image (`floor`: its floor plane or None; `pose`: the camera's in the fixed
    frame or None; `gravity`: its direction in the image's frame or None; `lens`: rectifies it as the node
    does), record its messages; the persons of its HumanArray and the roll its image was levelled by."""
    K, source = _intrinsics(frame, options)
    tolerance = options.depth_sync_tolerance
    h, w = frame.image.shape[:2]
    depth = depth_in_sync(frame.depth, frame.stamp_ns, tolerance, (h, w)) if tolerance is not None else None
    rectifier = lens.rectifier(frame.camera_info, options.intrinsics_matrix, h, w,
                               options.rectify and source == "camera_info")
    image = frame.image
    if rectifier is not None:  # the pinhole image of the camera_info K
        image, depth = rectifier.image(image), rectifier.depth(depth)
    result = detector(image, K=K, depth=depth, floor=floor, gravity=gravity)
    tracks = tracker.update(result, frame.stamp_ns / NS_PER_S, camera_pose=pose) if tracker is not None else None
    if rectifier is not None:
        rectifier.to_raw(result)  # after the tracker, which works in the pinhole image's pixels
    header = SourceHeader(frame.stamp_ns, frame.frame_id or options.camera_frame)
    out = outputs.build(result, header, tracks, intrinsics_source=source, image=frame.image)  # raw pixels
    t = frame.timestamp_ns
    writer.write(topics.humans, t, out.humans)
    if topics.tf and out.transforms:
        writer.write(topics.tf, t, tf_message(outputs.f, out.transforms))
    if topics.markers and out.markers is not None:
        writer.write(topics.markers, t, out.markers)
    if topics.people and out.people is not None:
        writer.write(topics.people, t, out.people)
    for message in out.hri.messages if out.hri is not None else ():
        if message.topic not in writer.counts:  # per-body topics appear with their body
            writer.add_topic(message.topic, message.msgtype)
        writer.write(message.topic, t, message.msg)
    return person_views(result, tracks), result.level_roll_deg
