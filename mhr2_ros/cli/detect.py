"""`mhr2 detect INPUT`: run the detector on an image, a folder, a video or a camera.

Writes into --output:
  frames.jsonl          one JSON object per frame (fields: README, "Output format")
  overlays/NAME.jpg     projected meshes and skeletons (images and folders)
  overlay.mp4           the same as a video (video and camera input)
  meshes/NAME.glb       camera-frame meshes, with --save-meshes
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from collections import Counter
from typing import List, Set, Tuple

from mhr2_ros.cli.floor_options import add_mount_options, floor_from_mount
from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.cli.options import add_detector_options, build_detector, camera_for, check_camera_options
from mhr2_ros.errors import InputError
from mhr2_ros.io.atomic import atomic_path

log = logging.getLogger(__name__)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "detect",
        help="detect people and their 3D bodies in images, videos or a camera",
        description="Detect every person in INPUT and recover metric 3D bodies in the camera frame. "
        "Writes frames.jsonl, overlays and optional GLB meshes into --output.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "input",
        help="an image file, a folder of images, a video file, or a camera index (0, 1, ...)",
    )
    p.add_argument("-o", "--output", type=Path, default=Path("mhr2_output"), help="output folder")
    p.add_argument("--depth", type=Path, default=None, metavar="PATH",
                   help="depth images registered to the input images (16-bit PNG millimetres or .npy meters): a file "
                   "for one image, a folder of files named like the images for a folder; people are scaled to them "
                   "(README, Depth cameras). Give the camera's --intrinsics with them")
    p.add_argument("--save-meshes", action="store_true", help="also write one GLB mesh file per frame")
    p.add_argument("--no-overlay", action="store_true", help="do not draw overlay images / video")
    p.add_argument(
        "--max-frames", type=int, default=None,
        help="stop after this many frames (useful with a camera, which never ends)",
    )  # fmt: skip
    p.add_argument(
        "--track", action="store_true",
        help="track people across frames (video, camera, folder in name order): writes track ids "
        "into the JSON and the overlays, and each person's track (velocity, ...) into the JSON (tracker "
        "settings: config/tracker.yaml)",
    )  # fmt: skip
    p.add_argument(
        "--static-camera", action="store_true",
        help="with --track: the camera does not move (a tripod, a wall mount), so velocities are over the "
        "ground and a walking person faces where they go (tracker.yaml velocity_heading_speed)",
    )  # fmt: skip
    cam = add_detector_options(p)
    cam.add_argument(
        "--distortion", default=None, metavar="K1,K2,P1,P2[,K3,...]",
        help="with --intrinsics: the lens's distortion coefficients (OpenCV's order, a camera_info's d): each "
        "frame is rectified into the pinhole image of --intrinsics before the detector, and every output "
        "(overlays, frames.jsonl's pixels and K) is that image's; a negative first value needs the = form: "
        "--distortion=-0.3,0.1,0,0,0",
    )  # fmt: skip
    cam.add_argument("--distortion-model", choices=DISTORTION_MODELS, default=None,
                     help=f"the lens model of --distortion (a camera_info's distortion_model; default "
                     f"{DISTORTION_MODELS[0]})")
    add_mount_options(p)
    p.set_defaults(run=run)


DISTORTION_MODELS = ("plumb_bob", "rational_polynomial", "equidistant")  # inference/rectify.py's


def lens_for(args: argparse.Namespace):
    """image (H, W, 3) -> its pinhole image, for --distortion (a Rectifier per image size), or None;
    InputError naming what is wrong with the options."""
    if args.distortion is None:
        if args.distortion_model is not None:
            raise InputError(f"--distortion-model {args.distortion_model} has no use without --distortion")
        return None
    from mhr2_ros.cli.options import parse_intrinsics
    from mhr2_ros.inference.rectify import Rectifier, lens_problem

    if not args.intrinsics:
        raise InputError("--distortion needs the camera's --intrinsics (the K it was calibrated with)")
    try:
        D = [float(v) for v in args.distortion.split(",")]
    except ValueError:
        raise InputError(f"--distortion {args.distortion!r}: expected comma-separated numbers") from None
    model = args.distortion_model or DISTORTION_MODELS[0]
    problem = lens_problem(D, model)
    if problem:
        raise InputError(f"--distortion {args.distortion!r}: {problem}")
    K, rectifiers = parse_intrinsics(args.intrinsics), {}

    def rectified(image):
        size = image.shape[:2]
        if size not in rectifiers:
            rectifiers[size] = Rectifier(K, D, model, size)
        return rectifiers[size]

    return rectified


def run(args: argparse.Namespace) -> int:
    # torch, OpenCV: loaded here, not at parser build time (test_cli_startup)
    from tqdm import tqdm

    from mhr2_ros.body import JOINT_NAMES
    from mhr2_ros.io.depth_files import DepthFiles
    from mhr2_ros.io.jsonl import JsonlWriter, frame_to_dict
    from mhr2_ros.io.mesh_export import export_glb
    from mhr2_ros.io.sources import open_source
    from mhr2_ros.tracking import STATIC_CAMERA
    from mhr2_ros.tracking.build import make_tracker

    check_camera_options(args)
    lens = lens_for(args)
    floor, gravity = floor_from_mount(args)
    if args.max_frames is not None and args.max_frames < 1:
        raise InputError(f"--max-frames {args.max_frames}: expected a positive count")
    if args.static_camera and not args.track:
        raise InputError("--static-camera tells the tracker the camera is fixed; it needs --track")
    source = open_source(args.input)  # bad INPUT fails before the model loads
    depth_files = DepthFiles(args.depth, source.kind) if args.depth is not None else None
    out_dir: Path = args.output
    out_dir.mkdir(parents=True, exist_ok=True)  # an unusable OUTPUT too
    detector = build_detector(args)
    tracker = make_tracker() if args.track else None
    failures: List[Tuple[str, str]] = []
    count = people = 0
    with source, JsonlWriter(out_dir / "frames.jsonl") as jsonl, _OverlaySink(args, source, out_dir) as sink:
        quiet = source.length in (None, 1) or getattr(args, "quiet", False)
        frames = tqdm(source, total=source.length, unit="frame", disable=quiet)
        for frame in frames:
            if args.max_frames is not None and count >= args.max_frames:
                break
            if frame.image is None:  # the source has warned; listed again at the end
                failures.append((frame.name, str(frame.error)))
                continue
            h, w = frame.image.shape[:2]
            depth = depth_files.for_frame(frame.name) if depth_files is not None else None
            if lens is not None:  # the pinhole image of --intrinsics: every output is its
                rectifier = lens(frame.image)
                frame.image, depth = rectifier.image(frame.image), rectifier.depth(depth)
            result = detector(frame.image, K=camera_for(args, h, w), depth=depth, floor=floor, gravity=gravity)
            tracks = None
            if tracker is not None:  # sets human.track_id; stamps from the video, else frame order
                stamp = frame.timestamp if frame.timestamp is not None else count / (source.fps or 10.0)
                tracks = tracker.update(result, stamp, camera_pose=STATIC_CAMERA if args.static_camera else None)
            jsonl.write(frame_to_dict(result, frame.index, frame.name, frame.timestamp, JOINT_NAMES, tracks))
            sink.add(frame, result, detector.faces)
            if args.save_meshes and any(hm.vertices is not None for hm in result.humans):
                export_glb(out_dir / "meshes" / f"{output_stem(frame.name, sink.shared)}.glb", result, detector.faces)
            count += 1
            people += len(result)
            frames.set_postfix(people=len(result))
    log.info("%d frame(s), %d detection(s); results in %s", count, people, out_dir)
    if failures:
        lines = "\n".join(f"  {name}: {err}" for name, err in failures)
        log.error("%d input(s) failed:\n%s", len(failures), lines)
        return 1
    return 0


def shared_stems(source) -> Set[str]:
    """Stems that several files of a folder input share (a.png and a.jpg: "a")."""
    counts = Counter(p.stem for p in getattr(source, "paths", ()))
    return {stem for stem, n in counts.items() if n > 1}


def output_stem(name: str, shared: Set[str]) -> str:
    """The name of a frame's overlay and mesh files: its file's stem, with the extension
    when the stem is shared (a_png, a_jpg), so no output overwrites another."""
    path = Path(name)
    return f"{path.stem}_{path.suffix.lstrip('.')}" if path.stem in shared else path.stem


class _OverlaySink:
    """Overlay images for image/folder input, an overlay video for video/camera."""

    def __init__(self, args: argparse.Namespace, source, out_dir: Path) -> None:
        self.enabled = not args.no_overlay
        self.is_video = source.kind in ("video", "camera")
        self.fps = source.fps or 30.0
        self.out_dir = out_dir
        self.shared = shared_stems(source)
        self.writer = None

    def __enter__(self) -> "_OverlaySink":
        return self

    def add(self, frame, result, faces) -> None:
        if not self.enabled:
            return
        import cv2

        from mhr2_ros.body import SKELETON_EDGES
        from mhr2_ros.io.overlay import draw_overlay
        from mhr2_ros.io.video_writer import VideoWriter

        image = draw_overlay(frame.image, result, faces, SKELETON_EDGES)
        if self.is_video:
            if self.writer is None:
                h, w = image.shape[:2]
                self.writer = VideoWriter(self.out_dir / "overlay.mp4", self.fps, (w, h)).__enter__()
            self.writer.write(image)
            return
        path = self.out_dir / "overlays" / f"{output_stem(frame.name, self.shared)}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    def __exit__(self, *exc) -> None:
        if self.writer is not None:
            self.writer.__exit__(*exc)
