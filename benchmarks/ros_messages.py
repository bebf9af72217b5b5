#!/usr/bin/env python3
"""Cost of the ROS messages of one frame: build and CDR-serialize, and bytes on the wire.

    python benchmarks/ros_messages.py
    python benchmarks/ros_messages.py --people 1 10 --iters 20 --distro humble

People are the demo scene's Anny bodies (13,718 vertices each), repeated to the
requested count. Messages are built with the RosbagsFactory (what `mhr2 bag`
uses) and serialized with rosbags' CDR; rclpy builds the same messages through
the same builders but its own classes, so its build times differ (not measured
here: rclpy is not installable on the development machines). Prints medians in ms.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import sys
import time

from mhr2_ros.body import BodyModel
from mhr2_ros.cli.demo_scene import render_demo_scene
from mhr2_ros.ros.factory import RosbagsFactory
from mhr2_ros.ros.markers import MarkerOptions, MarkerTracker
from mhr2_ros.ros.messages import HumanOptions, SourceHeader, build_human_array
from mhr2_ros.ros.persons import person_views
from mhr2_ros.ros.typestore import DISTROS, make_typestore
from machine import cpu_name  # benchmarks/machine.py (the script's folder is on the path)

HEADER = SourceHeader(1_700_000_000_000_000_000, "camera_color_optical_frame")


def timed(fn, iters: int):
    """(median seconds, last result) of `iters` calls."""
    times, out = [], None
    for _ in range(iters):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def frame_with(frame, people: int):
    humans = [frame.humans[i % len(frame.humans)] for i in range(people)]
    humans = [dataclasses.replace(h, track_id=f"p{i}") for i, h in enumerate(humans)]
    return dataclasses.replace(frame, humans=humans)


def rows(store, frame, faces, people: int, iters: int):
    f = RosbagsFactory(store)
    scene = frame_with(frame, people)
    persons = person_views(scene)
    cases = [
        ("HumanArray", "no", lambda: build_human_array(f, scene, HEADER, persons, HumanOptions(False))),
        ("HumanArray", "vertices", lambda: build_human_array(f, scene, HEADER, persons, HumanOptions(True))),
        ("MarkerArray", "no mesh", lambda: MarkerTracker(f, faces, MarkerOptions(mesh=False)).build(HEADER, persons)),
        ("MarkerArray", "mesh 2 cm", lambda: MarkerTracker(f, faces, MarkerOptions(True, 0.02)).build(HEADER, persons)),
        ("MarkerArray", "mesh full", lambda: MarkerTracker(f, faces, MarkerOptions(True, 0.0)).build(HEADER, persons)),
    ]
    for name, mesh, build in cases:
        build_s, msg = timed(build, iters)
        typename = type(msg).__msgtype__
        serialize_s, data = timed(lambda: store.serialize_cdr(msg, typename), iters)
        yield name, mesh, people, 1000 * build_s, 1000 * serialize_s, len(data)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--people", type=int, nargs="+", default=[1, 10], help="people per frame")
    p.add_argument("--iters", type=int, default=10, help="repetitions per case (median reported)")
    p.add_argument("--distro", choices=DISTROS, default="jazzy", help="message definitions")
    args = p.parse_args()
    body = BodyModel("makehuman")
    _, frame = render_demo_scene(body, width=640, height=480)
    faces = body.faces.cpu().numpy()
    store = make_typestore(args.distro)
    print(f"command: {' '.join(sys.argv)}")
    print(f"machine: {cpu_name()}, Python {platform.python_version()}, "
          f"{platform.system()}; rosbags CDR, {args.distro} definitions; medians of {args.iters}")  # fmt: skip
    print()
    print("| message     | meshes    | people | build ms | serialize ms |      bytes |")
    print("|-------------|-----------|-------:|---------:|-------------:|-----------:|")
    for people in args.people:
        for name, mesh, n, build_ms, ser_ms, size in rows(store, frame, faces, people, args.iters):
            print(f"| {name:<11} | {mesh:<9} | {n:>6} | {build_ms:>8.2f} | {ser_ms:>12.2f} | {size:>10,} |")


if __name__ == "__main__":
    main()
