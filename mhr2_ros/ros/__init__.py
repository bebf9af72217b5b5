"""ROS 2 glue: message building (ROS-free) and the rclpy lifecycle node (node.py).

Import-free on purpose: the rosidl-generated `mhr2_ros.msg` module lives beside
this package on a ROS install, and only node.py and its tf_lookups.py import rclpy.

Modules:
- typestore: rosbags typestores (Humble, Jazzy) with our msg/ and people_msgs registered
- factory: MessageFactory over rosbags classes or rclpy-generated classes (one code path)
- persons: detections or tracks -> PersonView (TF-safe ids, tracking states)
- messages: HumanArray, Human, MeshTopology builders
- tf, markers, people: TF transforms, RViz MarkerArray, people_msgs/People builders
- camera: intrinsics from sensor_msgs/CameraInfo, rescaled to the image
- outputs: every message of one frame, as the node and `mhr2 bag` publish them
- params: parameter specs (names, types, defaults, ranges, validation)
- diagnostics: input rate, latency, inference time, tracked count -> DiagnosticArray
- worker: latest-frame slot and worker thread (the executor never blocks)
- session: what the node does with an image (decode, detect, track, build), ROS-free
- offline: rosbag2 in -> rosbag2 out (`mhr2 bag`)
- node: the lifecycle node `detector_node` (rclpy)
- tf_lookups: the node's tf2 lookups at an image's stamp: floor, camera pose, IMU gravity (rclpy)
"""
