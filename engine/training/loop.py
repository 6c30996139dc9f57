"""The training loop of ``cmdsr train`` and the app's Training tab: ``train`` runs (or
resumes) a run in a run folder (see ``engine.training.run_folder``), the condition stage first
when the recipe has one (``engine.training.condition``), then the SR stage, step by step
(``engine.training.step``), with logging, validation, checkpoints, progress and Cancel.

Under ``torchrun --nproc_per_node N`` the same ``train`` runs in N processes (see
``engine.distributed``): the BaseNet and the ConditionNet are each wrapped in
DistributedDataParallel (their own optimisers and the every-``cond_every``-steps schedule are
kept), every process makes its own share of each step's ``tasks_per_batch`` tasks, the task
contrastive loss sees the condition vectors of all tasks of the step, and only rank 0 writes
files and validates. ``tasks_per_batch`` is the batch over all processes, so a run does the
same arithmetic on any number of processes and resumes on any number.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.checkpoint import checkpoint_dict, read_checkpoint, save_model
from engine.config import to_dict
from engine.data import load_validation
from engine.distributed import (
    DistContext,
    barrier,
    cleanup,
    init_distributed,
    shard_range,
    sync_step,
)
from engine.errors import CheckpointError, ConfigError
from engine.model import CMDSR
from engine.training.adversarial import Adversary, RealPatches
from engine.training.batches import TaskBatches, make_loader, open_training_source
from engine.training.condition import ConditionProgress, run_condition_stage
from engine.training.config import TrainConfig, TrainProgress
from engine.training.ema import ModelEMA
from engine.training.model_init import build_training_model
from engine.training.optimisers import Optimisers, build_optimisers
from engine.training.run_folder import RunWriter, load_run_info, load_training_state
from engine.training.step import StepNets, resolve_device, train_step, wrap_for_ddp
from engine.training.validation import bicubic_baseline, validate

log = logging.getLogger(__name__)

EMA_FILE = "ema.pt"  # the moving average of the weights, beside the checkpoints
# what the adversarial finish adds to the training log (StepResult's fields)
_GAN_RECORDS = ("gan_g", "gan_d", "d_real", "d_fake", "fft")


class _Rate:
    """Steps/s and data-wait share, smoothed so the ETA does not jump around."""

    def __init__(self) -> None:
        self.steps_per_s = 0.0
        self.wait_share = 0.0
        self.n = 0

    def update(self, step_s: float, wait_s: float) -> None:
        a = 0.3 if self.n < 10 else 0.05
        self.n += 1
        sps = 1.0 / max(step_s, 1e-9)
        share = wait_s / max(step_s, 1e-9)
        if self.n == 1:
            self.steps_per_s, self.wait_share = sps, share
        else:
            self.steps_per_s += a * (sps - self.steps_per_s)
            self.wait_share += a * (share - self.wait_share)


def _iterate(loader: Any) -> Iterator[tuple[dict[str, Tensor], float]]:
    """Yields (batch, seconds spent waiting for it)."""
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return
        yield batch, time.perf_counter() - t0


def train(
    cfg: TrainConfig,
    run_dir: str | Path,
    data_dir: str | Path | None = None,
    val_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[TrainProgress], None] | None = None,
    cancel: threading.Event | None = None,
    cache_dir: str | Path | None = None,
    condition_progress: Callable[[ConditionProgress], None] | None = None,
) -> Path:
    """Train (or, with ``resume``, continue) a run in ``run_dir``; returns the path of the
    last checkpoint written.

    With ``cfg.condition_steps`` > 0 the run starts with the condition stage
    (``engine.training.condition``, in ``run_dir/condition``; ``condition_progress`` gets its
    ``ConditionProgress``), then the SR stage starts from its model file. A pause during
    the condition stage returns that stage's checkpoint; resuming continues it.

    Started by ``torchrun`` with several processes, every process calls this: it joins the
    process group (unless the caller already did), trains its share and leaves the group.

    ``data_dir``: folder of HR photos (on resume, defaults to the one the run started with).
    ``val_dir``: optional folder of HR photos validated every ``cfg.val_every`` steps with
    the fixed ``cfg.val_degradation``. ``progress`` is called after every step; setting
    ``cancel`` stops the run after the current step and writes a checkpoint first, so
    ``train(..., resume=True)`` continues it. ``cache_dir``: where the HR crop cache lives
    (default ``run_dir/cache``).
    """
    ctx, dist_device, owned = init_distributed(cfg.device)
    try:
        sr_started = (Path(run_dir) / RunWriter.LATEST).exists()
        if cfg.condition_steps > 0 and not sr_started:
            if ctx.enabled:
                raise ConfigError("run the condition stage (condition_steps) in one process, "
                                  "then resume the run under torchrun")
            writer = RunWriter(run_dir)
            if not resume or not (writer.run_dir / RunWriter.CONFIG).exists():
                # written now so that a run paused in the condition stage resumes from the CLI
                writer.write_config(cfg, {
                    "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
                    "val_dir": None if val_dir is None else str(Path(val_dir).resolve())})
            if resume:  # the SR stage below starts afresh: it needs the run's folders now
                info = load_run_info(run_dir)
                data_dir = data_dir if data_dir is not None else info.get("data_dir")
                val_dir = val_dir if val_dir is not None else info.get("val_dir")
            stage = run_condition_stage(cfg, run_dir, data_dir, resume, cancel, condition_progress)
            if stage is None:
                return writer.run_dir / "condition" / RunWriter.LATEST
            # absolute: the saved config's init_from is read again when the run is resumed,
            # perhaps from another working folder
            cfg = dataclasses.replace(cfg, init_from=str(stage.resolve()))
            resume = False
        path = _train(cfg, run_dir, data_dir, val_dir, resume, progress, cancel, cache_dir,
                      ctx, dist_device if ctx.enabled else None)
        barrier()  # nobody leaves while rank 0 still writes the last checkpoint
        return path
    finally:
        if owned:
            cleanup()


def _train(
    cfg: TrainConfig,
    run_dir: str | Path,
    data_dir: str | Path | None,
    val_dir: str | Path | None,
    resume: bool,
    progress: Callable[[TrainProgress], None] | None,
    cancel: threading.Event | None,
    cache_dir: str | Path | None,
    ctx: DistContext,
    dist_device: torch.device | None,
) -> Path:
    run_dir = Path(run_dir)
    writer = RunWriter(run_dir, enabled=ctx.is_main, keep=cfg.keep_checkpoints)
    info = load_run_info(run_dir) if resume else {}
    if resume:
        if not writer.latest_path.exists():
            raise ConfigError(f"{run_dir}: no checkpoint to resume from ({RunWriter.LATEST} missing)")
        data_dir = data_dir if data_dir is not None else info.get("data_dir")
        val_dir = val_dir if val_dir is not None else info.get("val_dir")
    elif writer.latest_path.exists():
        raise ConfigError(f"{run_dir}: already holds a training run; resume it or choose a new folder")
    if data_dir is None:
        raise ConfigError("no training data folder given")
    data_dir = Path(data_dir)
    share = shard_range(cfg.tasks_per_batch, ctx.rank, ctx.world_size)
    barrier()  # every process has checked the folder before rank 0 writes into it
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = dist_device if dist_device is not None else resolve_device(cfg.device)
    if cfg.amp == "fp16" and device.type != "cuda":
        raise ConfigError("amp = fp16 needs a CUDA GPU; use bf16 or off on this machine")
    if ctx.enabled and cfg.damage_weight > 0:
        # the readout is not wrapped for DDP: its gradients would differ between processes
        raise ConfigError("damage_weight is for single-process runs (one GPU or the CPU)")
    if ctx.enabled and (cfg.gan_weight > 0 or cfg.ema_decay > 0):
        # the critic and the average are kept by one process
        raise ConfigError("gan_weight and ema_decay are for single-process runs (one GPU or the CPU)")
    if ctx.enabled and cfg.time_budget_s > 0:
        # every process must follow the same learning rate: a budget counted on each one's
        # own clock would let them drift apart
        raise ConfigError("time_budget_s is for single-process runs; give several processes a step count")
    if device.type == "cuda":
        # TF32 keeps fp32's range and nearly its precision at a fraction of its cost
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    late = [m for m in cfg.milestones if m >= cfg.steps]
    if late and cfg.lr_schedule == "multistep":
        log.warning(
            "learning-rate milestones %s lie at or past the last step (%d): the rate will not "
            "decay there; set e.g. --set milestones=%d,%d",
            ", ".join(map(str, late)), cfg.steps, int(cfg.steps * 0.75), int(cfg.steps * 0.9),
        )
    model = build_training_model(cfg, device, resume_from=writer.latest_path if resume else None)
    opt = build_optimisers(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    adv = None
    if cfg.gan_weight > 0:
        real = RealPatches(cfg.gan_real_dir, cfg.hr_patch, cfg.seed) if cfg.gan_real_dir else None
        adv = Adversary(cfg.disc_channels, cfg.disc_lr, cfg.gan_loss, device, real)
    # a fine-tune starts from a good model: no ramp, the average starts there
    ema = ModelEMA(model, cfg.ema_decay, ramp=not cfg.init_from) if cfg.ema_decay > 0 else None
    start = 0
    if resume:
        start = _restore(writer.latest_path, cfg, model, opt, gen, scaler, adv, ema)
        writer.truncate_metrics(start)
        if writer.enabled:  # a crash mid-write leaves its hidden temp file (a whole checkpoint)
            for stale in (run_dir / RunWriter.CHECKPOINTS).glob(".step_*.tmp"):
                stale.unlink(missing_ok=True)
        log.info("resuming %s at step %d of %d", run_dir, start, cfg.steps)
    batch_info = {"processes": ctx.world_size, "tasks_per_process": len(share),
                  "tasks_per_step": cfg.tasks_per_batch}
    writer.write_config(cfg, {
        "data_dir": str(data_dir.resolve()),
        "val_dir": None if val_dir is None else str(Path(val_dir).resolve()),
        "effective_batch": batch_info,
    }, note=f"effective batch: {cfg.tasks_per_batch} tasks per step = {ctx.world_size} "
            f"process(es) x {len(share)}")
    if ctx.enabled:
        log.info("process %d of %d on %s; effective batch %d tasks per step (%d per process)",
                 ctx.rank, ctx.world_size, device, cfg.tasks_per_batch, len(share))
        nets: StepNets | None = wrap_for_ddp(model, device)
    else:
        nets = None

    # Rank 0 decodes the crop cache; the others then reuse it (on a shared run folder) or,
    # on a machine that does not see it, build their own identical copy.
    if not ctx.is_main:
        barrier()
    source = open_training_source(
        data_dir, cfg.hr_patch, Path(cache_dir) if cache_dir else run_dir / "cache",
        cfg.cache_crops_per_image, cfg.cache_crop_size, cfg.seed, cfg.hr_downscale,
        cfg.texture_pick,
    )
    if ctx.enabled and ctx.is_main:
        barrier()
    dataset = TaskBatches(source, cfg.degradation, cfg.model.scale, cfg.lr_patch,
                          cfg.model.support_size, cfg.tasks_per_batch, cfg.seed, cfg.steps,
                          tasks=share, paired=cfg.task_pairing)
    val_items = (
        load_validation(val_dir, cfg.val_degradation, cfg.model.scale, cfg.model.support_size,
                        cfg.val_support_patch, cfg.val_crop, cfg.val_images, cfg.seed)
        if val_dir is not None and ctx.is_main else []
    )
    bicubic = bicubic_baseline(val_items, cfg.model.scale) if val_items else None

    def save(step: int) -> Path:
        if not writer.enabled:
            return writer.save_checkpoint({}, step)  # the path rank 0 writes
        state = {
            "optimisers": opt.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "generator": gen.get_state(),
            "scaler": None if scaler is None else scaler.state_dict(),
            # shown again right after a resume, before the next ConditionNet step
            "last_condition": [last_con, last_d[0], last_d[1]],
        }
        if adv is not None:
            state["discriminator"] = adv.state_dict()
        if ema is not None:
            state["ema"] = ema.state_dict()
        obj = checkpoint_dict(model, step=step, extra={"train_state": state, "train_config": to_dict(cfg)})
        path = writer.save_checkpoint(obj, step)
        if ema is not None:  # the average is the run's result: a model file ready to use
            save_model(ema.module, run_dir / EMA_FILE, step=step,
                       extra={"ema": {"decay": ema.decay, "updates": ema.updates}})
        writer.write_plot()
        log.info("checkpoint %s", path)
        return path

    last_d: tuple[float, float] = (math.nan, math.nan)
    last_con = math.nan
    if resume:
        lc = read_checkpoint(writer.latest_path)[2]["train_state"].get("last_condition")
        if isinstance(lc, (list, tuple)) and len(lc) == 3:
            last_con, last_d = float(lc[0]), (float(lc[1]), float(lc[2]))
    last_ckpt: Path | None = writer.latest_path if resume else None
    saved_step = start if resume else -1
    if start >= cfg.steps or _budget_spent(cfg, opt):
        log.info("run already at step %d of %d: nothing to do", start, cfg.steps)
        return _resolve_latest(last_ckpt, writer) if last_ckpt is not None else save(start)

    rate = _Rate()
    acc: dict[str, list[float]] = {k: [] for k in ("l1", "contrastive", "damage", "wait", "time",
                                                    *_GAN_RECORDS)}
    step = start
    workers = cfg.num_workers
    if ctx.enabled and workers < 0:  # automatic: the machine's cores shared by its processes
        workers = max(1, min(4, (os.cpu_count() or 1) // ctx.local_world_size - 1))
    loader = make_loader(dataset, start, cfg.steps, workers, pin_memory=device.type == "cuda")
    t_prev = time.perf_counter()
    try:
        for batch, wait in _iterate(loader):
            # with several processes the stop decision is shared after each step (sync_step)
            if not ctx.enabled and cancel is not None and cancel.is_set():
                break
            res = train_step(model, opt, batch, step, cfg, gen, device, scaler, ctx, nets, adv)
            l1, stop = sync_step(res.l1, cancel is not None and cancel.is_set(), ctx, device)
            res = dataclasses.replace(res, l1=l1)
            if not math.isfinite(res.l1):
                raise ConfigError(
                    f"training diverged at step {step} (L1 = {res.l1}); lower lr_base or set grad_clip"
                )
            if res.gan_d is not None and not math.isfinite(res.gan_d):
                raise ConfigError(f"the discriminator diverged at step {step} (loss {res.gan_d}); "
                                  "lower disc_lr or gan_weight")
            if ema is not None:
                ema.update(model)
            for key in _GAN_RECORDS:
                value = getattr(res, key)
                if value is not None:
                    acc[key].append(value)
            step += 1
            now = time.perf_counter()
            if opt.progress is not None:
                opt.progress.elapsed_s += now - t_prev
            rate.update(now - t_prev, wait)
            acc["l1"].append(res.l1)
            acc["wait"].append(wait)
            acc["time"].append(now - t_prev)
            t_prev = now
            if res.contrastive is not None:
                last_con = res.contrastive
                acc["contrastive"].append(res.contrastive)
                last_d = (res.d_inner or math.nan, res.d_cross or math.nan)
            if res.damage is not None:
                acc["damage"].append(res.damage)
            ckpt = None
            val: tuple[float, float] | None = None
            final = step == cfg.steps or _budget_spent(cfg, opt)
            if step % cfg.log_every == 0 or final:
                writer.log(_train_record(step, acc, last_d, opt, ctx.world_size))
                acc = {k: [] for k in acc}
            if val_items and (step % cfg.val_every == 0 or final):
                val = validate(model if ema is None else ema.module, val_items, device)
                rec = {"kind": "val", "step": step, "val_psnr": val[0], "val_ssim": val[1]}
                if bicubic is not None:
                    rec.update(bicubic_psnr=bicubic[0], bicubic_ssim=bicubic[1])
                writer.log(rec)
                log.info("step %d: validation PSNR-Y %.2f dB, SSIM-Y %.4f", step, *val)
                writer.write_plot()
                t_prev = time.perf_counter()  # validation time is not training speed
            if step % cfg.checkpoint_every == 0 or final:
                ckpt = last_ckpt = save(step)
                saved_step = step
                t_prev = time.perf_counter()
            if progress is not None:
                remaining = cfg.steps - step
                progress(TrainProgress(
                    step=step, total_steps=cfg.steps, l1=res.l1, contrastive=last_con,
                    d_inner=last_d[0], d_cross=last_d[1], lr=opt.base.param_groups[0]["lr"],
                    steps_per_s=rate.steps_per_s,
                    eta_s=remaining / rate.steps_per_s if rate.steps_per_s > 0 else math.inf,
                    val_psnr=None if val is None else val[0], checkpoint=ckpt,
                    data_wait_share=rate.wait_share,
                    val_ssim=None if val is None else val[1],
                ))
            if final or stop or (not ctx.enabled and cancel is not None and cancel.is_set()):
                break
    finally:
        del loader  # stops the worker processes
    if last_ckpt is None or step > saved_step:
        if acc["l1"]:
            writer.log(_train_record(step, acc, last_d, opt, ctx.world_size))
        last_ckpt = save(step)
    if _budget_spent(cfg, opt):
        log.info("time budget of %g s spent at step %d: training complete", cfg.time_budget_s, step)
    elif step < cfg.steps:
        log.info("training paused at step %d of %d", step, cfg.steps)
    return _resolve_latest(last_ckpt, writer)


def _budget_spent(cfg: TrainConfig, opt: Optimisers) -> bool:
    return (cfg.time_budget_s > 0 and opt.progress is not None
            and opt.progress.elapsed_s >= cfg.time_budget_s)


def _resolve_latest(path: Path, writer: RunWriter) -> Path:
    """The step_N file behind ``latest.pt`` (what the caller should keep)."""
    if path.name != RunWriter.LATEST:
        return path
    files = sorted((writer.run_dir / RunWriter.CHECKPOINTS).glob("step_*.pt"))
    return files[-1] if files else path


def _train_record(step: int, acc: dict[str, list[float]], d: tuple[float, float], opt: Optimisers,
                  processes: int = 1) -> dict[str, Any]:
    total = sum(acc["time"]) or 1e-9
    rec: dict[str, Any] = {
        "kind": "train",
        "step": step,
        "processes": processes,
        "l1": float(np.mean(acc["l1"])) if acc["l1"] else math.nan,
        "lr": opt.base.param_groups[0]["lr"],
        "steps_per_s": len(acc["time"]) / total,
        "data_wait_share": sum(acc["wait"]) / total,
        "time": time.time(),
    }
    if acc["contrastive"]:
        rec["contrastive"] = float(np.mean(acc["contrastive"]))
    if acc.get("damage"):
        rec["damage"] = float(np.mean(acc["damage"]))
    for key in _GAN_RECORDS:
        if acc.get(key):
            rec[key] = float(np.mean(acc[key]))
    if math.isfinite(d[0]):
        rec["d_inner"], rec["d_cross"] = d
    return rec


def _restore(
    path: Path,
    cfg: TrainConfig,
    model: CMDSR,
    opt: Optimisers,
    gen: torch.Generator,
    scaler: torch.amp.GradScaler | None,
    adv: Adversary | None = None,
    ema: ModelEMA[CMDSR] | None = None,
) -> int:
    """Load model, optimisers, schedulers, RNG states, the critic and the average of the
    weights; returns the step to continue at. A run that gains a critic or an average on
    resume starts them afresh from here."""
    saved_cfg, state, meta = read_checkpoint(path)
    if saved_cfg != cfg.model:
        raise ConfigError(
            f"{path}: the run's model ({dataclasses.asdict(saved_cfg)}) differs from the config "
            f"({dataclasses.asdict(cfg.model)}); model settings cannot change on resume"
        )
    ts = meta.get("train_state")
    if not isinstance(ts, dict):
        raise CheckpointError(f"{path}: has no training state to resume from")
    load_training_state(model, path, state)
    opt.load_state_dict(ts["optimisers"])
    torch.set_rng_state(ts["torch_rng"])
    gen.set_state(ts["generator"])
    if scaler is not None and ts.get("scaler"):
        scaler.load_state_dict(ts["scaler"])
    if adv is not None:
        if isinstance(ts.get("discriminator"), dict):
            adv.load_state_dict(ts["discriminator"])
        else:
            log.warning("%s: no discriminator saved: the critic starts afresh", path)
    if ema is not None:
        if isinstance(ts.get("ema"), dict):
            ema.load_state_dict(ts["ema"])
        else:
            ema.module.load_state_dict(model.state_dict())
    return int(meta.get("step", 0))
