"""people_msgs/People for social-navigation costmap layers.

people_msgs (wg-perception/people) is not part of ROS 2 core nor of rosbags'
typestores. We publish the real people_msgs/msg/People type: on a robot from the
installed people_msgs package (the node checks it is there), offline and in tests
from its definitions registered in the typestore (mhr2_ros.ros.typestore). The
wire format is identical, so a costmap layer reads either.

Positions and velocities are in the image's optical frame (header.frame_id): layers
transform them with TF into their own frame. Occluded tracks stay in the list with
half reliability (a costmap should remember a person who walked behind a pillar);
lost tracks are left out.
"""

from __future__ import annotations

from typing import Sequence

from mhr2_ros.ros.factory import MessageFactory
from mhr2_ros.ros.messages import SourceHeader
from mhr2_ros.ros.persons import LOST, OCCLUDED, PersonView

PEOPLE = "people_msgs/msg/People"
PERSON = "people_msgs/msg/Person"
OCCLUDED_RELIABILITY = 0.5  # factor on the confidence of a track not seen in this image
TAG_NAMES = ("tracking_state", "height", "age", "time_since_seen")


def build_person(f: MessageFactory, person: PersonView) -> object:
    h = person.human
    x, y, z = (float(v) for v in person.position)  # occluded: the motion model's prediction
    vx, vy, vz = (0.0, 0.0, 0.0) if person.velocity is None else (float(v) for v in person.velocity)
    reliability = float(h.score) * (OCCLUDED_RELIABILITY if person.state == OCCLUDED else 1.0)
    tags = (person.state, f"{h.height:.3f}", f"{person.age:.3f}", f"{person.time_since_seen:.3f}")
    return f.new(
        PERSON,
        name=person.id,
        position=f.new("geometry_msgs/msg/Point", x=x, y=y, z=z),
        velocity=f.new("geometry_msgs/msg/Point", x=vx, y=vy, z=vz),
        reliability=reliability,
        tagnames=list(TAG_NAMES),
        tags=list(tags),
    )


def build_people(f: MessageFactory, header: SourceHeader, persons: Sequence[PersonView]) -> object:
    return f.new(
        PEOPLE,
        header=f.header(header.stamp_ns, header.frame_id),
        people=[build_person(f, p) for p in persons if p.state != LOST],
    )
