"""Launch the Multi-HMR 2 detector (lifecycle node), optionally with RViz.

    ros2 launch mhr2_ros detector.launch.py image:=/camera/color/image_raw \\
        camera_info:=/camera/color/camera_info device:=cuda rviz:=true

Parameters come from params_file (default: config/detector.yaml); a parameter
launch argument left empty keeps that file's value, a non-empty one overrides it
(typed and checked by mhr2_ros.ros.params: score_threshold:=1.5 is refused with a message
naming the range, track:=maybe with one asking for true or false). With autostart:=true (default) the node is configured and activated.
"""

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

PACKAGE = "mhr2_ros"

# Launch arguments that set node parameters of the same name ('' = keep params_file's value):
# every parameter of mhr2_ros.ros.params.SPECS.
PARAMETER_ARGUMENTS = (
    "image_transport",
    "image_reliability",
    "use_camera_info",
    "intrinsics_matrix",
    "rectify",
    "camera_frame",
    "max_image_age",
    "use_depth",
    "depth_transport",
    "floor_frame",
    "floor_angle_sigma",
    "level_roll_deg",
    "imu_gravity",
    "floor_tf_timeout",
    "depth_sync_tolerance",
    "weights",
    "preset",
    "device",
    "dtype",
    "compile",
    "release_gpu_on_deactivate",
    "score_threshold",
    "nms_distance",
    "merge_radius",
    "max_humans",
    "pad_to_train_aspect",
    "pad_rows",
    "track",
    "tracker_config",
    "fixed_frame",
    "publish_tf",
    "publish_body_parts",
    "publish_markers",
    "publish_meshes",
    "publish_people",
    "publish_hri",
    "hri_namespace",
    "marker_mesh",
    "marker_mesh_resolution",
    "marker_lifetime",
    "pixel_sigma",
    "depth_sigma_ratio",
    "heading_sigma",
    "velocity_heading_sigma",
    "tilt_sigma",
    "measured_depth_sigma_ratio",
    "floor_depth_sigma_ratio",
    "predicted_fov_pixel_sigma",
    "predicted_fov_depth_factor",
    "diagnostics_period",
)

# Other launch arguments: name -> (default, description).
LAUNCH_ARGUMENTS = {
    "image": ("/camera/image_raw", "image topic (its /compressed, /foxglove or /ffmpeg sibling with "
              "image_transport:=compressed, foxglove or ffmpeg)"),
    "camera_info": ("/camera/camera_info", "sensor_msgs/CameraInfo topic of the image"),
    "imu": ("/camera/imu", "sensor_msgs/Imu topic of the camera's IMU (imu_gravity)"),
    "depth": ("/camera/aligned_depth_to_color/image_raw", "depth image registered to the colour image (use_depth; "
              "its /compressedDepth sibling with depth_transport:=compressedDepth)"),
    "namespace": ("", "namespace of the node and its topics"),
    "params_file": ("", "parameters file (default: share/mhr2_ros/config/detector.yaml)"),
    "use_sim_time": ("false", "use /clock (bag playback, simulation)"),
    "autostart": ("true", "configure and activate the node at launch"),
    "rviz": ("false", "start RViz with config/mhr2.rviz"),
    "log_level": ("info", "log level of the node"),
}


def _share() -> Path:
    return Path(get_package_share_directory(PACKAGE))


def _overrides(context) -> dict:
    """Non-empty parameter arguments, typed and checked against the parameter specs."""
    from mhr2_ros.ros.params import BY_NAME

    out = {}
    for name in PARAMETER_ARGUMENTS:
        text = LaunchConfiguration(name).perform(context)
        if text != "":
            out[name] = BY_NAME[name].parse(text)
    return out


def _detector(context):
    from mhr2_ros.ros.params import parse_flag

    arg = {name: LaunchConfiguration(name).perform(context) for name in LAUNCH_ARGUMENTS}
    sim_time = parse_flag("use_sim_time", arg["use_sim_time"])  # typed like the parameters: yes/on too
    image = arg["image"]
    node = LifecycleNode(
        package=PACKAGE, executable="detector_node", name="detector_node", namespace=arg["namespace"],
        parameters=[arg["params_file"] or str(_share() / "config" / "detector.yaml"), _overrides(context),
                    {"use_sim_time": sim_time}],
        remappings=[("image", image), ("image/compressed", f"{image}/compressed"),
                    ("image/foxglove", f"{image}/foxglove"), ("image/ffmpeg", f"{image}/ffmpeg"),
                    ("camera_info", arg["camera_info"]), ("imu", arg["imu"]),
                    ("depth", arg["depth"]), ("depth/compressedDepth", f"{arg['depth']}/compressedDepth")],
        arguments=["--ros-args", "--log-level", arg["log_level"]],
        output="screen",
    )  # fmt: skip
    actions = [node]
    if parse_flag("autostart", arg["autostart"]):
        activate = ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_ACTIVATE
        )
        actions.append(RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, start_state="configuring", goal_state="inactive",
            entities=[EmitEvent(event=activate)],
        )))  # fmt: skip
        configure = ChangeState(
            lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE
        )
        actions.append(EmitEvent(event=configure))
    if parse_flag("rviz", arg["rviz"]):
        actions.append(Node(
            package="rviz2", executable="rviz2", arguments=["-d", str(_share() / "config" / "mhr2.rviz")],
            parameters=[{"use_sim_time": sim_time}], output="screen",
        ))  # fmt: skip
    return actions


def generate_launch_description() -> LaunchDescription:
    from mhr2_ros.ros.params import BY_NAME

    declared = [
        DeclareLaunchArgument(name, default_value="", description=f"{BY_NAME[name].description} ('' : params_file)")
        for name in PARAMETER_ARGUMENTS
    ]
    declared += [
        DeclareLaunchArgument(name, default_value=default, description=text)
        for name, (default, text) in LAUNCH_ARGUMENTS.items()
    ]
    return LaunchDescription(declared + [OpaqueFunction(function=_detector)])
