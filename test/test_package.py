"""Package-level promises: ROS stays in mhr2_ros/ros, imports stay light, files stay small."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mhr2_ros"
ROS_MODULES = {
    "rclpy", "rosidl_runtime_py", "cv_bridge", "tf2_ros", "tf2_msgs", "sensor_msgs", "geometry_msgs",
    "std_msgs", "visualization_msgs", "builtin_interfaces", "diagnostic_msgs", "lifecycle_msgs",
    "launch", "launch_ros", "message_filters", "image_transport", "rosbag2_py",
}  # fmt: skip


def _imported_roots(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module.split(".")[0]


def test_ros_is_imported_only_in_mhr2_ros_ros():
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in PACKAGE.rglob("*.py")
        if "ros" not in path.relative_to(PACKAGE).parts[:1]
        for line, name in _imported_roots(path)
        if name in ROS_MODULES
    ]
    assert not offenders, "ROS imported outside mhr2_ros/ros/:\n" + "\n".join(offenders)


def test_the_check_catches_a_ros_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy\nfrom rclpy.node import Node\n")
    assert [n for _, n in _imported_roots(bad) if n in ROS_MODULES] == ["rclpy"]


def test_importing_the_package_and_results_is_light():
    code = "import sys, mhr2_ros, mhr2_ros.inference.results; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_eval_or_print_in_library_code(path):
    tree = ast.parse(path.read_text())
    names = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "eval" not in names and "exec" not in names
    if "cli" not in path.relative_to(PACKAGE).parts:
        assert "print" not in names, "library code logs with `logging`; only the CLI prints"


def test_config_and_weights_are_found_where_colcon_and_pip_install_them(tmp_path):
    from mhr2_ros.config import find_data_dir

    colcon = tmp_path / "install" / "mhr2_ros"
    site = colcon / "lib" / "python3.12" / "site-packages"  # our package's parent after colcon build
    (colcon / "share" / "mhr2_ros" / "weights").mkdir(parents=True)
    (site / "mhr2_ros").mkdir(parents=True)
    elsewhere = tmp_path / "venv"
    assert find_data_dir("weights", site, elsewhere) == colcon / "share" / "mhr2_ros" / "weights"
    (elsewhere / "share" / "mhr2_ros" / "config").mkdir(parents=True)  # pip: sys.prefix/share
    assert find_data_dir("config", site, elsewhere) == elsewhere / "share" / "mhr2_ros" / "config"
    setup_py = (ROOT / "setup.py").read_text()
    assert '"share/mhr2_ros/weights"' in setup_py and "install(DIRECTORY config launch weights" in (
        ROOT / "CMakeLists.txt").read_text()
