"""Training batches made on the training device: photos held once, patches cut and degraded
with torch ops, no loader processes and no host-to-device copies of patches.

The photos (and downscaled copies of each, for ``TrainConfig.hr_downscale``) are decoded
once and held as one flat uint8 tensor on the device. Each step draws, per patch, a photo
copy, a position (optionally preferring textured areas), one of the 8 flips/transposes, then
blurs, bicubic-downscales, adds noise and quantises exactly as ``engine.degrade.degrade``
does. Blur (reflect-101, as ``cv2.GaussianBlur``) followed by OpenCV's ``INTER_CUBIC``
downscale is linear, so along each axis it is one matrix (blur, then a 4-tap filter with
stride s, borders folded in): a patch's LR is ``Mv^T X Mh``, two batched matmuls. An
anisotropic kernel is a short sum of such separable terms (its SVD).

The small per-task draws (photo, degradation) come from ``numpy`` generators seeded with
``(seed, step)``, the per-patch draws and the noise from a ``torch.Generator`` on the
device reseeded from ``(seed, step)``: a batch depends on nothing but the seed and the step,
so a resumed run continues the same stream and no host synchronisation is needed. JPEG and
the other damage of real photos (a camera's mosaic noise, double saves, resizes, a second
round: when the degradation config asks for them) are made by the torch ops of
``engine.training.device_damage`` on a GPU (``device_damage="auto"``), so a batch never waits
for the host; on a CPU (or with ``device_damage="host"``) those tasks' LR patches go through
``engine.degrade.finish_lr`` with OpenCV, drawing from a numpy generator seeded with
``(seed, step, task)``. The two agree in their statistics, not in their random draws.

``DeviceTaskSampler.batch(step)`` returns the dict ``engine.training.batches.TaskBatches`` yields.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
from torch import Tensor

from engine.data import NO_DOWNSCALE, check_hr_downscale, read_rgb, usable_images
from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    anisotropic_gaussian_kernel,
    finish_lr,
    sample_degradation,
)
from engine.errors import ConfigError, ImageReadError
from engine.training.batches import paired_assignment
from engine.training.device_damage import exact_matmuls, finish_batch, task_index

if TYPE_CHECKING:
    from engine.training.config import TrainConfig

log = logging.getLogger(__name__)

# Texture of a candidate position is read from 4x4 block sums of the gradient map.
_TEXTURE_BLOCK = 4
# Singular values below this share of the largest are dropped from an anisotropic kernel.
_RANK_TOL = 1e-7
# Where JPEG and the other damage of real photos are made (``DeviceTaskSampler``).
DAMAGE_PATHS = ("auto", "device", "host")


# ----------------------------------------------------------------------------- photos


def downscale_levels(hr_downscale: tuple[float, float], count: int = 4) -> list[float]:
    """The fixed downscale factors a photo is held at: ``count`` evenly spaced in the range
    (one, 1.0, without ``hr_downscale``)."""
    lo, hi = check_hr_downscale(hr_downscale)
    if (lo, hi) == NO_DOWNSCALE:
        return [1.0]
    return sorted({round(float(f), 6) for f in np.linspace(lo, hi, count)})


def _texture_integral(img: np.ndarray) -> np.ndarray:
    """Integral image (float64 [gh+1, gw+1]) of the 4x4 block sums of |dy| + |dx| of the
    luminance: the texture of a patch is four lookups."""
    y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    e = np.zeros_like(y)
    e[:-1] += np.abs(np.diff(y, axis=0))
    e[:, :-1] += np.abs(np.diff(y, axis=1))
    b = _TEXTURE_BLOCK
    h, w = e.shape
    gh, gw = -(-h // b), -(-w // b)
    pad = np.zeros((gh * b, gw * b), np.float64)
    pad[:h, :w] = e
    blocks = pad.reshape(gh, b, gw, b).sum(axis=(1, 3))
    out = np.zeros((gh + 1, gw + 1), np.float64)
    out[1:, 1:] = blocks.cumsum(0).cumsum(1)
    return out


class DevicePhotos:
    """Photos (each at one or more downscale levels) as one flat uint8 ``[pixels, 3]`` tensor
    on ``device``, with per-copy offsets and sizes and texture integral images."""

    def __init__(self, images: Sequence[np.ndarray], device: torch.device | str = "cpu",
                 min_size: int = 1, hr_downscale: tuple[float, float] = NO_DOWNSCALE,
                 levels: int = 4, names: Sequence[str] | None = None) -> None:
        """``images``: HxWx3 uint8 RGB photos; copies smaller than ``min_size`` on a side are
        left out (a photo keeps at least its full-resolution copy)."""
        self.device = torch.device(device)
        factors = downscale_levels(hr_downscale, levels)
        pixels: list[np.ndarray] = []
        integrals: list[np.ndarray] = []
        copies: list[list[int]] = []
        offsets: list[int] = []
        heights: list[int] = []
        widths: list[int] = []
        toffsets: list[int] = []
        twidths: list[int] = []
        self.names = list(names) if names is not None else [f"photo {i}" for i in range(len(images))]

        def add(copy: np.ndarray) -> int:
            ch, cw = copy.shape[:2]
            integral = _texture_integral(copy)
            offsets.append(sum(len(px) for px in pixels))
            toffsets.append(sum(len(t) for t in integrals))
            heights.append(ch)
            widths.append(cw)
            twidths.append(integral.shape[1])
            pixels.append(np.ascontiguousarray(copy).reshape(-1, 3))
            integrals.append(integral.reshape(-1))
            return len(offsets) - 1

        def resized(img: np.ndarray, f: float, floor: int) -> np.ndarray:
            h, w = img.shape[:2]
            size = (max(floor, round(w * f)), max(floor, round(h * f)))
            return cv2.resize(img, size, interpolation=cv2.INTER_AREA)

        for i, img in enumerate(images):
            if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
                raise ValueError(f"{self.names[i]}: expected HxWx3 uint8, got {img.shape} {img.dtype}")
            h, w = img.shape[:2]
            if min(h, w) < min_size:
                raise ConfigError(f"{self.names[i]}: {w}x{h} is smaller than {min_size} pixels")
            mine = []
            for f in factors:
                if f >= 1.0:
                    mine.append(add(img))
                elif min(round(w * f), round(h * f)) >= min_size:
                    mine.append(add(resized(img, f, 1)))
            if not mine:  # every copy too small: the strongest downscale that fits, as
                # engine.data.downscaled_region clips its region to the photo
                f = min(1.0, max(min_size / min(h, w), factors[0]))
                mine.append(add(img if f >= 1.0 else resized(img, f, min_size)))
            copies.append(mine)
        if not copies:
            raise ConfigError("no training photos")
        dev = self.device
        self.num_images = len(copies)
        self.pixels = torch.from_numpy(np.concatenate(pixels)).to(dev)
        self.texture = torch.from_numpy(np.concatenate(integrals)).to(dev)
        self.offset = torch.tensor(offsets, dtype=torch.int64, device=dev)
        self.height = torch.tensor(heights, dtype=torch.int64, device=dev)
        self.width = torch.tensor(widths, dtype=torch.int64, device=dev)
        self.tex_offset = torch.tensor(toffsets, dtype=torch.int64, device=dev)
        self.tex_width = torch.tensor(twidths, dtype=torch.int64, device=dev)
        most = max(len(c) for c in copies)
        table = np.array([c + [c[-1]] * (most - len(c)) for c in copies], np.int64)
        self.copy_table = torch.from_numpy(table).to(dev)  # [photos, levels] -> copy id
        self.copy_count = torch.tensor([len(c) for c in copies], dtype=torch.int64, device=dev)

    @classmethod
    def from_folder(cls, folder: str | Path, device: torch.device | str, min_size: int,
                    hr_downscale: tuple[float, float] = NO_DOWNSCALE,
                    levels: int = 4) -> DevicePhotos:
        """Decode every usable photo under ``folder`` once (see ``engine.data.usable_images``)."""
        images, names = [], []
        for path, _ in usable_images(folder, min_size):
            try:
                images.append(read_rgb(path))
            except ImageReadError as exc:
                log.warning("skipping %s", exc)
                continue
            names.append(path.name)
        if not images:
            raise ConfigError(f"{folder}: no training photo could be decoded")
        photos = cls(images, device, min_size, hr_downscale, levels, names)
        log.info("%d photos held on %s (%d copies, %.0f MB)", photos.num_images, photos.device,
                 int(photos.offset.numel()), photos.pixels.numel() / 2**20)
        return photos

    @property
    def nbytes(self) -> int:
        return self.pixels.numel() + self.texture.numel() * 8


# ----------------------------------------------------------------------------- degradation


def _reflect101(i: np.ndarray, n: int) -> np.ndarray:
    """Indices reflected into 0..n-1 without repeating the edge (OpenCV's BORDER_REFLECT_101)."""
    if n == 1:
        return np.zeros_like(i)
    period = 2 * (n - 1)
    i = np.mod(i, period)
    return np.where(i < n, i, period - i)


def resize_matrix(size: int, scale: int) -> np.ndarray:
    """OpenCV's ``INTER_CUBIC`` downscale of a length-``size`` line to ``size // scale`` as a
    matrix D (float64 [size//scale, size]), measured on unit impulses: exact, borders too."""
    eye = np.eye(size, dtype=np.float32)
    return cv2.resize(eye, (size // scale, size), interpolation=cv2.INTER_CUBIC).T.astype(np.float64)


class FusedDownscale:
    """Blur with a separable 1-D kernel (reflect-101) then ``INTER_CUBIC`` downscale by
    ``scale``, as one matrix per axis: ``lr = Mv^T @ x @ Mh`` for a square ``size`` patch."""

    def __init__(self, size: int, scale: int, kernel_size: int) -> None:
        if size % scale:
            raise ValueError(f"patch size {size} is not a multiple of the scale {scale}")
        self.size, self.scale, self.kernel_size = size, scale, kernel_size
        r = kernel_size // 2
        src = _reflect101(np.arange(size)[:, None] + np.arange(kernel_size)[None, :] - r, size)
        onehot = np.zeros((size, kernel_size, size), np.float64)  # [blurred x, tap m, source i]
        onehot[np.arange(size)[:, None], np.arange(kernel_size)[None, :], src] = 1.0
        # [lr y, tap m, source i]: the downscale already applied, only the taps remain
        self._dr = np.einsum("yx,xmi->ymi", resize_matrix(size, scale), onehot)
        self._cache: dict[tuple[int, float, float, float], tuple[np.ndarray, np.ndarray]] = {}

    def matrix(self, kernel_1d: np.ndarray) -> np.ndarray:
        """``M^T`` (float64 [size//scale, size]) of one axis for a 1-D blur kernel."""
        return np.einsum("m,ymi->yi", np.asarray(kernel_1d, np.float64).reshape(-1), self._dr)

    def task_matrices(self, params: DegradationParams) -> tuple[np.ndarray, np.ndarray]:
        """(vertical, horizontal) ``M^T`` terms of a degradation, float32 [R, size//s, size]
        each: R = 1 for an isotropic blur, the kernel's numerical rank otherwise (kept for
        reuse: training sigmas come from a grid)."""
        key = (params.kernel_size, params.sigma_x, params.sigma_y, params.angle)
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            found = self._cache[key] = self._task_matrices(params)
        return found

    def _task_matrices(self, params: DegradationParams) -> tuple[np.ndarray, np.ndarray]:
        if params.isotropic:
            k = cv2.getGaussianKernel(params.kernel_size, params.sigma_x, cv2.CV_64F)
            k1 = (k / k.sum()).astype(np.float32)  # as engine.degrade's separable blur
            m = self.matrix(k1)[None]
            return m.astype(np.float32), m.astype(np.float32)
        k2 = anisotropic_gaussian_kernel(params.kernel_size, params.sigma_x, params.sigma_y,
                                         params.angle).astype(np.float64)
        u, s, vt = np.linalg.svd(k2)
        rank = max(1, int((s > s[0] * _RANK_TOL).sum()))
        mv = np.stack([self.matrix(u[:, r] * s[r]) for r in range(rank)])
        mh = np.stack([self.matrix(vt[r]) for r in range(rank)])
        return mv.astype(np.float32), mh.astype(np.float32)


def apply_fused(x: Tensor, mv: Tensor, mh: Tensor) -> Tensor:
    """``x`` [T, N, C, P, P] float, ``mv``/``mh`` [T, R, P/s, P] -> [T, N, C, P/s, P/s]:
    sum over r of ``mv_r @ x @ mh_r^T`` per task (float32, unquantised)."""
    t, n, c, p, _ = x.shape
    xf = x.reshape(t, 1, n * c, p, p)
    rows = torch.matmul(xf, mh.transpose(-1, -2).unsqueeze(2))  # [T, R, NC, P, P/s]
    out = torch.matmul(mv.unsqueeze(2), rows).sum(dim=1)  # [T, NC, P/s, P/s]
    return out.reshape(t, n, c, out.shape[-2], out.shape[-1])


# ----------------------------------------------------------------------------- sampler


def _seed_for(*words: int) -> int:
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1, np.uint64)[0] >> 1)


class DeviceTaskSampler:
    """``batch(step)``: the T tasks of a training step made on the photos' device, in the
    format of ``engine.training.batches.TaskBatches`` (uint8 ``lr`` [T, 2S, 3, h, w], ``hr``
    [T, 2S, 3, h*s, w*s], ``sigma``/``noise``/``blur`` [T] as
    ``engine.training.batches.TaskBatches`` gives them, all on the device).

    ``paired``: groups of 4 tasks (photos A, B x degradations d, e) as ``TaskBatches`` makes
    them; ``texture_candidates`` > 1: each patch position is the texture-weighted pick among
    that many random ones (weight = texture + ``texture_floor`` x the candidates' mean).
    ``device_damage``: where JPEG and the real-photo damage are made: "device" (torch,
    ``engine.training.device_damage``), "host" (OpenCV) or "auto" (the device unless it is
    the CPU)."""

    def __init__(
        self,
        photos: DevicePhotos,
        degradation: DegradationConfig,
        scale: int,
        lr_patch: int,
        support_size: int,
        tasks_per_batch: int,
        seed: int = 0,
        paired: bool = False,
        texture_candidates: int = 1,
        texture_floor: float = 0.2,
        device_damage: str = "auto",
    ) -> None:
        if device_damage not in DAMAGE_PATHS:
            raise ConfigError(f"device_damage must be one of {', '.join(DAMAGE_PATHS)}, got {device_damage!r}")
        if paired and tasks_per_batch % 4:
            raise ConfigError(f"paired tasks come in groups of 4; got {tasks_per_batch} per batch")
        if texture_candidates < 1:
            raise ConfigError(f"texture_candidates must be >= 1, got {texture_candidates}")
        self.photos = photos
        self.device = photos.device
        self.cfg = degradation
        self.scale = scale
        self.lr_patch = lr_patch
        self.hr_patch = lr_patch * scale
        self.patches = 2 * support_size
        self.tasks = tasks_per_batch
        self.seed = seed
        self.paired = paired
        self.candidates = texture_candidates
        self.floor = texture_floor
        # JPEG and camera damage with torch ops where the device is not the host's CPU
        self.damage_on_device = device_damage == "device" or (
            device_damage == "auto" and self.device.type != "cpu")
        small = int(torch.minimum(photos.height, photos.width).min())
        if small < self.hr_patch:
            raise ConfigError(f"a photo copy of {small} pixels is smaller than the HR patch ({self.hr_patch})")
        self.fused = FusedDownscale(self.hr_patch, scale, degradation.kernel_size)
        self.gen = torch.Generator(device=self.device)
        self._ar = torch.arange(self.hr_patch, device=self.device)

    @classmethod
    def from_config(cls, photos: DevicePhotos, cfg: TrainConfig) -> DeviceTaskSampler:
        """A sampler for a ``TrainConfig`` (pairing and texture picking as it asks)."""
        return cls(photos, cfg.degradation, cfg.model.scale, cfg.lr_patch, cfg.model.support_size,
                   cfg.tasks_per_batch, cfg.seed, paired=cfg.task_pairing,
                   texture_candidates=cfg.texture_candidates, texture_floor=cfg.texture_floor)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs: the stream is a function of (seed, step) alone."""
        return {"kind": "device-tasks", "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "device-tasks":
            raise ConfigError("the checkpoint's data stream is not a device task stream")
        self.seed = int(state["seed"])

    # -- per-task draws (host, cheap)

    def task_plan(self, step: int) -> tuple[list[int], list[DegradationParams]]:
        """Photo index and degradation of each task of ``step``."""
        images: list[int] = []
        params: list[DegradationParams] = []
        for t in range(self.tasks):
            if self.paired:
                if t % 4 == 0:
                    group = paired_assignment(self.cfg, self.photos.num_images, self.seed, step, t // 4)
                images.append(group[0][t % 2])
                params.append(group[1][(t % 4) // 2])
            else:
                rng = np.random.default_rng([self.seed, int(step), t, 0xDE71])
                images.append(int(rng.integers(0, self.photos.num_images)))
                params.append(sample_degradation(self.cfg, rng))
        return images, params

    # -- per-patch draws (device)

    def _positions(self, copy: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """Top-left corners [n] of patches in the given copies, texture-weighted if asked."""
        g, k, p = self.gen, self.candidates, self.hr_patch
        ph = self.photos
        h = ph.height[copy].unsqueeze(1)
        w = ph.width[copy].unsqueeze(1)
        ys = (torch.rand(n, k, generator=g, device=self.device) * (h - p + 1)).long().clamp_max(h - p)
        xs = (torch.rand(n, k, generator=g, device=self.device) * (w - p + 1)).long().clamp_max(w - p)
        if k == 1:
            return ys[:, 0], xs[:, 0]
        b, nb = _TEXTURE_BLOCK, p // _TEXTURE_BLOCK
        by, bx = ys // b, xs // b
        base = ph.tex_offset[copy].unsqueeze(1)
        tw = ph.tex_width[copy].unsqueeze(1)

        def at(yy: Tensor, xx: Tensor) -> Tensor:
            return ph.texture[base + yy * tw + xx]

        energy = (at(by + nb, bx + nb) - at(by, bx + nb) - at(by + nb, bx) + at(by, bx)).float()
        energy = energy.clamp_min(0) / float(nb * nb * b * b)
        weights = energy + self.floor * energy.mean(dim=1, keepdim=True).clamp_min(1e-3)
        cdf = weights.cumsum(dim=1)
        r = torch.rand(n, 1, generator=g, device=self.device) * cdf[:, -1:]
        pick = (cdf < r).sum(dim=1).clamp_max(k - 1).unsqueeze(1)
        return ys.gather(1, pick)[:, 0], xs.gather(1, pick)[:, 0]

    def hr_patches(self, images: Sequence[int]) -> Tensor:
        """uint8 [T, 2S, 3, P, P]: each task's patches from its photo (random copy, position
        and flip/transpose per patch, as ``engine.training.batches.augment`` codes them)."""
        g, dev, p = self.gen, self.device, self.hr_patch
        t, m = len(images), self.patches
        n = t * m
        ph = self.photos
        img = torch.tensor(images, dtype=torch.int64).to(dev, non_blocking=True)
        img = img.repeat_interleave(m)
        count = ph.copy_count[img]
        level = (torch.rand(n, generator=g, device=dev) * count).long().clamp_max(count - 1)
        copy = ph.copy_table[img, level]
        y0, x0 = self._positions(copy, n)
        code = torch.randint(0, 8, (n,), generator=g, device=dev)
        if dev.type == "cpu":
            return self._sliced_patches(copy, y0, x0, code).reshape(t, m, 3, p, p)
        return self._gathered_patches(copy, y0, x0, code).reshape(t, m, 3, p, p)

    def _gathered_patches(self, copy: Tensor, y0: Tensor, x0: Tensor, code: Tensor) -> Tensor:
        """uint8 [n, 3, P, P] by one gather of every pixel: the GPU's way."""
        ph, p, n = self.photos, self.hr_patch, copy.shape[0]
        hflip = (code & 1).bool().view(n, 1, 1)
        vflip = (code & 2).bool().view(n, 1, 1)
        trans = (code & 4).bool().view(n, 1, 1)
        a = self._ar.view(1, p, 1)
        b = self._ar.view(1, 1, p)
        # output (a, b) reads the flipped patch at (b, a) when transposed
        u = torch.where(trans, b, a)
        v = torch.where(trans, a, b)
        rows = torch.where(vflip, p - 1 - u, u) + y0.view(n, 1, 1)
        cols = torch.where(hflip, p - 1 - v, v) + x0.view(n, 1, 1)
        index = ph.offset[copy].view(n, 1, 1) + rows * ph.width[copy].view(n, 1, 1) + cols
        hr = ph.pixels[index]  # [n, P, P, 3]
        return hr.permute(0, 3, 1, 2)

    def _sliced_patches(self, copy: Tensor, y0: Tensor, x0: Tensor, code: Tensor) -> Tensor:
        """The same patches as ``_gathered_patches``, cut as views of each photo copy and
        flipped/transposed as views: on a CPU about 3x faster than gathering millions of
        single pixels."""
        ph, p, n = self.photos, self.hr_patch, copy.shape[0]
        out = torch.empty((n, p, p, 3), dtype=ph.pixels.dtype)
        offsets, heights, widths = (ph.offset[copy].tolist(), ph.height[copy].tolist(),
                                    ph.width[copy].tolist())
        for k, (y, x, c) in enumerate(zip(y0.tolist(), x0.tolist(), code.tolist(), strict=True)):
            h, w = heights[k], widths[k]
            win = ph.pixels[offsets[k]:offsets[k] + h * w].view(h, w, 3)[y:y + p, x:x + p]
            if c & 2:
                win = win.flip(0)
            if c & 1:
                win = win.flip(1)
            if c & 4:
                win = win.transpose(0, 1)
            out[k] = win
        return out.permute(0, 3, 1, 2)

    def degrade(self, hr: Tensor, params: Sequence[DegradationParams], noise: bool = True,
                step: int = 0) -> Tensor:
        """``hr`` [T, N, 3, P, P] (0..255) -> LR [T, N, 3, P/s, P/s]: blur + bicubic, then
        (with ``noise``) noise, clip and round to uint8, then JPEG and the real-photo steps
        where asked (on the device, or on the host where ``step`` seeds their draws); without ``noise`` the float32
        LR before noise and quantisation. Matmuls in full float32 (not a GPU's TF32), so
        the LR is the host's to rounding."""
        with exact_matmuls():
            return self._degrade(hr, params, noise, step)

    def _degrade(self, hr: Tensor, params: Sequence[DegradationParams], noise: bool, step: int) -> Tensor:
        dev = self.device
        terms = [self.fused.task_matrices(pp) for pp in params]
        hr_f = hr.float()
        # Tasks grouped by their kernel's rank: an isotropic blur is one term, an anisotropic
        # one several; padding every task to the batch's largest rank multiplied the work of
        # the (usual) isotropic tasks by it.
        by_rank: dict[int, list[int]] = {}
        for i, (mv, _) in enumerate(terms):
            by_rank.setdefault(mv.shape[0], []).append(i)
        lr = hr_f.new_empty((*hr.shape[:3], self.lr_patch, self.lr_patch))
        for members in by_rank.values():
            mv_t = torch.from_numpy(np.stack([terms[i][0] for i in members])).to(dev, non_blocking=True)
            mh_t = torch.from_numpy(np.stack([terms[i][1] for i in members])).to(dev, non_blocking=True)
            if len(members) == len(terms):
                lr = apply_fused(hr_f, mv_t, mh_t)
            else:
                index = task_index(members, dev)
                lr[index] = apply_fused(hr_f[index], mv_t, mh_t)
        if not noise:
            return lr
        t, n = lr.shape[:2]
        std = torch.tensor([pp.noise_std for pp in params], dtype=torch.float32)
        std = std.to(dev, non_blocking=True).view(t, 1, 1, 1, 1)
        noise_t = torch.randn(lr.shape, generator=self.gen, device=dev)
        if any(pp.gray_noise for pp in params):
            gray = torch.tensor([pp.gray_noise for pp in params]).to(dev, non_blocking=True)
            mono = torch.randn((t, n, 1, *lr.shape[-2:]), generator=self.gen, device=dev)
            noise_t = torch.where(gray.view(t, 1, 1, 1, 1), mono.expand_as(noise_t), noise_t)
        out = (lr + noise_t * std).round_().clamp_(0, 255).to(torch.uint8)
        host_tasks = [i for i, pp in enumerate(params) if pp.jpeg_quality is not None or pp.real_photo]
        if host_tasks and self.damage_on_device:
            index = task_index(host_tasks, dev)
            out.index_copy_(0, index, finish_batch(out.index_select(0, index), [params[i] for i in host_tasks],
                                                   self.gen))
        elif host_tasks:  # OpenCV on the host: the one step that waits for the device
            host = out[host_tasks].permute(0, 1, 3, 4, 2).cpu().numpy()
            for j, i in enumerate(host_tasks):
                rng = np.random.default_rng([self.seed, int(step), i, 0xCA3E])
                host[j] = np.stack([finish_lr(patch, params[i], rng) for patch in host[j]])
            out[host_tasks] = torch.from_numpy(host).permute(0, 1, 4, 2, 3).to(dev)
        return out

    def batch(self, step: int) -> dict[str, Tensor]:
        """The tasks of training step ``step`` (same seed and step: same batch)."""
        self.gen.manual_seed(_seed_for(self.seed, step, 0xD0DA))
        images, params = self.task_plan(step)
        hr = self.hr_patches(images)
        lr = self.degrade(hr, params, step=step)
        sigma = torch.tensor([pp.sigma_x for pp in params]).to(self.device, non_blocking=True)
        noise = torch.tensor([pp.noise_level() for pp in params]).to(self.device, non_blocking=True)
        blur = torch.tensor([math.sqrt(pp.sigma_x * pp.sigma_y) for pp in params]).to(
            self.device, non_blocking=True)
        return {"lr": lr, "hr": hr, "sigma": sigma, "noise": noise, "blur": blur}

