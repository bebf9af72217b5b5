"""ROS4HRI (REP-155) body topics, so HRI stacks built on libhri / pyhri see our people.

REP-155 gives every detected body an id and a set of topics under `/humans/bodies`:

    /humans/bodies/tracked              hri_msgs/IdsList: ids of the bodies seen now
    /humans/bodies/<id>/roi             hri_msgs/NormalizedRegionOfInterest2D
    /humans/bodies/<id>/cropped         sensor_msgs/Image (rgb8: the image inside the roi)
    /humans/bodies/<id>/skeleton2d      hri_msgs/Skeleton2D (18 OpenPose-COCO points)
    /humans/bodies/<id>/position        geometry_msgs/PointStamped (pelvis, camera frame)
    /humans/bodies/<id>/velocity        geometry_msgs/TwistStamped (tracker; with `track` only)

plus the `body_<id>` TF frame and its part frames, which tf.py publishes. The REP requires roi
and cropped; cropped needs the image the people were found in (raw pixels, as the boxes). The
ids are the HumanArray ids (persons.safe_id), so a body's topics, its TF frame and its Human
agree. Only people seen in this image are "tracked" in the REP's sense; an occluded
track keeps its topics (its publishers stay alive) but is left out of the list, and
a lost one loses them (`live_topics`).

hri_msgs is not in rosbags' stores: the four definitions used here are registered by
typestore.py (HRI_MSGS); on a robot the node needs the hri_msgs package. Image
coordinates are normalised to [0, 1] by the image size, as the messages require.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Set, Tuple

import numpy as np

from mhr2_ros.body import JOINT_NAMES
from mhr2_ros.ros.factory import POINT, MessageFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.persons import LOST, PersonView
from mhr2_ros.ros.typestore import SKELETON_2D_POINTS

IDS_LIST = "hri_msgs/msg/IdsList"
ROI = "hri_msgs/msg/NormalizedRegionOfInterest2D"
POINT_OF_INTEREST = "hri_msgs/msg/NormalizedPointOfInterest2D"
SKELETON_2D = "hri_msgs/msg/Skeleton2D"
IMAGE = "sensor_msgs/msg/Image"
POINT_STAMPED = "geometry_msgs/msg/PointStamped"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
DEFAULT_NAMESPACE = "/humans"
BODY_TOPICS = ("roi", "cropped", "skeleton2d", "position", "velocity")  # per-body topic leaves


# Skeleton2D's points (typestore.SKELETON_2D_POINTS, OpenPose's COCO order) as our
# joint names. OpenPose's neck is the base of the neck: the head of Anny's neck01 bone
# ("neck" in JOINT_NAMES).
SKELETON_JOINTS: Tuple[str, ...] = tuple(name.lower() for name in SKELETON_2D_POINTS)
SKELETON_INDICES = np.array([JOINT_NAMES.index(name) for name in SKELETON_JOINTS])

# A ROS graph name made of tokens that start with a letter (REP-155 ids are tokens too).
_NAMESPACE = re.compile(r"^(/[A-Za-z][A-Za-z0-9_]*)+$")


def namespace_problem(namespace: str) -> str:
    """'' when `namespace` is an absolute ROS namespace like /humans, else what is wrong."""
    if _NAMESPACE.match(namespace or ""):
        return ""
    return "must be an absolute ROS namespace like /humans (tokens of letters, digits and '_', no trailing '/')"


def tracked_topic(namespace: str) -> str:
    return f"{namespace}/bodies/tracked"


def tracked_namespace(topic: str) -> Optional[str]:
    """The namespace of a `<ns>/bodies/tracked` topic, else None."""
    suffix = tracked_topic("")
    return topic[: -len(suffix)] if topic.endswith(suffix) else None


def body_topic(namespace: str, body_id: str, leaf: str) -> str:
    return f"{namespace}/bodies/{body_id}/{leaf}"


@dataclass
class HriMessage:
    topic: str  # absolute topic name
    msgtype: str  # full type name, e.g. hri_msgs/msg/IdsList
    msg: object


@dataclass
class HriFrame:
    messages: List[HriMessage]  # the tracked list first, then each visible body's topics
    live_topics: Set[str]  # every topic whose publisher should stay (visible and occluded bodies)


def build_hri(
    f: MessageFactory, header: SourceHeader, persons: Sequence[PersonView], image_size: Tuple[int, int],
    namespace: str = DEFAULT_NAMESPACE, image: Optional[np.ndarray] = None,
) -> HriFrame:  # fmt: skip
    """The ROS4HRI messages of one image; `image_size` is (height, width) in pixels; `image`, the
    (H, W, 3) uint8 RGB image (None: no cropped topics)."""
    problem = namespace_problem(namespace)
    if problem:
        raise ValueError(f"ROS4HRI namespace {namespace!r} {problem}")
    visible = [p for p in persons if p.visible]
    frame = cleared(f, header, namespace, ids=[p.id for p in visible])
    for person in visible:
        frame.messages += _body_messages(f, header, person, image_size, namespace, image)
    for person in persons:
        if person.state != LOST:
            frame.live_topics.update(body_topic(namespace, person.id, leaf) for leaf in BODY_TOPICS)
    return frame


def cleared(f: MessageFactory, header: SourceHeader, namespace: str, ids: Sequence[str] = ()) -> HriFrame:
    """Just the tracked list (empty by default: what a node says when it stops seeing)."""
    tracked = f.new(IDS_LIST, header=f.header(header.stamp_ns, header.frame_id), ids=list(ids))
    return HriFrame([HriMessage(tracked_topic(namespace), IDS_LIST, tracked)], {tracked_topic(namespace)})


def publishers_to_close(open_topics: Set[str], frame: Optional[HriFrame]) -> List[str]:
    """Topics of open publishers no longer needed: bodies lost, or (frame None) the
    ROS4HRI output turned off. A node creates publishers as topics appear in frames."""
    live = frame.live_topics if frame is not None else set()
    return sorted(set(open_topics) - live)


def wait_acked(publisher, timeout) -> str:
    """Give the subscribers of `publisher` up to `timeout` (an rclpy Duration) to acknowledge
    what it sent, before it is destroyed (DDS drops a deleted writer's unacknowledged data).
    Best effort: '' when acknowledged, timed out or not offered; else why it could not wait.
    rclpy's Publisher.wait_for_all_acked raises RCLError for anything but RCL_RET_OK and
    RCL_RET_TIMEOUT, e.g. RCL_RET_UNSUPPORTED from a middleware without the feature: that
    must not fail the lifecycle transition or the frame that closes the publisher."""
    wait = getattr(publisher, "wait_for_all_acked", None)
    if wait is None:
        return ""
    try:
        wait(timeout)
    except Exception as exc:  # noqa: BLE001 - rclpy's RCLError, whatever the middleware said
        return f"{type(exc).__name__}: {exc}"
    return ""


def _body_messages(
    f: MessageFactory, header: SourceHeader, person: PersonView, image_size: Tuple[int, int], namespace: str,
    image: Optional[np.ndarray],
) -> List[HriMessage]:  # fmt: skip
    h = person.human
    stamp = (header.stamp_ns, header.frame_id)  # each message gets its own Header
    score = float(h.score)
    xmin, ymin, xmax, ymax = (float(v) for v in normalized_box(h.box, image_size))
    roi = f.new(ROI, header=f.header(*stamp), xmin=xmin, ymin=ymin, xmax=xmax, ymax=ymax, c=score)
    points = [
        f.new(POINT_OF_INTEREST, x=x, y=y, c=c)
        for x, y, c in skeleton_points(h.keypoints_2d, image_size, score).tolist()
    ]
    x, y, z = (float(v) for v in h.position)
    position = f.new(POINT_STAMPED, header=f.header(*stamp), point=f.new(POINT, x=x, y=y, z=z))
    skeleton = f.new(SKELETON_2D, header=f.header(*stamp), skeleton=points)
    out = [HriMessage(body_topic(namespace, person.id, "roi"), ROI, roi)]
    if image is not None:
        crop = f.new(IMAGE, header=f.header(*stamp), **cropped(image, h.box))
        out.append(HriMessage(body_topic(namespace, person.id, "cropped"), IMAGE, crop))
    out += [
        HriMessage(body_topic(namespace, person.id, "skeleton2d"), SKELETON_2D, skeleton),
        HriMessage(body_topic(namespace, person.id, "position"), POINT_STAMPED, position),
    ]
    if person.velocity is not None:
        vx, vy, vz = (float(v) for v in person.velocity)
        twist = f.new("geometry_msgs/msg/Twist", linear=f.new("geometry_msgs/msg/Vector3", x=vx, y=vy, z=vz))
        velocity = f.new(TWIST_STAMPED, header=f.header(*stamp), twist=twist)
        out.append(HriMessage(body_topic(namespace, person.id, "velocity"), TWIST_STAMPED, velocity))
    return out


def cropped(image: np.ndarray, box: np.ndarray) -> dict:
    """sensor_msgs/Image fields (rgb8) of the pixels of (H, W, 3) uint8 RGB `image` inside the
    pixel box x_min, y_min, x_max, y_max (widened to whole pixels, at least one)."""
    height, width = image.shape[:2]
    x0, y0 = (int(np.clip(np.floor(v), 0, size - 1)) for v, size in zip(box[:2], (width, height)))
    x1, y1 = (int(np.clip(np.ceil(v), lo + 1, size)) for v, lo, size in zip(box[2:], (x0, y0), (width, height)))
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    return {"height": y1 - y0, "width": x1 - x0, "encoding": "rgb8", "is_bigendian": 0, "step": 3 * (x1 - x0),
            "data": crop.reshape(-1)}


def normalized_box(box: np.ndarray, image_size: Tuple[int, int]) -> np.ndarray:
    """(4,) pixel box x_min, y_min, x_max, y_max -> the same in [0, 1] of the image."""
    height, width = image_size
    scale = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(np.asarray(box, dtype=np.float64) / scale, 0.0, 1.0)


def skeleton_points(keypoints_2d: np.ndarray, image_size: Tuple[int, int], score: float) -> np.ndarray:
    """(18, 3) rows x, y, c in Skeleton2D order: normalised coordinates clipped to the
    image, confidence `score` for points inside it and 0 for points outside."""
    height, width = image_size
    uv = np.asarray(keypoints_2d, dtype=np.float64)[SKELETON_INDICES] / np.array([width, height])
    inside = np.all((uv >= 0.0) & (uv <= 1.0), axis=1)
    return np.column_stack([np.clip(uv, 0.0, 1.0), np.where(inside, score, 0.0)])
