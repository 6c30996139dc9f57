"""An exponential moving average (EMA) of a model's weights, the copy that is evaluated and
shipped.

Small CPU batches make each step's update noisy: the newest weights of a long CPU run wander
around the optimum instead of settling in it (the first CPU continuation of the shipped default
lost up to 0.8 dB on every promotion row). Averaging the weights over the last few hundred steps
cancels most of that wander, as SR training usually does (BasicSR keeps an EMA with decay
0.999). The average starts as a copy of the model and moves towards it by ``1 - decay`` a step;
for a run from scratch the decay ramps up over the first steps (``min(decay, (1 + n) / (10 + n))``)
so the average is not anchored to the random start; a fine-tune starts from a good model and
averages from its first step, so the noisy first steps of a fresh optimiser move it little.
"""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from engine.errors import ConfigError

M = TypeVar("M", bound=nn.Module)


class ModelEMA(Generic[M]):
    """The moving average of ``model``'s floating-point parameters and buffers.

    ``update(model)`` after each optimiser step; ``module`` is the averaged network (same class
    and config, never trained directly); ``state_dict``/``load_state_dict`` carry it in a
    training checkpoint so a resumed run continues the same average.
    """

    def __init__(self, model: M, decay: float, ramp: bool = True) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"ema_decay must lie in (0, 1), got {decay}")
        self.decay = float(decay)
        self.ramp = ramp
        self.updates = 0
        self.module: M = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next update uses (ramped up over the first updates)."""
        if not self.ramp:
            return self.decay
        n = self.updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        d = self.current_decay()
        self.updates += 1
        src = dict(model.state_dict())
        for name, avg in self.module.state_dict().items():
            cur = src[name]
            if avg.is_floating_point():
                avg.lerp_(cur.to(avg.dtype), 1.0 - d)
            else:
                avg.copy_(cur)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "ramp": self.ramp,
                "weights": {k: v.detach().cpu().clone() for k, v in self.module.state_dict().items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        weights = state.get("weights")
        if not isinstance(weights, dict):
            raise ConfigError("the checkpoint's EMA state holds no weights")
        self.module.load_state_dict(weights)
        self.updates = int(state.get("updates", 0))
        # a resumed fine-tune keeps averaging without a ramp: with one, its average would
        # suddenly follow the newest weights (decay 0.8 at update 34) after every resume
        self.ramp = bool(state.get("ramp", self.ramp))
