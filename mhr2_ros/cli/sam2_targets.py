"""`mhr2-sam2-targets DATASET... --checkpoint sam2.1_hiera_large.pt`: SAM2 track targets.

Computes each person's 4096-d track-feature target (paper, "Regressing track features")
for every frame of clips written by `mhr2 synth` (docs/dataset_format.md), from a local
SAM2 checkpoint, and writes them beside the clip in sam2_targets/. Resumable: frames
whose file exists are skipped, so a killed run continues where it stopped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.cli.synth import _positive
from mhr2_ros.errors import Mhr2Error
from mhr2_ros.training.sam2_spec import MODEL_CONFIGS, SIZE_MULTIPLE

log = logging.getLogger(__name__)
PROG = "mhr2-sam2-targets"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Compute the SAM2 track-feature training targets of synthetic clips: for each person, "
        "SAM2's image encoder on the frame, its memory encoder on the person's visible mask, 8x8 average "
        "pooling, flattened to 4096 values. Written to CLIP/sam2_targets/NNNNNN.npz (float16, ground-truth "
        "person order) with a manifest.json; see docs/dataset_format.md. Nothing is downloaded.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("datasets", type=Path, nargs="+", metavar="DATASET",
                   help="a clip folder (with clip.json) or a folder of clip folders")
    p.add_argument("--checkpoint", type=Path, required=True, default=argparse.SUPPRESS,
                   help="local SAM2 checkpoint as SAM2 releases it (.pt, e.g. sam2.1_hiera_large.pt; the paper's)")
    p.add_argument("--model-config", default="sam2.1_hiera_l", choices=sorted(MODEL_CONFIGS),
                   help="the sam2 config the checkpoint belongs to (hiera t=tiny, s=small, b+=base plus, l=large)")
    p.add_argument("--device", default="auto",
                   help="torch device: cpu, cuda, cuda:N; auto = cuda if available, else cpu")
    p.add_argument("--batch-size", type=_positive(int), default=4, help="frames per image-encoder pass")
    p.add_argument("--image-size", type=_positive(int), default=None,
                   help=f"SAM2 input side in pixels, a multiple of {SIZE_MULTIPLE}; None = the config's, 1024, "
                   "which the checkpoints are trained at (smaller sizes are for quick experiments)")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the clips' targets and recompute them all (needed to replace targets of another "
                   "checkpoint or config; to continue a killed run, run again without it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from mhr2_ros.devices import resolve_device
    from mhr2_ros.training.sam2_targets import Sam2TrackEncoder, compute_targets, find_clips

    try:
        import hydra  # noqa: F401  (sam2 imports it)
        import sam2  # noqa: F401
    except ImportError as exc:
        raise Mhr2Error(f"SAM2 is not installed ({exc}); install it with "
                        "`pip install -e .[sam2]` and `pip install --no-deps sam2==1.1.0`") from exc  # fmt: skip
    clips = find_clips(args.datasets)  # bad folders fail before the checkpoint loads
    device = resolve_device(args.device)
    encoder = Sam2TrackEncoder.from_checkpoint(args.checkpoint, args.model_config, args.image_size, str(device))
    stats = compute_targets(clips, encoder, args.checkpoint, batch_size=args.batch_size,
                            overwrite=args.overwrite, progress=not args.no_progress)  # fmt: skip
    print(f"{stats.computed} frames encoded, {stats.skipped} already done; {stats.people} person targets "
          f"written, {stats.empty} of them without visible mask (zero, has_mask false)")  # fmt: skip
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except Mhr2Error as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; run it again to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
