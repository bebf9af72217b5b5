"""The node's parameters: names, types, defaults, descriptions, ranges and checks.

ROS-free, so tests cover every decision: node.py declares each spec with the
ParameterDescriptor `descriptor()` builds (type, description, range) and refuses a bad
value in its set-parameters callback with `problem()`'s message. config/detector.yaml holds
every default, launch/detector.launch.py exposes every one as an argument;
tests check all three agree by parsing the files.

`applies` says when a change takes effect: "now" (next image), "activate" (next
activation: subscriptions, QoS, timers) or "configure" (next configure: weights,
device). Inference fields keep InferenceConfig's names (config.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Mapping, Optional, Tuple

from mhr2_ros.config import MAX_FLOOR_ANGLE_SIGMA, PRESETS, InferenceConfig
from mhr2_ros.inference.covariance import CovariancePrior
from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.hri import namespace_problem
from mhr2_ros.ros.outputs import OutputOptions
from mhr2_ros.ros.tf import frame_id_problem
from mhr2_ros.ros.tf_tree import TF_WAIT_S

NOW, ACTIVATE, CONFIGURE = "now", "activate", "configure"
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
TYPE_WORDS = {bool: "a boolean", int: "an integer", float: "a double (write 1.0, not 1)", str: "a string"}


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type  # bool, int, float or str (ROS: bool, integer, double, string)
    default: Any
    description: str  # with unit and when it applies
    applies: str = NOW
    min: Optional[float] = None  # inclusive range (ints and floats)
    max: Optional[float] = None
    choices: Tuple[str, ...] = ()  # allowed strings
    check: Optional[Callable[[Any], str]] = None  # extra check: '' or the problem

    def problem(self, value: Any) -> str:
        """'' when `value` is acceptable, else a message naming the parameter, what it must
        be and the value received (repr: an empty or blank string shows as such)."""
        if not _has_type(value, self.type):
            return f"{self.name} must be {TYPE_WORDS[self.type]}, got {value!r} ({type(value).__name__})"
        if self.type is float and math.isnan(value):  # passes every comparison; rclpy's range refuses it
            return f"{self.name} must be a number, got nan"
        if self.min is not None and value < self.min or self.max is not None and value > self.max:
            return f"{self.name} must be in [{self.min}, {self.max}], got {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {list(self.choices)}, got {value!r}"
        extra = self.check(value) if self.check else ""  # what would be right, in words
        return f"{self.name} {extra}, got {value!r}" if extra else ""

    def constraints(self) -> str:
        """Human-readable constraints (ParameterDescriptor.additional_constraints)."""
        if self.choices:
            return "one of: " + ", ".join(repr(c) for c in self.choices)
        if self.min is not None:
            return f"range [{self.min}, {self.max}]"
        return ""

    def parse(self, text: str) -> Any:
        """A launch argument's text as this parameter's type; ValueError with the name."""
        text = str(text).strip()
        try:
            value: Any = _boolean(text) if self.type is bool else self.type(text)
        except ValueError as exc:
            raise ValueError(f"launch argument {self.name}:={text!r}: {exc}") from None
        problem = self.problem(value)
        if problem:
            raise ValueError(f"launch argument {self.name}:={text!r}: {problem}")
        return value


def _boolean(text: str) -> bool:
    if text.lower() not in _TRUE + _FALSE:
        raise ValueError("expected true or false")
    return text.lower() in _TRUE


def parse_flag(name: str, text: str) -> bool:
    """A boolean launch argument that is not a node parameter (autostart, rviz) or is a
    standard one (use_sim_time): true/false/1/0/yes/no/on/off, else ValueError naming it."""
    try:
        return _boolean(str(text).strip())
    except ValueError as exc:
        raise ValueError(f"launch argument {name}:={text!r}: {exc}") from None


def _has_type(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, float)
    return isinstance(value, kind)


def _device_problem(value: str) -> str:
    return "" if _DEVICE.match(value) else "must be auto, cpu, cuda or cuda:N"


def _weights_problem(value: str) -> str:
    if value == "" or value.endswith((".safetensors", ".onnx")):
        return ""
    return "must be '' (packaged weights), a .safetensors file or a .onnx file from `mhr2 export`"


def _preset_problem(value: str) -> str:
    if value in ("",) + PRESETS or value.endswith((".yaml", ".yml", ".json")):
        return ""
    return f"must be '' (the JSON beside the weights), a preset {list(PRESETS)} or a .yaml/.json file"


def _tracker_config_problem(value: str) -> str:
    if value == "" or value.endswith((".yaml", ".yml", ".json")):
        return ""
    return "must be '' (the shipped config/tracker.yaml) or a .yaml/.json file"


def _frame_problem(value: str) -> str:
    return "" if value == "" else frame_id_problem(value)


_PRIOR = CovariancePrior()
_INFER = InferenceConfig()
WEIGHTS_SETTING = -1.0  # merge_radius: use the weights' own setting (InferenceConfig.merge_radius None)
WEIGHTS = "weights"  # pad_rows: the weights' own setting (InferenceConfig.pad_rows None)
_OUT = OutputOptions()

# image topic kinds -> (the node's topic, its message type)
IMAGE_TOPICS: Dict[str, Tuple[str, str]] = {
    "raw": ("image", "sensor_msgs/msg/Image"),
    "compressed": ("image/compressed", "sensor_msgs/msg/CompressedImage"),
    "foxglove": ("image/foxglove", "foxglove_msgs/msg/CompressedVideo"),
    "ffmpeg": ("image/ffmpeg", "ffmpeg_image_transport_msgs/msg/FFMPEGPacket"),
}
# video transports -> the ROS package of their message
VIDEO_PACKAGES: Dict[str, str] = {"foxglove": "foxglove_msgs", "ffmpeg": "ffmpeg_image_transport_msgs"}
TRANSPORTS = tuple(IMAGE_TOPICS)

SPECS: Tuple[ParamSpec, ...] = (
    # ---- input
    ParamSpec("image_transport", str, "raw", "image topic kind: raw (sensor_msgs/Image on 'image'), "
              "compressed (sensor_msgs/CompressedImage on 'image/compressed'), or H.264/H.265/VP9/AV1 video: "
              "foxglove (foxglove_msgs/CompressedVideo on 'image/foxglove') or ffmpeg (ffmpeg_image_transport's "
              "FFMPEGPacket on 'image/ffmpeg'), which need their message package and PyAV; every video message "
              "is decoded, so choose reliable", ACTIVATE, choices=TRANSPORTS),
    ParamSpec("image_reliability", str, "best_effort", "reliability of the image and camera_info subscriptions "
              "(sensor-data QoS, depth 1)", ACTIVATE, choices=("best_effort", "reliable")),
    ParamSpec("use_camera_info", bool, True, "use the K of the 'camera_info' topic when one has arrived; "
              "else the network predicts the vertical field of view"),
    ParamSpec("intrinsics_matrix", str, "k", "which camera_info matrix to use: k (raw images) or p (rectified "
              "images)", choices=("k", "p")),
    ParamSpec("rectify", bool, True, "raw images (intrinsics_matrix k) whose camera_info K is used and whose lens "
              "distortion moves their border by more than 1 px are resampled into the pinhole image of that K "
              "before the detector (2D outputs in the raw image's pixels); false: only a warning"),
    ParamSpec("camera_frame", str, "", "optical frame id used when an image header has none ('' keeps the "
              "header's)", check=_frame_problem),
    ParamSpec("max_image_age", float, 0.0, "seconds: images older than this when the worker takes them are "
              "dropped (0: never)", min=0.0, max=60.0),
    ParamSpec("use_depth", bool, False, "subscribe to 'depth' (sensor_msgs/Image 16UC1 millimetres or 32FC1 "
              "meters, registered to the colour image) and scale each person to it; the subscription follows at "
              "the next activation, turning it off stops using the depth at once", ACTIVATE),
    ParamSpec("depth_transport", str, "raw", "depth topic kind (use_depth): raw (sensor_msgs/Image on 'depth') or "
              "compressedDepth (image_transport's compressedDepth plugin, PNG or RVL: sensor_msgs/CompressedImage on "
              "'depth/compressedDepth')", ACTIVATE, choices=("raw", "compressedDepth")),
    ParamSpec("floor_frame", str, "", "TF frame whose z = 0 plane is the floor people stand on, z up (REP-105 "
              "base_footprint; '' : none): each person is scaled about the camera until their lowest point is on it, "
              "from the transform to the image's frame at its stamp; a person a depth image measured keeps that "
              "depth. The TF listener starts at the next activation, '' stops using the floor at once", ACTIVATE,
              check=_frame_problem),
    ParamSpec("floor_angle_sigma", float, _INFER.floor_angle_sigma, "radians: how far the ray to a person's "
              "lowest point may be off (the mesh's foot and the mount's pitch calibration): the floor's depth is "
              "weighed with the network's by it (0: the floor alone)", min=0.0, max=MAX_FLOOR_ANGLE_SIGMA),
    ParamSpec("level_roll_deg", float, _INFER.level_roll_deg, "degrees: with floor_frame (or, without one, "
              "fixed_frame, whose z is up, or imu_gravity), a camera rolled about its optical axis by at least "
              "this much has its image levelled by gravity before the network and the outputs turned back (the "
              "training scenes roll up to 4 degrees; negative: never)", min=-1.0, max=89.0),
    ParamSpec("imu_gravity", bool, False, "subscribe to 'imu' (sensor_msgs/Imu, e.g. a RealSense's /camera/imu): "
              "without floor_frame and fixed_frame, its accelerometer's gravity (a running mean, jolts skipped), "
              "turned into the image's frame by TF, levels a rolled camera (level_roll_deg). The subscription "
              "starts at the next activation", ACTIVATE),
    ParamSpec("floor_tf_timeout", float, TF_WAIT_S, "seconds the worker waits for the floor_frame (and fixed_frame) "
              "transform at the image's stamp; without it the people keep the network's depth (warned)",
              min=0.0, max=1.0),
    ParamSpec("depth_sync_tolerance", float, 0.05, "seconds: the depth image nearest in stamp is used when "
              "within this of the colour image's (waiting up to this for one stamped at or after it), else the "
              "network's depth", min=0.0, max=1.0),
    # ---- model
    ParamSpec("weights", str, "", "checkpoint .safetensors with its .json beside it, or a .onnx file from "
              "`mhr2 export` ('' : the packaged weights)", CONFIGURE, check=_weights_problem),
    ParamSpec("preset", str, "", "model config: '' (the JSON beside the weights), tiny, small, large or a "
              ".yaml/.json file", CONFIGURE, check=_preset_problem),
    ParamSpec("device", str, "auto", "torch device: auto (cuda when available), cpu, cuda or cuda:N",
              CONFIGURE, check=_device_problem),
    ParamSpec("dtype", str, _INFER.dtype, "network compute dtype", CONFIGURE,
              choices=("float32", "bfloat16", "float16")),
    ParamSpec("compile", bool, _INFER.compile, "torch.compile the network (GPU; slow first frame)", CONFIGURE),
    ParamSpec("release_gpu_on_deactivate", bool, True, "free the model's GPU memory on deactivate (activate "
              "then reloads the weights)"),
    # ---- detection
    ParamSpec("score_threshold", float, _INFER.score_threshold, "keep people whose score is above this "
              "(paper: 0.4)", min=0.0, max=1.0),
    ParamSpec("nms_distance", float, _INFER.nms_distance, "meters: suppress detections whose pelvis is within "
              "this of a better one (0: off)", min=0.0, max=10.0),
    ParamSpec("merge_radius", float, WEIGHTS_SETTING, "meters across the view: first sum the scores of "
              "queries at one person's place into one detection (helps under-trained models; 0: off; "
              "-1: the weights' own setting, 0.5 for the shipped model)", min=WEIGHTS_SETTING, max=5.0),
    ParamSpec("max_humans", int, _INFER.max_humans, "keep at most this many people per image", min=1, max=1000),
    ParamSpec("pad_to_train_aspect", bool, _INFER.pad_to_train_aspect, "pad images to the nearest training "
              "aspect ratio before resizing (at the sides only for weights that say so, as the shipped ones do: "
              "an image wider than that ratio is left as it is)"),
    ParamSpec("pad_rows", str, WEIGHTS, "with pad_to_train_aspect, the rows above and below an image wider "
              "than its nearest training aspect ratio: weights (their own setting; the shipped ones leave them "
              "out), true (the paper's padding) or false", choices=(WEIGHTS, "true", "false")),
    # ---- tracking
    ParamSpec("track", bool, True, "track people across images: ids persist per person (h1, h2, ...) and "
              "velocities are estimated; off: per-image ids (p0, p1, ...); turning it on starts fresh tracks"),
    ParamSpec("tracker_config", str, "", "tracker settings file ('' : the shipped config/tracker.yaml), read "
              "at configure", CONFIGURE, check=_tracker_config_problem),
    ParamSpec("fixed_frame", str, "", "TF frame fixed in the world (REP-105 odom or map; '' : none): the tracker "
              "follows people in it, from the camera's pose at each image's stamp, so velocities are over the "
              "ground on a moving robot and a walking person faces where they go (tracker.yaml "
              "velocity_heading_speed); without floor_frame, its z axis (up) also levels a rolled camera "
              "(level_roll_deg); the image's own frame: a static camera (no lookup); '': velocities "
              "relative to the camera, headings the network's. The TF listener starts at the next activation",
              ACTIVATE, check=_frame_problem),
    # ---- outputs
    ParamSpec("publish_tf", bool, _OUT.publish_tf, "broadcast a body_<id> TF frame per visible person"),
    ParamSpec("publish_body_parts", bool, _OUT.publish_body_parts, "with publish_tf, also broadcast the "
              "person's REP-155 body part frames under body_<id>: waist, torso, head, l/r_shoulder, l/r_elbow, "
              "l/r_wrist, l/r_hip, l/r_knee, l/r_ankle, each <part>_<id>"),
    ParamSpec("publish_markers", bool, _OUT.publish_markers, "publish RViz markers on 'markers'"),
    ParamSpec("publish_meshes", bool, _OUT.publish_meshes, "fill Human.vertices (about 170 kB per person)"),
    ParamSpec("publish_people", bool, _OUT.publish_people, "publish people_msgs/People on 'people' "
              "(needs the people_msgs package)"),
    ParamSpec("publish_hri", bool, _OUT.publish_hri, "publish the ROS4HRI (REP-155) body topics: "
              "<hri_namespace>/bodies/tracked and, per body, roi, cropped, skeleton2d, position, velocity (needs "
              "the hri_msgs package)"),
    ParamSpec("hri_namespace", str, _OUT.hri_namespace, "absolute namespace of the ROS4HRI topics (REP-155: "
              "/humans)", check=namespace_problem),
    ParamSpec("marker_mesh", bool, _OUT.marker_mesh, "include the body mesh (TRIANGLE_LIST) among the markers"),
    ParamSpec("marker_mesh_resolution", float, _OUT.marker_mesh_resolution, "meters: vertex clustering cell "
              "of the mesh marker (0: the full 27k-triangle mesh)", min=0.0, max=0.5),
    ParamSpec("marker_lifetime", float, _OUT.marker_lifetime, "seconds a marker lives without an update "
              "(0: until deleted)", min=0.0, max=3600.0),
    ParamSpec("pixel_sigma", float, _PRIOR.pixel_sigma, "pixels per axis: pelvis error across the ray "
              "in the pose covariance prior", min=0.0, max=1000.0),
    ParamSpec("depth_sigma_ratio", float, _PRIOR.depth_sigma_ratio, "sigma along the viewing ray / distance, "
              "in the pose covariance prior", min=0.0, max=10.0),
    ParamSpec("heading_sigma", float, _PRIOR.heading_sigma, "radians about the person's up axis (which way "
              "they face), in the pose covariance prior", min=0.0, max=4.0),
    ParamSpec("velocity_heading_sigma", float, _PRIOR.velocity_heading_sigma, "radians: heading_sigma of a "
              "walking track whose heading is its velocity's (Human.heading_source HEADING_VELOCITY)",
              min=0.0, max=4.0),
    ParamSpec("tilt_sigma", float, _PRIOR.tilt_sigma, "radians about each of the person's horizontal axes, in "
              "the pose covariance prior", min=0.0, max=4.0),
    ParamSpec("measured_depth_sigma_ratio", float, _PRIOR.measured_depth_sigma_ratio, "sigma along the viewing "
              "ray / distance, in the pose covariance of a person scaled to a depth image (use_depth)",
              min=0.0, max=10.0),
    ParamSpec("floor_depth_sigma_ratio", float, _PRIOR.floor_depth_sigma_ratio, "sigma along the viewing ray / "
              "distance, in the pose covariance of a person stood on the floor (floor_frame)", min=0.0, max=10.0),
    ParamSpec("predicted_fov_pixel_sigma", float, _PRIOR.predicted_fov_pixel_sigma, "pixels: pixel_sigma when K is "
              "the network's (no usable camera_info)", min=0.0, max=1000.0),
    ParamSpec("predicted_fov_depth_factor", float, _PRIOR.predicted_fov_depth_factor, "the sigma along the ray is "
              "multiplied by this when K is the network's (no usable camera_info)", min=1.0, max=10.0),
    # ---- node
    ParamSpec("diagnostics_period", float, 1.0, "seconds between /diagnostics messages", ACTIVATE,
              min=0.1, max=60.0),
)  # fmt: skip

BY_NAME: Dict[str, ParamSpec] = {s.name: s for s in SPECS}
DEFAULTS: Dict[str, Any] = {s.name: s.default for s in SPECS}
# Parameters every rclpy node declares itself.
STANDARD_PARAMETERS: Tuple[str, ...] = ("use_sim_time",)
# Launch arguments that are not parameters, and what they set instead.
LAUNCH_ONLY_ARGUMENTS: Dict[str, str] = {
    "image": "remaps the node's 'image' (and 'image/compressed') topic",
    "camera_info": "remaps the node's 'camera_info' topic",
    "imu": "remaps the node's 'imu' topic (read with imu_gravity)",
    "depth": "remaps the node's 'depth' topic (read with use_depth)",
    "namespace": "namespace of the node and of its topics",
    "params_file": "parameters file loaded before the launch-argument overrides",
    "autostart": "configure and activate the lifecycle node at launch",
    "rviz": "start RViz with config/mhr2.rviz",
    "log_level": "the node's log level",
}


# rcl_interfaces/msg/ParameterType constants of each Python type (checked against the message).
ROS_PARAMETER_TYPES: Dict[type, int] = {bool: 1, int: 2, float: 3, str: 4}
DESCRIPTOR = "rcl_interfaces/msg/ParameterDescriptor"


def descriptor(f: MessageFactory, spec: ParamSpec) -> Any:
    """rcl_interfaces/ParameterDescriptor of `spec` (`ros2 param describe`): type, description
    with when it applies, constraints, and a FloatingPointRange / IntegerRange (step 0 for
    doubles: any value; step 1 for integers) that rclpy enforces before the node's check."""
    fields: Dict[str, Any] = {}
    if spec.min is not None and spec.type is float:
        fields["floating_point_range"] = [f.new(
            "rcl_interfaces/msg/FloatingPointRange", from_value=float(spec.min), to_value=float(spec.max), step=0.0,
        )]  # fmt: skip
    if spec.min is not None and spec.type is int:
        fields["integer_range"] = [f.new(
            "rcl_interfaces/msg/IntegerRange", from_value=int(spec.min), to_value=int(spec.max), step=1,
        )]  # fmt: skip
    return f.new(
        DESCRIPTOR, name=spec.name, type=ROS_PARAMETER_TYPES[spec.type],
        description=f"{spec.description} [applies: {spec.applies}]", additional_constraints=spec.constraints(),
        **fields,
    )  # fmt: skip


def problems(values: Mapping[str, Any]) -> Tuple[str, ...]:
    """Every problem of a set of (name, value) changes; unknown names included."""
    out = []
    for name, value in values.items():
        spec = BY_NAME.get(name)
        if spec is None:
            if name not in STANDARD_PARAMETERS:
                out.append(f"unknown parameter {name!r}")
            continue
        problem = spec.problem(value)
        if problem:
            out.append(problem)
    return tuple(out)


def merge_radius(value: float) -> Optional[float]:
    """The merge_radius parameter as InferenceConfig.merge_radius: negative = the weights' (None)."""
    return None if value < 0 else value


def pad_rows(value: str) -> Optional[bool]:
    """The pad_rows parameter as InferenceConfig.pad_rows: "weights" = the weights' (None)."""
    return None if value == WEIGHTS else value == "true"


def inference_config(values: Mapping[str, Any], return_vertices: bool) -> InferenceConfig:
    """The detector's settings. `device` stays "auto" when it is: the Detector resolves it, and
    ONNX weights fall back to the CPU provider only when the device was not asked for explicitly."""
    v = {**DEFAULTS, **values}
    return InferenceConfig(
        score_threshold=v["score_threshold"], nms_distance=v["nms_distance"],
        merge_radius=merge_radius(v["merge_radius"]), pad_rows=pad_rows(v["pad_rows"]),
        pad_to_train_aspect=v["pad_to_train_aspect"], max_humans=v["max_humans"],
        return_vertices=return_vertices, return_track_features=True,
        device=v["device"], dtype=v["dtype"], compile=v["compile"], floor_angle_sigma=v["floor_angle_sigma"],
        level_roll_deg=v["level_roll_deg"],
    )  # fmt: skip


def output_options(values: Mapping[str, Any]) -> OutputOptions:
    v = {**DEFAULTS, **values}
    prior = CovariancePrior(**{f.name: v[f.name] for f in dataclasses.fields(CovariancePrior)})
    return OutputOptions(
        publish_tf=v["publish_tf"], publish_body_parts=v["publish_body_parts"], publish_markers=v["publish_markers"],
        publish_meshes=v["publish_meshes"], publish_people=v["publish_people"], publish_hri=v["publish_hri"],
        hri_namespace=v["hri_namespace"], marker_mesh=v["marker_mesh"],
        marker_mesh_resolution=v["marker_mesh_resolution"], marker_lifetime=v["marker_lifetime"], prior=prior,
    )  # fmt: skip


def deferred(old: Mapping[str, Any], new: Mapping[str, Any]) -> Tuple[str, ...]:
    """Names of changed parameters that only apply at the next activate or configure."""
    return tuple(sorted(
        name for name, value in new.items()
        if name in BY_NAME and BY_NAME[name].applies != NOW and old.get(name) != value
    ))  # fmt: skip


WHEN = {
    NOW: "with the next image",
    ACTIVATE: "at the next activate",
    CONFIGURE: "when the weights next load: at configure, or at activate after a deactivate that released "
               "them (release_gpu_on_deactivate)",
}  # fmt: skip


def changed_stage(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """The latest stage a change needs: "configure" > "activate" > "now" ('' if none)."""
    order = ("", NOW, ACTIVATE, CONFIGURE)
    stage = ""
    for name, value in new.items():
        if name in BY_NAME and old.get(name) != value:
            stage = max(stage, BY_NAME[name].applies, key=order.index)
    return stage
