"""detector_node: the rclpy lifecycle node. Wiring only; every decision is ROS-free.

    ros2 run mhr2_ros detector_node --ros-args -r image:=/camera/image_raw
    ros2 launch mhr2_ros detector.launch.py image:=/camera/image_raw

(`-r image:=X` remaps the raw topic only; with image_transport compressed remap
`image/compressed` too (`image/foxglove`, `image/ffmpeg` with foxglove, ffmpeg), `depth/compressedDepth`
with depth_transport compressedDepth, and `imu` with imu_gravity. The launch file remaps them all.)

Lifecycle: configure loads the weights and creates the publishers; activate
subscribes and starts the worker thread; deactivate stops them and frees GPU
memory; cleanup releases everything. The image callback only hands the message
to a depth-1 slot (worker.py): the executor never blocks and old frames are
dropped. A video topic (foxglove_msgs/CompressedVideo, FFMPEGPacket) is the exception: a
picture needs the ones before it, so the callback decodes every message (about
a millisecond for 640x480 H.264 on a CPU core) and hands over the picture.
Parameters are declared from params.SPECS with descriptors and checked in the
set-parameters callback; messages are built by session.py / outputs.py through
a GeneratedFactory, the same builders the tests run with rosbags.

This module and its tf2 lookups (tf_lookups.py) are the only ones that import rclpy and
ROS message packages.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, Imu
from tf2_ros import Buffer, TransformBroadcaster, TransformListener
from visualization_msgs.msg import MarkerArray

from mhr2_ros.errors import ConfigError, Mhr2Error
from mhr2_ros.io.compressed_video import BeforeKeyframe, VideoDecoder, require_pyav
from mhr2_ros.msg import HumanArray, MeshTopology
from mhr2_ros.ros import diagnostics, params
from mhr2_ros.ros.depth_buffer import DepthBuffer
from mhr2_ros.ros.factory import GeneratedFactory, import_message_class
from mhr2_ros.ros.hri import HriFrame, cleared, publishers_to_close, tracked_namespace, wait_acked
from mhr2_ros.ros.imu_gravity import ImuGravity
from mhr2_ros.ros.people import PEOPLE
from mhr2_ros.ros.session import DetectorSession
from mhr2_ros.ros.tf_lookups import FrameLookups
from mhr2_ros.ros.worker import FrameWorker

NODE_NAME = "detector_node"
RELIABILITY = {"best_effort": ReliabilityPolicy.BEST_EFFORT, "reliable": ReliabilityPolicy.RELIABLE}
OUTPUT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
VIDEO_QUEUE = 10  # messages a video subscription holds while the callback decodes
ACK_WAIT = Duration(seconds=0.5)  # the longest a closing ROS4HRI publisher waits for its last message
LATCHED_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)  # fmt: skip


class DetectorNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        factory = GeneratedFactory()
        for spec in params.SPECS:
            self.declare_parameter(spec.name, spec.default, params.descriptor(factory, spec))
        values = {spec.name: self.get_parameter(spec.name).value for spec in params.SPECS}
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.session = DetectorSession(factory, values)
        self.stats = diagnostics.DetectorStats()
        self._camera_info: Optional[CameraInfo] = None
        self._depths = DepthBuffer()  # recent depth images (use_depth)
        self._imu = ImuGravity()  # the IMU's gravity (imu_gravity), afresh at each activation
        self._info_lock = threading.Lock()
        self._pubs: Dict[str, Any] = {}
        self._hri_pubs: Dict[str, Any] = {}  # ROS4HRI topic -> publisher, created as bodies appear
        self._subs: List[Any] = []
        self._tf: Optional[TransformBroadcaster] = None
        self._lookups: Optional[FrameLookups] = None  # floor_frame / fixed_frame / imu_gravity, while active
        self._tf_listener: Optional[TransformListener] = None
        self._worker: Optional[FrameWorker] = None
        self._video: Optional[VideoDecoder] = None  # image_transport foxglove / ffmpeg: the stream, in order
        self._diag_timer = None
        self._errors_reported = 0

    # ------------------------------------------------------------------ parameters
    def _on_set_parameters(self, parameters) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in params.BY_NAME}
        problems = params.problems(changes)
        if problems:
            return SetParametersResult(successful=False, reason="; ".join(problems))
        for name in params.deferred(self.session.values, changes):
            self.get_logger().info(f"{name}: takes effect {params.WHEN[params.BY_NAME[name].applies]}")
        self.session.update(changes)  # Humble has no post-set callback: apply here
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        problems = params.problems(self.session.values)
        if problems:
            self.get_logger().error("invalid parameters: " + "; ".join(problems))
            return TransitionCallbackReturn.FAILURE
        if not self._load("cannot load the detector"):
            return TransitionCallbackReturn.FAILURE
        self._create_publishers()
        return super().on_configure(state)

    def _load(self, what: str) -> bool:
        """Load the weights; False (logged) on any failure: rclpy would swallow an exception
        raised by a transition without a word (a CUDA out-of-memory error, say)."""
        try:
            self.session.load()
        except (Mhr2Error, OSError) as exc:
            self.get_logger().error(f"{what}: {exc}")
            return False
        except Exception as exc:  # noqa: BLE001 - anything else, named
            self.get_logger().error(f"{what}: {type(exc).__name__}: {exc}")
            return False
        return True

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: drop everything, back to unconfigured (configure again)."""
        self.get_logger().error(f"error while in state {state.label}: releasing everything")
        self._release_all()
        return TransitionCallbackReturn.SUCCESS

    def _create_publishers(self) -> None:
        pub = self.create_lifecycle_publisher
        self._pubs = {
            "humans": pub(HumanArray, "humans", OUTPUT_QOS),
            "markers": pub(MarkerArray, "markers", OUTPUT_QOS),
            "mesh_topology": pub(MeshTopology, "mesh_topology", LATCHED_QOS),
        }
        if self.session.factory.has_type(PEOPLE):  # else the session keeps publish_people off
            self._pubs["people"] = pub(import_message_class(PEOPLE), "people", OUTPUT_QOS)
        self._pubs["diagnostics"] = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._tf = TransformBroadcaster(self)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            image_input = self._image_input()
        except Mhr2Error as exc:  # a video transport: no message package or no PyAV
            self.get_logger().error(f"cannot subscribe to the images: {exc}")
            return TransitionCallbackReturn.FAILURE
        if not self.session.loaded and not self._load("cannot reload the detector"):  # released by deactivate
            return TransitionCallbackReturn.FAILURE
        self.session.reset_tracking()  # tracks end with an activation; ids keep counting
        result = super().on_activate(state)  # activates the lifecycle publishers
        self._pubs["mesh_topology"].publish(self.session.mesh_topology(self.get_clock().now().nanoseconds))
        self._worker = FrameWorker(self._process, on_error=lambda exc: self.stats.frame_failed(str(exc)))
        self._worker.start()
        self._subscribe(image_input)
        period = self.session.values["diagnostics_period"]
        self._diag_timer = self.create_timer(period, self._publish_diagnostics)
        return result

    def _image_input(self):
        """(message class, topic, callback) of the image_transport parameter."""
        transport = self.session.values["image_transport"]
        topic, type_name = params.IMAGE_TOPICS[transport]
        self._video = None
        if transport not in params.VIDEO_PACKAGES:
            compressed = transport == "compressed"
            return (CompressedImage if compressed else Image), topic, lambda m: self._on_image(m, compressed)
        require_pyav(topic)
        package = params.VIDEO_PACKAGES[transport]
        try:
            msg_type = import_message_class(type_name)
        except ImportError as exc:
            apt = package.replace("_", "-")
            raise ConfigError(f"image_transport {transport} needs the {package} package (ros-$ROS_DISTRO-{apt}): "
                              f"{exc}") from exc  # fmt: skip
        self._video = VideoDecoder()  # each activation starts from the stream's next keyframe
        return msg_type, topic, lambda m: self._on_video(m, topic)

    def _subscribe(self, image_input) -> None:
        v = self.session.values
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=RELIABILITY[v["image_reliability"]],
                         durability=DurabilityPolicy.VOLATILE)  # fmt: skip
        msg_type, topic, callback = image_input
        # a video stream loses every picture up to the next keyframe with one message: queue a few
        image_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=VIDEO_QUEUE, reliability=qos.reliability,
                               durability=DurabilityPolicy.VOLATILE) if self._video is not None else qos  # fmt: skip
        self._subs = [
            self.create_subscription(msg_type, topic, callback, image_qos),
            self.create_subscription(CameraInfo, "camera_info", self._on_camera_info, qos),
        ]
        if v["use_depth"]:
            packed = v["depth_transport"] == "compressedDepth"
            depth_type, depth_topic = (CompressedImage, "depth/compressedDepth") if packed else (Image, "depth")
            self._subs.append(self.create_subscription(depth_type, depth_topic, self._on_depth, qos))
        if v["imu_gravity"]:
            self._imu = ImuGravity()
            # best effort: it hears reliable publishers too; IMUs publish at hundreds of Hz
            imu_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
            self._subs.append(self.create_subscription(Imu, "imu", self._imu.add, imu_qos))
        buffer = None  # no TF listener: a frame set later is looked up from the next activation
        if v["floor_frame"] or v["fixed_frame"] or v["imu_gravity"]:
            buffer = Buffer()
            self._tf_listener = TransformListener(buffer, self)
        self._lookups = FrameLookups(buffer, self.get_logger(), self.session, self._imu)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop()
        last = self.session.last_header
        if "markers" in self._pubs and last is not None:
            self._pubs["markers"].publish(self.session.outputs.clear_markers(last))
        self._sync_hri_publishers(None)  # an empty tracked list, then the publishers go
        if self.session.values["release_gpu_on_deactivate"]:
            self.session.release()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all()
        return super().on_cleanup(state)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release_all()
        return super().on_shutdown(state)

    def _release_all(self) -> None:
        """Worker, subscriptions, publishers and the network: back to unconfigured."""
        self._stop()
        self._destroy_publishers()
        self.session.release()

    def _stop(self) -> None:
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        if self._tf_listener is not None:
            self._tf_listener.unregister()
        self._tf_listener = self._lookups = None
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self._diag_timer = None
        if self._worker is not None:
            if not self._worker.stop():  # a slow frame (CPU, large model): its outputs must not
                self.get_logger().warning("waiting for the frame in progress to finish")
                self._worker.stop(timeout=None)  # outlive the transition, nor run beside a new worker
            self._worker = None

    def _destroy_publishers(self) -> None:
        for name, pub in self._pubs.items():
            if name == "diagnostics":
                self.destroy_publisher(pub)
            else:
                self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        self._sync_hri_publishers(None)
        if self._tf is not None:
            self.destroy_publisher(self._tf.pub_tf)
            self._tf = None

    # ------------------------------------------------------------------ data path
    def _on_image(self, msg, compressed: bool, image=None) -> None:
        """Executor thread: O(1), never blocks."""
        self.stats.image_received()
        if self._worker is not None and self._worker.submit((msg, compressed, time.monotonic(), image)):
            self.stats.image_dropped()

    def _on_video(self, msg, topic: str) -> None:
        """Executor thread: every message decoded, in order (a picture needs the ones before it)."""
        try:
            image = self._video.decode(msg, topic)
        except BeforeKeyframe:  # the stream's first keyframe has not come yet: nothing to see, nothing wrong
            self.stats.image_received()
            self.stats.image_dropped()
            return
        except Mhr2Error as exc:
            self.stats.image_received()
            self.stats.frame_failed(str(exc))
            return
        self._on_image(msg, False, image)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        with self._info_lock:
            self._camera_info = msg

    def _on_depth(self, msg) -> None:  # Image, or CompressedImage (depth_transport compressedDepth)
        self._depths.add(msg)

    def _process(self, item) -> None:
        """Worker thread: one image, start to publish."""
        msg, compressed, received, image = item
        header = self.session.header_of(msg)
        if self.session.is_stale(header, self.get_clock().now().nanoseconds):
            self.stats.image_dropped(stale=True)
            return
        with self._info_lock:
            camera_info = self._camera_info
        v = self.session.values
        depth = self._depths.nearest(header.stamp_ns, v["depth_sync_tolerance"]) if v["use_depth"] else None
        lookups = self._lookups  # None: deactivated meanwhile
        floor, pose, gravity = (lookups.floor(header), lookups.camera_pose(header),
                                lookups.imu_gravity(header)) if lookups else (None, None, None)  # fmt: skip
        run = self.session.process(msg, compressed, camera_info, depth, floor, pose, image, gravity)
        self._publish(run)
        now_ns = self.get_clock().now().nanoseconds
        self.stats.frame_done(
            latency=(now_ns - header.stamp_ns) / 1e9, processing=time.monotonic() - received,
            inference=run.result.timings.get("total", 0.0), people=run.people, tracked=run.tracked,
            started=run.started, level_roll=run.result.level_roll_deg,
        )  # fmt: skip

    def _publish(self, run) -> None:
        out = run.outputs
        self._pubs["humans"].publish(out.humans)
        if out.transforms and self._tf is not None:
            self._tf.sendTransform(out.transforms)
        if out.markers is not None:
            self._pubs["markers"].publish(out.markers)
        if out.people is not None and "people" in self._pubs:
            self._pubs["people"].publish(out.people)
        self._sync_hri_publishers(out.hri)

    def _sync_hri_publishers(self, frame: Optional[HriFrame]) -> None:
        """Publish a frame's ROS4HRI messages; per-body publishers come and go with the bodies."""
        for message in frame.messages if frame is not None else ():
            pub = self._hri_pubs.get(message.topic)
            if pub is None:
                msg_class = import_message_class(message.msgtype)
                pub = self._hri_pubs[message.topic] = self.create_publisher(msg_class, message.topic, OUTPUT_QOS)
            pub.publish(message.msg)
        for topic in publishers_to_close(set(self._hri_pubs), frame):
            self._say_nobody(topic)
            self.destroy_publisher(self._hri_pubs.pop(topic))

    def _say_nobody(self, topic: str) -> None:
        """Before a tracked-list publisher goes (output off, namespace changed, deactivate):
        an empty list, so libhri listeners drop the bodies instead of keeping them."""
        namespace, header = tracked_namespace(topic), self.session.last_header
        if namespace is not None and header is not None:
            pub = self._hri_pubs[topic]
            pub.publish(cleared(self.session.factory, header, namespace).messages[0].msg)
            problem = wait_acked(pub, ACK_WAIT)  # DDS drops unacknowledged data of a deleted writer
            if problem:
                self.get_logger().warning(f"{topic}: cannot wait for the empty list to be received: {problem}")

    def _publish_diagnostics(self) -> None:
        snap = self.stats.snapshot()
        level, message = diagnostics.assess(snap, self.session.values["diagnostics_period"], self._errors_reported)
        self._errors_reported = snap.errors
        device = str(self.session.detector.device) if self.session.loaded else "unloaded"
        msg = diagnostics.build_diagnostic_array(
            self.session.factory, self.get_clock().now().nanoseconds, f"{self.get_name()}: detector", device,
            level, message, diagnostics.key_values(snap),
        )  # fmt: skip
        self._pubs["diagnostics"].publish(msg)


def main(args=None) -> int:
    rclpy.init(args=args)
    node = DetectorNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
