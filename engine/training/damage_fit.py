"""Fitting the damage head and the condition map to a frozen, trained model.

Both are fitted on synthetic tasks (photos degraded with ``engine.degrade`` at known blur,
noise and JPEG quality, their conditions read by the frozen model): the damage head maps a
condition to (blur sigma, noise sigma, JPEG quality) (``train_damage_head``,
scripts/train_damage_head.py), the condition map the other way round, for the damage knobs
(``train_condition_map``, scripts/train_condition_map.py). A task without JPEG has quality
``NO_JPEG`` (100) as its target.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine.checkpoint import read_part, save_part
from engine.condition_map import DEFAULT_HIDDEN as MAP_HIDDEN
from engine.condition_map import FIT_BLUR, FIT_NOISE, ConditionMap
from engine.damage_head import (
    BLUR_NOISE,
    DEFAULT_HIDDEN,
    NO_JPEG,
    TRAIN_BLUR,
    TRAIN_JPEG,
    TRAIN_JPEG_SHARE,
    TRAIN_NOISE,
    WITH_JPEG,
    DamageHead,
    damage_head_of,
    joined_heads,
    spread,
)
from engine.errors import ConfigError
from engine.inference.damage import require_head
from engine.inference.support import DEFAULT_PATCH_SIZE
from engine.model import CMDSR
from engine.model_parts import CONDITION_MAP, DAMAGE_HEAD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadReport:
    """How well a trained head reads damage on held-out tasks (photos it did not see)."""

    train_tasks: int
    val_tasks: int
    blur_mae: float  # over blur 0.6..3.6 at noise <= 15
    noise_mae: float  # over all held-out noise levels
    seconds: float
    jpeg_mae: float | None = None  # JPEG quality over all held-out tasks (none = 100)

    def as_dict(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            "train_tasks": self.train_tasks, "val_tasks": self.val_tasks,
            "blur_mae": round(self.blur_mae, 4), "noise_mae": round(self.noise_mae, 4),
            "seconds": round(self.seconds, 1)}
        if self.jpeg_mae is not None:
            out["jpeg_mae"] = round(self.jpeg_mae, 3)
        return out

    def __str__(self) -> str:
        jpeg = "" if self.jpeg_mae is None else f", JPEG quality MAE {self.jpeg_mae:.1f}"
        return (f"damage readout on {self.val_tasks} held-out tasks: blur MAE "
                f"{self.blur_mae:.3f} (sigma 0.6-3.6, noise <= 15), noise MAE "
                f"{self.noise_mae:.2f} levels{jpeg} ({self.train_tasks} training tasks, "
                f"{self.seconds:.0f} s)")


def photo_list(photos: str | Path | Sequence[np.ndarray]) -> list[Any]:
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
    jpeg_share: float = 0.0,
    jpeg: tuple[int, int] = TRAIN_JPEG,
    hr_size: int = 256,
    hr_downscale: tuple[float, float] = (0.4, 1.0),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, Tensor, np.ndarray]:
    """Degrade photos at known (blur, noise, JPEG) and read their conditions with the frozen
    model.

    Each task: a random ``hr_size`` HR region of a photo (seen downscaled by a factor in
    ``hr_downscale``, as in training), blurred with the training kernel at a sigma drawn from
    ``blur`` (0.1 steps), downscaled x``scale``, with integer noise drawn from ``noise`` (a
    tenth of the tasks clean), JPEG-compressed at a quality drawn from ``jpeg`` in
    ``jpeg_share`` of the tasks, and S random support patches of its LR. Photos are decoded
    one at a time. Returns (conditions [N, cond], targets [N, 3]: blur, noise and JPEG quality
    with ``NO_JPEG`` for none, photo index [N]).
    """
    from engine.data import downscaled_region, random_support, read_rgb
    from engine.degrade import DegradationConfig, degrade, sample_degradation

    items = photo_list(photos)
    cfg = DegradationConfig(blur_sigma=blur, noise_std=noise, clean_prob=0.1,
                            jpeg_prob=jpeg_share, jpeg_quality=jpeg)
    device = next(model.parameters()).device
    s = model.scale
    patch = min(DEFAULT_PATCH_SIZE, hr_size // s)
    per_photo = [tasks // len(items) + (1 if i < tasks % len(items) else 0)
                 for i in range(len(items))]
    conds: list[Tensor] = []
    targets: list[tuple[float, float, float]] = []
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
            quality = NO_JPEG if params.jpeg_quality is None else float(params.jpeg_quality)
            targets.append((params.sigma_x, params.noise_std, quality))
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


def logged_progress(log: logging.Logger, every_s: float = 15.0) -> Callable[[int, int], None]:
    """A ``progress`` callback for ``synthetic_tasks`` that logs "synthetic tasks: N / M"
    at most every ``every_s`` seconds and at the end (for the command-line scripts)."""
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > every_s or done == total:
            last[0] = now
            log.info("synthetic tasks: %d / %d", done, total)

    return progress


def split_by_photo(owners: np.ndarray, photos: int, val_share: float) -> tuple[Tensor, Tensor]:
    """(fit rows, held-out rows) of synthetic tasks: about ``val_share`` of the photos (the
    last ones) held out, so a report measures photos the fit never saw; with too few photos
    to split, every 7th task instead."""
    n_val = max(1, round(photos * val_share)) if photos > 1 else 0
    held = owners >= photos - n_val if n_val else np.zeros(len(owners), dtype=bool)
    if held.all() or not held.any():
        held = np.arange(len(owners)) % 7 == 0
    return torch.from_numpy(~held), torch.from_numpy(held)


def fit_head(
    conditions: Tensor,
    targets: Tensor,
    *,
    hidden: int = DEFAULT_HIDDEN,
    epochs: int = 400,
    seed: int = 0,
) -> DamageHead:
    """Fit a DamageHead to (conditions [N, cond], targets [N, 2 or 3]: blur, noise and maybe
    the JPEG quality) with a smooth L1 loss on standardised targets (full-batch Adam: the data
    are a few thousand rows)."""
    if conditions.shape[0] != targets.shape[0] or conditions.shape[0] < 2:
        raise ConfigError("fit_head needs at least two (condition, target) pairs")
    torch.manual_seed(seed)
    head = DamageHead(int(conditions.shape[1]), hidden, int(targets.shape[1]))
    with torch.no_grad():
        head.in_mean.copy_(conditions.mean(0))
        head.in_std.copy_(spread(conditions))
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


def jpeg_errors(head: DamageHead, conditions: Tensor, targets: Tensor) -> tuple[float, float]:
    """(JPEG quality MAE over all rows, over the rows with JPEG) of a head that reads JPEG,
    targets [N, 3] with ``NO_JPEG`` for none; NaN where no row qualifies."""
    if not head.reads_jpeg:
        raise ConfigError("this damage readout does not read JPEG")
    with torch.inference_mode():
        pred = head(conditions)[:, 2].clamp(1.0, NO_JPEG)
    err = (pred - targets[:, 2]).abs()
    compressed = targets[:, 2] < NO_JPEG
    return (float(err.mean()) if len(err) else math.nan,
            float(err[compressed].mean()) if compressed.any() else math.nan)


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


def evaluate_jpeg_readout(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    *,
    tasks: int = 600,
    seed: int = 3,
    noise: tuple[float, float] = TRAIN_NOISE,
    jpeg_share: float = TRAIN_JPEG_SHARE,
) -> tuple[float, float]:
    """(JPEG quality MAE over all tasks, over the tasks with JPEG) of ``model``'s readout on
    ``tasks`` synthetic tasks (blur 0.6..3.6, noise in ``noise``, JPEG 30..95 in
    ``jpeg_share`` of them, none in the rest; fixed seeds)."""
    head = require_head(model)
    conds, targets, _ = synthetic_tasks(model, photos, tasks, seed=seed, blur=(0.6, 3.6),
                                        noise=noise, jpeg_share=jpeg_share)
    return jpeg_errors(head, conds, targets)


def train_damage_head(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    *,
    tasks: int = 4000,
    val_share: float = 0.15,
    hidden: int = DEFAULT_HIDDEN,
    epochs: int = 400,
    seed: int = 0,
    jpeg_share: float = TRAIN_JPEG_SHARE,
    keep_blur_noise: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[DamageHead, HeadReport]:
    """Train a damage head for the frozen ``model`` on ``tasks`` synthetic tasks.

    ``jpeg_share`` of the tasks are JPEG-compressed (quality 30..95) and the head reads the
    JPEG quality too; with 0 it reads blur and noise only, as format 1 heads did. The photos
    are split (about ``val_share`` of them held out) so the report measures the readout on
    photos the head never saw. With ``keep_blur_noise`` a model whose readout reads blur and
    noise only (one trained together with the ConditionNet) keeps those readings exactly and
    gains the JPEG reading beside them (``joined_heads``). Returns (head, report); attach the
    head with ``attach_damage_head`` or save it with ``save_damage_head``.
    """
    if not model.conditioned:
        raise ConfigError("a damage head reads the condition: this model has conditioning off")
    start = time.perf_counter()
    model.eval()
    items = photo_list(photos)
    conditions, targets, owners = synthetic_tasks(model, items, tasks, seed=seed,
                                                  jpeg_share=jpeg_share, progress=progress)
    if jpeg_share <= 0:
        targets = targets[:, :BLUR_NOISE]
    train_rows, val_rows = split_by_photo(owners, len(items), val_share)
    head = fit_head(conditions[train_rows], targets[train_rows], hidden=hidden, epochs=epochs,
                    seed=seed)
    old = damage_head_of(model)
    if keep_blur_noise and head.reads_jpeg and old is not None and not old.reads_jpeg:
        fresh = readout_errors(head, conditions[val_rows], targets[val_rows])
        kept = readout_errors(old, conditions[val_rows], targets[val_rows])
        log.info("held-out blur / noise MAE: the model's own readout %.3f / %.2f, a fresh fit "
                 "%.3f / %.2f; keeping the model's own", *kept, *fresh)
        head = joined_heads(old, head)
    blur_mae, noise_mae = readout_errors(head, conditions[val_rows], targets[val_rows])
    jpeg_mae = (jpeg_errors(head, conditions[val_rows], targets[val_rows])[0]
                if head.outputs == WITH_JPEG else None)
    report = HeadReport(int(train_rows.sum()), int(val_rows.sum()), blur_mae, noise_mae,
                        time.perf_counter() - start, jpeg_mae)
    log.info("%s", report)
    return head, report


# --------------------------------------------------------------------------- condition map


def fit_condition_map(conditions: Tensor, damage: Tensor, *, hidden: int = MAP_HIDDEN,
                      epochs: int = 1500, seed: int = 0) -> ConditionMap:
    """Fit a map from ``damage`` [N, 2 or 3] (blur, noise and maybe the JPEG quality) to
    ``conditions`` [N, cond] (full-batch Adam on the standardised MSE: the rows are a few
    thousand)."""
    if conditions.shape[0] != damage.shape[0] or conditions.shape[0] < 2:
        raise ConfigError("fit_condition_map needs at least two (damage, condition) pairs")
    torch.manual_seed(seed)
    cmap = ConditionMap(int(conditions.shape[1]), hidden, inputs=int(damage.shape[1]))
    with torch.no_grad():
        cmap.in_mean.copy_(damage.mean(0))
        cmap.in_std.copy_(damage.std(0).clamp_min(1e-3))
        cmap.in_min.copy_(damage.min(0).values)
        cmap.in_max.copy_(damage.max(0).values)
        cmap.out_mean.copy_(conditions.mean(0))
        cmap.out_std.copy_(spread(conditions))
    goal = (conditions - cmap.out_mean) / cmap.out_std
    opt = torch.optim.Adam(cmap.net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    cmap.train()
    for _ in range(epochs):
        opt.zero_grad()
        loss = nn.functional.mse_loss(cmap.normalised(damage), goal)
        loss.backward()
        opt.step()
        sched.step()
    return cmap.eval()


@dataclass(frozen=True)
class MapReport:
    """How well the map predicts conditions on held-out photos: the mean distance between its
    condition and the support-read one, relative to the spread of conditions (0: perfect, 1:
    no better than always answering the mean condition)."""

    train_tasks: int
    val_tasks: int
    relative_error: float
    seconds: float

    def __str__(self) -> str:
        return (f"condition map: {self.train_tasks} tasks to fit, {self.val_tasks} held out, "
                f"relative error {self.relative_error:.2f} ({self.seconds:.0f} s)")


def relative_error(cmap: ConditionMap, conditions: Tensor, damage: Tensor) -> float:
    with torch.no_grad():
        pred = cmap(damage)
    err = (pred - conditions).norm(dim=1).mean()
    spread = (conditions - conditions.mean(0)).norm(dim=1).mean()
    return float(err / spread.clamp_min(1e-12))


def train_condition_map(
    model: CMDSR,
    photos: str | Path | Sequence[np.ndarray],
    *,
    tasks: int = 4000,
    blur: tuple[float, float] = FIT_BLUR,
    noise: tuple[float, float] = FIT_NOISE,
    jpeg_share: float = TRAIN_JPEG_SHARE,
    val_share: float = 0.15,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[ConditionMap, MapReport]:
    """Fit ``model``'s condition map on ``tasks`` synthetic tasks (``synthetic_tasks``:
    photos degraded at known blur, noise and JPEG, the frozen model's conditions), holding out
    about ``val_share`` of the photos for the report. With ``jpeg_share`` 0 the map has no
    JPEG input (a format 1 map)."""
    if not model.conditioned:
        raise ConfigError("a condition map makes conditions: this model has conditioning off")
    start = time.perf_counter()
    model.eval()
    items = photo_list(photos)
    conditions, targets, owners = synthetic_tasks(model, items, tasks, seed=seed, blur=blur,
                                                  noise=noise, jpeg_share=jpeg_share,
                                                  progress=progress)
    if jpeg_share <= 0:
        targets = targets[:, :BLUR_NOISE]
    fit_rows, val_rows = split_by_photo(owners, len(items), val_share)
    cmap = fit_condition_map(conditions[fit_rows], targets[fit_rows], seed=seed)
    # the range offered is what the tasks asked for, not the extremes one draw happened to hit
    low, high = [blur[0], noise[0]], [blur[1], noise[1]]
    if cmap.has_jpeg:
        low.append(float(TRAIN_JPEG[0]))
        high.append(NO_JPEG)
    with torch.no_grad():
        cmap.in_min.copy_(torch.tensor(low))
        cmap.in_max.copy_(torch.tensor(high))
    report = MapReport(int(fit_rows.sum()), int(val_rows.sum()),
                       relative_error(cmap, conditions[val_rows], targets[val_rows]),
                       time.perf_counter() - start)
    log.info("%s", report)
    return cmap, report


# --------------------------------------------------------------------------- model files


def read_damage_head(path: str | Path) -> DamageHead | None:
    """The damage readout a model file carries, or None (older files, the authors' file)."""
    head = read_part(path, DAMAGE_HEAD)
    return head if isinstance(head, DamageHead) else None


def read_condition_map(path: str | Path) -> ConditionMap | None:
    """The condition map (damage knobs) a model file carries, or None."""
    cmap = read_part(path, CONDITION_MAP)
    return cmap if isinstance(cmap, ConditionMap) else None


def save_damage_head(source: str | Path, head: DamageHead, out: str | Path,
                     info: Mapping[str, Any] | None = None) -> Path:
    """Write ``source``'s model file to ``out`` with ``head`` as its damage readout, keeping
    everything else it holds; ``info`` (e.g. the readout's measured errors) is stored with it."""
    return save_part(source, DAMAGE_HEAD, head, out, info)


def save_condition_map(source: str | Path, cmap: ConditionMap, out: str | Path,
                       info: Mapping[str, Any] | None = None) -> Path:
    """Write ``source``'s model file to ``out`` with ``cmap`` as its condition map (damage
    knobs), keeping everything else it holds."""
    return save_part(source, CONDITION_MAP, cmap, out, info)
