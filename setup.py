"""pip install of the same Python code that colcon installs (see CMakeLists.txt).

Metadata and pinned dependencies live in setup.cfg; this file only adds the
non-Python files (presets, launch, messages, the shipped weights) under share/mhr2_ros.
"""

from glob import glob

from setuptools import setup

setup(
    data_files=[
        ("share/mhr2_ros/config", glob("config/*.yaml") + glob("config/*.rviz")),
        ("share/mhr2_ros/launch", glob("launch/*.py")),
        ("share/mhr2_ros/msg", glob("msg/*.msg")),
        ("share/mhr2_ros/weights", glob("weights/*.safetensors") + glob("weights/*.json") + ["weights/README.md"]),
        ("share/mhr2_ros", ["package.xml"]),
    ]
)
