"""Parameters: specs are sound, config/detector.yaml and the launch file agree with them.

The launch file is read with ast and the params file with yaml, so these checks
run without rclpy or launch installed.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mhr2_ros.config import InferenceConfig
from mhr2_ros.devices import device_name
from mhr2_ros.ros import params
from mhr2_ros.ros.factory import GeneratedFactory, RosbagsFactory
from mhr2_ros.ros.typestore import DISTROS, make_typestore
from ros_fakes import fake_generated_classes, round_trip

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch" / "detector.launch.py"
CONFIG = ROOT / "config" / "detector.yaml"


def _launch_literals():
    """Module-level literal assignments of the launch file."""
    tree = ast.parse(LAUNCH.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return tree, out


def _yaml_parameters():
    data = yaml.safe_load(CONFIG.read_text())
    assert list(data) == ["/**"], "one node section, '/**' (any node name and namespace)"
    return data["/**"]["ros__parameters"]


@pytest.mark.parametrize("spec", params.SPECS, ids=lambda s: s.name)
def test_every_spec_is_sound(spec):
    assert spec.type in (bool, int, float, str)
    assert params.TYPE_WORDS[spec.type]
    assert spec.problem(spec.default) == "", "the default must pass its own checks"
    assert len(spec.description) > 15 and spec.applies in (params.NOW, params.ACTIVATE, params.CONFIGURE)
    if spec.min is not None:
        assert spec.type in (int, float) and spec.min <= spec.default <= spec.max
    if spec.choices:
        assert spec.type is str and spec.default in spec.choices
    assert spec.name.isidentifier() and spec.name == spec.name.lower()


def test_names_are_unique_and_inference_fields_keep_their_names():
    assert len(params.BY_NAME) == len(params.SPECS)
    inference = {"score_threshold", "nms_distance", "max_humans", "pad_to_train_aspect", "dtype", "compile", "device"}
    assert inference <= set(InferenceConfig.__dataclass_fields__) & set(params.BY_NAME)


def test_the_params_file_holds_every_parameter_with_its_default():
    values = _yaml_parameters()
    assert set(values) == set(params.BY_NAME), set(values) ^ set(params.BY_NAME)
    for name, value in values.items():
        spec = params.BY_NAME[name]
        assert value == spec.default and type(value) is spec.type, f"{name}: {value!r} vs {spec.default!r}"


def test_every_launch_argument_maps_to_a_parameter_or_a_documented_role():
    tree, literals = _launch_literals()
    parameter_args, other_args = literals["PARAMETER_ARGUMENTS"], literals["LAUNCH_ARGUMENTS"]
    assert set(parameter_args) <= set(params.BY_NAME), set(parameter_args) - set(params.BY_NAME)
    assert set(other_args) == set(params.LAUNCH_ONLY_ARGUMENTS) | set(params.STANDARD_PARAMETERS)
    assert not set(parameter_args) & set(other_args)
    assert list(parameter_args) == [s.name for s in params.SPECS]  # every parameter, in the params file's order
    # No DeclareLaunchArgument with a literal name outside these two tables.
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DeclareLaunchArgument":
            first = node.args[0]
            assert not isinstance(first, ast.Constant) or first.value in set(parameter_args) | set(other_args)
    for name, (default, text) in other_args.items():
        assert isinstance(default, str) and text, name


def test_launch_file_uses_the_node_executable_and_the_rviz_config():
    text = LAUNCH.read_text()
    assert 'executable="detector_node"' in text and '"mhr2.rviz"' in text
    assert (ROOT / "config" / "mhr2.rviz").is_file()
    assert "detector_node" in (ROOT / "CMakeLists.txt").read_text()
    assert (ROOT / "scripts" / "detector_node").stat().st_mode & 0o111


@pytest.mark.parametrize("name, text, expected", [
    ("score_threshold", "0.3", 0.3), ("score_threshold", "1", 1.0), ("max_humans", "5", 5),
    ("publish_tf", "False", False), ("publish_people", "true", True), ("device", "cuda:1", "cuda:1"),
    ("preset", "small", "small"),
])  # fmt: skip
def test_launch_values_are_typed(name, text, expected):
    value = params.BY_NAME[name].parse(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("name, text, message", [
    ("score_threshold", "1.5", "in \\[0.0, 1.0\\]"), ("max_humans", "many", "invalid literal"),
    ("publish_tf", "maybe", "true or false"), ("device", "gpu", "auto, cpu, cuda"),
    ("image_transport", "theora", "one of"), ("weights", "model.pt", ".safetensors"),
    ("score_threshold", "nan", "a number, got nan"),  # nan passes every range comparison
])  # fmt: skip
def test_bad_launch_values_are_refused_with_the_name(name, text, message):
    with pytest.raises(ValueError, match=message) as info:
        params.BY_NAME[name].parse(text)
    assert name in str(info.value)


@pytest.mark.parametrize("text, expected", [("true", True), ("False", False), ("1", True), ("off", False), ("yes", True)])
def test_boolean_launch_arguments_are_typed_like_the_parameters(text, expected):
    assert params.parse_flag("use_sim_time", text) is expected


def test_the_boolean_launch_arguments_go_through_parse_flag():
    """use_sim_time, autostart and rviz (defaults 'true'/'false') are read as parse_flag(name,
    arg[name]) in the launch file (which needs ROS to run): yes/on work, a typo names itself."""
    tree, literals = _launch_literals()
    flags = {name for name, (default, _) in literals["LAUNCH_ARGUMENTS"].items() if default in ("true", "false")}
    parsed = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "parse_flag":
            name, text = node.args
            assert isinstance(text, ast.Subscript) and text.slice.value == name.value, ast.unparse(node)
            parsed.add(name.value)
    assert flags == {"use_sim_time", "autostart", "rviz"} and parsed == flags
    assert "IfCondition" not in LAUNCH.read_text()  # launch's own parsing takes true/false/1/0 only


def test_a_boolean_launch_argument_that_is_not_one_is_refused_with_its_name():
    with pytest.raises(ValueError, match="autostart:='ture': expected true or false"):
        params.parse_flag("autostart", "ture")


@pytest.mark.parametrize("distro", DISTROS)
def test_descriptors_carry_type_range_and_when_a_change_applies(distro):
    store = make_typestore(distro)
    kinds = {name: value for name, _, value in store.fielddefs["rcl_interfaces/msg/ParameterType"][0]}
    assert params.ROS_PARAMETER_TYPES == {
        bool: kinds["PARAMETER_BOOL"], int: kinds["PARAMETER_INTEGER"],
        float: kinds["PARAMETER_DOUBLE"], str: kinds["PARAMETER_STRING"],
    }  # fmt: skip
    strict = GeneratedFactory(fake_generated_classes(store))  # rclpy's setters: exact Python types
    for spec in params.SPECS:
        strict.new(params.DESCRIPTOR)  # the class resolves
        assert type(params.descriptor(strict, spec)).__msgtype__ == params.DESCRIPTOR
        d = params.descriptor(RosbagsFactory(store), spec)
        round_trip(store, d)
        assert d.name == spec.name and d.type == params.ROS_PARAMETER_TYPES[spec.type] and not d.read_only
        assert spec.description in d.description and f"[applies: {spec.applies}]" in d.description
        assert not d.dynamic_typing  # rclpy then refuses a value of another type before the node's check
        floats, ints = list(d.floating_point_range), list(d.integer_range)
        if spec.min is None:
            assert not floats and not ints
        elif spec.type is float:
            assert not ints and (floats[0].from_value, floats[0].to_value, floats[0].step) == (spec.min, spec.max, 0.0)
        else:
            assert not floats and (ints[0].from_value, ints[0].to_value, ints[0].step) == (spec.min, spec.max, 1)


def test_set_parameter_checks_explain_what_is_wrong():
    found = params.problems({
        "score_threshold": 2.0, "max_humans": 3.0, "camera_frame": "/camera", "device": "tpu",
        "nms_distance": 0, "nope": 1, "use_sim_time": True, "publish_tf": False,
    })  # fmt: skip
    text = "\n".join(found)
    assert len(found) == 6
    for fragment in ("score_threshold must be in [0.0, 1.0], got 2.0", "max_humans must be an integer, got 3.0",
                     "camera_frame starts with '/'", "device must be", "got 'tpu'",
                     "nms_distance must be a double (write 1.0, not 1), got 0", "unknown parameter 'nope'"):
        assert fragment in text, fragment


@pytest.mark.parametrize("name, bad, right", [
    ("device", "tpu:0", "auto, cpu, cuda or cuda:N"),
    ("camera_frame", "/camera", "no leading slash"),
    ("camera_frame", "2cam", "must not start with a digit"),
    ("weights", "model.pt", "a .safetensors file or a .onnx file"),
    ("hri_namespace", "humans/", "an absolute ROS namespace like /humans"),
    ("preset", "huge", "a preset ['tiny', 'small', 'large']"),
    ("tracker_config", "tracker.txt", "a .yaml/.json file"),
    ("image_transport", "theora", "one of ['raw', 'compressed', 'foxglove', 'ffmpeg']"),
    ("marker_lifetime", -1.0, "in [0.0, 3600.0]"),
])  # fmt: skip
def test_every_refused_value_is_named_with_what_would_be_right(name, bad, right):
    """The node answers a bad `ros2 param set` with this message: it must show the value it
    received (as repr, so '' or a stray space shows) and what the parameter accepts."""
    (problem,) = params.problems({name: bad})
    assert problem.startswith(name + " ") and right in problem, problem
    assert problem.endswith(f", got {bad!r}"), problem
    with pytest.raises(ValueError) as info:  # a launch argument gets the same message
        params.BY_NAME[name].parse(str(bad))
    assert str(info.value) == f"launch argument {name}:={str(bad)!r}: {problem}"


def test_values_become_configs():
    values = {"score_threshold": 0.2, "device": "auto"}
    cfg = params.inference_config(values, return_vertices=False)
    # "auto" reaches the Detector as such: ONNX weights fall back to the CPU only for an automatic device
    assert cfg.score_threshold == 0.2 and cfg.device == "auto" and not cfg.return_vertices
    assert cfg.merge_radius is None  # the default -1: the weights' own setting
    assert params.inference_config({"merge_radius": 0.5}, False).merge_radius == 0.5
    assert cfg.pad_rows is None  # the default "weights": the weights' own setting
    assert [params.inference_config({"pad_rows": v}, False).pad_rows for v in ("true", "false")] == [True, False]
    assert device_name("auto", True) == "cuda" and device_name("cuda:1", False) == "cuda:1"
    opts = params.output_options({"publish_people": True, "depth_sigma_ratio": 0.2, "marker_mesh": False})
    assert opts.publish_people and opts.prior.depth_sigma_ratio == 0.2 and not opts.needs_vertices
    assert params.output_options({"publish_meshes": True, "publish_markers": False}).needs_vertices
    assert params.output_options({}).publish_body_parts  # REP-155 part frames by default
    assert not params.output_options({"publish_body_parts": False}).publish_body_parts


def test_changed_stage_names_the_latest_stage_needed():
    base = dict(params.DEFAULTS)
    assert params.changed_stage(base, {"score_threshold": 0.5}) == params.NOW
    assert params.changed_stage(base, {"score_threshold": 0.5, "image_transport": "compressed"}) == params.ACTIVATE
    assert params.changed_stage(base, {"weights": "x.safetensors", "image_transport": "compressed"}) == params.CONFIGURE
    assert params.changed_stage(base, {"score_threshold": base["score_threshold"]}) == ""
    assert params.deferred(base, {"device": "cpu", "score_threshold": 0.1, "image_transport": "raw"}) == ("device",)


def test_the_ros_docs_list_every_parameter_and_launch_argument():
    docs = (ROOT / "README.md").read_text()  # its "On a robot" section
    _, literals = _launch_literals()
    for name in list(params.BY_NAME) + list(literals["LAUNCH_ARGUMENTS"]):
        assert f"`{name}`" in docs, name


def test_the_launch_files_checks_import_no_venv_only_package():
    """`ros2 launch` runs the system Python, which on a venv install (README, Jazzy) has no torch,
    anny, safetensors, trimesh or rosbags: the parameter checks the launch file imports must not
    need them (numpy, yaml and OpenCV are ROS system packages: package.xml)."""
    code = (
        "import sys, mhr2_ros.ros.params\n"
        "heavy = ('torch', 'anny', 'safetensors', 'trimesh', 'rosbags')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "", f"imported by mhr2_ros.ros.params: {run.stdout.strip()}"


def test_every_image_topic_is_remapped_by_the_launch_file_and_video_names_its_package():
    """`image:=X` must move every image topic kind (X/compressed, X/foxglove, X/ffmpeg), and a video
    transport's missing message package is named from VIDEO_PACKAGES."""
    text = LAUNCH.read_text()
    for topic, type_name in params.IMAGE_TOPICS.values():
        assert f'("{topic}", ' in text, topic
        assert topic == "image" or f'f"{{image}}/{topic.split("/", 1)[1]}"' in text, topic
    assert set(params.VIDEO_PACKAGES) < set(params.TRANSPORTS)
    for transport, package in params.VIDEO_PACKAGES.items():
        assert params.IMAGE_TOPICS[transport][1].startswith(package + "/msg/")


def test_the_readmes_launch_commands_use_known_arguments():
    """Every `name:=value` of a README `ros2 launch mhr2_ros ...` command (its continued lines too) is a
    launch argument of the launch file: a copied command does not fail on a typo."""
    import re

    _, literals = _launch_literals()
    known = set(literals["PARAMETER_ARGUMENTS"]) | set(literals["LAUNCH_ARGUMENTS"])
    lines = (ROOT / "README.md").read_text().splitlines()
    used = []
    for i, line in enumerate(lines):
        if "ros2 launch mhr2_ros" not in line:
            continue
        command = line
        while command.rstrip().endswith("\\"):
            i += 1
            command = command.rstrip()[:-1] + " " + lines[i]
        used += re.findall(r"(\w+):=", command)
    assert len(used) >= 10 and set(used) <= known, set(used) - known
