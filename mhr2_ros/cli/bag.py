"""`mhr2 bag IN OUT --image-topic T`: run the detector over a rosbag2, write a rosbag2.

The output holds what `detector_node` publishes (humans, /tf, markers, mesh
topology, optionally people), stamped with the source images' headers and recorded
at their receive times: ready for `ros2 bag play`, RViz or Foxglove. People are
tracked (unless --no-track) as by the node: Human ids are persistent track ids. No ROS install
is needed (rosbags reads and writes MCAP and sqlite3). A corrupt or truncated input
stops with an error naming the file; the output written so far stays a valid bag.
"""

from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.cli.floor_options import add_mount_options, floor_from_mount
from mhr2_ros.cli.options import add_detector_options, build_detector, camera_for, check_camera_options
from mhr2_ros.config import override
from mhr2_ros.errors import InputError
from mhr2_ros.ros.tf_tree import TF_WAIT_S

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bag",
        help="detect people in the images of a rosbag2 and write a rosbag2 of the results",
        description="Read the images of --image-topic from the rosbag2 IN (MCAP or sqlite3; sensor_msgs/Image "
        "or CompressedImage, or a video stream, foxglove_msgs/CompressedVideo or ffmpeg_image_transport's "
        "FFMPEGPacket: H.264, H.265, VP9, AV1) and write the "
        "rosbag2 OUT with what detector_node publishes: HumanArray, /tf, markers and the mesh topology, stamped "
        "with the images' headers.",
        formatter_class=HelpFormatter,
    )
    _add_input_options(p)
    g = p.add_argument_group("output bag")
    g.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage format of OUT")
    g.add_argument("--distro", choices=("humble", "jazzy"), default="jazzy", help="message definitions to record")
    g.add_argument("--namespace", default="", help="output topics are /NAMESPACE/humans, ... like the node's")
    g.add_argument("--no-tf", action="store_true", help="do not record body_<id> transforms on /tf")
    g.add_argument("--no-body-parts", action="store_true",
                   help="record body_<id> alone on /tf, without its REP-155 body part frames (head_<id>, ...)")
    g.add_argument("--no-markers", action="store_true", help="do not record RViz markers")
    g.add_argument("--no-mesh-markers", action="store_true", help="markers without the (large) body meshes")
    g.add_argument(
        "--mesh-marker-resolution", type=float, default=0.02, metavar="METERS",
        help="vertex clustering cell of the mesh markers (0: the full mesh)",
    )  # fmt: skip
    g.add_argument("--meshes", action="store_true", help="fill Human.vertices in the HumanArray messages")
    g.add_argument("--people", action="store_true", help="also record people_msgs/People on /NAMESPACE/people")
    g.add_argument(
        "--hri", action="store_true",
        help="also record the ROS4HRI (REP-155) body topics: HRI_NAMESPACE/bodies/tracked and, per body, roi, "
        "cropped, skeleton2d, position, velocity",
    )  # fmt: skip
    g.add_argument(
        "--hri-namespace", default="/humans", metavar="HRI_NAMESPACE",
        help="absolute namespace of the --hri topics (default: %(default)s, as REP-155 says)",
    )  # fmt: skip
    g.add_argument("--copy-input", action="store_true",
                   help="also copy the input image, camera_info and depth messages")
    g.add_argument("--camera-frame", default="", help="frame id for images whose header has none")
    g.add_argument(
        "--intrinsics-matrix", choices=("k", "p"), default="k",
        help="camera_info matrix: k for raw images, p for rectified ones",
    )  # fmt: skip
    g.add_argument(
        "--rectify", action=argparse.BooleanOptionalAction, default=True,
        help="raw images whose camera_info K is used and whose lens distortion (camera_info d) moves their border "
        "by more than 1 px are resampled into the pinhole image of that K before the detector, as the node's "
        "rectify (2D outputs in the raw image's pixels); --no-rectify: only a warning",
    )  # fmt: skip
    g.add_argument("--max-frames", type=int, default=None, help="stop after this many images")
    _add_tracking_options(p)
    add_detector_options(p)
    floor = add_mount_options(p, tf_frames=True)
    floor.add_argument("--floor-frame", default="", metavar="FRAME",
                       help="TF frame whose z = 0 plane is the floor, z up (e.g. base_footprint), looked up in the "
                       "bag's /tf and /tf_static at each image's stamp (a moving joint interpolated between the "
                       "transforms around it), as the node's floor_frame; instead of --camera-height")
    floor.add_argument("--imu-topic", default=None, metavar="TOPIC",
                       help="sensor_msgs/Imu topic (e.g. a RealSense's /camera/imu): its accelerometer gives gravity "
                       "(a running mean, jolts skipped; inference/gravity.py), turned into the image's frame by the "
                       "bag's TF, which levels a rolled camera that has neither a floor nor a --fixed-frame "
                       "(--level-roll), as the node's imu_gravity")
    floor.add_argument("--tf-timeout", type=float, default=None, metavar="SECONDS",
                       help=f"with --floor-frame, --fixed-frame or --imu-topic: transforms recorded up to this long "
                       f"after an image serve it, as the node's floor_tf_timeout (default {TF_WAIT_S}); an image whose "
                       "stamp they do not reach gets no transform, as with tf2 (no extrapolation)")
    p.set_defaults(run=run)


def _add_tracking_options(p: argparse.ArgumentParser) -> None:
    """--track, --tracker-config and --fixed-frame."""
    t = p.add_argument_group("tracking")
    t.add_argument(
        "--track", action=argparse.BooleanOptionalAction, default=True,
        help="track people across images (fed the image header stamps): Human ids, body_<id> TF frames and "
        "markers follow each person, velocities are estimated; --no-track: per-image ids p0, p1, ...",
    )  # fmt: skip
    t.add_argument(
        "--tracker-config", type=Path, default=None, metavar="YAML",
        help="tracker settings (YAML/JSON with fields of config/tracker.yaml); unset: config/tracker.yaml",
    )  # fmt: skip
    t.add_argument(
        "--fixed-frame", default="", metavar="FRAME",
        help="TF frame fixed in the world, z up (e.g. odom), looked up in the bag's /tf and /tf_static at each "
        "image's stamp, as the node's fixed_frame: the tracker follows people in it, so velocities are over the "
        "ground on a moving robot and walkers face where they go (tracker.yaml velocity_heading_speed), and "
        "without a floor a rolled camera is levelled by its gravity (--level-roll); the camera's own frame: a "
        "static camera. Unset: velocities relative to the camera, headings the network's",
    )  # fmt: skip


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """The input bag, the output folder and the input topics."""
    p.add_argument("input", type=Path, help="input bag: a rosbag2 folder, a .mcap / .db3 file, or a ROS 1 .bag file")
    p.add_argument("output", type=Path, help="output rosbag2 folder (must not exist)")
    p.add_argument(
        "--image-topic", required=True,
        help="topic of sensor_msgs/Image, CompressedImage, foxglove_msgs/CompressedVideo or "
        "ffmpeg_image_transport_msgs/FFMPEGPacket messages",
    )  # fmt: skip
    p.add_argument(
        "--camera-info-topic", default=None,
        help="sensor_msgs/CameraInfo topic whose K is used (rescaled to the image); default: --fov / "
        "--intrinsics, else the predicted field of view",
    )  # fmt: skip
    p.add_argument(
        "--depth-topic", default=None,
        help="depth sensor_msgs/Image topic registered to the images (16UC1 mm or 32FC1 m, e.g. an RGB-D driver's "
        "aligned depth), or its image_transport compressedDepth topic (CompressedImage, PNG or RVL): people are scaled "
        "to the one nearest in stamp to each image (recorded before it or up to the next image), as the node's "
        "use_depth (README, Depth cameras)",
    )  # fmt: skip
    p.add_argument("--depth-sync-tolerance", type=float, default=0.05, metavar="SECONDS",
                   help="with --depth-topic: a depth image is used when its stamp is within this of the image's")


def output_options(args: argparse.Namespace):
    from mhr2_ros.ros.outputs import OutputOptions

    return OutputOptions(
        publish_tf=not args.no_tf, publish_body_parts=not args.no_body_parts, publish_markers=not args.no_markers,
        publish_meshes=args.meshes,
        publish_people=args.people, publish_hri=args.hri, hri_namespace=args.hri_namespace,
        marker_mesh=not args.no_mesh_markers, marker_mesh_resolution=args.mesh_marker_resolution,
    )  # fmt: skip


def _tracker(args: argparse.Namespace):
    """The Tracker of --track / --tracker-config, or None."""
    from mhr2_ros.tracking.build import make_tracker

    if not args.track:
        if args.tracker_config is not None:
            raise InputError(f"--tracker-config {args.tracker_config} has no use with --no-track; drop one of them")
        return None
    return make_tracker(args.tracker_config)


def run(args: argparse.Namespace, tracker=None) -> int:
    """`tracker`: an object with .update(frame_result, stamp_seconds, camera_pose=) -> tracks; None: as --track and
    --tracker-config say."""
    from mhr2_ros.io.rosbag import BagImageReader, BagWriter, is_ros1_bag
    from mhr2_ros.ros.factory import RosbagsFactory
    from mhr2_ros.ros.tf_tree import TfTree
    from mhr2_ros.ros.offline import BagOptions, process_bag, ros1_copy_problem
    from mhr2_ros.ros.outputs import OutputBuilder
    from mhr2_ros.ros.typestore import make_typestore

    floor, gravity = _check_options(args)
    if args.output.exists():  # before the model loads: fail fast
        raise InputError(f"output bag {args.output} exists already; remove it or choose another path")
    if args.copy_input and is_ros1_bag(args.input):
        raise InputError(ros1_copy_problem(args.input))
    tracker = tracker if tracker is not None else _tracker(args)  # a bad --tracker-config fails fast too
    typestore = make_typestore(args.distro)
    tf_wait = TF_WAIT_S if args.tf_timeout is None else args.tf_timeout
    with BagImageReader(args.input, args.image_topic, args.camera_info_topic, typestore, depth_topic=args.depth_topic,
                        tf_tree=TfTree() if args.floor_frame or args.fixed_frame or args.imu_topic else None,
                        imu_topic=args.imu_topic,
                        tf_wait=tf_wait) as reader:  # bad IN first
        outputs = output_options(args)
        detector = build_detector(args)
        detector.cfg = override(detector.cfg, return_vertices=outputs.needs_vertices)
        builder = OutputBuilder(RosbagsFactory(typestore), detector.faces, outputs)
        options = BagOptions(
            namespace=args.namespace, camera=lambda h, w: camera_for(args, h, w),
            intrinsics_matrix=args.intrinsics_matrix, rectify=args.rectify, camera_frame=args.camera_frame,
            copy_input=args.copy_input, max_frames=args.max_frames, progress=not getattr(args, "quiet", False),
            depth_sync_tolerance=args.depth_sync_tolerance if args.depth_topic else None, floor=floor, gravity=gravity,
            floor_frame=args.floor_frame, fixed_frame=args.fixed_frame, imu=bool(args.imu_topic),
        )  # fmt: skip
        with BagWriter(args.output, typestore, args.storage) as writer:
            summary = process_bag(reader, writer, detector, builder, options, tracker)
    tracked = f", {len(summary.track_ids)} distinct track id(s)" if tracker is not None else ", untracked"
    log.info("%d image(s), %d detection(s)%s; results in %s", summary.frames, summary.people, tracked, args.output)
    if reader.before_keyframe:  # a video recording that starts inside a group of pictures
        log.info("%d video message(s) before the stream's first keyframe had no picture", reader.before_keyframe)
    if summary.level_rolls:
        rolls = summary.level_rolls
        log.info("%d of %d image(s) levelled by gravity before the network (roll %.1f to %.1f deg)", len(rolls),
                 summary.frames, min(rolls), max(rolls))  # fmt: skip
    for option, misses in summary.tf_misses.items():
        if misses:
            log.warning("--%s %s: no transform at %d of %d image(s) (warnings above say why)",
                        option.replace("_", "-"), getattr(args, option), misses, summary.frames)
    if summary.failures:
        lines = "\n".join(f"  image {index}: {why}" for index, why in summary.failures)
        log.error("%d image(s) could not be decoded:\n%s", len(summary.failures), lines)
        return 1
    return 0


def _check_options(args: argparse.Namespace):
    """Every option checked before the bag opens or the model loads (InputError naming the bad
    one); returns the fixed mount's (floor plane, gravity) (floor_options.floor_from_mount)."""
    from mhr2_ros.ros.hri import namespace_problem
    from mhr2_ros.ros.tf import frame_id_problem

    if args.mesh_marker_resolution < 0:
        raise InputError(f"--mesh-marker-resolution {args.mesh_marker_resolution}: expected >= 0 meters")
    check_camera_options(args)
    ns_problem = namespace_problem("/" + args.namespace.strip("/")) if args.namespace.strip("/") else ""
    if ns_problem:
        raise InputError(f"--namespace {args.namespace!r}: {ns_problem}")
    if args.camera_frame and frame_id_problem(args.camera_frame):
        raise InputError(f"--camera-frame {args.camera_frame!r} {frame_id_problem(args.camera_frame)}")
    if namespace_problem(args.hri_namespace):
        raise InputError(f"--hri-namespace {args.hri_namespace!r} {namespace_problem(args.hri_namespace)}")
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames {args.max_frames}: expected a positive count")
    if not (math.isfinite(args.depth_sync_tolerance) and args.depth_sync_tolerance >= 0):
        raise InputError(f"--depth-sync-tolerance {args.depth_sync_tolerance}: expected seconds >= 0")
    if args.fixed_frame and frame_id_problem(args.fixed_frame):
        raise InputError(f"--fixed-frame {args.fixed_frame!r} {frame_id_problem(args.fixed_frame)}")
    if args.tf_timeout is not None:
        if not (math.isfinite(args.tf_timeout) and args.tf_timeout >= 0):
            raise InputError(f"--tf-timeout {args.tf_timeout}: expected seconds >= 0")
        if not (args.floor_frame or args.fixed_frame or args.imu_topic):
            raise InputError(f"--tf-timeout {args.tf_timeout} is for --floor-frame, --fixed-frame or --imu-topic; "
                             "give one of them")
    floor, gravity = floor_from_mount(args, floor_frame=bool(args.floor_frame),
                                      fixed_frame=bool(args.fixed_frame or args.imu_topic))  # fmt: skip
    if args.floor_frame:
        if floor is not None or gravity is not None:
            given = "--camera-height" if floor is not None else "--camera-roll / --camera-pitch"
            raise InputError(f"--floor-frame and {given} both give the camera's mount: choose one")
        if frame_id_problem(args.floor_frame):
            raise InputError(f"--floor-frame {args.floor_frame!r} {frame_id_problem(args.floor_frame)}")
    return floor, gravity
