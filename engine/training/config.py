"""A training run's settings: ``TrainConfig`` (every hyper-parameter, its presets and its TOML
form) and ``TrainProgress`` (what the loop reports after each step)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from engine.config import from_dict, load_toml, to_dict
from engine.data import TexturePick, check_hr_downscale
from engine.degrade import DegradationConfig
from engine.errors import ConfigError
from engine.model import ModelConfig

AMP_MODES = ("off", "bf16", "fp16", "auto")
GAN_LOSSES = ("nonsat", "hinge")  # engine.training.adversarial's
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
    degradations, see ``engine.training.batches.TaskBatches``) and the contrastive loss pulls the same
    degradation on another photo together and pushes the same photo under another degradation
    apart. ``texture_candidates`` > 1 draws HR patch positions preferring textured areas with
    a floor of ``texture_floor`` (see ``engine.data.TexturePick``). ``damage_weight`` > 0
    trains a damage readout (``engine.damage_head.DamageHead``) together with the ConditionNet: the
    readout must recover each task's blur and noise sigma from its condition, with that weight
    beside the contrastive loss, so the condition has to carry the damage (and the model file
    ships a readout trained on it).

    Condition-first training (``condition_steps`` > 0, see ``engine.training.condition``): before
    the SR stage, the ConditionNet and the damage readout alone learn to read the damage for
    that many steps (``condition_tasks`` tasks of ``condition_patch`` px support patches a
    step, Adam at ``condition_lr``), then the SR stage starts from them. ``cond_freeze_steps``
    keeps the ConditionNet fixed for the SR stage's first steps (the modulations learn to use
    the condition before it may move). ``loss_weighting = "bicubic"`` divides each task's L1
    by the L1 of its own bicubic upscale, so a nearly clean task, whose errors are small,
    steers the network as much as a noisy one.

    The adversarial finish of the Crisp look (all off by default; see
    ``engine.training.adversarial``): ``gan_weight`` > 0 trains a U-Net critic of
    ``disc_channels`` (Adam at ``disc_lr``) beside the network and adds ``gan_weight`` times
    the ``gan_loss`` (``nonsat`` or ``hinge``) to the pixel loss as the run computes it (L1 in
    grey levels 0..255, whose gradient is 255x a 0..1 L1's: Real-ESRGAN's 0.1 against a 0..1
    L1 is about 25 here; with ``loss_weighting = "bicubic"`` divide by a task's bicubic L1).
    For the first ``gan_warmup_steps`` only the critic learns. Its real examples are the
    step's HR patches, or patches of the images in ``gan_real_dir`` (e.g. a teacher's
    outputs). ``fft_weight`` adds the L1 between the amplitude spectra (grey levels).
    ``ema_decay`` > 0 keeps a moving average of the weights (``engine.training.ema``): it is
    what validation measures and what the loop writes as ``ema.pt`` beside the checkpoints.
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
    # weights averaged over the last ~1/(1-decay) steps, the copy exported and evaluated
    # (engine.training.ema); 0 = off, the newest weights are exported
    ema_decay: float = 0.0
    # the adversarial finish of the Crisp look (engine.training.adversarial); 0 = off
    gan_weight: float = 0.0
    gan_loss: str = "nonsat"
    gan_warmup_steps: int = 0
    gan_real_dir: str = ""
    disc_channels: int = 64
    disc_lr: float = 1e-4
    fft_weight: float = 0.0

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
        if not (self.ema_decay == 0.0 or 0.0 < self.ema_decay < 1.0):
            raise ConfigError(f"ema_decay must be 0 (off) or lie in (0, 1), got {self.ema_decay}")
        self._check_adversarial()
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

    def _check_adversarial(self) -> None:
        for name in ("gan_weight", "fft_weight"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be >= 0 (0 = off), got {v}")
        if self.gan_loss not in GAN_LOSSES:
            raise ConfigError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}, got {self.gan_loss!r}")
        if (not isinstance(self.disc_channels, int) or isinstance(self.disc_channels, bool)
                or self.disc_channels < 4):
            raise ConfigError(f"disc_channels must be an integer >= 4, got {self.disc_channels!r}")
        if not (isinstance(self.gan_warmup_steps, int) and self.gan_warmup_steps >= 0):
            raise ConfigError(f"gan_warmup_steps must be an integer >= 0, got {self.gan_warmup_steps!r}")
        if not self.disc_lr > 0:
            raise ConfigError(f"disc_lr must be positive, got {self.disc_lr}")
        if self.gan_weight > 0 and self.hr_patch % 8:
            raise ConfigError(f"the discriminator halves patches three times: lr_patch x scale "
                              f"({self.hr_patch}) must be a multiple of 8 with gan_weight > 0")
        if self.gan_weight > 0 and self.amp == "fp16":
            raise ConfigError("gan_weight > 0 runs with amp off or bf16, not fp16")

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
