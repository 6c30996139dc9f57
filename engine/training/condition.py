"""Condition-first training: the ConditionNet and its damage readout learn to read the damage
before the SR network learns to use it.

A ConditionNet trained beside the SR network from the start learns whatever helps the L1 most
quickly, which on raw pixels is a description of the picture, not of its damage. This stage
trains the ConditionNet alone (no SR network in the loop, so a step costs a fraction of an SR
step) with one goal: its damage readout (``engine.damage_head.DamageHead``) must recover each
task's blur and noise sigma from the condition. Each step draws ``condition_tasks`` tasks in
paired groups (two photos x two degradations) and reads both halves of every task's patches
as two support sets of the same damage.

At the end the condition is standardised over training tasks (``ConditionNet.cond_shift`` /
``cond_scale``, the readout's input statistics adjusted to match, so its numbers do not
change), and the whole model is written as ``condition.pt``: the SR stage starts from that file
(``init_from``), modulations at the identity when the SR network came from a
conditioning-off model.

Run folder: ``config.toml``, ``metrics.jsonl`` (``kind = "condition"`` records),
``latest.pt`` (everything needed to resume) and ``condition.pt``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.checkpoint import checkpoint_dict, read_checkpoint, save_model
from engine.config import to_dict
from engine.damage_head import HEAD_KEY, DamageHead, damage_head_of, spread
from engine.errors import ConfigError
from engine.model import CMDSR, ConditionNet
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.damage_readout import damage_loss
from engine.training.device_data import DevicePhotos, DeviceTaskSampler
from engine.training.model_init import build_training_model
from engine.training.run_folder import RunWriter, load_run_info
from engine.training.step import autocast, resolve_device

log = logging.getLogger(__name__)

MODEL_FILE = "condition.pt"
# share of the steps at the full rate; the rest runs at LR_TAIL times it (fast learning,
# then a calmer rate that settles the readout)
LR_SWITCH = 0.6
LR_TAIL = 0.3
STANDARDISE_BATCHES = 16


@dataclass
class ConditionProgress:
    """What a progress bar or the app shows after each logged step."""

    step: int
    total_steps: int
    damage: float
    blur_mae: float
    noise_mae: float
    steps_per_s: float


def stage_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` as the condition stage trains it: a damage readout always (weight 1 if the
    recipe has none)."""
    if not cfg.model.conditioning:
        raise ConfigError("the condition stage trains the ConditionNet: it needs conditioning on")
    return dataclasses.replace(cfg, damage_weight=cfg.damage_weight or 1.0)


def condition_lr(cfg: TrainConfig, done: float) -> float:
    """The stage's rate once ``done`` (0..1) of it has passed."""
    return cfg.condition_lr * (1.0 if done < LR_SWITCH else LR_TAIL)


@torch.no_grad()
def standardise_condition(model: CMDSR, sampler: DeviceTaskSampler, batches: int = STANDARDISE_BATCHES,
                          first_step: int = 10_000_000) -> None:
    """Set the ConditionNet's standardisation to the mean and spread of its conditions over
    ``batches`` batches of training tasks, and adjust the damage readout's input statistics so
    its estimates stay the same."""
    net = model.condition_net
    assert isinstance(net, ConditionNet)
    feats = []
    s = model.support_size
    for i in range(batches):
        lr = sampler.batch(first_step + i)["lr"].float()
        feats.append(net.features(torch.cat([lr[:, :s], lr[:, s:]])).float())
    f = torch.cat(feats)
    mean, std = f.mean(0), spread(f)
    old_shift, old_scale = net.cond_shift.clone(), net.cond_scale.clone()
    net.set_standardisation(mean, std)
    head = damage_head_of(model)
    if head is not None:
        # the head saw (f - old_shift) / old_scale; it now sees (f - mean) / std
        raw_mean = head.in_mean * old_scale + old_shift
        raw_std = head.in_std * old_scale
        head.in_mean.copy_((raw_mean - mean) / std)
        head.in_std.copy_(raw_std / std)


def _errors(head: DamageHead, conditions: torch.Tensor, blur: torch.Tensor,
            noise: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        pred = head(conditions.float())
    return (float((pred[:, 0] - blur).abs().mean()), float((pred[:, 1] - noise).abs().mean()))


def train_condition(
    cfg: TrainConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    steps: int | None = None,
    budget_s: float = 0.0,
    resume: bool = False,
    stop: threading.Event | None = None,
    progress: Callable[[ConditionProgress], None] | None = None,
) -> Path | None:
    """Train the ConditionNet and the damage readout of ``cfg``'s model for ``steps`` steps
    (default ``cfg.condition_steps``) or until ``budget_s`` seconds have passed (0: no limit)
    or ``stop`` is set; returns the written model file (``out_dir/condition.pt``), or None
    when ``stop`` ended it early (``latest.pt`` is then written, and ``resume`` continues it).

    The SR network is not trained: it comes from ``cfg.init_from`` (or the preset's
    initialisation) and goes into the model file unchanged. ``resume`` continues from
    ``out_dir/latest.pt``."""
    cfg = stage_config(cfg)
    total = steps if steps is not None else cfg.condition_steps
    if total < 1:
        raise ConfigError(f"the condition stage needs at least one step, got {total}")
    out = Path(out_dir)
    writer = RunWriter(out, keep=1)
    device = resolve_device(cfg.device)
    if cfg.threads and device.type == "cpu":
        torch.set_num_threads(cfg.threads)
    model = build_training_model(cfg, device)
    net = model.condition_net
    head = damage_head_of(model)
    assert net is not None and head is not None
    params = list(net.parameters()) + list(head.net.parameters())
    opt = torch.optim.Adam(params, lr=cfg.condition_lr)
    start = 0
    if resume:
        if not writer.latest_path.exists():
            raise ConfigError(f"{out}: no condition stage to resume (latest.pt is missing)")
        start = _restore(model, opt, writer.latest_path)
        log.info("condition stage: resuming at step %d of %d", start, total)
    elif writer.latest_path.exists():
        raise ConfigError(f"{out}: already holds a condition stage; resume it or choose a new folder")
    writer.write_config(cfg, {"data_dir": str(Path(data_dir).resolve()), "stage": "condition",
                              "steps": total},
                        note="condition stage (engine.training.condition)")
    hr_patch = cfg.condition_patch * cfg.model.scale
    photos = DevicePhotos.from_folder(data_dir, device, hr_patch, cfg.hr_downscale)
    sampler = DeviceTaskSampler(photos, cfg.degradation, cfg.model.scale, cfg.condition_patch,
                                cfg.model.support_size, cfg.condition_tasks, cfg.seed,
                                paired=cfg.condition_tasks % 4 == 0,
                                texture_candidates=cfg.texture_candidates,
                                texture_floor=cfg.texture_floor)
    s = cfg.model.support_size
    t0 = time.perf_counter()
    t_log, steps_since = t0, 0
    sums: dict[str, float] = {}
    step = start
    net.train()
    head.train()

    def save(at: int) -> None:
        obj = checkpoint_dict(model, step=at, extra={
            "train_state": {"condition_opt": opt.state_dict(), "stage": "condition"},
            "train_config": to_dict(cfg)})
        writer.save_checkpoint(obj, at)

    while step < total:
        if stop is not None and stop.is_set():
            break
        elapsed = time.perf_counter() - t0
        if budget_s > 0 and elapsed >= budget_s:
            break
        done = max(step / total, elapsed / budget_s if budget_s > 0 else 0.0)
        for g in opt.param_groups:
            g["lr"] = condition_lr(cfg, done)
        batch = sampler.batch(step)
        lr = batch["lr"].float()
        blur = batch["blur"].float().repeat(2)
        noise = batch["noise"].float().repeat(2)
        with autocast(device, cfg.amp):
            cond = net(torch.cat([lr[:, :s], lr[:, s:]])).float()
        loss = damage_loss(head, cond, blur, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        steps_since += 1
        b_err, n_err = _errors(head, cond.detach(), blur, noise) if step % cfg.log_every == 0 else (0.0, 0.0)
        for key, value in (("damage", float(loss.detach())), ("blur_mae", b_err), ("noise_mae", n_err)):
            sums[key] = sums.get(key, 0.0) + value
        if step % cfg.log_every == 0 or step == total:
            now = time.perf_counter()
            rate = steps_since / max(now - t_log, 1e-9)
            rec = {"kind": "condition", "step": step, "damage": sums["damage"] / steps_since,
                   "blur_mae": b_err, "noise_mae": n_err, "lr": opt.param_groups[0]["lr"],
                   "steps_per_s": rate, "time": time.time()}
            writer.log(rec)
            log.info("condition step %d/%d: damage %.3f, batch blur MAE %.2f, noise MAE %.1f (%.1f steps/s)",
                     step, total, rec["damage"], b_err, n_err, rate)
            if progress is not None:
                progress(ConditionProgress(step, total, rec["damage"], b_err, n_err, rate))
            sums, t_log, steps_since = {}, now, 0
        if step % cfg.checkpoint_every == 0:
            save(step)
    save(step)
    if step < total and stop is not None and stop.is_set():
        log.info("condition stage paused at step %d of %d", step, total)
        return None
    net.eval()
    head.eval()
    model.eval()
    standardise_condition(model, sampler)
    path = save_model(model, out / MODEL_FILE, step=step,
                      extra={"stage": "condition", "condition_steps": step})
    log.info("condition stage: %d steps in %.0f s -> %s", step - start, time.perf_counter() - t0, path)
    return path


def _restore(model: CMDSR, opt: torch.optim.Optimizer, path: Path) -> int:
    cfg, state, meta = read_checkpoint(path)
    if cfg != model.config:
        raise ConfigError(f"{path}: the model differs from the config; cannot resume")
    head = read_damage_head(path)
    if head is None:
        raise ConfigError(f"{path}: has no damage readout to resume")
    state = {**state, **{f"{HEAD_KEY}.{k}": v for k, v in head.state_dict().items()}}
    model.load_state_dict(state, strict=True)
    ts: Any = meta.get("train_state")
    if not isinstance(ts, dict) or "condition_opt" not in ts:
        raise ConfigError(f"{path}: has no condition-stage state to resume from")
    opt.load_state_dict(ts["condition_opt"])
    return int(meta.get("step", 0))


STAGE_DIR = "condition"


def run_condition_stage(
    cfg: TrainConfig,
    run_dir: str | Path,
    data_dir: str | Path | None,
    resume: bool,
    stop: threading.Event | None = None,
    progress: Callable[[ConditionProgress], None] | None = None,
) -> Path | None:
    """The condition stage of a ``cmdsr train`` run (``run_dir/condition``): trained, resumed
    or, when finished earlier, reused. Returns its model file, or None when ``stop`` paused it."""
    stage_dir = Path(run_dir) / STAGE_DIR
    done = stage_dir / MODEL_FILE
    if done.exists():
        return done
    started = (stage_dir / RunWriter.LATEST).exists()
    if started and not resume:
        raise ConfigError(f"{run_dir}: already holds a training run; resume it or choose a new folder")
    if data_dir is None:
        data_dir = load_run_info(stage_dir).get("data_dir") if started else None
    if data_dir is None:
        raise ConfigError("no training data folder given")
    return train_condition(cfg, data_dir, stage_dir, resume=started, stop=stop, progress=progress)
