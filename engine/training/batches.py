"""Training tasks and batches on the CPU: one task = one photo region + one degradation.

A task holds 2*S aligned (LR, HR) patch pairs cut from the same photo and degraded the same
way (S = support size); the first half feeds the BaseNet and its own support set, both halves
feed the task contrastive loss. Task ``t`` of step ``b`` is drawn from a generator seeded
with ``(seed, b, t)``, so the data stream depends on nothing but the seed and the step: a
resumed run sees exactly the batches an uninterrupted one would, whatever the worker count.
``TaskBatches`` yields them per step, ``make_loader`` in worker processes; the photo sources
are ``engine.data``, the same batches made on the GPU ``device_data``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from engine.data import (
    NO_DOWNSCALE,
    UNIFORM,
    CropCacheSource,
    DiskSource,
    HRSource,
    TexturePick,
    build_crop_cache,
    usable_images,
)
from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    degrade,
    gaussian_kernel,
    sample_degradation,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- tasks


def augment(patch: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/transposes of an HxWxC patch (bit 0: horizontal flip, bit 1:
    vertical flip, bit 2: transpose)."""
    if code & 1:
        patch = patch[:, ::-1]
    if code & 2:
        patch = patch[::-1]
    if code & 4:
        patch = patch.transpose(1, 0, 2)
    return np.ascontiguousarray(patch)


@dataclass(frozen=True)
class Task:
    """One task: ``lr`` uint8 [2S, h, w, 3], ``hr`` uint8 [2S, h*s, w*s, 3], its photo index
    and the degradation used."""

    lr: np.ndarray
    hr: np.ndarray
    image: int
    params: DegradationParams


def make_task(
    source: HRSource,
    cfg: DegradationConfig,
    scale: int,
    lr_patch: int,
    patches: int,
    rng: np.random.Generator,
    image: int | None = None,
    params: DegradationParams | None = None,
) -> Task:
    """Draw a photo and a degradation (unless given), cut ``patches`` HR patches of
    ``lr_patch*scale`` pixels with random flips/transposes and degrade each one with the
    task's degradation."""
    if image is None:
        image = int(rng.integers(0, source.num_images))
    if params is None:
        params = sample_degradation(cfg, rng)
    kernel = None if params.isotropic else gaussian_kernel(params)
    hr_size = lr_patch * scale
    hrs = [augment(p, int(rng.integers(0, 8))) for p in source.patches(image, hr_size, patches, rng)]
    lrs = [degrade(p, params, scale, rng, kernel=kernel).astype(np.uint8) for p in hrs]
    return Task(np.stack(lrs), np.stack(hrs), image, params)


def _distinct_degradation(cfg: DegradationConfig, first: DegradationParams,
                          rng: np.random.Generator, tries: int = 20) -> DegradationParams:
    """A second degradation clearly unlike ``first`` (blur sigma at least 30% apart or noise at
    least 8 levels apart), so pushing the two apart never fights pulling equal ones together."""
    other = sample_degradation(cfg, rng)
    for _ in range(tries):
        blur_apart = abs(math.log(other.sigma_x / first.sigma_x)) > math.log(1.3)
        if blur_apart or abs(other.noise_level() - first.noise_level()) >= 8:
            break
        other = sample_degradation(cfg, rng)
    return other


def paired_assignment(cfg: DegradationConfig, num_images: int, seed: int, step: int,
                      group: int) -> tuple[tuple[int, int], tuple[DegradationParams, DegradationParams]]:
    """The photos (A, B) and degradations (d, e) of one group of 4 paired tasks:
    task 4g+0 = A with d, 4g+1 = B with d, 4g+2 = A with e, 4g+3 = B with e."""
    rng = np.random.default_rng([seed, int(step), group, 0x9A1])
    a = int(rng.integers(0, num_images))
    b = int(rng.integers(0, num_images - 1)) if num_images > 1 else a
    if num_images > 1 and b >= a:
        b += 1  # a different photo whenever there is one
    d = sample_degradation(cfg, rng)
    return (a, b), (d, _distinct_degradation(cfg, d, rng))


class TaskBatches(Dataset):
    """Item ``b`` = the batch of training step ``b``: T tasks as uint8 tensors
    ``lr`` [T, 2S, 3, h, w], ``hr`` [T, 2S, 3, h*s, w*s], plus ``sigma``/``noise`` [T] (the
    kernel's first sigma and the noise std) and ``blur`` [T] (the kernel's size as one number,
    the geometric mean of its two sigmas: what the damage readout learns to report).

    With ``paired`` the tasks come in groups of 4 sharing two photos and two degradations
    (see ``paired_assignment``): the task contrastive loss can then pull together the same
    degradation on different photos and push apart one photo under different degradations,
    so the condition learns the damage rather than the picture.

    ``tasks`` (default: all ``tasks_per_batch``) picks the share of each step's tasks this
    process makes in a multi-process run (see ``engine.distributed.shard_range``); task ``t``
    is the same whichever process makes it."""

    def __init__(
        self,
        source: HRSource,
        cfg: DegradationConfig,
        scale: int,
        lr_patch: int,
        support_size: int,
        tasks_per_batch: int,
        seed: int,
        length: int,
        tasks: range | None = None,
        paired: bool = False,
    ) -> None:
        if tasks is not None and (len(tasks) == 0 or tasks.start < 0 or tasks.stop > tasks_per_batch):
            raise ValueError(f"task share {tasks} does not fit {tasks_per_batch} tasks per batch")
        if paired and tasks_per_batch % 4:
            raise ValueError(f"paired tasks come in groups of 4; got {tasks_per_batch} per batch")
        self.paired = paired
        self.source = source
        self.cfg = cfg
        self.scale = scale
        self.lr_patch = lr_patch
        self.patches = 2 * support_size
        self.tasks = tasks_per_batch
        self.task_ids = tasks if tasks is not None else range(tasks_per_batch)
        self.seed = seed
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, step: int) -> dict[str, torch.Tensor]:
        tasks = []
        groups: dict[int, tuple[tuple[int, int], tuple[DegradationParams, DegradationParams]]] = {}
        for t in self.task_ids:
            image = params = None
            if self.paired:
                g = t // 4
                if g not in groups:
                    groups[g] = paired_assignment(self.cfg, self.source.num_images, self.seed, step, g)
                images, degradations = groups[g]
                image, params = images[t % 2], degradations[(t % 4) // 2]
            tasks.append(make_task(self.source, self.cfg, self.scale, self.lr_patch, self.patches,
                                   np.random.default_rng([self.seed, int(step), t]), image, params))
        lr = np.stack([t.lr for t in tasks]).transpose(0, 1, 4, 2, 3)
        hr = np.stack([t.hr for t in tasks]).transpose(0, 1, 4, 2, 3)
        return {
            "lr": torch.from_numpy(np.ascontiguousarray(lr)),
            "hr": torch.from_numpy(np.ascontiguousarray(hr)),
            "sigma": torch.tensor([t.params.sigma_x for t in tasks]),
            "noise": torch.tensor([t.params.noise_level() for t in tasks]),
            "blur": torch.tensor([math.sqrt(t.params.sigma_x * t.params.sigma_y) for t in tasks]),
        }


class _StepRange(torch.utils.data.Sampler[int]):
    def __init__(self, start: int, stop: int) -> None:
        self.start, self.stop = start, stop

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def resolve_workers(num_workers: int) -> int:
    """``-1`` = automatic: one worker per spare core, at least one, at most four."""
    if num_workers >= 0:
        return num_workers
    cores = os.cpu_count() or 1
    return max(1, min(4, cores - 1))


def _ignore_sigint(_worker_id: int) -> None:
    # Ctrl+C in a terminal reaches the whole process group: the main process turns it into
    # a clean pause (checkpoint first), so the loader workers must not die from it.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_loader(dataset: TaskBatches, start_step: int, stop_step: int, num_workers: int,
                pin_memory: bool = False) -> DataLoader:
    """Batches for steps ``start_step..stop_step-1`` in order (each item is a whole batch)."""
    workers = resolve_workers(num_workers)
    return DataLoader(
        dataset,
        batch_size=None,
        sampler=_StepRange(start_step, stop_step),
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=2 if workers else None,
        persistent_workers=False,
        worker_init_fn=_ignore_sigint if workers else None,
    )


def open_training_source(
    data_dir: str | Path,
    hr_patch: int,
    cache_dir: str | Path | None,
    crops_per_image: int,
    crop_size: int,
    seed: int,
    hr_downscale: tuple[float, float] = NO_DOWNSCALE,
    pick: TexturePick = UNIFORM,
) -> HRSource:
    """The HR photos under ``data_dir`` as a patch source: a crop cache when
    ``crops_per_image`` > 0 (crops of ``max(crop_size, hr_patch)``), otherwise the files.
    ``hr_downscale`` (lo, hi): HR crops/patches come from the photos downscaled by a factor
    drawn in that range (1, 1 = full resolution); both sources check it."""
    use_cache = crops_per_image > 0 and cache_dir is not None
    crop = max(crop_size, hr_patch) if use_cache else hr_patch
    paths = [p for p, _ in usable_images(data_dir, crop, decode=not use_cache)]
    if not use_cache:
        log.info("%d usable training photos in %s (decoded on demand)", len(paths), data_dir)
        return DiskSource(paths, hr_downscale, pick)
    assert cache_dir is not None
    cache, kept = build_crop_cache(paths, crop, crops_per_image, cache_dir, seed, hr_downscale, pick)
    log.info("%d usable training photos in %s", len(kept), data_dir)
    return CropCacheSource(cache, crops_per_image, pick)
