"""An exponential moving average of the weights (`TrainConfig.ema_decay`; Polyak averaging).

Why: a run of small noisy batches ends wherever the last steps' noise left its weights; the
average over roughly the last 1 / (1 - decay) steps is a smoother point of the same basin, for
one in-place lerp per tensor per step. With `ema_decay` set, the average is what the run
evaluates (the eval hook) and exports (model.safetensors); the resumable state keeps both the
raw weights (which the optimizer continues from) and the average.

The decay of update n is min(decay, (1 + n) / (10 + n)), the usual warm-up: the first updates
follow the weights closely, so an average begun at a random initialisation does not hold on
to it for thousands of steps.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator

import torch

EMA_PREFIX = "ema."  # key prefix of the average's tensors in the training state
WARMUP_OFFSET = 10.0  # the warm-up's (1 + n) / (WARMUP_OFFSET + n): 0.1 at the first update, 0.9 at n = 80


class WeightAverage:
    """The moving average of a module's state (parameters and buffers), kept on its device in
    its dtypes. `update(model)` after each optimizer step; `applied(model)` swaps it in."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow: Dict[str, torch.Tensor] = {}  # name -> the average of that state tensor
        self.updates = 0  # optimizer steps averaged so far
        self.restart(model)

    def rate(self) -> float:
        """The decay the next update applies (the warm-up's, until it reaches `decay`)."""
        return min(self.decay, (1.0 + self.updates) / (WARMUP_OFFSET + self.updates))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """shadow <- d * shadow + (1 - d) * weights, for the floating tensors; the others (step
        counters) are copied."""
        weight = 1.0 - self.rate()
        current = model.state_dict()
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        if floats:
            torch._foreach_lerp_([self.shadow[k] for k in floats], [current[k].detach() for k in floats], weight)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(current[k])
        self.updates += 1

    @contextlib.contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[torch.nn.Module]:
        """Inside, `model` holds the average (to evaluate or save it); its own weights come back
        after, also when the body raises."""
        own = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.shadow)
        try:
            yield model
        finally:
            model.load_state_dict(own)

    def restart(self, model: torch.nn.Module) -> None:
        """Begin the average again at `model`'s weights (a resumed state that kept none)."""
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.updates = 0

    def state_tensors(self) -> Dict[str, torch.Tensor]:
        """The average as `ema.<name>` CPU tensors, for the training state's safetensors."""
        return {EMA_PREFIX + k: v.detach().cpu().contiguous() for k, v in self.shadow.items()}

    def load_state_tensors(self, tensors: Dict[str, torch.Tensor], updates: int, source: str) -> None:
        """Restores what `state_tensors` saved (other keys ignored); ValueError naming the
        tensors that are missing or unexpected."""
        saved = {k[len(EMA_PREFIX):]: v for k, v in tensors.items() if k.startswith(EMA_PREFIX)}
        missing, unexpected = sorted(set(self.shadow) - set(saved)), sorted(set(saved) - set(self.shadow))
        if missing or unexpected:
            raise ValueError(f"{source}: the weight average does not fit this network; missing {missing[:5]} "
                             f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")  # fmt: skip
        for k, v in self.shadow.items():
            v.copy_(saved[k])
        self.updates = int(updates)


def averaged(ema, model: torch.nn.Module):
    """`ema.applied(model)`, or nothing when the run keeps no average (`ema` None)."""
    return contextlib.nullcontext(model) if ema is None else ema.applied(model)
