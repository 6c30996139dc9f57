"""Reading a photo's damage from CMDSR's condition vector: blur sigma and noise sigma.

CMDSR's ConditionNet turns a support set into a condition vector that steers the BaseNet; a
model trained with the task contrastive loss places the same degradation at the same spot
whatever the photo. A small *damage head* (a 2-layer MLP) maps that vector to two numbers a
user can read:

* ``blur_sigma``: the Gaussian blur sigma in high-resolution pixels, before the x``scale``
  downscale (the degradation model's kernel: 0.6 is nearly sharp, 3.6 very soft);
* ``noise_sigma``: the standard deviation of Gaussian noise in grey levels 0..255 on the
  low-resolution photo itself.

The head is trained on synthetic tasks (photos degraded with ``engine.degrade`` at known blur
and noise) with the model frozen, and is stored inside the model file (``damage_head``); a
model file without it still upscales, it just has no readout. The estimate is only as good as
the condition: a model whose condition does not encode the degradation gives a poor readout
whatever the head.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine.errors import CheckpointError, CmdsrError, ConfigError
from engine.model import CMDSR
from engine.support import DEFAULT_PATCH_SIZE, Box, SupportSet, select_support

log = logging.getLogger(__name__)

HEAD_KEY = "damage_head"
HEAD_FORMAT_VERSION = 1
DEFAULT_HIDDEN = 64
# The ranges the shipped readout is trained on: the blur of the training degradations and
# the noise a photo plausibly carries.
TRAIN_BLUR = (0.2, 4.0)
TRAIN_NOISE = (0.0, 50.0)


class NoDamageReadoutError(CmdsrError):
    """The model file carries no damage head, so it cannot say how damaged a photo is."""


@dataclass(frozen=True)
class DamageEstimate:
    """What the model reads from a support set.

    ``blur_sigma``: Gaussian blur sigma in high-resolution pixels before the downscale (as in
    the degradation model; about 0.2..4). ``noise_sigma``: noise standard deviation in grey
    levels 0..255 on the low-resolution photo. Both are >= 0.
    """

    blur_sigma: float
    noise_sigma: float

    def as_dict(self) -> dict[str, float]:
        """The JSON shape of ``cmdsr inspect --json``: values rounded to 0.01."""
        return {"blur_sigma": round(self.blur_sigma, 2), "noise_sigma": round(self.noise_sigma, 2)}

    def __str__(self) -> str:
        return f"blur sigma {self.blur_sigma:.2f}, noise sigma {self.noise_sigma:.1f}"


class DamageHead(nn.Module):
    """Condition [N, cond] -> (blur sigma, noise sigma) [N, 2], unclamped.

    Inputs and outputs are standardised with statistics fixed at training time (buffers), so
    the MLP works on well-scaled numbers whatever the condition's range.
    """

    in_mean: Tensor
    in_std: Tensor
    out_mean: Tensor
    out_std: Tensor
    out_min: Tensor
    out_max: Tensor

    def __init__(self, cond_channels: int, hidden: int = DEFAULT_HIDDEN) -> None:
        super().__init__()
        if cond_channels < 1 or hidden < 1:
            raise ConfigError(f"damage head sizes must be positive, got {cond_channels}, {hidden}")
        self.cond_channels = cond_channels
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(cond_channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.register_buffer("in_mean", torch.zeros(cond_channels))
        self.register_buffer("in_std", torch.ones(cond_channels))
        self.register_buffer("out_mean", torch.zeros(2))
        self.register_buffer("out_std", torch.ones(2))
        # the range the head was trained on: a condition unlike any seen in training must not
        # produce a blur of 9 or a negative noise
        self.register_buffer("out_min", torch.zeros(2))
        self.register_buffer("out_max", torch.full((2,), 255.0))

    def normalised(self, condition: Tensor) -> Tensor:
        """The MLP's output in standardised units (what training fits)."""
        return self.net((condition - self.in_mean) / self.in_std)

    def forward(self, condition: Tensor) -> Tensor:
        """Sigmas [N, 2], kept within the range seen in training."""
        value = self.normalised(condition) * self.out_std + self.out_mean
        return torch.maximum(torch.minimum(value, self.out_max), self.out_min)


# --------------------------------------------------------------------------- model files


def damage_head_of(model: CMDSR) -> DamageHead | None:
    """The damage head a loaded model carries, or None."""
    head = getattr(model, HEAD_KEY, None)
    return head if isinstance(head, DamageHead) else None


def attach_damage_head(model: CMDSR, head: DamageHead | None) -> None:
    """Give ``model`` a damage head (moved to the model's device), or remove it with None.
    It travels with the model (``.to``, deep copies) and ``save_model`` stores it."""
    if head is None:
        if damage_head_of(model) is not None:
            delattr(model, HEAD_KEY)
        return
    if model.config.conditioning is False:
        raise ConfigError("a damage head reads the condition: this model has conditioning off")
    if head.cond_channels != model.config.cond_channels:
        raise ConfigError(f"the damage head reads {head.cond_channels}-d conditions, the model "
                          f"makes {model.config.cond_channels}-d ones")
    device = next(model.parameters()).device
    model.add_module(HEAD_KEY, head.to(device).eval())


def head_to_dict(head: DamageHead, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plain dict stored under ``damage_head`` in a model file (float32 tensors only)."""
    out: dict[str, Any] = {
        "version": HEAD_FORMAT_VERSION,
        "cond_channels": head.cond_channels,
        "hidden": head.hidden,
        "params": {k: v.detach().float().cpu().clone() for k, v in head.state_dict().items()},
    }
    if info:
        out["info"] = dict(info)
    return out


def head_from_dict(obj: Any, source: str = "model file") -> DamageHead:
    """Rebuild a damage head from its stored dict; ``CheckpointError`` if it is malformed."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: the damage readout is not a dict")
    version = obj.get("version")
    if not isinstance(version, int) or version > HEAD_FORMAT_VERSION:
        raise CheckpointError(f"{source}: damage readout version {version!r} is newer than this "
                              f"program understands ({HEAD_FORMAT_VERSION}); update CMDSR Studio")
    try:
        head = DamageHead(int(obj["cond_channels"]), int(obj["hidden"]))
        params = obj["params"]
        if not isinstance(params, Mapping) or not all(isinstance(v, Tensor) for v in params.values()):
            raise CheckpointError(f"{source}: the damage readout's parameters are not tensors")
        state = {k: v.float() for k, v in params.items()}
        # heads written before the trained range was stored: clamped at 0 only
        state.setdefault("out_min", head.out_min.clone())
        state.setdefault("out_max", head.out_max.clone())
        head.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: damaged damage readout ({detail})") from None
    return head.eval()


# --------------------------------------------------------------------------- estimating


SupportLike = SupportSet | Iterable[Box | Sequence[int]] | None


def resolve_support(
    pixels: np.ndarray, model: CMDSR, support: SupportLike, seed: int = 0
) -> SupportSet:
    """A SupportSet for ``pixels``: as given, from regions (X,Y,W,H boxes) or random."""
    if isinstance(support, SupportSet):
        return support
    regions = [] if support is None else list(support)
    if regions:
        return select_support(pixels, count=model.support_size, size=DEFAULT_PATCH_SIZE,
                              mode="regions", regions=regions, seed=seed)
    return select_support(pixels, count=model.support_size, size=DEFAULT_PATCH_SIZE,
                          mode="random", seed=seed)


def support_tensor(support: SupportSet, model: CMDSR) -> Tensor:
    """[1, S, 3, h, w] on the model's device."""
    if support.count != model.support_size:
        raise ConfigError(f"the model takes {model.support_size} support patches, "
                          f"got {support.count}")
    patches = torch.from_numpy(np.ascontiguousarray(support.patches, dtype=np.float32))
    return patches.permute(0, 3, 1, 2).unsqueeze(0).to(next(model.parameters()).device)


def require_head(model: CMDSR) -> DamageHead:
    """The model's damage head; ``NoDamageReadoutError`` (a domain error) if it has none."""
    if not model.conditioned:
        raise NoDamageReadoutError("this model has conditioning off: it reads no damage from "
                                   "the photo, so it has no damage readout")
    head = damage_head_of(model)
    if head is None:
        raise NoDamageReadoutError(
            "this model has no damage readout (its file carries no damage head); add one with "
            "scripts/train_damage_head.py or use a model that has it"
        )
    return head


def estimates_from_conditions(head: DamageHead, conditions: Tensor) -> list[DamageEstimate]:
    """Readouts of conditions [N, cond], within the head's trained range (never negative)."""
    with torch.inference_mode():
        values = head(conditions.to(head.in_mean.device).float()).clamp_min(0.0).cpu().numpy()
    return [DamageEstimate(float(b), float(n)) for b, n in values]


def _as_pixels(pixels: Any) -> np.ndarray:
    arr = np.asarray(getattr(pixels, "pixels", pixels))
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 1:
        raise ConfigError(f"expected [H, W, 3] pixels, got {tuple(arr.shape)}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def load_default_model() -> CMDSR:
    from engine.checkpoint import load_model
    from engine.resources import default_model_path

    path = default_model_path()
    if not path.exists():
        raise CmdsrError(f"no default model shipped at {path}; pass a model")
    return load_model(path)


def estimate_damage(
    pixels: Any,
    support: SupportLike = None,
    model: CMDSR | str | Path | None = None,
    *,
    seed: int = 0,
) -> DamageEstimate:
    """Read blur and noise sigma from a photo as ``model`` sees it.

    ``pixels``: [H, W, 3] float 0..255 (or an ``Image``). ``support``: None (random patches,
    seeded by ``seed``, as ``cmdsr upscale`` picks them), regions (X,Y,W,H boxes; patches
    inside them) or a ready ``SupportSet``. ``model``: a loaded model, a model file, or None
    for the shipped one. Raises ``NoDamageReadoutError`` when the model has no damage head,
    ``SupportRegionError`` for an unusable region.
    """
    if model is None:
        model = load_default_model()
    elif isinstance(model, str | Path):
        from engine.checkpoint import load_model

        model = load_model(model)
    head = require_head(model)
    arr = _as_pixels(pixels)
    chosen = resolve_support(arr, model, support, seed)
    with torch.inference_mode():
        condition = model.condition(support_tensor(chosen, model))
    return estimates_from_conditions(head, condition)[0]


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class HeadReport:
    """How well a trained head reads damage on held-out tasks (photos it did not see)."""

    train_tasks: int
    val_tasks: int
    blur_mae: float  # over blur 0.6..3.6 at noise <= 15
    noise_mae: float  # over all held-out noise levels
    seconds: float

    def as_dict(self) -> dict[str, float | int]:
        return {"train_tasks": self.train_tasks, "val_tasks": self.val_tasks,
                "blur_mae": round(self.blur_mae, 4), "noise_mae": round(self.noise_mae, 4),
                "seconds": round(self.seconds, 1)}

    def __str__(self) -> str:
        return (f"damage readout on {self.val_tasks} held-out tasks: blur MAE "
                f"{self.blur_mae:.3f} (sigma 0.6-3.6, noise <= 15), noise MAE "
                f"{self.noise_mae:.2f} levels ({self.train_tasks} training tasks, "
                f"{self.seconds:.0f} s)")


def _photo_list(photos: str | Path | Sequence[np.ndarray]) -> list[Any]:
    if isinstance(photos, str | Path):
        from engine.data import scan_images

        paths = scan_images(photos)
        if not paths:
            raise ConfigError(f"{photos}: no training photos found")
        return list(paths)
    items = list(photos)
    if not items:
        raise ConfigError("no training photos given")
    return items


def synthetic_tasks(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    tasks: int,
    *,
    seed: int = 0,
    blur: tuple[float, float] = TRAIN_BLUR,
    noise: tuple[float, float] = TRAIN_NOISE,
    hr_size: int = 256,
    hr_downscale: tuple[float, float] = (0.4, 1.0),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, Tensor, np.ndarray]:
    """Degrade photos at known (blur, noise) and read their conditions with the frozen model.

    Each task: a random ``hr_size`` HR region of a photo (seen downscaled by a factor in
    ``hr_downscale``, as in training), blurred with the training kernel at a sigma drawn from
    ``blur`` (0.1 steps), downscaled x``scale``, with integer noise drawn from ``noise`` (a
    tenth of the tasks clean), and S random support patches of its LR. Photos are decoded one
    at a time. Returns (conditions [N, cond], targets [N, 2], photo index [N]).
    """
    from engine.data import downscaled_region, random_support, read_rgb
    from engine.degrade import DegradationConfig, degrade, sample_degradation

    items = _photo_list(photos)
    cfg = DegradationConfig(blur_sigma=blur, noise_std=noise, clean_prob=0.1)
    device = next(model.parameters()).device
    s = model.scale
    patch = min(DEFAULT_PATCH_SIZE, hr_size // s)
    per_photo = [tasks // len(items) + (1 if i < tasks % len(items) else 0)
                 for i in range(len(items))]
    conds: list[Tensor] = []
    targets: list[tuple[float, float]] = []
    owners: list[int] = []
    done = 0
    batch: list[np.ndarray] = []

    def flush() -> None:
        if batch:
            support = torch.from_numpy(np.stack(batch)).to(device)
            with torch.inference_mode():
                conds.append(model.condition(support).float().cpu())
            batch.clear()

    for index, (item, count) in enumerate(zip(items, per_photo, strict=True)):
        if count == 0:
            continue
        rng = np.random.default_rng([seed, index])
        img = read_rgb(item) if isinstance(item, str | Path) else np.asarray(item)
        if min(img.shape[:2]) < hr_size:
            reps = math.ceil(hr_size / min(img.shape[:2]))
            img = np.pad(img, ((0, img.shape[0] * (reps - 1)), (0, img.shape[1] * (reps - 1)),
                               (0, 0)), mode="symmetric")
        for _ in range(count):
            hr = downscaled_region(img, hr_size, hr_downscale, rng)
            params = sample_degradation(cfg, rng)
            lr = degrade(hr, params, s, rng)
            batch.append(random_support(lr, model.support_size, patch, rng))
            targets.append((params.sigma_x, params.noise_std))
            owners.append(index)
            if len(batch) >= 64:
                flush()
            done += 1
            if progress:
                progress(done, tasks)
        del img
    flush()
    return (torch.cat(conds), torch.tensor(targets, dtype=torch.float32),
            np.asarray(owners, dtype=np.int64))


def fit_head(
    conditions: Tensor,
    targets: Tensor,
    *,
    hidden: int = DEFAULT_HIDDEN,
    epochs: int = 400,
    seed: int = 0,
) -> DamageHead:
    """Fit a DamageHead to (conditions [N, cond], targets [N, 2]) with a smooth L1 loss on
    standardised targets (full-batch Adam: the data are a few thousand rows)."""
    if conditions.shape[0] != targets.shape[0] or conditions.shape[0] < 2:
        raise ConfigError("fit_head needs at least two (condition, target) pairs")
    torch.manual_seed(seed)
    head = DamageHead(int(conditions.shape[1]), hidden)
    with torch.no_grad():
        head.in_mean.copy_(conditions.mean(0))
        # a dimension that hardly varies in training must not blow up on a new photo
        std = conditions.std(0)
        head.in_std.copy_(std.clamp_min(max(1e-6, 0.05 * float(std.mean()))))
        head.out_mean.copy_(targets.mean(0))
        head.out_std.copy_(targets.std(0).clamp_min(1e-6))
        head.out_min.copy_(targets.min(0).values.clamp_min(0.0))
        head.out_max.copy_(targets.max(0).values)
    goal = (targets - head.out_mean) / head.out_std
    opt = torch.optim.AdamW(head.net.parameters(), lr=3e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    head.train()
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.smooth_l1_loss(head.normalised(conditions), goal, beta=0.5)
        loss.backward()
        opt.step()
        sched.step()
    return head.eval()


def readout_errors(head: DamageHead, conditions: Tensor, targets: Tensor) -> tuple[float, float]:
    """(blur MAE over sigma 0.6..3.6 at noise <= 15, noise MAE over all rows) of the clamped
    readout; NaN where no row qualifies."""
    with torch.inference_mode():
        pred = head(conditions).clamp_min(0.0)
    blur_rows = (targets[:, 0] >= 0.6 - 1e-6) & (targets[:, 0] <= 3.6 + 1e-6) & (targets[:, 1] <= 15)
    blur = (pred[blur_rows, 0] - targets[blur_rows, 0]).abs().mean() if blur_rows.any() else None
    noise = (pred[:, 1] - targets[:, 1]).abs().mean()
    return (float(blur) if blur is not None else math.nan), float(noise)


def evaluate_readout(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    *,
    tasks: int = 600,
    seed: int = 1,
) -> tuple[float, float]:
    """The issue's acceptance figures on photos the head never saw: (blur MAE over sigma
    0.6..3.6 at noise <= 15, noise MAE over noise 0..50) of ``model``'s readout, each on its
    own ``tasks`` synthetic tasks (fixed seeds)."""
    head = require_head(model)
    conds, targets, _ = synthetic_tasks(model, photos, tasks, seed=seed, blur=(0.6, 3.6),
                                        noise=(0.0, 15.0))
    blur_mae, _ = readout_errors(head, conds, targets)
    conds, targets, _ = synthetic_tasks(model, photos, tasks, seed=seed + 1, noise=(0.0, 50.0))
    _, noise_mae = readout_errors(head, conds, targets)
    return blur_mae, noise_mae


def train_damage_head(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    *,
    tasks: int = 4000,
    val_share: float = 0.15,
    hidden: int = DEFAULT_HIDDEN,
    epochs: int = 400,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[DamageHead, HeadReport]:
    """Train a damage head for the frozen ``model`` on ``tasks`` synthetic tasks.

    The photos are split (about ``val_share`` of them held out) so the report measures the
    readout on photos the head never saw. Returns (head, report); attach the head with
    ``attach_damage_head`` or save it with ``engine.checkpoint.save_damage_head``.
    """
    if not model.conditioned:
        raise ConfigError("a damage head reads the condition: this model has conditioning off")
    start = time.perf_counter()
    model.eval()
    items = _photo_list(photos)
    n_val = max(1, round(len(items) * val_share)) if len(items) > 1 else 0
    conditions, targets, owners = synthetic_tasks(model, items, tasks, seed=seed,
                                                  progress=progress)
    held = owners >= len(items) - n_val if n_val else np.zeros(len(owners), dtype=bool)
    if held.all() or not held.any():
        held = np.arange(len(owners)) % 7 == 0  # too few photos to split by photo
    train_rows, val_rows = torch.from_numpy(~held), torch.from_numpy(held)
    head = fit_head(conditions[train_rows], targets[train_rows], hidden=hidden, epochs=epochs,
                    seed=seed)
    blur_mae, noise_mae = readout_errors(head, conditions[val_rows], targets[val_rows])
    report = HeadReport(int(train_rows.sum()), int(val_rows.sum()), blur_mae, noise_mae,
                        time.perf_counter() - start)
    log.info("%s", report)
    return head, report
