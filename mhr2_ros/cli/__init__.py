"""`mhr2` command line: detect, demo, eval, compare, track-eval, synth, bag, init-weights, export.

Each subcommand lives in its own module with `add_parser(subparsers)` and
`run(args) -> exit code`. Errors on bad input print one clear line and exit 2.
Importing the command modules and building their parsers loads no torch, OpenCV or anny, so
`--help` is fast and works without them (test_cli_startup): heavy imports go in `run`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from mhr2_ros import __version__
from mhr2_ros.errors import Mhr2Error

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    from mhr2_ros.cli import bag, compare, demo, detect, evaluate, export, init_weights, synth, track_eval

    parser = argparse.ArgumentParser(
        prog="mhr2",
        description="Multi-HMR 2: detect people in images and videos and recover their metric "
        "3D bodies (Anny meshes) in the camera frame.",
    )
    parser.add_argument("--version", action="version", version=f"mhr2 {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (detect, demo, evaluate, compare, init_weights, export, bag, synth, track_eval):
        module.add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("warp").setLevel(logging.WARNING)
    try:
        return int(args.run(args) or 0)
    except Mhr2Error as exc:
        print(f"mhr2 {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        # an output path that cannot be written (a file where a folder is wanted, ...)
        where = exc.filename2 or exc.filename  # os.replace(tmp, path): the user's path is filename2
        text = f"{exc.strerror}: {where}" if exc.strerror and where else str(exc)
        print(f"mhr2 {args.command}: error: {text}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"mhr2 {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
