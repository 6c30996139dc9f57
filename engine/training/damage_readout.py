"""Training the damage readout (``engine.damage_head.DamageHead``): a fresh head scaled to the
training degradations, its loss on a step's conditions, and the running standardisation of
its input."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.damage_head import DamageHead, damage_head_of, spread
from engine.degrade import sample_degradation
from engine.model import CMDSR
from engine.training.config import TrainConfig


def training_damage_head(cfg: TrainConfig, draws: int = 4000) -> DamageHead:
    """A fresh damage readout for ``cfg``'s model, its output scaled to the training
    degradations (mean, spread and range of their blur and noise sigmas, from ``draws``
    seeded draws), so it fits standardised targets from the first step."""
    rng = np.random.default_rng(cfg.seed)
    drawn = [sample_degradation(cfg.degradation, rng) for _ in range(draws)]
    targets = torch.tensor([[math.sqrt(p.sigma_x * p.sigma_y), p.noise_level()] for p in drawn],
                           dtype=torch.float32)
    head = DamageHead(cfg.model.cond_channels)
    with torch.no_grad():
        head.out_mean.copy_(targets.mean(0))
        head.out_std.copy_(targets.std(0).clamp_min(1e-3))
        head.out_min.copy_(targets.min(0).values.clamp_min(0.0))
        head.out_max.copy_(targets.max(0).values)
    return head


def damage_loss(head: DamageHead, conditions: Tensor, blur: Tensor, noise: Tensor) -> Tensor:
    """Smooth L1 between the readout of ``conditions`` [N, C] and the true (blur, noise)
    sigmas [N], in standardised units (both numbers weigh alike whatever their scale)."""
    # a readout that also reads JPEG (started from a shipped file) learns blur and noise here
    goal = (torch.stack([blur, noise], dim=1).float() - head.out_mean[:2]) / head.out_std[:2]
    return F.smooth_l1_loss(head.normalised(conditions)[:, :2], goal, beta=0.5)


def batch_damage_loss(cfg: TrainConfig, model: CMDSR, c1: Tensor, c2: Tensor,
                      batch: dict[str, Tensor], device: torch.device) -> Tensor | None:
    """The damage readout's loss on both halves' conditions of a step, or None when the run
    trains no readout."""
    head = damage_head_of(model) if cfg.damage_weight > 0 else None
    if head is None:
        return None
    blur = batch.get("blur", batch["sigma"]).to(device).float()
    noise = batch["noise"].to(device).float()
    conditions = torch.cat([c1, c2]).float()
    track_condition_stats(head, conditions.detach())
    return damage_loss(head, conditions, blur.repeat(2), noise.repeat(2))


@torch.no_grad()
def track_condition_stats(head: DamageHead, conditions: Tensor, momentum: float = 0.01) -> None:
    """Keep the readout's input standardisation (``in_mean``/``in_std``) on the conditions
    the ConditionNet makes now: set from the first batch, then a running average. Conditions
    span a few hundredths when training starts; unstandardised, the readout would hardly move
    and pass the ConditionNet almost no gradient."""
    mean, std = conditions.mean(0), spread(conditions)
    if bool(torch.all(head.in_std == 1)) and bool(torch.all(head.in_mean == 0)):  # fresh head
        head.in_mean.copy_(mean)
        head.in_std.copy_(std)
    else:
        head.in_mean.lerp_(mean, momentum)
        head.in_std.lerp_(std, momentum)
