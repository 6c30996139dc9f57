"""Train CMDSR and its conditioning-off baseline in one process, on the same batches, within
a wall-clock budget: the run made for a briefly lent GPU.

Batches are made on the device (``engine.training.device_data``); both models take a step on each
batch, so their comparison shares the data exactly. Nothing waits for the device between
steps: the losses are summed on the device and read only at logging; the networks run
channels_last, with ``cudnn.benchmark`` and fused Adam on a GPU. The budget counts training
and the final checkpoints and exports (a reserve is kept for them), not loading the photos.
A signal (SIGINT, SIGTERM: see ``install_stop_signals``) ends the run the same way: checkpoint
of both models, then the exports (fp16 shipped format and fp32, as scripts/export_model.py
writes them).

Output folder: ``cmdsr/`` and ``baseline/`` run folders (config.toml, metrics.jsonl,
latest.pt with the training state), ``<name>_x<s>.pt`` / ``<name>_x<s>_fp32.pt`` exports and
``pair.json`` (steps, seconds, speed, data-wait share).

    python -m engine.training.pair --data PHOTOS --out OUT --budget 300 --preset studio
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from engine.checkpoint import checkpoint_dict, read_checkpoint, save_model
from engine.config import apply_overrides, dumps_toml, to_dict
from engine.errors import ConfigError
from engine.model import CMDSR
from engine.training.config import TrainConfig
from engine.training.damage_readout import batch_damage_loss
from engine.training.device_data import DevicePhotos, DeviceTaskSampler
from engine.training.ema import ModelEMA
from engine.training.losses import (
    derangement,
    paired_contrastive_loss,
    sr_loss,
    task_contrastive_loss,
)
from engine.training.model_init import build_training_model
from engine.training.optimisers import Optimisers, build_optimisers, condition_params
from engine.training.run_folder import RunWriter, load_training_state
from engine.training.step import autocast, condition_step_due, resolve_device

log = logging.getLogger(__name__)

NAMES = ("cmdsr", "baseline")
EXPORT_STEM = {"cmdsr": "cmdsr", "baseline": "basenet"}


@dataclass
class Member:
    """One of the two models with its optimisers, run folder and device-side loss sums."""

    name: str
    cfg: TrainConfig
    model: CMDSR
    opt: Optimisers
    writer: RunWriter
    ema: ModelEMA[CMDSR] | None = None
    sums: dict[str, Tensor] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, key: str, value: Tensor) -> None:
        v = value.detach().float()
        self.sums[key] = self.sums[key] + v if key in self.sums else v
        self.counts[key] = self.counts.get(key, 0) + 1

    def take_means(self) -> dict[str, float]:
        """Mean of each summed value since the last call (the one place that syncs)."""
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return out


def baseline_config(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with conditioning off (the BaseNet alone, same recipe otherwise)."""
    return cfg.baseline()


def set_memory_format(model: torch.nn.Module, memory_format: torch.memory_format) -> None:
    """Lay out the conv weights (4-D parameters) in ``memory_format`` in place."""
    for p in model.parameters():
        if p.dim() == 4:
            p.data = p.data.contiguous(memory_format=memory_format)


def use_fused_adam(opt: Optimisers) -> None:
    """Switch the optimisers to PyTorch's fused Adam kernels (one launch for all parameters)
    before their first step; their state is created lazily, so nothing else changes."""
    for o in (opt.base, opt.cond):
        if o is None:
            continue
        o.defaults["fused"], o.defaults["foreach"] = True, False
        for g in o.param_groups:
            g["fused"], g["foreach"] = True, False


def device_step(member: Member, batch: dict[str, Tensor], step: int, gen: torch.Generator,
                device: torch.device) -> None:
    """``engine.training.step.train_step``'s iteration without reading anything back: the losses are
    added to ``member``'s device-side sums. The derangement of the contrastive loss comes from
    the CPU generator ``gen`` (no wait for the device)."""
    cfg, model, opt = member.cfg, member.model, member.opt
    lr_all = batch["lr"].float()
    t, _, _, h, w = lr_all.shape
    s, q, sc = cfg.model.support_size, cfg.sr_patches, cfg.model.scale
    lr1, lr2 = lr_all[:, :s], lr_all[:, s:]
    x = lr1[:, :q].reshape(t * q, 3, h, w).contiguous(memory_format=torch.channels_last)
    y = batch["hr"][:, :q].float().reshape(t * q, 3, h * sc, w * sc)  # only the HR used
    cond_step = condition_step_due(cfg, model, step)
    con = dmg = None
    with autocast(device, cfg.amp):
        if model.condition_net is None:
            sr = model.sr_net(x)
        else:
            if cond_step:
                c12 = model.condition_net(torch.cat([lr1, lr2]))
                c1, c2 = c12[:t], c12[t:]
            else:
                with torch.no_grad():
                    c1 = model.condition_net(lr1)
            sr = model.sr_net(x, c1)
        l1 = sr_loss(sr, y, x, t, cfg.loss_weighting)
        if cond_step:
            a, b = c1.float(), c2.float()
            if cfg.task_pairing:
                con, d_in, d_x = paired_contrastive_loss(a, b)
            else:
                perm = derangement(t, gen).to(device, non_blocking=True)
                con, d_in, d_x = task_contrastive_loss(a, b, perm)
            dmg = batch_damage_loss(cfg, model, c1, c2, batch, device)
    opt.base.zero_grad(set_to_none=True)
    if opt.cond is not None:
        opt.cond.zero_grad(set_to_none=True)
    # as in train_step: one backward; the ConditionNet's grads become d(con + w * L1)
    wgt = cfg.cond_l1_weight
    aux = con if dmg is None or con is None else con + cfg.damage_weight * dmg
    total = l1 + aux / wgt if aux is not None else l1
    total.backward()
    if aux is not None and model.condition_net is not None:
        for p in condition_params(model):
            if p.grad is not None:
                p.grad.mul_(wgt)
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.sr_net.parameters(), cfg.grad_clip)
    opt.base.step()
    if cond_step and opt.cond is not None:
        opt.cond.step()
    opt.base_sched.step()
    if cond_step and opt.cond_sched is not None:
        opt.cond_sched.step()
    if member.ema is not None:
        member.ema.update(model)
    member.add("l1", l1)
    if con is not None:
        member.add("contrastive", con)
        member.add("d_inner", d_in)
        member.add("d_cross", d_x)
    if dmg is not None:
        member.add("damage", dmg)


def install_stop_signals(stop: threading.Event) -> Callable[[], None]:
    """SIGINT and SIGTERM set ``stop`` (the run checkpoints and exports, then returns);
    returns a function that restores the previous handlers. Main thread only."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: Any) -> None:
        log.warning("signal %d: stopping after this step (checkpoint and exports follow)", signum)
        stop.set()

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, h in previous.items():
            signal.signal(sig, h)

    return restore


def _reserve_s(budget_s: float) -> float:
    """Seconds kept back from the budget for the final checkpoints and exports."""
    return min(20.0, max(0.5, 0.08 * budget_s))


def train_pair(
    cfg: TrainConfig,
    data_dir: str | Path,
    out_dir: str | Path,
    budget_s: float,
    init: dict[str, str | Path | None] | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
    max_steps: int = 0,
) -> dict[str, Any]:
    """Train both models on the same device-made batches for ``budget_s`` seconds of wall
    clock (training + final checkpoints + exports) or ``max_steps`` steps (0: ``cfg.steps``);
    returns the summary also written to ``out_dir/pair.json``.

    ``init``: optional starting weights per model name (``cmdsr``, ``baseline``): matching
    parameters are copied, as ``TrainConfig.init_from`` does. ``resume`` continues both
    models from ``out_dir``'s checkpoints (same data stream from the next step)."""
    if budget_s <= 0:
        raise ConfigError(f"the budget must be a positive number of seconds, got {budget_s}")
    if cfg.amp == "fp16":
        raise ConfigError("amp = fp16 needs a gradient scaler that waits for the device; use bf16 or off")
    out_dir = Path(out_dir)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # fp32 training with TF32 matmuls: nearly fp32's precision at tensor-core speed
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if cfg.lr_schedule == "cosine":
        # the cosine decay ends with the budget, not at a step count the run never reaches
        cfg = dataclasses.replace(cfg, time_budget_s=float(budget_s))
    init = init or {}
    members: list[Member] = []
    for name in NAMES:
        mcfg = cfg if name == "cmdsr" else baseline_config(cfg)
        start_from = init.get(name)
        if start_from and not resume:
            mcfg = dataclasses.replace(mcfg, init_from=str(start_from))
        latest = out_dir / name / RunWriter.LATEST
        model = build_training_model(mcfg, device, resume_from=latest if resume and latest.exists() else None)
        set_memory_format(model, torch.channels_last)
        opt = build_optimisers(model, mcfg)
        if device.type == "cuda":
            use_fused_adam(opt)
        writer = RunWriter(out_dir / name, keep=2)
        # a fine-tune's start is a good model: its average starts there without a ramp
        ema = ModelEMA(model, mcfg.ema_decay, ramp=not mcfg.init_from) if mcfg.ema_decay > 0 else None
        members.append(Member(name, mcfg, model, opt, writer, ema))
    gen = torch.Generator().manual_seed(cfg.seed)

    start = 0
    if resume:
        for m in members:
            start = _restore(m, gen)
        log.info("resuming both models at step %d", start)
    else:
        for m in members:
            if m.writer.latest_path.exists():
                raise ConfigError(f"{m.writer.run_dir}: already holds a run; resume it or choose a new folder")
    for m in members:
        m.writer.write_config(m.cfg, {"data_dir": str(Path(data_dir).resolve()), "paired_run": True,
                                      "init_from": str(init.get(m.name) or "")},
                              note="trained by engine.training.pair alongside the other model")

    photos = DevicePhotos.from_folder(data_dir, device, cfg.hr_patch, cfg.hr_downscale)
    sampler = DeviceTaskSampler.from_config(photos, cfg)
    last = max_steps or cfg.steps

    reserve = _reserve_s(budget_s)
    t0 = time.perf_counter()
    deadline = t0 + budget_s - reserve
    last_start = 0.0
    step = start
    t_log = t0
    steps_since_log = 0
    data_s = 0.0
    reason = "steps"
    records: list[dict[str, Any]] = []
    while step < last:
        if stop is not None and stop.is_set():
            reason = "signal"
            break
        if time.perf_counter() >= deadline:
            reason = "budget"
            break
        td = time.perf_counter()
        last_start = td - t0
        batch = sampler.batch(step)
        data_s += time.perf_counter() - td
        for m in members:
            device_step(m, batch, step, gen, device)
            if m.opt.progress is not None:
                m.opt.progress.elapsed_s = time.perf_counter() - t0
        step += 1
        steps_since_log += 1
        if step % cfg.log_every == 0 or step == last:
            records.append(_log(members, step, steps_since_log, time.perf_counter() - t_log))
            t_log, steps_since_log = time.perf_counter(), 0
        if step % cfg.checkpoint_every == 0 and step < last:
            # a long run on a shared machine can be stopped hard: keep a resumable state
            for m in members:
                set_memory_format(m.model, torch.contiguous_format)
                _save(m, step, gen, sampler)
                set_memory_format(m.model, torch.channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_s = time.perf_counter() - t0
    if steps_since_log:
        records.append(_log(members, step, steps_since_log, time.perf_counter() - t_log))
    exports = {}
    for m in members:
        set_memory_format(m.model, torch.contiguous_format)  # files hold plain tensors
        _save(m, step, gen, sampler)
        exports[m.name] = _export(m, out_dir, step)
    total_s = time.perf_counter() - t0
    done = step - start
    summary = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "steps": done,
        "first_step": start,
        "last_step": step,
        "stopped_by": reason,
        "budget_s": budget_s,
        "reserve_s": reserve,
        "last_step_started_s": last_start,
        "train_s": train_s,
        "total_s": total_s,
        "pair_steps_per_s": done / train_s if train_s > 0 else 0.0,
        "data_share": data_s / train_s if train_s > 0 else 0.0,
        "training_share_of_budget": train_s / budget_s,
        "tasks_per_batch": cfg.tasks_per_batch,
        "sr_patches_per_task": cfg.sr_patches,
        "lr_patch": cfg.lr_patch,
        "exports": {k: {kk: str(vv) for kk, vv in v.items()} for k, v in exports.items()},
        "last_log": records[-1] if records else {},
    }
    (out_dir / "pair.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("%d steps of both models in %.1f s (%.2f pair steps/s), stopped by %s",
             done, train_s, summary["pair_steps_per_s"], reason)
    return summary


def _log(members: Sequence[Member], step: int, steps: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"step": step, "pair_steps_per_s": steps / max(seconds, 1e-9)}
    for m in members:
        means = m.take_means()
        if not math.isfinite(means.get("l1", 0.0)):
            raise ConfigError(f"{m.name} diverged at step {step} (L1 = {means['l1']}); lower lr_base")
        rec = {"kind": "train", "step": step, "steps_per_s": out["pair_steps_per_s"],
               "lr": m.opt.base.param_groups[0]["lr"], "data_wait_share": 0.0,
               "time": time.time(), **means}
        m.writer.log(rec)
        out[m.name] = means
    log.info("step %d: %s (%.2f pair steps/s)", step,
             ", ".join(f"{m.name} L1 {out[m.name].get('l1', math.nan):.3f}" for m in members),
             out["pair_steps_per_s"])
    return out


def _save(m: Member, step: int, gen: torch.Generator, sampler: DeviceTaskSampler) -> Path:
    state = {
        "optimisers": m.opt.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "generator": gen.get_state(),
        "data": sampler.state_dict(),
    }
    if m.ema is not None:
        set_memory_format(m.ema.module, torch.contiguous_format)
        state["ema"] = m.ema.state_dict()
    obj = checkpoint_dict(m.model, step=step, extra={"train_state": state, "train_config": to_dict(m.cfg)})
    path = m.writer.save_checkpoint(obj, step)
    log.info("checkpoint %s", path)
    return path


def _restore(m: Member, gen: torch.Generator) -> int:
    if not m.writer.latest_path.exists():
        raise ConfigError(f"{m.writer.run_dir}: no checkpoint to resume from")
    saved_cfg, state, meta = read_checkpoint(m.writer.latest_path)
    if saved_cfg != m.cfg.model:
        raise ConfigError(f"{m.writer.latest_path}: the model differs from the config; cannot resume")
    ts = meta.get("train_state")
    if not isinstance(ts, dict):
        raise ConfigError(f"{m.writer.latest_path}: has no training state to resume from")
    load_training_state(m.model, m.writer.latest_path, state)
    m.opt.load_state_dict(ts["optimisers"])
    torch.set_rng_state(ts["torch_rng"])
    gen.set_state(ts["generator"])
    if m.ema is not None:
        if isinstance(ts.get("ema"), dict):
            m.ema.load_state_dict(ts["ema"])
        else:  # a run started without an average: it starts from the resumed weights
            m.ema = ModelEMA(m.model, m.cfg.ema_decay)
    return int(meta.get("step", 0))


def _export(m: Member, out_dir: Path, step: int) -> dict[str, Path]:
    """The shipped (fp16) and fp32 model files, with the metadata scripts/export_model.py
    writes."""
    training: dict[str, Any] = {
        "run": m.writer.run_dir.name, "step": step, "config_toml": dumps_toml(m.cfg),
        "effective_batch": {"processes": 1, "tasks_per_process": m.cfg.tasks_per_batch,
                            "tasks_per_step": m.cfg.tasks_per_batch},
    }
    extra = {"exported": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "training": training}
    stem = f"{EXPORT_STEM[m.name]}_x{m.cfg.model.scale}"
    # with an average, the averaged weights are the run's result (see engine.training.ema)
    model = m.model if m.ema is None else m.ema.module
    if m.ema is not None:
        set_memory_format(model, torch.contiguous_format)
        training["ema"] = {"decay": m.ema.decay, "updates": m.ema.updates}
    return {
        "fp16": save_model(model, out_dir / f"{stem}.pt", step=step, half=True, extra=extra),
        "fp32": save_model(model, out_dir / f"{stem}_fp32.pt", step=step, half=False, extra=extra),
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, required=True, help="folder of HR training photos")
    p.add_argument("--out", type=Path, required=True, help="output folder (both runs and exports)")
    p.add_argument("--budget", type=float, required=True, metavar="SECONDS",
                   help="wall-clock seconds for training, final checkpoints and exports")
    p.add_argument("--preset", default="studio", choices=TrainConfig.PRESETS)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. --set tasks_per_batch=4 (repeatable)")
    p.add_argument("--init-cmdsr", type=Path, help="starting weights of CMDSR")
    p.add_argument("--init-baseline", type=Path, help="starting weights of the baseline")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps too")
    p.add_argument("--resume", action="store_true", help="continue the runs in --out")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N (default from the preset)")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = apply_overrides(TrainConfig.preset(args.preset), args.overrides)
    if args.device:
        cfg = dataclasses.replace(cfg, device=args.device)
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()
    restore = install_stop_signals(stop)
    try:
        train_pair(config_from_args(args), args.data, args.out, args.budget,
                   {"cmdsr": args.init_cmdsr, "baseline": args.init_baseline},
                   resume=args.resume, stop=stop, max_steps=args.max_steps)
    except ConfigError as exc:
        log.error("train_pair: %s", exc)
        return 2
    finally:
        restore()
    return 0


if __name__ == "__main__":
    sys.exit(main())
