"""The optimisers of a run: Adam on the BaseNet and on the ConditionNet (with the damage
readout), per-layer step sizes, and the learning-rate schedules (the paper's MultiStepLR, or
warm-up and cosine decay by steps or by time)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.damage_head import damage_head_of
from engine.model import CMDSR, EqualConv2d, EqualLinear
from engine.training.config import TrainConfig


class LrProgress:
    """The learning-rate schedule beyond the paper's: linear warm-up, then constant steps
    (multistep) or a cosine decay over the run. The run's end is its last step or, with a time
    budget, that many seconds of training, whichever comes first: the training loop keeps
    ``elapsed_s`` up to date (it is saved with the checkpoints)."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.elapsed_s = 0.0

    def fraction(self, step: int) -> float:
        """Share of the run done at ``step``: by steps, or by time when that is further on."""
        cfg = self.cfg
        frac = step / cfg.steps
        if cfg.time_budget_s > 0:
            frac = max(frac, self.elapsed_s / cfg.time_budget_s)
        return min(frac, 1.0)

    def factor(self, step: int, milestones: tuple[int, ...], gamma: float) -> float:
        """Learning-rate multiplier at ``step`` (BaseNet steps)."""
        cfg = self.cfg
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        if cfg.lr_schedule == "cosine":
            p = self.fraction(step)
            return warm * (cfg.lr_floor + (1 - cfg.lr_floor) * 0.5 * (1 + math.cos(math.pi * p)))
        return warm * gamma ** sum(1 for m in milestones if step >= m)


@dataclass
class Optimisers:
    base: torch.optim.Adam
    base_sched: torch.optim.lr_scheduler.LRScheduler
    cond: torch.optim.Adam | None
    cond_sched: torch.optim.lr_scheduler.LRScheduler | None
    progress: LrProgress | None = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "base": self.base.state_dict(),
            "base_sched": self.base_sched.state_dict(),
            "cond": None if self.cond is None else self.cond.state_dict(),
            "cond_sched": None if self.cond_sched is None else self.cond_sched.state_dict(),
            "elapsed_s": None if self.progress is None else self.progress.elapsed_s,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base.load_state_dict(state["base"])
        self.base_sched.load_state_dict(state["base_sched"])
        if self.cond is not None and self.cond_sched is not None:
            self.cond.load_state_dict(state["cond"])
            self.cond_sched.load_state_dict(state["cond_sched"])
        if self.progress is not None:
            self.progress.elapsed_s = float(state.get("elapsed_s") or 0.0)


def param_groups(module: nn.Module, lr: float, per_layer: bool) -> list[dict[str, Any]]:
    """Adam parameter groups of ``module``. With ``per_layer`` the raw weight of every
    equalised layer (used as ``weight / sqrt(fan_in)``) gets ``lr * sqrt(fan_in)``, so its
    effective weight moves at ``lr`` per step as a plain layer's does; everything else ``lr``."""
    if not per_layer:
        return [{"params": list(module.parameters()), "lr": lr}]
    by_mult: dict[float, list[nn.Parameter]] = {}
    scaled: set[int] = set()
    for m in module.modules():
        if isinstance(m, (EqualConv2d, EqualLinear)):
            by_mult.setdefault(1.0 / m.scale, []).append(m.weight)
            scaled.add(id(m.weight))
    rest = [p for p in module.parameters() if id(p) not in scaled]
    groups = [{"params": rest, "lr": lr}] if rest else []
    groups += [{"params": ps, "lr": lr * mult} for mult, ps in sorted(by_mult.items())]
    return groups


def build_optimisers(model: CMDSR, cfg: TrainConfig) -> Optimisers:
    """Adam on the BaseNet (modulations included); a separate Adam on the ConditionNet whose
    schedule counts its own updates (every ``cond_every`` steps). The paper's MultiStepLR
    unless the config asks for warm-up or the cosine schedule (then both follow
    ``LrProgress``, which the training loop advances)."""
    base = torch.optim.Adam(param_groups(model.sr_net, cfg.lr_base, cfg.lr_per_layer), lr=cfg.lr_base)
    cond = None
    if model.condition_net is not None:
        # a damage readout trained with the model learns alongside the ConditionNet it reads
        cond = torch.optim.Adam(condition_params(model), lr=cfg.lr_cond)
    if cfg.lr_schedule == "multistep" and cfg.warmup_steps == 0:
        cond_milestones = [max(1, m // cfg.cond_every) for m in cfg.milestones]
        base_sched: torch.optim.lr_scheduler.LRScheduler = torch.optim.lr_scheduler.MultiStepLR(
            base, list(cfg.milestones), cfg.gamma_base)
        cond_sched: torch.optim.lr_scheduler.LRScheduler | None = (
            None if cond is None
            else torch.optim.lr_scheduler.MultiStepLR(cond, cond_milestones, cfg.gamma_cond))
        return Optimisers(base, base_sched, cond, cond_sched)
    progress = LrProgress(cfg)
    base_sched = torch.optim.lr_scheduler.LambdaLR(
        base, lambda n: progress.factor(n, cfg.milestones, cfg.gamma_base))
    # the ConditionNet's scheduler counts its own updates: n of them = n * cond_every steps
    cond_sched = None if cond is None else torch.optim.lr_scheduler.LambdaLR(
        cond, lambda n: progress.factor(n * cfg.cond_every, cfg.milestones, cfg.gamma_cond))
    return Optimisers(base, base_sched, cond, cond_sched, progress)


def condition_params(model: CMDSR) -> list[nn.Parameter]:
    """What the ConditionNet's optimiser updates: its parameters and a damage readout's."""
    params = [] if model.condition_net is None else list(model.condition_net.parameters())
    head = damage_head_of(model)
    return params + ([] if head is None else list(head.parameters()))
