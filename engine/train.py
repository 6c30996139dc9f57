"""The paper's training procedure for CMDSR (and the conditioning-off BaseNet baseline).

Each step takes T tasks of 2*S LR/HR patch pairs (see ``engine.data``). The BaseNet
(``sr_net``, modulations included) is trained on L1 every step with Adam + MultiStepLR; every
``cond_every`` steps the ConditionNet gets its own Adam step on the task contrastive loss
between the condition vectors of the two halves of each task, plus ``cond_l1_weight`` * L1.

A run folder holds everything a user needs to follow, pause and resume a run:
``config.toml`` (the resolved config), ``run.json`` (data folders), ``metrics.jsonl``,
``plot.png``, ``checkpoints/step_NNNNNNN.pt`` and ``latest.pt`` (the newest checkpoint; it
loads with ``engine.load_model`` and also carries the optimiser/scheduler/RNG state that makes
a resumed run continue exactly as an uninterrupted one would on the CPU).

Under ``torchrun --nproc_per_node N`` the same ``train`` runs in N processes (see
``engine.distributed``): the BaseNet and the ConditionNet are each wrapped in
DistributedDataParallel (their own optimisers and the every-``cond_every``-steps schedule are
kept), every process makes its own share of each step's ``tasks_per_batch`` tasks, the task
contrastive loss sees the condition vectors of all tasks of the step, and only rank 0 writes
files and validates. ``tasks_per_batch`` is the batch over all processes, so a run does the
same arithmetic on any number of processes and resumes on any number.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from engine.checkpoint import atomic_torch_save, checkpoint_dict, read_checkpoint, read_damage_head
from engine.config import dumps_toml, from_dict, load_toml, to_dict
from engine.damage import HEAD_KEY, DamageHead, attach_damage_head, damage_head_of
from engine.data import (
    TaskBatches,
    TexturePick,
    ValItem,
    check_hr_downscale,
    load_validation,
    make_loader,
    open_training_source,
)
from engine.degrade import DegradationConfig, sample_degradation
from engine.distributed import (
    SINGLE,
    DistContext,
    barrier,
    cleanup,
    gather_rows,
    init_distributed,
    shard_range,
    sync_step,
)
from engine.errors import CheckpointError, ConfigError
from engine.fileio import atomic_write
from engine.metrics import bicubic_upscale, psnr_y, ssim_y
from engine.model import CMDSR, EqualConv2d, EqualLinear, ModelConfig, ResBlock, build_model

log = logging.getLogger(__name__)

AMP_MODES = ("off", "bf16", "fp16", "auto")
INIT_MODES = ("reference", "identity", "bicubic")
LR_SCHEDULES = ("multistep", "cosine")
LOSS_WEIGHTINGS = ("none", "bicubic")


@dataclass(frozen=True)
class TrainConfig:
    """Every hyper-parameter of a training run (defaults: the paper's reference setup).

    Steps, milestones and intervals count BaseNet iterations. ``sr_patches_per_task`` > 0
    sends only that many of each task's S first-half patches through the BaseNet (the support
    set still uses all S): a CPU shortcut, 0 = all, as in the paper. ``cache_crops_per_image``
    > 0 decodes each photo once into that many ``cache_crop_size`` crops (see
    ``engine.data.build_crop_cache``); 0 decodes photos on demand in the loader workers.
    ``hr_downscale`` (lo, hi) takes each HR crop/patch from the photo downscaled by a factor
    drawn in that range (1 = full resolution): high-resolution photos hold little texture per
    patch, and a model trained on them learns to smooth (see ``engine.data.downscaled_region``).

    Learning dynamics beyond the paper (all off in ``reference``, on in the ``studio`` presets):
    ``lr_per_layer`` gives each equalised layer an Adam step of ``lr * sqrt(fan_in)`` on its raw
    weight, so its effective weight moves at ``lr`` like a plain layer's (the reference moves a
    64-channel 3x3 conv 24x slower); ``warmup_steps`` ramps the rate up linearly;
    ``lr_schedule = "cosine"`` decays it to ``lr_floor`` times its peak by the end of the run,
    which is the last step or, when ``time_budget_s`` > 0, that many seconds of training,
    whichever comes first. ``task_pairing`` draws the tasks in groups of 4 (two photos x two
    degradations, see ``engine.data.TaskBatches``) and the contrastive loss pulls the same
    degradation on another photo together and pushes the same photo under another degradation
    apart. ``texture_candidates`` > 1 draws HR patch positions preferring textured areas with
    a floor of ``texture_floor`` (see ``engine.data.TexturePick``). ``damage_weight`` > 0
    trains a damage readout (``engine.damage.DamageHead``) together with the ConditionNet: the
    readout must recover each task's blur and noise sigma from its condition, with that weight
    beside the contrastive loss, so the condition has to carry the damage (and the model file
    ships a readout trained on it).

    Condition-first training (``condition_steps`` > 0, see ``engine.condition_stage``): before
    the SR stage, the ConditionNet and the damage readout alone learn to read the damage for
    that many steps (``condition_tasks`` tasks of ``condition_patch`` px support patches a
    step, Adam at ``condition_lr``), then the SR stage starts from them. ``cond_freeze_steps``
    keeps the ConditionNet fixed for the SR stage's first steps (the modulations learn to use
    the condition before it may move). ``loss_weighting = "bicubic"`` divides each task's L1
    by the L1 of its own bicubic upscale, so a nearly clean task, whose errors are small,
    steers the network as much as a noisy one.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    degradation: DegradationConfig = field(default_factory=DegradationConfig)
    steps: int = 1_000_000
    tasks_per_batch: int = 8
    lr_patch: int = 48
    sr_patches_per_task: int = 0
    lr_base: float = 1e-4
    lr_cond: float = 1e-4
    milestones: tuple[int, ...] = (500_000, 900_000)
    gamma_base: float = 0.1
    gamma_cond: float = 0.5
    cond_every: int = 10
    cond_l1_weight: float = 0.1
    grad_clip: float = 0.0
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    log_every: int = 100
    val_every: int = 5000
    val_degradation: DegradationConfig = field(
        default_factory=lambda: DegradationConfig.preset("paper-test")
    )
    val_crop: int = 0
    val_images: int = 0
    val_support_patch: int = 32
    amp: str = "off"
    device: str = "auto"
    seed: int = 0
    num_workers: int = -1
    threads: int = 0
    cache_crops_per_image: int = 0
    cache_crop_size: int = 0
    hr_downscale: tuple[float, float] = (1.0, 1.0)
    init: str = "reference"
    init_from: str = ""
    lr_per_layer: bool = False
    warmup_steps: int = 0
    lr_schedule: str = "multistep"
    lr_floor: float = 0.02
    time_budget_s: float = 0.0
    task_pairing: bool = False
    texture_candidates: int = 1
    texture_floor: float = 0.2
    damage_weight: float = 0.0
    condition_steps: int = 0
    condition_tasks: int = 16
    condition_patch: int = 32
    condition_lr: float = 1e-3
    cond_freeze_steps: int = 0
    loss_weighting: str = "none"

    PRESETS: ClassVar[tuple[str, ...]] = ("reference", "cpu", "studio", "studio-cpu", "users", "users-cpu")

    def __post_init__(self) -> None:
        positive = ("steps", "tasks_per_batch", "lr_patch", "cond_every", "checkpoint_every",
                    "keep_checkpoints", "log_every", "val_every", "val_support_patch")
        for name in positive:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        for name in ("sr_patches_per_task", "val_crop", "val_images", "threads",
                     "cache_crops_per_image", "cache_crop_size", "seed", "warmup_steps",
                     "condition_steps", "cond_freeze_steps"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ConfigError(f"{name} must be an integer >= 0, got {v!r}")
        # normalised to a tuple of floats: a list or ints given through the API compare equal
        object.__setattr__(self, "hr_downscale", check_hr_downscale(self.hr_downscale))
        if self.num_workers < -1:
            raise ConfigError(f"num_workers must be >= 0 (or -1 for automatic), got {self.num_workers}")
        if self.sr_patches_per_task > self.model.support_size:
            raise ConfigError(
                f"sr_patches_per_task ({self.sr_patches_per_task}) cannot exceed the support "
                f"size ({self.model.support_size})"
            )
        if self.model.conditioning and self.tasks_per_batch < 2:
            raise ConfigError("tasks_per_batch must be at least 2 for the task contrastive loss")
        for name in ("lr_base", "lr_cond", "cond_l1_weight"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("gamma_base", "gamma_cond"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.grad_clip < 0:
            raise ConfigError(f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        if list(self.milestones) != sorted(self.milestones) or any(m < 1 for m in self.milestones):
            raise ConfigError(f"milestones must be increasing positive steps, got {list(self.milestones)}")
        if self.init not in INIT_MODES:
            raise ConfigError(f"init must be one of {', '.join(INIT_MODES)}, got {self.init!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}"
            )
        if not 0 <= self.lr_floor <= 1:
            raise ConfigError(f"lr_floor must be in 0..1, got {self.lr_floor}")
        if not (math.isfinite(self.time_budget_s) and self.time_budget_s >= 0):
            raise ConfigError(f"time_budget_s must be >= 0 seconds (0 = none), got {self.time_budget_s}")
        if self.task_pairing and self.tasks_per_batch % 4:
            raise ConfigError(
                f"task_pairing draws tasks in groups of 4: tasks_per_batch must be a multiple "
                f"of 4, got {self.tasks_per_batch}"
            )
        if (not isinstance(self.texture_candidates, int) or isinstance(self.texture_candidates, bool)
                or self.texture_candidates < 1):
            raise ConfigError(f"texture_candidates must be >= 1 (1 = uniform), got {self.texture_candidates!r}")
        if self.texture_floor < 0:
            raise ConfigError(f"texture_floor must be >= 0, got {self.texture_floor}")
        if not (math.isfinite(self.damage_weight) and self.damage_weight >= 0):
            raise ConfigError(f"damage_weight must be >= 0 (0 = off), got {self.damage_weight}")
        if self.damage_weight > 0 and not self.model.conditioning:
            raise ConfigError("damage_weight trains a readout of the condition: it needs conditioning on")
        if self.loss_weighting not in LOSS_WEIGHTINGS:
            raise ConfigError(f"loss_weighting must be one of {', '.join(LOSS_WEIGHTINGS)}, "
                              f"got {self.loss_weighting!r}")
        for name in ("condition_tasks", "condition_patch"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 2:
                raise ConfigError(f"{name} must be an integer >= 2, got {v!r}")
        if not self.condition_lr > 0:
            raise ConfigError(f"condition_lr must be positive, got {self.condition_lr}")
        if self.condition_steps > 0 and not self.model.conditioning:
            raise ConfigError("condition_steps trains the ConditionNet: it needs conditioning on")
        if self.amp not in AMP_MODES:
            raise ConfigError(f"amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")
        if self.device != "auto" and not self.device.startswith(("cpu", "cuda", "mps")):
            raise ConfigError(f"device must be auto, cpu, cuda[:N] or mps, got {self.device!r}")

    @property
    def hr_patch(self) -> int:
        return self.lr_patch * self.model.scale

    @property
    def sr_patches(self) -> int:
        """Patches per task that go through the BaseNet."""
        return self.sr_patches_per_task or self.model.support_size

    @property
    def texture_pick(self) -> TexturePick:
        return TexturePick(self.texture_candidates, self.texture_floor)

    @classmethod
    def preset(cls, name: str) -> TrainConfig:
        """``reference``: the paper's setup (8 tasks x S=20, LR 48, 1M steps, decoding on
        demand); ``cpu``: the paper's architecture trained with small batches on a
        2-core CPU (4 tasks, LR 24 patches, 4 BaseNet patches per task, crop cache);
        ``studio``: the recipe of the shipped models at the paper's batch (per-layer step
        sizes, bicubic start, warm-up and cosine decay, paired tasks updating the ConditionNet
        every step, textured patches from downscaled photos, the ``studio`` degradations);
        ``studio-cpu``: the same recipe with the ``cpu`` preset's small batches;
        ``users`` / ``users-cpu``: the recipe of the condition-reading default models, the
        ``studio`` dynamics with a high-pass ConditionNet trained first
        (``condition_steps``), then held for the SR stage's first steps and trained on with a
        small rate and the damage readout's loss, the ``users`` degradations (40% nearly
        clean tasks), each task's L1 weighted by its bicubic L1, 32 px patches and bf16
        where the CPU runs it natively."""
        if name == "reference":
            return cls()
        if name in ("users", "users-cpu"):
            small = name == "users-cpu"
            base = cls.preset("studio-cpu" if small else "studio")
            return dataclasses.replace(
                base,
                model=ModelConfig(condition_input="highpass"),
                degradation=DegradationConfig.preset("users"),
                lr_patch=32,
                sr_patches_per_task=4 if small else 0,
                tasks_per_batch=4 if small else 16,
                damage_weight=1.0,
                loss_weighting="bicubic",
                condition_steps=3000 if small else 5000,
                condition_tasks=16 if small else 64,
                cond_freeze_steps=2000 if small else 10_000,
                lr_cond=2e-5,
                warmup_steps=100 if small else 200,
                lr_floor=0.1,
                amp="auto",
            )
        if name in ("studio", "studio-cpu"):
            small = name == "studio-cpu"
            return cls(
                model=ModelConfig(),
                degradation=DegradationConfig.preset("studio"),
                init="bicubic",
                lr_per_layer=True,
                lr_schedule="cosine",
                warmup_steps=200 if small else 1000,
                steps=20_000 if small else 200_000,
                lr_base=2e-4,
                lr_cond=2e-4,
                cond_every=1,
                task_pairing=True,
                texture_candidates=4,
                hr_downscale=(0.4, 1.0),
                tasks_per_batch=4 if small else 8,
                lr_patch=24 if small else 48,
                sr_patches_per_task=4 if small else 0,
                checkpoint_every=250 if small else 5000,
                log_every=10 if small else 100,
                val_every=500 if small else 5000,
                val_crop=256,
                val_images=10 if small else 0,
                num_workers=1 if small else -1,
                cache_crops_per_image=32 if small else 48,
                cache_crop_size=192 if small else 384,
            )
        if name == "cpu":
            return cls(
                model=ModelConfig(),
                init="identity",
                steps=20_000,
                tasks_per_batch=4,
                lr_patch=24,
                sr_patches_per_task=4,
                lr_base=2e-4,
                lr_cond=2e-4,
                milestones=(15_000, 18_000),
                checkpoint_every=250,
                log_every=10,
                val_every=1000,
                val_crop=256,
                val_images=10,
                num_workers=1,
                cache_crops_per_image=32,
                cache_crop_size=192,
            )
        raise ConfigError(f"unknown training preset {name!r}; choose one of {', '.join(cls.PRESETS)}")

    def baseline(self) -> TrainConfig:
        """This recipe for the conditioning-off BaseNet (the same-budget baseline): no
        ConditionNet, so no damage readout either."""
        return dataclasses.replace(self, model=dataclasses.replace(self.model, conditioning=False),
                                   damage_weight=0.0, condition_steps=0, cond_freeze_steps=0)

    @classmethod
    def from_toml(cls, path: str | Path, base: TrainConfig | None = None) -> TrainConfig:
        """Read a config file; its keys override ``base`` (default: the reference preset).
        A top-level ``preset = "cpu"`` key picks the base preset."""
        data = dict(load_toml(path))
        preset = data.pop("preset", None)
        if preset is not None:
            base = cls.preset(str(preset))
        merged = _merge(to_dict(base or cls()), data)
        return from_dict(cls, merged)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass
class TrainProgress:
    """What the CLI bar and the GUI show after each step. ``d_inner``/``d_cross`` are the mean
    distances between condition vectors of the same / different tasks at the last
    ConditionNet step (NaN before the first one or with conditioning off)."""

    step: int
    total_steps: int
    l1: float
    contrastive: float
    d_inner: float
    d_cross: float
    lr: float
    steps_per_s: float
    eta_s: float
    val_psnr: float | None = None
    checkpoint: Path | None = None
    data_wait_share: float = 0.0
    val_ssim: float | None = None


# ----------------------------------------------------------------------------- building blocks


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):  # "cudax", "cpu:a": torch's own message lists 20 types
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for, but no CUDA GPU is available")
    return dev


def build_training_model(cfg: TrainConfig, device: torch.device) -> CMDSR:
    """A freshly initialised network (seeded by ``cfg.seed``), optionally starting from the
    weights of ``cfg.init_from`` (e.g. a briefly trained BaseNet): parameters with matching
    names and shapes are copied, the rest keep their fresh values."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    if cfg.init == "identity":
        identity_init(model)
    elif cfg.init == "bicubic":
        bicubic_init(model)
    head: DamageHead | None = None
    if cfg.init_from:
        _, state, _ = read_checkpoint(cfg.init_from)
        own = model.state_dict()
        usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(usable, strict=False)
        log.info("initialised %d of %d tensors from %s", len(usable), len(own), cfg.init_from)
        mods = model.sr_net.modulations
        if mods is not None and not any(k.startswith("sr_net.modulations.") for k in usable):
            # a conditioning-off start: every modulation starts as the identity (weight 0,
            # bias 1), so the model upscales as the start does until it learns to adapt
            with torch.no_grad():
                for m in mods.modulations:
                    assert isinstance(m, EqualLinear)
                    m.weight.zero_()
                    m.bias.fill_(1.0)
        if cfg.damage_weight > 0:
            saved = read_damage_head(cfg.init_from)
            if saved is not None and saved.cond_channels == cfg.model.cond_channels:
                head = saved  # the readout the condition stage trained goes on learning
    if cfg.damage_weight > 0:
        attach_damage_head(model, head if head is not None else training_damage_head(cfg))
    return model.to(device).train()


def training_damage_head(cfg: TrainConfig, draws: int = 4000) -> DamageHead:
    """A fresh damage readout for ``cfg``'s model, its output scaled to the training
    degradations (mean, spread and range of their blur and noise sigmas, from ``draws``
    seeded draws), so it fits standardised targets from the first step."""
    rng = np.random.default_rng(cfg.seed)
    drawn = [sample_degradation(cfg.degradation, rng) for _ in range(draws)]
    targets = torch.tensor([[math.sqrt(p.sigma_x * p.sigma_y), p.noise_std] for p in drawn],
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
    goal = (torch.stack([blur, noise], dim=1).float() - head.out_mean) / head.out_std
    return F.smooth_l1_loss(head.normalised(conditions), goal, beta=0.5)


@torch.no_grad()
def identity_init(model: CMDSR) -> None:
    """Start the BaseNet as nearest-neighbour upscaling instead of a random map.

    With the reference init an untrained network outputs noise hundreds of levels off (L1
    around 150-200 on 0..255) and spends its first thousands of steps learning to pass the
    image through; on a CPU budget that is most of the run. Here the RGB input is carried in
    feature channels 0..2, every residual branch starts at zero (second conv zeroed), the
    upsampler convs replicate each channel into its sub-pixels and the output conv reads
    channels 0..2 back. Other weights keep their random values, so gradients reach them
    from the first steps.
    """
    net = model.sr_net
    c = net.input_conv.weight.shape[0]
    if c < 3:
        raise ConfigError("init = identity needs at least 3 channels")

    def set_effective(conv: Any, eff: Tensor) -> None:
        conv.weight.copy_(eff / conv.scale)
        conv.bias.zero_()

    w_in = net.input_conv.effective_weight().clone()
    w_in[:3] = 0
    # The global skip adds residual_lr * input features to the backbone output (itself
    # identity with zero residuals): this gain passes the image through at gain 1.
    for i in range(3):
        w_in[i, i, 1, 1] = 1.0 / (1.0 + net.residual_lr)
    set_effective(net.input_conv, w_in)
    for block in net.backbone:
        assert isinstance(block, ResBlock)
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()
    for layer in net.upsampler:
        if isinstance(layer, EqualConv2d):
            out_ch, in_ch = layer.weight.shape[:2]
            r2 = out_ch // in_ch  # PixelShuffle: channel k*r2+j is sub-pixel j of channel k
            eff = torch.zeros_like(layer.weight)
            for k in range(in_ch):
                eff[k * r2 : (k + 1) * r2, k, 1, 1] = 1.0
            set_effective(layer, eff)
    eff = torch.zeros_like(net.output_conv.weight)
    for i in range(3):
        eff[i, i, 1, 1] = 1.0
    set_effective(net.output_conv, eff)


def bicubic_taps(scale: int) -> np.ndarray:
    """OpenCV's bicubic upscaling (``INTER_CUBIC``) as taps: ``K[jy, jx, ty, tx]`` is the
    weight of input pixel ``p + (ty-2, tx-2)`` in output pixel ``(scale*p + jy, scale*p + jx)``
    (float64 [s, s, 5, 5]), measured by upscaling unit impulses."""
    import cv2

    n, c = 13, 6
    taps = np.zeros((scale, scale, 5, 5))
    for ty in range(5):
        for tx in range(5):
            img = np.zeros((n, n), np.float64)
            img[c + ty - 2, c + tx - 2] = 1.0
            up = cv2.resize(img, (n * scale, n * scale), interpolation=cv2.INTER_CUBIC)
            taps[:, :, ty, tx] = up[c * scale : (c + 1) * scale, c * scale : (c + 1) * scale]
    return taps


@torch.no_grad()
def bicubic_init(model: CMDSR) -> None:
    """Start the BaseNet as exact bicubic upscaling (inside the image; the borders see zero
    padding) instead of nearest neighbour, so training starts from what users compare with.

    The input conv carries the RGB of each pixel's 3x3 neighbourhood in feature channels 0..26,
    every residual branch starts at zero, and the upsampler's first conv (reaching one more
    pixel, so +-2 in all) computes bicubic's output sub-pixels directly; the following layers
    only route them (at x4: the first conv's 4 sub-pixels each carry their own 2x2 children,
    12 channels). Other weights keep their random values, so gradients reach them.
    """
    net = model.sr_net
    s = model.scale
    c = net.input_conv.weight.shape[0]
    if c < 27:
        raise ConfigError("init = bicubic needs at least 27 channels")
    taps = bicubic_taps(s)
    gain = 1.0 / (1.0 + net.residual_lr)  # the global skip doubles the identity backbone

    def set_effective(conv: Any, eff: Tensor) -> None:
        conv.weight.copy_(eff / conv.scale)
        conv.bias.zero_()

    def shift(i: int) -> tuple[int, int, int]:
        """Feature channel i = colour i // 9 at offset (dy, dx) = divmod(i % 9, 3) - 1."""
        dy, dx = divmod(i % 9, 3)
        return i // 9, dy - 1, dx - 1

    w_in = net.input_conv.effective_weight().clone()
    w_in[:27] = 0
    for i in range(27):
        col, dy, dx = shift(i)
        w_in[i, col, 1 + dy, 1 + dx] = gain
    set_effective(net.input_conv, w_in)
    for block in net.backbone:
        assert isinstance(block, ResBlock)
        block.conv2.weight.zero_()
        block.conv2.bias.zero_()

    # A tap t in -2..2 is reached as conv offset u plus feature offset d, both in -1..1.
    split = {-2: (-1, -1), -1: (0, -1), 0: (0, 0), 1: (0, 1), 2: (1, 1)}
    convs = [m for m in net.upsampler if isinstance(m, EqualConv2d)]
    first = torch.zeros_like(convs[0].weight)
    r = s if len(convs) == 1 else 2  # sub-pixels of the first conv's PixelShuffle
    for jy in range(s):
        for jx in range(s):
            if len(convs) == 1:  # x2, x3: the first conv's sub-pixels are the output pixels
                k_of = [(col, col * r * r + jy * r + jx) for col in range(3)]
            else:  # x4: sub-pixel (a, b) of the first conv, child (cy, cx) of the second
                a, cy = divmod(jy, 2)
                b, cx = divmod(jx, 2)
                k_of = [(col, (col * 4 + cy * 2 + cx) * 4 + a * 2 + b) for col in range(3)]
            for col, row in k_of:
                for ty in range(5):
                    for tx in range(5):
                        uy, dy = split[ty - 2]
                        ux, dx = split[tx - 2]
                        feat = col * 9 + (dy + 1) * 3 + (dx + 1)
                        first[row, feat, 1 + uy, 1 + ux] += float(taps[jy, jx, ty, tx])
    set_effective(convs[0], first)
    if len(convs) == 2:  # x4: route channel (colour, child) to the child sub-pixel
        second = torch.zeros_like(convs[1].weight)
        for col in range(3):
            for child in range(4):
                second[col * 4 + child, col * 4 + child, 1, 1] = 1.0
        set_effective(convs[1], second)
    out = torch.zeros_like(net.output_conv.weight)
    for col in range(3):
        out[col, col, 1, 1] = 1.0
    set_effective(net.output_conv, out)


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


def derangement(n: int, gen: torch.Generator) -> Tensor:
    """A uniformly random permutation of 0..n-1 with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError("a derangement needs at least 2 elements")
    idx = torch.arange(n)
    while True:
        perm = torch.randperm(n, generator=gen)
        if not bool((perm == idx).any()):
            return perm


def task_contrastive_loss(a: Tensor, b: Tensor, perm: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Task contrastive loss of condition vectors ``a``, ``b`` [T, C] (two halves of the same
    T tasks): mean(softplus(d_in^2) + softplus(-d_x^2)) with ``d_in = |a_t - b_t|`` and
    ``d_x = |a_t - b_perm(t)|``. Returns (loss, mean d_in, mean d_x)."""
    return task_contrastive_loss_pairs(a, b, torch.arange(a.shape[0], device=a.device), perm)


def paired_contrastive_loss(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The task contrastive loss over paired tasks (groups of 4: photos A, B x degradations
    d, e, see ``engine.data.paired_assignment``): the positive of task t is the other photo
    with the same degradation (t ^ 1), its negatives the tasks with the other degradation
    (t ^ 2: the same photo, t ^ 3: the other one), each seen through the other half's support
    set. The condition is pulled towards the damage and away from the picture.

    Distances are measured after dividing all vectors by their spread (RMS distance from their
    mean): the paper's loss on raw vectors can be lowered by shrinking every condition towards
    zero whenever pictures still dominate (positives farther apart than negatives), a collapse
    in which the condition carries nothing; on standardised vectors only reorganising them
    helps. Returns (loss, mean d_pos, mean d_neg) in standardised units."""
    both = torch.cat([a, b])
    spread = (both - both.mean(dim=0)).pow(2).sum(dim=1).mean().sqrt() + 1e-6
    a, b = a / spread, b / spread
    idx = torch.arange(a.shape[0], device=a.device)
    d_pos = (a - b[idx ^ 1]).norm(dim=1)
    d_neg = torch.stack([(a - b[idx ^ 2]).norm(dim=1), (a - b[idx ^ 3]).norm(dim=1)])
    loss = (F.softplus(d_pos.pow(2)) + F.softplus(-d_neg.pow(2)).mean(dim=0)).mean()
    return loss, d_pos.detach().mean(), d_neg.detach().mean()


def task_contrastive_loss_pairs(a: Tensor, b: Tensor, pos: Tensor, neg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """mean(softplus(d_pos^2) + softplus(-d_neg^2)) with ``d_pos = |a_t - b_pos(t)|`` and
    ``d_neg = |a_t - b_neg(t)|``; returns (loss, mean d_pos, mean d_neg)."""
    d_in = (a - b[pos]).norm(dim=1)
    d_x = (a - b[neg]).norm(dim=1)
    loss = (F.softplus(d_in.pow(2)) + F.softplus(-d_x.pow(2))).mean()
    return loss, d_in.detach().mean(), d_x.detach().mean()


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


def sr_loss(sr: Tensor, hr: Tensor, lr: Tensor, tasks: int, weighting: str) -> Tensor:
    """The SR stage's loss: L1 between ``sr`` and ``hr`` [N, 3, H, W] (0..255), or with
    ``weighting = "bicubic"`` each task's L1 divided by the L1 of the bicubic upscale of its
    own ``lr`` [N, 3, h, w] (N = ``tasks`` consecutive groups), averaged over the tasks."""
    if weighting == "none":
        return F.l1_loss(sr.float(), hr)
    per_task = (sr.float() - hr).abs().reshape(tasks, -1).mean(dim=1)
    with torch.no_grad():
        bic = F.interpolate(lr.float(), size=hr.shape[-2:], mode="bicubic", align_corners=False)
        ref = (bic.clamp(0, 255) - hr).abs().reshape(tasks, -1).mean(dim=1).clamp_min(0.5)
    return (per_task / ref).mean()


def condition_step_due(cfg: TrainConfig, model: CMDSR, step: int) -> bool:
    """Whether the ConditionNet learns at ``step``: every ``cond_every`` steps once the first
    ``cond_freeze_steps`` are done."""
    return (model.condition_net is not None and step >= cfg.cond_freeze_steps
            and step % cfg.cond_every == 0)


@torch.no_grad()
def track_condition_stats(head: DamageHead, conditions: Tensor, momentum: float = 0.01) -> None:
    """Keep the readout's input standardisation (``in_mean``/``in_std``) on the conditions
    the ConditionNet makes now: set from the first batch, then a running average. Conditions
    span a few hundredths when training starts; unstandardised, the readout would hardly move
    and pass the ConditionNet almost no gradient."""
    mean, std = conditions.mean(0), conditions.std(0)
    std = std.clamp_min(max(1e-6, 0.05 * float(std.mean())))
    if bool(torch.all(head.in_std == 1)) and bool(torch.all(head.in_mean == 0)):  # fresh head
        head.in_mean.copy_(mean)
        head.in_std.copy_(std)
    else:
        head.in_mean.lerp_(mean, momentum)
        head.in_std.lerp_(std, momentum)


def load_training_state(model: CMDSR, path: Path, state: dict[str, Tensor]) -> None:
    """Load a run checkpoint's parameters (``state`` as read from ``path``) into ``model``,
    with the damage readout the run trains, if any (stored apart in the file)."""
    head = damage_head_of(model)
    if head is not None:
        saved_head = read_damage_head(path)
        if saved_head is None:
            raise CheckpointError(f"{path}: the run trains a damage readout but the checkpoint has none")
        state = {**state, **{f"{HEAD_KEY}.{k}": v for k, v in saved_head.state_dict().items()}}
    model.load_state_dict(state, strict=True)


@dataclass
class StepResult:
    l1: float
    contrastive: float | None
    d_inner: float | None
    d_cross: float | None
    damage: float | None = None


def resolve_amp(amp: str, device: torch.device) -> str:
    """``amp = "auto"``: bf16 autocast on a CPU that runs bf16 natively (AMX or AVX-512 BF16:
    about 2-3x the fp32 speed there), fp32 elsewhere (emulated bf16 was 13x *slower* than
    fp32 on an AVX2 CPU; on a GPU fp32 keeps the small modulation differences that carry the
    condition, with TF32 matmuls). Other values are returned as they are."""
    if amp != "auto":
        return amp
    if device.type == "cpu":
        from engine.cpu_caps import auto_cpu_precision

        return "bf16" if auto_cpu_precision() == "bf16" else "off"
    return "off"


def _autocast(device: torch.device, amp: str) -> contextlib.AbstractContextManager[Any]:
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
) -> StepResult:
    """One iteration of the paper's procedure on a batch from ``TaskBatches``.

    In a multi-process run ``batch`` holds this process's share of the step's tasks and
    ``nets`` the DDP wrappers; the result's L1 is this process's, the contrastive loss and
    distances are those of all tasks of the step."""
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
    with _autocast(device, cfg.amp):
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
    total = l1 + aux * (ctx.world_size / wgt) if aux is not None else l1
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
    return StepResult(
        float(l1.detach()),
        None if con is None else float(con.detach()),
        None if d_in is None else float(d_in),
        None if d_x is None else float(d_x),
        None if dmg is None else float(dmg.detach()),
    )


# ----------------------------------------------------------------------------- validation


@torch.inference_mode()
def super_resolve(model: CMDSR, lr: np.ndarray, support: np.ndarray | None, device: torch.device) -> np.ndarray:
    """SR of one HxWx3 float LR image (0..255) with a support [S, 3, p, p]; returns the
    rounded, clipped HxWx3 float32 result as it would be saved."""
    x = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1)))[None].float().to(device)
    sup = None
    if model.condition_net is not None:
        if support is None:
            raise ValueError("this model is conditioned: a support set is required")
        sup = torch.from_numpy(support)[None].float().to(device)
    was_training = model.training
    model.eval()
    try:
        out = model.fold(sup)(x)
    finally:
        model.train(was_training)
    return out[0].clamp(0, 255).round().permute(1, 2, 0).cpu().numpy().astype(np.float32)


def validate(model: CMDSR, items: list[ValItem], device: torch.device) -> tuple[float, float]:
    """Mean PSNR-Y / SSIM-Y of ``model`` over the fixed validation items."""
    scale = model.scale
    ps, ss = [], []
    for it in items:
        sr = super_resolve(model, it.lr, it.support, device)
        ps.append(psnr_y(sr, it.hr, scale))
        ss.append(ssim_y(sr, it.hr, scale))
    return float(np.mean(ps)), float(np.mean(ss))


def bicubic_baseline(items: list[ValItem], scale: int) -> tuple[float, float]:
    ps = [psnr_y(bicubic_upscale(it.lr, scale), it.hr, scale) for it in items]
    ss = [ssim_y(bicubic_upscale(it.lr, scale), it.hr, scale) for it in items]
    return float(np.mean(ps)), float(np.mean(ss))


# ----------------------------------------------------------------------------- run folder


class RunWriter:
    """Every file a run writes goes through here (only one process writes in a
    multi-process run: the others get ``enabled=False``)."""

    CONFIG = "config.toml"
    RUN_INFO = "run.json"
    METRICS = "metrics.jsonl"
    PLOT = "plot.png"
    LATEST = "latest.pt"
    CHECKPOINTS = "checkpoints"

    def __init__(self, run_dir: str | Path, enabled: bool = True, keep: int = 3) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.keep = keep
        if enabled:
            self.run_dir.mkdir(parents=True, exist_ok=True)

    @property
    def latest_path(self) -> Path:
        return self.run_dir / self.LATEST

    @property
    def metrics_path(self) -> Path:
        return self.run_dir / self.METRICS

    def write_config(self, cfg: TrainConfig, info: dict[str, Any], note: str = "") -> None:
        if not self.enabled:
            return
        header = "# Resolved training config of this run (cmdsr train --resume reads it).\n"
        if note:
            header += f"# {note}\n"
        _atomic_text(self.run_dir / self.CONFIG, header + dumps_toml(cfg))
        _atomic_text(self.run_dir / self.RUN_INFO, json.dumps(info, indent=2) + "\n")

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.metrics_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def truncate_metrics(self, after_step: int) -> None:
        """Drop log lines past the resumed step (written after the last checkpoint)."""
        if not self.enabled or not self.metrics_path.exists():
            return
        keep = [r for r in read_metrics(self.metrics_path) if r.get("step", 0) <= after_step]
        _atomic_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in keep))

    def save_checkpoint(self, obj: dict[str, Any], step: int) -> Path:
        path = self.run_dir / self.CHECKPOINTS / f"step_{step:07d}.pt"
        if not self.enabled:
            return path
        atomic_torch_save(obj, path)
        _atomic_link(path, self.latest_path)
        old = sorted((self.run_dir / self.CHECKPOINTS).glob("step_*.pt"))[: -self.keep]
        for p in old:
            p.unlink(missing_ok=True)
        return path

    def write_plot(self) -> None:
        if not self.enabled or not self.metrics_path.exists():
            return
        try:
            draw_plot(read_metrics(self.metrics_path), self.run_dir / self.PLOT)
        except Exception as exc:  # a plot must never stop a training run
            log.warning("could not draw %s: %s", self.PLOT, exc)


def _atomic_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), overwrite=True)


def _atomic_link(src: Path, dst: Path) -> None:
    """Make ``dst`` the same file as ``src`` (hard link; a copy where links are refused)."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` (a torn last line is ignored)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def draw_plot(records: list[dict[str, Any]], path: Path, width: int = 900, height: int = 560) -> None:
    """Training L1 (log scale) and validation PSNR-Y against step, drawn with Pillow."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    train = [(r["step"], r["l1"]) for r in records if r.get("kind") == "train" and r.get("l1", 0) > 0]
    val = [(r["step"], r["val_psnr"]) for r in records if r.get("kind") == "val"]
    bic = [r["bicubic_psnr"] for r in records if r.get("kind") == "val" and "bicubic_psnr" in r]
    max_step = max([s for s, _ in train + val] + [1])
    panels = [
        ("training L1 (log)", [(s, math.log10(v)) for s, v in train], None, (30, 90, 200)),
        ("validation PSNR-Y (dB)", val, bic[-1] if bic else None, (200, 60, 30)),
    ]
    ph = (height - 20) // 2
    for i, (title, pts, ref, color) in enumerate(panels):
        top = 10 + i * ph
        x0, y0, x1, y1 = 70, top + 22, width - 20, top + ph - 28
        d.rectangle([x0, y0, x1, y1], outline=(150, 150, 150))
        d.text((x0, top + 4), title, fill=(0, 0, 0))
        if not pts:
            d.text((x0 + 10, y0 + 10), "no data yet", fill=(120, 120, 120))
            continue
        vals = [v for _, v in pts] + ([ref] if ref is not None else [])
        lo, hi = min(vals), max(vals)
        if hi - lo < 1e-9:
            lo, hi = lo - 0.5, hi + 0.5

        def xy(s: float, v: float, lo: float = lo, hi: float = hi,
               x0: int = x0, x1: int = x1, y0: int = y0, y1: int = y1) -> tuple[float, float]:
            return x0 + (x1 - x0) * s / max_step, y1 - (y1 - y0) * (v - lo) / (hi - lo)

        for frac in (0.0, 0.5, 1.0):
            v = lo + (hi - lo) * frac
            label = f"{10 ** v:.3g}" if i == 0 else f"{v:.2f}"
            d.text((4, xy(0, v)[1] - 6), label, fill=(80, 80, 80))
        d.text((x1 - 80, y1 + 6), f"step {max_step}", fill=(80, 80, 80))
        if ref is not None:
            yy = xy(0, ref)[1]
            d.line([x0, yy, x1, yy], fill=(160, 160, 160), width=1)
            d.text((x0 + 4, yy - 12), f"bicubic {ref:.2f}", fill=(120, 120, 120))
        line = [xy(s, v) for s, v in pts]
        if len(line) > 1:
            d.line(line, fill=color, width=2)
        for p in line[-1:] if len(line) > 1 else line:
            d.ellipse([p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3], fill=color)
    atomic_write(path, lambda fh: img.save(fh, format="PNG"), overwrite=True)


def load_run_config(run_dir: str | Path) -> TrainConfig:
    """The resolved config saved in a run folder."""
    path = Path(run_dir) / RunWriter.CONFIG
    if not path.exists():
        raise ConfigError(f"{run_dir}: not a training run folder (no {RunWriter.CONFIG})")
    return from_dict(TrainConfig, load_toml(path))


def load_run_info(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / RunWriter.RUN_INFO
    if not path.exists():
        return {}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable run information ({exc})") from None
    return info if isinstance(info, dict) else {}


# ----------------------------------------------------------------------------- the loop


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
    condition_progress: Callable[[Any], None] | None = None,
) -> Path:
    """Train (or, with ``resume``, continue) a run in ``run_dir``; returns the path of the
    last checkpoint written.

    With ``cfg.condition_steps`` > 0 the run starts with the condition stage
    (``engine.condition_stage``, in ``run_dir/condition``; ``condition_progress`` gets its
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
            from engine.condition_stage import run_condition_stage

            writer = RunWriter(run_dir)
            if not resume or not (writer.run_dir / RunWriter.CONFIG).exists():
                # written now so that a run paused in the condition stage resumes from the CLI
                writer.write_config(cfg, {
                    "data_dir": None if data_dir is None else str(Path(data_dir).resolve()),
                    "val_dir": None if val_dir is None else str(Path(val_dir).resolve())})
            if data_dir is None and resume:
                data_dir = load_run_info(run_dir).get("data_dir")
            stage = run_condition_stage(cfg, run_dir, data_dir, resume, cancel, condition_progress)
            if stage is None:
                return writer.run_dir / "condition" / RunWriter.LATEST
            cfg = dataclasses.replace(cfg, init_from=str(stage))
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
    model = build_training_model(cfg, device)
    opt = build_optimisers(model, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    scaler = torch.amp.GradScaler("cuda") if cfg.amp == "fp16" else None
    start = 0
    if resume:
        start = _restore(writer.latest_path, cfg, model, opt, gen, scaler)
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
        obj = checkpoint_dict(model, step=step, extra={"train_state": state, "train_config": to_dict(cfg)})
        path = writer.save_checkpoint(obj, step)
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
    acc: dict[str, list[float]] = {"l1": [], "contrastive": [], "damage": [], "wait": [], "time": []}
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
            res = train_step(model, opt, batch, step, cfg, gen, device, scaler, ctx, nets)
            l1, stop = sync_step(res.l1, cancel is not None and cancel.is_set(), ctx, device)
            res = dataclasses.replace(res, l1=l1)
            if not math.isfinite(res.l1):
                raise ConfigError(
                    f"training diverged at step {step} (L1 = {res.l1}); lower lr_base or set grad_clip"
                )
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
                val = validate(model, val_items, device)
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
) -> int:
    """Load model, optimisers, schedulers and RNG states; returns the step to continue at."""
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
    return int(meta.get("step", 0))
