"""Photos for training and validation: reading and scanning HR photos, the HR sources tasks
are cut from (regions seen downscaled, textured picks, the crop cache), validation items and
synthetic test photos. The tasks and batches made from them are ``engine.training.batches``.

Decoding large photos is by far the costliest part of making a task, so by default each photo
is decoded once, up front, into a pool of random HR crops stored in a memory-mapped ``.npy``
file that the DataLoader worker processes share (see ``build_crop_cache``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from engine.degrade import (
    DegradationConfig,
    DegradationParams,
    crop_to_multiple,
    degrade,
    sample_degradation,
)
from engine.errors import ConfigError, ImageReadError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file to HxWx3 uint8 RGB (gray expanded, alpha dropped, 16-bit scaled)."""
    path = Path(path)
    try:
        buf = np.fromfile(path, dtype=np.uint8)  # np.fromfile: non-ASCII paths work on Windows
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if buf.size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"{path}: not a readable image")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageReadError(f"{path}: unsupported pixel type {img.dtype}")
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 4:
        img = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    else:
        raise ImageReadError(f"{path}: unsupported channel count {img.shape[2]}")
    return np.ascontiguousarray(img)


def scan_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, hidden files skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder of images")
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _image_size(path: Path, decode: bool) -> tuple[int, int]:
    """(h, w) from the file header (Pillow, cheap) or, with ``decode``, from a full decode."""
    if not decode:
        try:
            from PIL import Image

            with Image.open(path) as im:
                w, h = im.size
            return h, w
        except Exception:  # Pillow cannot read it: let OpenCV decide below
            pass
    h, w = read_rgb(path).shape[:2]
    return h, w


def usable_images(
    root: str | Path, min_size: int, decode: bool = False
) -> list[tuple[Path, tuple[int, int]]]:
    """(path, (h, w)) of the photos under ``root`` that open and are at least ``min_size``
    on both sides; each skipped file gets one warning. No usable photo is a ConfigError.
    ``decode`` decodes each file fully instead of trusting its header."""
    found = scan_images(root)
    out: list[tuple[Path, tuple[int, int]]] = []
    for path in found:
        try:
            h, w = _image_size(path, decode)
        except ImageReadError as exc:
            log.warning("skipping %s", exc)
            continue
        if min(h, w) < min_size:
            log.warning("skipping %s: %dx%d is smaller than %d pixels", path, w, h, min_size)
            continue
        out.append((path, (h, w)))
    if not out:
        raise ConfigError(
            f"{root}: no usable training photos ({len(found)} image files found; each must "
            f"decode and be at least {min_size}x{min_size} pixels)"
        )
    return out


# ----------------------------------------------------------------------------- HR sources

NO_DOWNSCALE = (1.0, 1.0)


def check_hr_downscale(value: object, key: str = "hr_downscale") -> tuple[float, float]:
    """``value`` as a (lo, hi) downscale range with 0 < lo <= hi <= 1, or a ConfigError
    naming ``key``."""
    msg = f"{key} must be two factors [lo, hi] with 0 < lo <= hi <= 1 (1 = full resolution), got {value!r}"
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(msg)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value):
        raise ConfigError(msg)
    lo, hi = float(value[0]), float(value[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi <= 1):
        raise ConfigError(msg)
    return lo, hi


def downscaled_region(
    img: np.ndarray, size: int, hr_downscale: tuple[float, float], rng: np.random.Generator
) -> np.ndarray:
    """A random ``size x size`` HR region of ``img`` as seen in the photo downscaled by a
    factor s drawn uniformly in ``hr_downscale``: a ``ceil(size/s)`` square (clipped to the
    photo, i.e. the strongest downscale that fits) resized with INTER_AREA. High-resolution
    photos hold little texture per patch; downscaled copies give the model the dense detail
    of users' photos. (1, 1) draws nothing extra: the plain crop, as without the setting."""
    h, w = img.shape[:2]
    lo, hi = hr_downscale
    region = size
    if (lo, hi) != NO_DOWNSCALE:
        s = float(rng.uniform(lo, hi))
        region = max(size, min(math.ceil(size / s), h, w))
    y = int(rng.integers(0, h - region + 1))
    x = int(rng.integers(0, w - region + 1))
    patch = img[y : y + region, x : x + region]
    if region == size:
        return patch
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class TexturePick:
    """How HR patch positions are drawn. ``candidates`` = 1: uniformly (the paper). More:
    that many positions are drawn and one is kept with probability proportional to its
    texture (mean gradient magnitude) plus ``floor`` times the candidates' mean texture, so
    detailed areas dominate while skies and bokeh still appear."""

    candidates: int = 1
    floor: float = 0.2

    @property
    def enabled(self) -> bool:
        return self.candidates > 1


UNIFORM = TexturePick()


def texture_energy(patch: np.ndarray) -> float:
    """Mean absolute luminance gradient of an HxWx3 patch (0..255): high on detail, ~0 on
    flat sky."""
    y = patch.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def pick_textured(candidates: Sequence[np.ndarray], pick: TexturePick,
                  rng: np.random.Generator) -> np.ndarray:
    """One of ``candidates`` (HR patches), drawn with probability proportional to texture
    plus a floor (see ``TexturePick``); the first one when texture picking is off."""
    if len(candidates) == 1:
        return candidates[0]
    energy = np.array([texture_energy(c) for c in candidates], np.float64)
    weights = energy + pick.floor * max(float(energy.mean()), 1e-3)
    return candidates[int(rng.choice(len(candidates), p=weights / weights.sum()))]


def textured_region(img: np.ndarray, size: int, hr_downscale: tuple[float, float],
                    rng: np.random.Generator, pick: TexturePick = UNIFORM) -> np.ndarray:
    """``downscaled_region`` drawn ``pick.candidates`` times, one kept by texture."""
    regions = [downscaled_region(img, size, hr_downscale, rng) for _ in range(pick.candidates)]
    return pick_textured(regions, pick, rng)


def _cache_key(paths: Sequence[Path], crop: int, per_image: int, seed: int,
               hr_downscale: tuple[float, float] = NO_DOWNSCALE,
               pick: TexturePick = UNIFORM) -> str:
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(f"{crop}|{per_image}|{seed}".encode())
    if hr_downscale != NO_DOWNSCALE:  # (1, 1) keeps the key of caches built before the setting
        h.update(f"|{hr_downscale[0]!r}|{hr_downscale[1]!r}".encode())
    if pick.enabled:  # likewise for uniform crops
        h.update(f"|texture {pick.candidates}|{pick.floor!r}".encode())
    return h.hexdigest()[:16]


def build_crop_cache(
    paths: Sequence[Path],
    crop: int,
    per_image: int,
    cache_dir: str | Path,
    seed: int = 0,
    hr_downscale: tuple[float, float] = NO_DOWNSCALE,
    pick: TexturePick = UNIFORM,
) -> tuple[Path, list[Path]]:
    """Decode each photo once and store ``per_image`` random ``crop x crop`` regions of it in
    ``cache_dir/hr_crops_<key>.npy`` (uint8 [N*per_image, crop, crop, 3], crops of photo i at
    rows i*per_image...). Each crop comes from the photo downscaled by a factor drawn in
    ``hr_downscale`` (see ``downscaled_region``; (1, 1) = plain crops). The key covers the
    files, their sizes/dates, crop, seed and downscale range, so a resumed run reuses the same
    file and a changed folder or range gets a fresh one. Photos that fail to decode or are
    too small are skipped with a warning; returns (cache file, photos kept). ``pick`` draws
    crop positions preferring textured areas (see ``TexturePick``)."""
    hr_downscale = check_hr_downscale(hr_downscale)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _cache_key(paths, crop, per_image, seed, hr_downscale, pick)
    path = cache_dir / f"hr_crops_{key}.npy"
    index = cache_dir / f"hr_crops_{key}.json"
    if path.exists() and index.exists():
        try:
            cached = [Path(p) for p in json.loads(index.read_text(encoding="utf-8"))]
            arr = np.load(path, mmap_mode="r")
            if arr.shape == (len(cached) * per_image, crop, crop, 3):
                log.info("reusing HR crop cache %s (%d photos)", path, len(cached))
                return path, cached
        except (OSError, ValueError):
            pass
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    size_mb = len(paths) * per_image * crop * crop * 3 / 2**20
    log.info("decoding %d photos into %d HR crops of %d px (%.0f MB cache, downscale %g..%g)",
             len(paths), len(paths) * per_image, crop, size_mb, *hr_downscale)
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                    shape=(len(paths) * per_image, crop, crop, 3))
    kept: list[Path] = []
    try:
        for i, p in enumerate(paths):
            try:
                img = read_rgb(p)
            except ImageReadError as exc:
                log.warning("skipping %s", exc)
                continue
            h, w = img.shape[:2]
            if min(h, w) < crop:
                log.warning("skipping %s: %dx%d is smaller than %d pixels", p, w, h, crop)
                continue
            rng = np.random.default_rng([seed, i])
            row = len(kept) * per_image
            for j in range(per_image):
                out[row + j] = textured_region(img, crop, hr_downscale, rng, pick)
            kept.append(p)
        if not kept:
            raise ConfigError("no training photo could be decoded")
        out.flush()
        if len(kept) < len(paths):  # rare: rewrite without the empty tail
            final = np.array(out[: len(kept) * per_image])
            del out
            np.save(tmp, final)
        else:
            del out
        os.replace(tmp, path)
        index.write_text(json.dumps([str(p) for p in kept]), encoding="utf-8")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path, kept


class CropCacheSource:
    """HR patches cut from the shared crop cache (no decoding during training)."""

    def __init__(self, cache_path: Path, per_image: int, pick: TexturePick = UNIFORM) -> None:
        self.cache_path = Path(cache_path)
        self.per_image = per_image
        self.pick = pick
        arr = np.load(self.cache_path, mmap_mode="r")
        self.num_images = arr.shape[0] // per_image
        self.crop = arr.shape[1]
        self._arr: np.ndarray | None = None  # opened lazily in each worker process

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_arr"] = None  # never pickle the mapped data into spawned workers
        return state

    def patches(self, image: int, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
        if self._arr is None:
            self._arr = np.load(self.cache_path, mmap_mode="r")
        arr = self._arr
        out = []
        for _ in range(count):
            cands = []
            for _k in range(self.pick.candidates):
                c = image * self.per_image + int(rng.integers(0, self.per_image))
                y = int(rng.integers(0, self.crop - size + 1))
                x = int(rng.integers(0, self.crop - size + 1))
                cands.append(np.asarray(arr[c, y : y + size, x : x + size]))
            out.append(pick_textured(cands, self.pick, rng))
        return out


class DiskSource:
    """HR patches cut from photos decoded on demand (for large corpora and many workers);
    each patch comes from the photo downscaled by a factor drawn in ``hr_downscale``, as the
    crop cache's crops do (see ``downscaled_region``)."""

    def __init__(self, paths: Sequence[Path],
                 hr_downscale: tuple[float, float] = NO_DOWNSCALE,
                 pick: TexturePick = UNIFORM) -> None:
        self.paths = list(paths)
        self.num_images = len(self.paths)
        self.hr_downscale = check_hr_downscale(hr_downscale)
        self.pick = pick

    def patches(self, image: int, size: int, count: int, rng: np.random.Generator) -> list[np.ndarray]:
        img = read_rgb(self.paths[image])
        return [textured_region(img, size, self.hr_downscale, rng, self.pick) for _ in range(count)]


HRSource = CropCacheSource | DiskSource


# ----------------------------------------------------------------------------- validation


def random_support(lr: np.ndarray, count: int, patch: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random ``patch x patch`` crops of an HxWx3 LR image (test-time support, as the
    reference picks it); the patch shrinks to the image's short side if needed.
    Returns float32 [count, 3, p, p] in 0..255."""
    h, w = lr.shape[:2]
    p = min(patch, h, w)
    out = np.empty((count, 3, p, p), dtype=np.float32)
    for i in range(count):
        y = int(rng.integers(0, h - p + 1))
        x = int(rng.integers(0, w - p + 1))
        out[i] = lr[y : y + p, x : x + p].transpose(2, 0, 1)
    return out


@dataclass(frozen=True)
class ValItem:
    """One validation photo: HR uint8 (cropped to a multiple of the scale), its fixed LR
    (float32 0..255), a fixed random support [S, 3, p, p] and the degradation used."""

    name: str
    hr: np.ndarray
    lr: np.ndarray
    support: np.ndarray
    params: DegradationParams


def load_validation(
    val_dir: str | Path,
    cfg: DegradationConfig,
    scale: int,
    support_size: int,
    support_patch: int = 32,
    crop: int = 0,
    max_images: int = 0,
    seed: int = 0,
) -> list[ValItem]:
    """Validation photos with fixed degradations (drawn from ``cfg`` with ``seed``): the same
    LR and support at every validation of a run. ``crop`` > 0 keeps a central crop of that
    HR size so validation stays quick on a CPU; ``max_images`` > 0 keeps the first ones."""
    paths = scan_images(val_dir)
    items: list[ValItem] = []
    for i, path in enumerate(paths):
        if max_images and len(items) >= max_images:
            break
        try:
            hr = read_rgb(path)
        except ImageReadError as exc:
            log.warning("skipping validation %s", exc)
            continue
        if crop > 0:
            h, w = hr.shape[:2]
            c = min(crop, h, w)
            y, x = (h - c) // 2, (w - c) // 2
            hr = hr[y : y + c, x : x + c]
        hr = crop_to_multiple(hr, scale)
        if min(hr.shape[:2]) < max(4 * scale, 16):
            log.warning("skipping validation %s: too small", path)
            continue
        rng = np.random.default_rng([seed, i])
        params = sample_degradation(cfg, rng)
        lr = degrade(hr, params, scale, rng)
        support = random_support(lr, support_size, support_patch, rng)
        items.append(ValItem(path.name, np.ascontiguousarray(hr), lr, support, params))
    if not items:
        raise ConfigError(f"{val_dir}: no usable validation photos")
    return items


def write_manifest_json(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


def synthetic_photo(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A photo-like HxWx3 uint8 test image: smooth colour gradients, soft blobs, sharp-edged
    shapes and fine texture, so blur and noise are visible in it. For tests and benchmarks
    where no real photos may be used."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-1, 1, 2)
        img[..., c] = 128 + 60 * (a * xx / width + b * yy / height)
    for _ in range(6):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(0.05, 0.3) * min(height, width)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(-80, 80, 3).astype(np.float32)
    for _ in range(8):
        y0, x0 = int(rng.integers(0, height)), int(rng.integers(0, width))
        h, w = int(rng.integers(4, max(5, height // 3))), int(rng.integers(4, max(5, width // 3)))
        img[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    freq = rng.uniform(0.1, 0.6)
    img += 25 * np.sin(freq * xx + 0.7 * freq * yy)[..., None]
    img += rng.normal(0, 4, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synthetic_photos(folder: str | Path, count: int, size: tuple[int, int] = (256, 320),
                           seed: int = 0) -> list[Path]:
    """Write ``count`` synthetic PNG photos (h, w = ``size``) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        img = synthetic_photo(rng, *size)
        p = folder / f"photo_{i:03d}.png"
        cv2.imwrite(str(p), img[..., ::-1])
        paths.append(p)
    return paths
