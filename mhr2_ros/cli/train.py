"""`mhr2-train --config config/train_<name>.yaml`: the offline training entry point.

One GPU:    mhr2-train --config config/train_synthetic_tiny.yaml
Many GPUs:  torchrun --nproc_per_node 4 -m mhr2_ros.cli.train --config ...
Resume:     mhr2-train --config ... --resume runs/NAME   (model, optimizer, scheduler,
            step, torch/numpy/data RNG states: the run continues identically)
Stop:       Ctrl-C or SIGTERM (a scheduler's time limit) saves the state after the step in
            progress, then exits; a second signal stops at once
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from mhr2_ros.cli.formatting import HelpFormatter
from mhr2_ros.errors import Mhr2Error
from mhr2_ros.training.stop import TrainingStopped

log = logging.getLogger(__name__)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="mhr2-train",
        description="Train or fine-tune Multi-HMR 2 (one GPU, or many under torchrun).",
        formatter_class=HelpFormatter,
        epilog="Ctrl-C or SIGTERM (a scheduler's time limit) ends the step in progress, saves the state and "
               "exits with 130 / 143; --resume OUTPUT goes on from that step. A second signal stops at once.",
    )  # fmt: skip
    p.add_argument("--config", type=Path, required=True, help="training config YAML (config/train_*.yaml)")
    p.add_argument("--resume", type=Path, default=None, help="run folder (or its last.json) to resume from")
    p.add_argument("--output", default=None, help="override the config's output folder")
    p.add_argument("--steps", type=int, default=None, help="override the number of steps")
    p.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="fit the run into MIN minutes: the schedule ends at the last step the measured "
                        "rate allows (at most --steps), and the run stops when the time is spent")  # fmt: skip
    p.add_argument("--device", default=None, help="override the device (cuda, cpu, or auto: cuda when there is one)")
    p.add_argument("--batch-size", type=int, default=None, help="override the batch size per GPU")
    p.add_argument("--data-workers", type=int, default=None, metavar="N",
                   help="override data_workers: processes that load and render samples ahead (0: none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {k: v for k, v in {"output": args.output, "steps": args.steps, "device": args.device,
                                   "batch_size": args.batch_size, "time_limit_min": args.time_limit,
                                   "data_workers": args.data_workers}.items() if v is not None}  # fmt: skip
    try:
        from mhr2_ros.training.config import load_train_config
        from mhr2_ros.training.eval_hook import build_eval_hook
        from mhr2_ros.training.train import train

        cfg = load_train_config(args.config, overrides)
        final = train(cfg, resume=args.resume, eval_hook=build_eval_hook(cfg))
    except Mhr2Error as exc:
        print(f"mhr2-train: error: {exc}", file=sys.stderr)
        return 2
    except TrainingStopped as stopped:
        print(f"mhr2-train: {stopped}", file=sys.stderr)
        return 128 + stopped.signum  # the shell's code for a process ended by that signal
    except KeyboardInterrupt as exc:  # a second signal (StopNow), or Ctrl-C outside the training loop
        print("mhr2-train: interrupted; continue with --resume RUN_DIR (the run's output folder: it goes on "
              "from the last saved state)", file=sys.stderr)  # fmt: skip
        return 128 + getattr(exc, "signum", signal.SIGINT)  # 130 for SIGINT, 143 for SIGTERM
    finally:
        _end_distributed()
    print(f"final model: {final}")
    return 0


def _end_distributed() -> None:
    """Under torchrun: close the process group (train() ends with a barrier)."""
    import torch

    from mhr2_ros.training.train import distributed_on

    if distributed_on():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
