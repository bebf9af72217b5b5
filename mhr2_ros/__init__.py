"""mhr2_ros: metric 3D perception of people with Multi-HMR 2, for ROS 2 and offline use.

Kept free of imports: the rosidl-generated `mhr2_ros.msg` module lands inside this
package on a ROS install, and importing torch here would slow every tool.
"""

__version__ = "0.1.0"
