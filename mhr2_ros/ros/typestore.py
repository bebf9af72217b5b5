"""rosbags typestores for Humble and Jazzy with this package's messages registered.

Tests and `mhr2 bag` serialize with these, so what they check is the ROS 2 wire
format (CDR) of the same definitions rosidl compiles from msg/. people_msgs is not
in rosbags' stores: its two definitions (wg-perception/people, ROS 2 branch) are
registered verbatim, so a bag written here decodes as real people_msgs/People; the
same holds for the four hri_msgs types of the ROS4HRI topics (hri.py) and for the video
messages `mhr2 bag` reads (io/compressed_video.py): foxglove_msgs/CompressedVideo and
ffmpeg_image_transport_msgs/FFMPEGPacket.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Dict, Tuple

from mhr2_ros.errors import ConfigError

PACKAGE = "mhr2_ros"
# Dependency order does not matter to rosbags, but this is the order rosidl lists them.
MESSAGE_NAMES: Tuple[str, ...] = ("Human", "HumanArray", "MeshTopology")
DISTROS: Tuple[str, ...] = ("humble", "jazzy")
DEFAULT_DISTRO = "jazzy"

PEOPLE_MSGS: Dict[str, str] = {
    "people_msgs/msg/Person": (
        "string name\n"
        "geometry_msgs/Point position\n"
        "geometry_msgs/Point velocity\n"
        "float64 reliability\n"
        "string[] tagnames\n"
        "string[] tags\n"
    ),
    "people_msgs/msg/People": "std_msgs/Header header\npeople_msgs/Person[] people\n",
}
# hri_msgs/Skeleton2D's point constants (NOSE = 0 ... RIGHT_EAR = 17), OpenPose's COCO order.
SKELETON_2D_POINTS: Tuple[str, ...] = (
    "NOSE", "NECK", "RIGHT_SHOULDER", "RIGHT_ELBOW", "RIGHT_WRIST", "LEFT_SHOULDER", "LEFT_ELBOW",
    "LEFT_WRIST", "RIGHT_HIP", "RIGHT_KNEE", "RIGHT_ANKLE", "LEFT_HIP", "LEFT_KNEE", "LEFT_ANKLE",
    "LEFT_EYE", "RIGHT_EYE", "LEFT_EAR", "RIGHT_EAR",
)  # fmt: skip
# The hri_msgs types of the ROS4HRI body topics (ros4hri/hri_msgs, ROS 2 branch; the
# same on Humble and Jazzy), without their comments.
HRI_MSGS: Dict[str, str] = {
    "hri_msgs/msg/IdsList": "std_msgs/Header header\nstring[] ids\n",
    "hri_msgs/msg/NormalizedRegionOfInterest2D": (
        "std_msgs/Header header\nfloat32 xmin\nfloat32 ymin\nfloat32 xmax\nfloat32 ymax\nfloat32 c\n"
    ),
    "hri_msgs/msg/NormalizedPointOfInterest2D": "float32 x\nfloat32 y\nfloat32 c\n",
    "hri_msgs/msg/Skeleton2D": (
        "std_msgs/Header header\n"
        + "".join(f"uint8 {name} = {i}\n" for i, name in enumerate(SKELETON_2D_POINTS))
        + f"hri_msgs/NormalizedPointOfInterest2D[{len(SKELETON_2D_POINTS)}] skeleton\n"
    ),
}


# foxglove_msgs/CompressedVideo (foxglove/schemas, ROS 2), without its comments: video topics
# recorded by foxglove_compressed_video_transport or Foxglove's agents, read by `mhr2 bag`.
FOXGLOVE_MSGS: Dict[str, str] = {
    "foxglove_msgs/msg/CompressedVideo": (
        "builtin_interfaces/Time timestamp\nstring frame_id\nuint8[] data\nstring format\n"
    ),
}

# ffmpeg_image_transport_msgs/FFMPEGPacket (ros-misc-utilities, ROS 2), without its comments: what
# image_transport's `ffmpeg` plugin (ffmpeg_image_transport) publishes and records.
FFMPEG_MSGS: Dict[str, str] = {
    "ffmpeg_image_transport_msgs/msg/FFMPEGPacket": (
        "std_msgs/Header header\nint32 width\nint32 height\nstring encoding\nuint64 pts\nuint8 flags\n"
        "bool is_bigendian\nuint8[] data\n"
    ),
}


def find_msg_dir() -> Path:
    """msg/ of a source checkout, else where setup.py (pip) or rosidl (colcon) installs it."""
    root = Path(__file__).resolve().parent.parent.parent
    for candidate in (
        root / "msg",  # source checkout or editable install
        Path(sys.prefix) / "share" / PACKAGE / "msg",  # pip install
        root.parent.parent / "share" / PACKAGE / "msg",  # colcon: lib/pythonX.Y/site-packages/..
        root.parent.parent.parent / "share" / PACKAGE / "msg",
    ):
        if (candidate / "Human.msg").is_file():
            return candidate
    raise ConfigError(f"cannot find the {PACKAGE} message definitions (msg/Human.msg) near {root}")


def message_definitions(msg_dir: Path | None = None) -> Dict[str, str]:
    """Full type name -> .msg text, for our messages, people_msgs, hri_msgs and the two video messages."""
    msg_dir = msg_dir or find_msg_dir()
    ours = {f"{PACKAGE}/msg/{name}": (msg_dir / f"{name}.msg").read_text() for name in MESSAGE_NAMES}
    return {**ours, **PEOPLE_MSGS, **HRI_MSGS, **FOXGLOVE_MSGS, **FFMPEG_MSGS}


@functools.lru_cache(maxsize=None)
def make_typestore(distro: str = DEFAULT_DISTRO):
    """The distro's standard messages plus ours; one shared instance per distro."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}
    if distro not in stores:
        raise ConfigError(f"unknown ROS 2 distribution {distro!r}; expected one of {list(DISTROS)}")
    store = get_typestore(stores[distro])
    types = {}
    for name, text in message_definitions().items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store
