"""launch/detector.launch.py brings detector_node up to 'active' (launch_testing).

Runs only in a ROS 2 workspace after `colcon build` (the launch file finds its
params file and RViz config in the package's share directory); skipped elsewhere.
"""

import time
import unittest
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("launch_testing")
ament_index = pytest.importorskip("ament_index_python.packages")

import launch_testing.actions  # noqa: E402
import rclpy  # noqa: E402
from launch import LaunchDescription  # noqa: E402
from launch.actions import IncludeLaunchDescription  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402
from lifecycle_msgs.srv import GetState  # noqa: E402

NAMESPACE = "mhr2_launch_test"


@pytest.mark.launch_test
def generate_test_description():
    share = Path(ament_index.get_package_share_directory("mhr2_ros"))
    include = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(share / "launch" / "detector.launch.py")),
        launch_arguments={"namespace": NAMESPACE, "device": "cpu", "image": "/mhr2_launch_test/image"}.items(),
    )
    return LaunchDescription([include, launch_testing.actions.ReadyToTest()])


class TestDetectorLaunch(unittest.TestCase):
    def test_node_is_configured_and_activated(self):
        rclpy.init()
        node = rclpy.create_node("mhr2_launch_probe")
        try:
            client = node.create_client(GetState, f"/{NAMESPACE}/detector_node/get_state")
            self.assertTrue(client.wait_for_service(timeout_sec=60.0))
            deadline = time.monotonic() + 120.0
            label = ""
            while label != "active" and time.monotonic() < deadline:
                future = client.call_async(GetState.Request())
                rclpy.spin_until_future_complete(node, future, timeout_sec=5.0)
                label = future.result().current_state.label if future.result() else ""
                time.sleep(0.5)
            self.assertEqual(label, "active")
        finally:
            node.destroy_node()
            rclpy.shutdown()
