"""Everything the node does with an image, without ROS: tests cover it all.

DetectorSession owns the detector, the optional tracker and the OutputBuilder.
The node hands it image messages (from the worker thread) and publishes what it
returns; parameters changes reach it through update(). Lifecycle mapping:
configure -> load(), activate -> reset_tracking(), deactivate -> release() (frees
GPU memory), cleanup -> close().

Tracking: the tracker is built at configure from `tracker_config` and kept while that
parameter stays the same, so its ids keep counting (a reset never hands out an id
again); `track` switches it on and off at once. It is fed each image's header stamp in
seconds (irregular and dropped frames are fine; a stamp going back, e.g. a looping bag,
resets it). Resets asked for from other threads happen in the worker thread, before
the next image is detected.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

import numpy as np

from mhr2_ros.config import override
from mhr2_ros.inference.results import FrameResult
from mhr2_ros.io.ros_image import compressed_msg_to_rgb, depth_in_sync, image_msg_to_rgb, stamp_and_frame
from mhr2_ros.ros import params
from mhr2_ros.ros.camera import LensDistortion, intrinsics_from_camera_info
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.outputs import FrameOutputs, OutputBuilder, available_options
from mhr2_ros.ros.persons import TRACKED, NEW, person_views
from mhr2_ros.ros.tf import fixed_frame_gravity
from mhr2_ros.tracking.build import make_tracker

log = logging.getLogger(__name__)

NS_PER_S = 1e9


@dataclass
class FrameRun:
    result: FrameResult
    outputs: FrameOutputs
    header: SourceHeader
    people: int  # persons in the HumanArray
    tracked: int  # of which with a live track (new / tracked)
    started: int = 0  # tracks this image started (new ids)


class DetectorSession:
    def __init__(self, factory: MessageFactory, values: Optional[Mapping[str, Any]] = None) -> None:
        self.factory = factory
        self.values: Dict[str, Any] = {**params.DEFAULTS, **(values or {})}
        self.detector = None
        self.outputs: Optional[OutputBuilder] = None
        self.tracker = None  # the active tracker (.update(frame, stamp_seconds) -> tracks); None: no tracking
        self._tracker = None  # built from tracker_config; kept while `track` is off (ids keep counting)
        self._tracker_source: Optional[str] = None  # the tracker_config value _tracker was built from
        self._tracker_stale = False  # reset the tracker before its next update (worker thread)
        self.last_header: Optional[SourceHeader] = None  # of the last processed image
        self._warned_missing: set = set()  # message packages already reported missing
        self.lens = LensDistortion()  # a raw image's lens distortion: undone (rectify) or warned about
        self._lock = threading.Lock()  # parameter updates (executor) vs frames (worker)

    # ------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        """Load the weights on the configured device (ConfigError/CheckpointError on failure)."""
        from mhr2_ros.checkpoint import DEFAULT_WEIGHTS
        from mhr2_ros.config import load_model_config
        from mhr2_ros.inference.detector import Detector

        with self._lock:
            self._prepare_tracker_locked()  # a bad tracker_config fails before the weights load
        v = self.values
        opts = params.output_options(v)
        cfg = params.inference_config(v, opts.needs_vertices)
        model_cfg = load_model_config(v["preset"]) if v["preset"] else None
        detector = Detector.from_checkpoint(v["weights"] or DEFAULT_WEIGHTS, config=cfg, model_config=model_cfg)
        self.attach(detector)
        log.info("detector loaded on %s (%s)", detector.device, v["weights"] or DEFAULT_WEIGHTS)

    def attach(self, detector) -> None:
        """Use an existing Detector (tests, or a detector built elsewhere)."""
        with self._lock:
            self.detector = detector
            self.outputs = OutputBuilder(self.factory, detector.faces, self._output_options_locked())
            self._prepare_tracker_locked()
            self._apply_locked()
        self.reset_tracking()  # new weights: features and tracks of the old ones do not carry over

    def reset_tracking(self) -> None:
        """Start fresh tracks at the next image (new activation, new weights); ids keep counting."""
        with self._lock:
            self._tracker_stale = True

    def release(self) -> None:
        """Drop the network and hand its GPU memory back to the driver."""
        with self._lock:
            self.detector = None
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    @property
    def loaded(self) -> bool:
        return self.detector is not None

    def update(self, values: Mapping[str, Any]) -> None:
        """Apply parameter changes that take effect at once (thresholds, outputs)."""
        with self._lock:
            if values.get("fixed_frame", self.values["fixed_frame"]) != self.values["fixed_frame"]:
                self._tracker_stale = True  # the tracks' frame changes: start fresh ones
            self.values.update(values)
            self._apply_locked()

    def _prepare_tracker_locked(self) -> None:
        """Build the tracker from tracker_config, unless the one built from it exists."""
        source = self.values["tracker_config"]
        if self._tracker is None or source != self._tracker_source:
            first = self._tracker.next_number if self._tracker is not None else 1  # ids never come back
            self._tracker = make_tracker(source, first_number=first)  # ConfigError naming the file
            self._tracker_source = source
            log.info("tracker settings: %s", source or "config/tracker.yaml (shipped)")

    def _output_options_locked(self):
        """The output parameters, less the outputs whose message package is not installed."""
        opts, missing = available_options(params.output_options(self.values), self.factory)
        for package in set(missing) - self._warned_missing:
            self._warned_missing.add(package)
            log.warning("%s is not installed: its output is off (install ros-$ROS_DISTRO-%s)",
                        package, package.replace("_", "-"))  # fmt: skip
        return opts

    def _apply_locked(self) -> None:
        v = self.values
        opts = self._output_options_locked()
        if self.outputs is not None:
            self.outputs.options = opts
        tracker = self._tracker if v["track"] else None
        if tracker is not None and self.tracker is None:
            self._tracker_stale = True  # tracks from before tracking was switched off are stale
        self.tracker = tracker
        if self.detector is not None:
            # merge_radius, pad_rows by replace, not override: their None (the weights' setting) is a value
            self.detector.cfg = dataclasses.replace(override(
                self.detector.cfg, score_threshold=v["score_threshold"], nms_distance=v["nms_distance"],
                max_humans=v["max_humans"], pad_to_train_aspect=v["pad_to_train_aspect"],
                return_vertices=opts.needs_vertices, floor_angle_sigma=v["floor_angle_sigma"],
                level_roll_deg=v["level_roll_deg"],
            ), merge_radius=params.merge_radius(v["merge_radius"]),
                pad_rows=params.pad_rows(v["pad_rows"]))  # fmt: skip

    # ------------------------------------------------------------------ frames
    def header_of(self, msg) -> SourceHeader:
        stamp_ns, frame_id = stamp_and_frame(msg)
        return SourceHeader(stamp_ns, frame_id or self.values["camera_frame"])

    def is_stale(self, header: SourceHeader, now_ns: int) -> bool:
        max_age = self.values["max_image_age"]
        return max_age > 0 and (now_ns - header.stamp_ns) > max_age * NS_PER_S

    def process(self, msg, compressed: bool, camera_info=None, depth=None, floor=None, camera_pose=None,
                image: Optional[np.ndarray] = None, imu_gravity: Optional[np.ndarray] = None) -> FrameRun:  # fmt: skip
        """Decode, detect (and track), build every output message of one image. `depth`: the
        depth image message nearest in time (use_depth), used when its stamp is close enough to the image's.
        `floor`: the floor plane (n, d) in the image's frame at its stamp (floor_frame; tf.floor_from_transform).
        `camera_pose`: (4, 4) the camera in fixed_frame at its stamp (tf.camera_pose_from_transform).
        `image`: (H, W, 3) uint8 RGB already decoded: a video message's, which the subscription decodes
        in order as they come (io/compressed_video.py); `msg` then only gives the stamp and frame.
        `imu_gravity`: (3,) gravity in the image's frame from its IMU (imu_gravity; ros/imu_gravity.py),
        which levels a rolled camera when fixed_frame does not say which way is down."""
        header = self.header_of(msg)
        if image is None:
            image = compressed_msg_to_rgb(msg) if compressed else image_msg_to_rgb(msg)
        with self._lock:
            detector, outputs, v, tracker = self.detector, self.outputs, dict(self.values), self.tracker
            reset, self._tracker_stale = self._tracker_stale, False
        if detector is None or outputs is None:
            raise RuntimeError("the detector is not loaded (node not configured)")
        h, w = image.shape[:2]
        K = intrinsics_from_camera_info(camera_info, h, w, v["intrinsics_matrix"]) if v["use_camera_info"] else None
        lens = self.lens.rectifier(camera_info, v["intrinsics_matrix"], h, w, v["rectify"] and K is not None)
        if reset and tracker is not None:
            tracker.reset()
        depth = depth_in_sync(depth, header.stamp_ns, v["depth_sync_tolerance"], (h, w)) if v["use_depth"] else None
        raw = image  # the results' pixels are this image's (lens.to_raw below)
        if lens is not None:  # the pinhole image of K (inference/rectify.py)
            image, depth = lens.image(image), lens.depth(depth)
        floor = floor if v["floor_frame"] else None
        pose = camera_pose if v["fixed_frame"] else None
        gravity = fixed_frame_gravity(pose, v["fixed_frame"], header.frame_id)  # levels a rolled camera
        gravity = gravity if gravity is not None or not v["imu_gravity"] else imu_gravity
        result = detector(image, K=K, depth=depth, floor=floor, gravity=gravity)
        tracks = tracker.update(result, header.stamp_ns / NS_PER_S, camera_pose=pose) if tracker is not None else None
        if lens is not None:
            lens.to_raw(result)  # after the tracker, which works in the pinhole image's pixels
        out = outputs.build(result, header, tracks, intrinsics_source="camera_info" if K is not None else None,
                            image=raw)  # fmt: skip
        self.last_header = header
        persons = person_views(result, tracks)
        tracked = sum(p.state in (NEW, TRACKED) for p in persons)
        started = sum(t.hits == 1 and t.frames_since_seen == 0 for t in tracks) if tracks is not None else 0
        return FrameRun(result, out, header, len(persons), tracked, started)

    def mesh_topology(self, stamp_ns: int) -> object:
        with self._lock:
            detector, outputs = self.detector, self.outputs
        return outputs.mesh_topology(stamp_ns, detector.body.num_vertices, detector.body.rig)

