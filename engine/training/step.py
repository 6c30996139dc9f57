"""One training iteration of the paper's procedure, and where and in what precision it runs.

Each step takes T tasks of 2*S LR/HR patch pairs (see ``engine.data``). The BaseNet
(``sr_net``, modulations included) is trained on L1 every step with Adam; every
``cond_every`` steps (once ``cond_freeze_steps`` are done) the ConditionNet gets its own Adam
step on the task contrastive loss between the condition vectors of the two halves of each
task, plus ``cond_l1_weight`` * L1 (and the damage readout's loss when the run trains one).

In a multi-process run (``engine.distributed``) the BaseNet and the ConditionNet are each
wrapped in DistributedDataParallel, every process makes its own share of the step's tasks and
the task contrastive loss sees the condition vectors of all tasks of the step.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from engine.distributed import SINGLE, DistContext, gather_rows
from engine.errors import ConfigError
from engine.model import CMDSR
from engine.training.adversarial import Adversary
from engine.training.config import TrainConfig
from engine.training.damage_readout import batch_damage_loss
from engine.training.losses import (
    derangement,
    fft_amplitude_loss,
    paired_contrastive_loss,
    sr_loss,
    task_contrastive_loss,
)
from engine.training.optimisers import Optimisers, condition_params


def resolve_device(name: str) -> torch.device:
    """The device ``TrainConfig.device`` names (``auto``: CUDA when there is one, else the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):  # "cudax", "cpu:a": torch's own message lists 20 types
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but no CUDA GPU is available")
    return dev


def condition_step_due(cfg: TrainConfig, model: CMDSR, step: int) -> bool:
    """Whether the ConditionNet learns at ``step``: every ``cond_every`` steps once the first
    ``cond_freeze_steps`` are done."""
    return (model.condition_net is not None and step >= cfg.cond_freeze_steps
            and step % cfg.cond_every == 0)


@dataclass
class StepResult:
    l1: float
    contrastive: float | None
    d_inner: float | None
    d_cross: float | None
    damage: float | None = None
    gan_g: float | None = None  # the generator's adversarial loss
    gan_d: float | None = None  # the critic's loss, and its mean logits on real and fake
    d_real: float | None = None
    d_fake: float | None = None
    fft: float | None = None


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp = "auto"``: bf16 autocast on a CPU that runs bf16 natively (AMX or AVX-512 BF16:
    about 2-3x the fp32 speed there), fp32 elsewhere (emulated bf16 was 13x *slower* than
    fp32 on an AVX2 CPU; on a GPU fp32 keeps the small modulation differences that carry the
    condition, with TF32 matmuls). Other values are returned as they are."""
    if amp != "auto":
        return amp
    if device.type == "cpu":
        from engine.inference.cpu_caps import auto_cpu_precision

        return "bf16" if auto_cpu_precision() == "bf16" else "off"
    return "off"


def autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
    """The autocast context of ``amp`` (after ``resolve_amp``) on ``device``; none for off."""
    amp = resolve_amp(amp, device)
    if amp == "off":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class StepNets:
    """The modules a step calls: the model's own, or DistributedDataParallel wrappers of
    them (one per part, since the ConditionNet takes part in the graph only every
    ``cond_every`` steps and has its own optimiser)."""

    sr_net: nn.Module
    condition_net: nn.Module | None


def wrap_for_ddp(model: CMDSR, device: torch.device) -> StepNets:
    """DDP wrappers of the BaseNet and the ConditionNet (their gradients are averaged over
    the processes during backward)."""
    ids = [device.index] if device.type == "cuda" else None

    def wrap(m: nn.Module) -> nn.Module:
        return DistributedDataParallel(m, device_ids=ids, output_device=ids[0] if ids else None)

    return StepNets(wrap(model.sr_net),
                    None if model.condition_net is None else wrap(model.condition_net))


def train_step(
    model: CMDSR,
    opt: Optimisers,
    batch: dict[str, Tensor],
    step: int,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    scaler: torch.amp.GradScaler | None = None,
    ctx: DistContext = SINGLE,
    nets: StepNets | None = None,
    adv: Adversary | None = None,
) -> StepResult:
    """One iteration of the paper's procedure on a batch from ``TaskBatches``.

    In a multi-process run ``batch`` holds this process's share of the step's tasks and
    ``nets`` the DDP wrappers; the result's L1 is this process's, the contrastive loss and
    distances are those of all tasks of the step. With ``adv`` (``cfg.gan_weight`` > 0) the
    generator's objective gains the adversarial term (after ``cfg.gan_warmup_steps``) and the
    critic takes its own step on this step's outputs after the generator's."""
    sr_net = nets.sr_net if nets is not None else model.sr_net
    condition_net = nets.condition_net if nets is not None else model.condition_net
    lr_all = batch["lr"].to(device, non_blocking=True).float()
    hr_all = batch["hr"].to(device, non_blocking=True).float()
    t, _, _, h, w = lr_all.shape
    s = cfg.model.support_size
    q = cfg.sr_patches
    lr1, lr2 = lr_all[:, :s], lr_all[:, s:]
    x = lr1[:, :q].reshape(t * q, 3, h, w)
    y = hr_all[:, :q].reshape(t * q, 3, h * cfg.model.scale, w * cfg.model.scale)
    cond_step = condition_step_due(cfg, model, step)
    con = d_in = d_x = dmg = None
    with autocast(device, cfg.amp):
        if condition_net is None:
            sr = sr_net(x)
        else:
            if cond_step:
                # both halves in one call: DDP expects one forward per backward
                c12 = condition_net(torch.cat([lr1, lr2]))
                c1, c2 = c12[:t], c12[t:]
            else:
                with torch.no_grad():  # the ConditionNet is not updated on this step
                    c1 = condition_net(lr1)
            sr = sr_net(x, c1)
        l1 = sr_loss(sr, y, x, t, cfg.loss_weighting)
        extra = fft = g_adv = None
        if cfg.fft_weight > 0:
            fft = fft_amplitude_loss(sr, y)
            extra = cfg.fft_weight * fft
        if adv is not None and step >= cfg.gan_warmup_steps:
            g_adv = adv.generator_loss(sr)
            extra = cfg.gan_weight * g_adv if extra is None else extra + cfg.gan_weight * g_adv
        if cond_step:
            # negatives come from all tasks of the step, whichever process made them; the
            # shared generator draws the same derangement in every process
            a, b = gather_rows(c1.float(), ctx), gather_rows(c2.float(), ctx)
            if cfg.task_pairing:
                con, d_in, d_x = paired_contrastive_loss(a, b)
            else:
                con, d_in, d_x = task_contrastive_loss(a, b, derangement(a.shape[0], gen))
            dmg = batch_damage_loss(cfg, model, c1, c2, batch, device)
    opt.base.zero_grad(set_to_none=True)
    if opt.cond is not None:
        opt.cond.zero_grad(set_to_none=True)
    # One backward for both optimisers: the contrastive loss does not reach the BaseNet, so
    # the BaseNet sees dL1; the ConditionNet's grads are rescaled to d(con + w * L1).
    # With W processes each one backpropagates the contrastive loss through its own rows
    # only and DDP divides by W: the factor W restores d(con) exactly.
    wgt = cfg.cond_l1_weight
    aux = con if dmg is None or con is None else con + cfg.damage_weight * dmg
    pixel = l1 if extra is None else l1 + extra
    total = pixel + aux * (ctx.world_size / wgt) if aux is not None else pixel
    (scaler.scale(total) if scaler is not None else total).backward()
    if con is not None and model.condition_net is not None:
        for p in condition_params(model):
            if p.grad is not None:
                p.grad.mul_(wgt)
    if cfg.grad_clip > 0:
        if scaler is not None:
            scaler.unscale_(opt.base)
        torch.nn.utils.clip_grad_norm_(model.sr_net.parameters(), cfg.grad_clip)
    if scaler is not None:
        scaler.step(opt.base)
        if cond_step and opt.cond is not None:
            scaler.step(opt.cond)
        scaler.update()
    else:
        opt.base.step()
        if cond_step and opt.cond is not None:
            opt.cond.step()
    opt.base_sched.step()
    if cond_step and opt.cond_sched is not None:
        opt.cond_sched.step()
    critic: tuple[float | None, float | None, float | None] = (None, None, None)
    if adv is not None:  # BasicSR's order: the generator's step with the critic held, then its own
        critic = adv.step(y, sr, step, autocast(device, cfg.amp))
    return StepResult(
        float(l1.detach()),
        None if con is None else float(con.detach()),
        None if d_in is None else float(d_in),
        None if d_x is None else float(d_x),
        None if dmg is None else float(dmg.detach()),
        None if g_adv is None else float(g_adv.detach()),
        *critic,
        None if fft is None else float(fft.detach()),
    )
