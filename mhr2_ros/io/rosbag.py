"""rosbag2 input and output with rosbags (MCAP and sqlite3), no ROS install needed.

BagImageReader yields the images of one topic as RGB arrays with their header
stamps, plus the latest camera_info before each. A bag rosbags cannot open
because it was cut short (an MCAP file without footer, a recording folder without
metadata.yaml) is read by a sequential scan instead (mcap_scan), so the frames
before the damage are still processed; the damage itself then raises an InputError
naming the file. BagWriter records messages built by a RosbagsFactory.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Tuple

import numpy as np

from mhr2_ros.errors import ConfigError, InputError
from mhr2_ros.io.compressed_video import VIDEO_TYPES, BeforeKeyframe, VideoDecoder, require_pyav
from mhr2_ros.io.mcap_scan import McapScanner
from mhr2_ros.io.ros_image import compressed_msg_to_rgb, image_msg_to_rgb, nearest_in_time, stamp_and_frame
from mhr2_ros.ros.imu_gravity import ImuGravity
from mhr2_ros.ros.tf_tree import TF_WAIT_S

log = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
IMU = "sensor_msgs/msg/Imu"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)  # what a depth topic may hold
CAMERA_TYPES = IMAGE_TYPES + VIDEO_TYPES  # ... and a camera topic
STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 8  # metadata version read by Humble and Jazzy's rosbag2
DEPTH_CANDIDATES = 8  # recent depth images a frame's depth is chosen among
TF_STATIC = "/tf_static"
TF_TOPICS = ("/tf", TF_STATIC)  # read with a tf_tree (ros/tf_tree.py)
NS_PER_S = 1_000_000_000


@dataclass
class BagFrame:
    index: int  # position among the topic's images
    timestamp_ns: int  # the bag's receive time of the image
    stamp_ns: int  # header.stamp of the image (0 when it could not be decoded)
    frame_id: str  # header.frame_id
    image: Optional[np.ndarray]  # HxWx3 uint8 RGB, None when it could not be decoded
    camera_info: Any = None  # latest sensor_msgs/CameraInfo received before the image
    error: Optional[str] = None  # why image is None
    depth: Any = None  # depth sensor_msgs/Image nearest in stamp among those read up to the next image
    imu_down: Optional[np.ndarray] = None  # (3,) gravity in the IMU's frame when the image came (imu_topic)
    imu_frame: str = ""  # that frame: the IMU messages' header.frame_id


def is_ros1_bag(path: Path) -> bool:
    """A ROS 1 bag (one `.bag` file): its messages are ROS 1 serialised, of ROS 1 definitions."""
    return Path(path).is_file() and Path(path).suffix == ".bag"


def _raw_messages(path: Path, topics: Tuple[str, ...]):
    """(topic, msgtype, timestamp, rawdata) of `topics` via rosbags, or via the scan
    for an MCAP that rosbags refuses. Returns (iterator, message counts or None, the
    open rosbags Reader or None, the McapScanner or None)."""
    from rosbags.rosbag1 import Reader as Ros1Reader
    from rosbags.rosbag2 import Reader

    db3 = _lone_file(path, ".db3") if path.is_dir() and not (path / "metadata.yaml").exists() else None
    try:
        # a sqlite3 bag without metadata.yaml opens by its .db3 file
        reader = Ros1Reader(path) if is_ros1_bag(path) else Reader(db3 or path)
        reader.open()
    except Exception as exc:  # noqa: BLE001 - any failure to open: try the scan, else report
        if is_ros1_bag(path):
            raise InputError(f"{path}: not a readable ROS 1 bag: {exc}") from exc
        mcap = _lone_file(path, ".mcap")
        if mcap is None:
            raise InputError(f"{path}: not a readable rosbag2 (MCAP or sqlite3): {exc}") from exc
        log.warning("%s cannot be opened as an indexed bag (%s); scanning %s for the messages it holds",
                    path, exc, mcap.name)  # fmt: skip
        scanner = McapScanner(mcap)
        return _scan(scanner, topics), None, None, scanner
    available = {c.topic: c for c in reader.connections}
    counts = {t: available[t].msgcount for t in topics if t in available}
    conns = [c for c in reader.connections if c.topic in topics]

    def messages():
        try:
            for conn, timestamp, data in reader.messages(connections=conns) if conns else ():
                yield conn.topic, conn.msgtype, timestamp, data
        finally:
            _close(reader)

    return messages(), counts, reader, None


def _ros1_typestore(reader, topics: Tuple[str, ...]):
    """The Noetic definitions (Header.seq, CameraInfo K/D/P) with those the bag records for `topics`
    added (a ROS 1 bag holds each connection's full definition: tf2_msgs, drivers' own types)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    for conn in reader.connections:
        if conn.topic in topics and conn.msgtype not in store.types:
            store.register(get_types_from_msg(conn.msgdef.data, conn.msgtype))
    return store


def _close(reader) -> None:
    # rosbag2's reader says is_open; a ROS 1 one holds its file (bio) while open, and refuses a second close
    if reader is not None and getattr(reader, "is_open", getattr(reader, "bio", None) is not None):
        reader.close()


def _lone_file(path: Path, suffix: str) -> Optional[Path]:
    """`path` if it is a `suffix` file, else the folder's only `suffix` file, else None."""
    if path.is_file() and path.suffix == suffix:
        return path
    found = sorted(path.glob(f"*{suffix}")) if path.is_dir() else []
    return found[0] if len(found) == 1 else None


def _scan(scanner: McapScanner, topics: Tuple[str, ...]):
    for msg in scanner:
        if msg.topic in topics:
            yield msg.topic, msg.msgtype, msg.log_time, msg.data


class BagImageReader:
    """Images of `image_topic` (Image, CompressedImage, or video: CompressedVideo, FFMPEGPacket) in bag order."""

    def __init__(
        self, path, image_topic: str, camera_info_topic: Optional[str] = None, typestore=None,
        on_message: Optional[Callable[[str, str, int, bytes], None]] = None, depth_topic: Optional[str] = None,
        tf_tree=None, tf_wait: float = TF_WAIT_S, imu_topic: Optional[str] = None,
    ) -> None:  # fmt: skip
        """`on_message(topic, msgtype, timestamp, rawdata)` sees every message read
        (images, camera infos, depth images and TF), e.g. to copy them into the output bag.
        `tf_tree`: also read /tf and /tf_static into it (`.add(transforms, static)`, ros/tf_tree.py);
        each image is then yielded once the next one is read and the bag is `tf_wait` seconds of
        recording past it, so the tree holds the transforms the node would have had when it looked
        them up at the image's stamp, waiting floor_tf_timeout. `imu_topic`: sensor_msgs/Imu messages whose
        accelerometer gives each image the gravity of the moment it came (BagFrame.imu_down, ros/imu_gravity.py)."""
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"input bag not found: {self.path}")
        self.ros1 = is_ros1_bag(self.path)
        self.image_topic = image_topic
        self.camera_info_topic = camera_info_topic
        self.depth_topic = depth_topic
        self.imu_topic = imu_topic
        self.imu = ImuGravity()  # fed by imu_topic
        self.typestore = typestore or get_typestore(Stores.ROS2_HUMBLE)
        self._deserialize = self.typestore.deserialize_cdr  # a ROS 1 bag's: below, once it is open
        self.on_message = on_message
        self.tf_tree = tf_tree
        if not (tf_wait >= 0 and np.isfinite(tf_wait)):
            raise InputError(f"tf_wait {tf_wait}: expected seconds >= 0")
        self.tf_wait_ns = int(round(tf_wait * NS_PER_S))
        self.count = 0  # images yielded so far
        self._video = VideoDecoder()  # used by a video topic: every message, in order
        self.before_keyframe = 0  # video messages skipped: no picture before the stream's first keyframe
        self._read = 0  # images read (more than yielded while images wait for their depth or transforms)
        topics = (image_topic,) + tuple(t for t in (camera_info_topic, depth_topic, imu_topic) if t)
        topics += TF_TOPICS if tf_tree is not None else ()
        self._messages, counts, self._reader, self._scanner = _raw_messages(self.path, topics)
        if self.ros1:
            self._deserialize = _ros1_typestore(self._reader, topics).deserialize_ros1
        self.length: Optional[int] = None if counts is None else counts.get(image_topic)
        # a depth topic is an Image, or a CompressedImage of image_transport's compressedDepth plugin
        wanted = ((image_topic, CAMERA_TYPES, "image"), (camera_info_topic, (CAMERA_INFO,), "CameraInfo"),
                  (depth_topic, IMAGE_TYPES, "depth image"), (imu_topic, (IMU,), "Imu"))  # fmt: skip
        present = sorted({c.topic for c in self._reader.connections}) if self._reader is not None else None
        if tf_tree is not None and present is not None and not set(TF_TOPICS) & set(present):
            self.close()
            raise InputError(f"{self.path}: no {' or '.join(TF_TOPICS)} topic to find the floor, fixed or IMU frame "
                             f"in; topics in the bag: {present}")
        for topic, kinds, label in wanted:
            problem = self._topic_problem(topic, kinds) if topic and self._reader is not None else ""
            if problem:
                found = self._topics(kinds)
                self.close()
                raise InputError(f"{self.path}: {problem}; {label} topics in the bag: {found}")
        if self._reader is not None and set(VIDEO_TYPES) & set(self._types(image_topic)):
            require_pyav(image_topic)  # said before any work, not once per frame

    def _check_scanned_topic(self, damaged: Optional[BaseException] = None) -> None:
        """A scanned (unindexed) bag names its topics only as it is read: when no image came
        although other topics did, say so (a typo reads like damage otherwise)."""
        if self._scanner is None or self.count:
            return
        seen = sorted({topic for topic, _ in self._scanner.channels.values()})
        if self.image_topic not in seen and (seen or damaged is None):
            cut = f", then it is damaged: {damaged}" if damaged is not None else ""
            raise InputError(f"{self.path}: no topic {self.image_topic!r} in the part that could be read; "
                             f"topics there: {seen}{cut}") from damaged  # fmt: skip

    def _types(self, topic: str) -> List[str]:
        return sorted({c.msgtype for c in self._reader.connections if c.topic == topic})

    def _topic_problem(self, topic: str, kinds: Tuple[str, ...]) -> str:
        """'' when the bag has `topic` with one of the types `kinds`, else what is wrong."""
        types = self._types(topic)
        if not types:
            return f"no topic {topic!r}"
        if not set(types) & set(kinds):
            return f"topic {topic!r} holds {', '.join(types)}, not {' or '.join(kinds)}"
        return ""

    def close(self) -> None:
        """Release the input files (also when iteration never started)."""
        self._messages.close()
        _close(self._reader)

    def __enter__(self) -> "BagImageReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _topics(self, msgtypes: Tuple[str, ...]) -> List[str]:
        return sorted(c.topic for c in self._reader.connections if c.msgtype in msgtypes)

    def __iter__(self) -> Iterator[BagFrame]:
        """Frames in bag order. With a depth topic or a tf_tree each image is held until the next one
        arrives, so that what is recorded just after it can serve it: an aligned depth image (drivers
        publish it after the colour image, with its stamp; the frame gets the nearest in stamp of the
        recent ones), the transforms that bracket its stamp (the tf_tree interpolates between them);
        with a tf_tree also until `tf_wait` of recording has passed after it."""
        camera_info, pending = None, None
        depths: Deque = deque(maxlen=DEPTH_CANDIDATES)
        held: Deque[BagFrame] = deque()  # frames with their depth, waiting for the transforms after them
        while True:
            try:
                item = next(self._messages, None)
            except Exception as exc:  # noqa: BLE001 - McapDamaged, ReaderError, apsw...: a damaged bag
                yield from self._flush(pending, depths, held)  # read before the damage: processed as usual
                self._check_scanned_topic(damaged=exc)
                raise InputError(
                    f"{self.path}: corrupt or truncated bag after {self.count} image(s) of {self.image_topic}: {exc}"
                ) from exc
            if item is None:
                yield from self._flush(pending, depths, held)
                self._check_scanned_topic()
                return
            topic, msgtype, timestamp, data = item
            yield from self._release(held, before=timestamp)  # what is recorded from now on came too late for them
            if self.on_message is not None:
                self.on_message(topic, msgtype, timestamp, data)
            if topic == self.camera_info_topic:
                camera_info = self._latest(msgtype, data, camera_info)
                continue
            if self.tf_tree is not None and topic in TF_TOPICS:
                tf = self._latest(msgtype, data, None)
                self.tf_tree.add(tf.transforms if tf is not None else (), static=topic == TF_STATIC)
                continue
            if topic == self.depth_topic:
                decoded = self._latest(msgtype, data, None)
                if decoded is not None:
                    depths.append(decoded)
                continue
            if topic == self.imu_topic:
                imu = self._latest(msgtype, data, None)
                if imu is not None:
                    self.imu.add(imu)
                continue
            frame = self._frame(msgtype, timestamp, data, camera_info, self._read)
            self._read += 1
            if frame is None:  # a video message before the stream's first keyframe
                continue
            if self.imu_topic:
                frame.imu_down, frame.imu_frame = self.imu.reading()
            if self.depth_topic is None and self.tf_tree is None:
                self.count += 1
                yield frame
                continue
            if pending is not None:
                held.append(self._paired(pending, depths))
                yield from self._release(held, before=timestamp)
            pending = frame

    def _release(self, held: Deque[BagFrame], before: int) -> Iterator[BagFrame]:
        """The held frames whose wait for transforms ended before the bag time `before` (ns), oldest first."""
        while held and (self.tf_tree is None or held[0].timestamp_ns + self.tf_wait_ns < before):
            self.count += 1
            yield held.popleft()

    def _flush(self, pending: Optional[BagFrame], depths, held: Deque[BagFrame]) -> Iterator[BagFrame]:
        """Every frame still waiting, at the end of what can be read."""
        if pending is not None:
            held.append(self._paired(pending, depths))
        while held:
            self.count += 1
            yield held.popleft()

    def _paired(self, frame: BagFrame, depths) -> BagFrame:
        frame.depth = nearest_in_time(depths, frame.stamp_ns) if self.depth_topic else None
        return frame

    def _latest(self, msgtype: str, data, previous):
        """A camera_info or depth message, or the previous one when this one does not decode."""
        try:
            return self._deserialize(data, msgtype)
        except Exception as exc:  # noqa: BLE001 - one bad message: keep the previous one
            log.warning("%s: skipping an undecodable %s message: %s", self.path, msgtype, exc)
            return previous

    def _frame(self, msgtype: str, timestamp: int, data, camera_info, index: int) -> Optional[BagFrame]:
        """The image message decoded, or its error; None for a video message before the first keyframe."""
        name = f"{self.image_topic}[{index}]"
        if msgtype not in CAMERA_TYPES:
            raise InputError(f"{self.path}: topic {self.image_topic!r} holds {msgtype}, not one of {CAMERA_TYPES}")
        try:
            msg = self._deserialize(data, msgtype)
            stamp_ns, frame_id = stamp_and_frame(msg)
            if msgtype in VIDEO_TYPES:
                image = self._video.decode(msg, name)
            else:
                image = (image_msg_to_rgb if msgtype == IMAGE else compressed_msg_to_rgb)(msg, name)
        except ConfigError:  # nothing could decode: not one frame's problem
            raise
        except BeforeKeyframe as exc:
            self.before_keyframe += 1
            if self.before_keyframe == 1:
                log.warning("%s; skipping the messages until it", exc)
            return None
        except Exception as exc:  # noqa: BLE001 - one bad image: reported, next frame
            return BagFrame(index, timestamp, 0, "", None, camera_info, str(exc))
        return BagFrame(index, timestamp, stamp_ns, frame_id, image, camera_info)


def _qos(latched: bool):
    from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime

    unspecified = QosTime(0, 0)  # rmw default (infinite)
    return Qos(
        QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
        QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
        unspecified, unspecified, QosLiveliness.AUTOMATIC, unspecified, False,
    )  # fmt: skip


class BagWriter:
    """A rosbag2 being written; close() always leaves a bag rosbag2 can play."""

    def __init__(self, path, typestore, storage: str = "mcap") -> None:
        from rosbags.rosbag2 import StoragePlugin, Writer

        self.path = Path(path)
        if storage not in STORAGES:
            raise InputError(f"unknown storage {storage!r}; expected one of {STORAGES}")
        if self.path.exists():
            raise InputError(f"output bag {self.path} exists already; remove it or choose another path")
        self.typestore = typestore
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        self._writer.open()
        self._connections: Dict[str, Any] = {}
        self.counts: Dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str, latched: bool = False) -> None:
        """Register `topic`; latched topics get transient-local offered QoS (like the node)."""
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=[_qos(latched)]
        )
        self.counts[topic] = 0

    def write(self, topic: str, timestamp_ns: int, msg) -> None:
        conn = self._connections[topic]
        self._writer.write(conn, int(timestamp_ns), self.typestore.serialize_cdr(msg, conn.msgtype))
        self.counts[topic] += 1

    def write_raw(self, topic: str, timestamp_ns: int, data) -> None:
        self._writer.write(self._connections[topic], int(timestamp_ns), data)
        self.counts[topic] += 1

    def close(self) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.close()

    def __enter__(self) -> "BagWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # also on errors: what was written stays a valid bag
