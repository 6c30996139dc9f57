"""Choosing the support set: the S low-resolution patches from which CMDSR reads a photo's
degradation (blur, noise, compression) before super-resolving it.

Three ways, all in input-pixel coordinates and all returning the chosen boxes so the GUI can
draw them:

* ``random`` — seeded uniform positions, the authors' reference behaviour;
* ``regions`` — patches sampled inside rectangles the user drew (round-robin over the
  rectangles, so a small region is as well represented as a large one);
* ``auto`` — candidate patches on a half-patch grid scored by edge energy, skipping flat
  (nothing to read the blur from) and clipped areas, spread over the image by taking the best
  candidate per cell of a coarse grid. Deterministic: ``seed`` only breaks exact ties.

Images smaller than a patch still work: they are mirror-padded (bottom/right) up to the patch
size, so every patch has the size the ConditionNet was trained on, and the boxes are clipped to
the real image.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import ConfigError, SupportRegionError

log = logging.getLogger(__name__)

SUPPORT_MODES = ("random", "auto", "regions")
DEFAULT_PATCH_SIZE = 32

# auto mode: a patch whose luminance std is below this (0..255) has no edges to read blur
# from; one with more than this fraction of clipped pixels hides the noise level.
FLAT_STD = 2.0
SATURATED_FRACTION = 0.25


@dataclass(frozen=True)
class Box:
    """A rectangle in input-pixel coordinates: columns x..x+w-1, rows y..y+h-1."""

    x: int
    y: int
    w: int
    h: int

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"

    @classmethod
    def parse(cls, text: str) -> Box:
        """``"X,Y,W,H"`` -> Box (ConfigError if malformed)."""
        parts = text.replace(" ", "").split(",")
        try:
            x, y, w, h = (int(p) for p in parts)
        except ValueError:
            raise ConfigError(f"support region {text!r} must be X,Y,W,H (four integers)") from None
        return cls(x, y, w, h)


@dataclass
class SupportSet:
    """``patches``: [S, size, size, 3] float32 RGB 0..255; ``boxes``: where each came from."""

    patches: np.ndarray
    boxes: list[Box]
    mode: str

    @property
    def count(self) -> int:
        return int(self.patches.shape[0])

    @property
    def size(self) -> int:
        return int(self.patches.shape[1])


def _as_box(region: Box | Sequence[int]) -> Box:
    if isinstance(region, Box):
        return region
    x, y, w, h = (int(v) for v in region)
    return Box(x, y, w, h)


def _image_hw(image_shape: Sequence[int]) -> tuple[int, int]:
    return int(image_shape[0]), int(image_shape[1])


def _clip(box: Box, height: int, width: int) -> Box:
    x0, y0 = max(box.x, 0), max(box.y, 0)
    x1, y1 = min(box.x + box.w, width), min(box.y + box.h, height)
    return Box(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def validate_regions(
    regions: Iterable[Box | Sequence[int]], image_shape: Sequence[int], size: int = DEFAULT_PATCH_SIZE
) -> list[str | None]:
    """For each region: None if it can provide patches, else the reason it cannot.

    A region may stick out of the image (it is clipped); what lies inside must hold a whole
    patch (``size``, or the image's side when the image is smaller than a patch).
    """
    height, width = _image_hw(image_shape)
    need_w, need_h = min(size, width), min(size, height)
    reasons: list[str | None] = []
    for region in regions:
        box = _as_box(region)
        if box.w <= 0 or box.h <= 0:
            reasons.append(f"has no area ({box.w}x{box.h})")
            continue
        inside = _clip(box, height, width)
        if inside.w == 0 or inside.h == 0:
            reasons.append(f"lies outside the {width}x{height} image")
        elif inside.w < need_w or inside.h < need_h:
            reasons.append(
                f"is {inside.w}x{inside.h} pixels inside the image, smaller than a "
                f"{need_w}x{need_h} patch"
            )
        else:
            reasons.append(None)
    return reasons


def _pad_to(pixels: np.ndarray, size: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    pad_h, pad_w = max(0, size - height), max(0, size - width)
    if not pad_h and not pad_w:
        return pixels
    # Mirror keeps the texture statistics the ConditionNet reads; bottom/right keeps coordinates.
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")


def _random_positions(
    height: int, width: int, size: int, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    ys = rng.integers(0, max(1, height - size + 1), size=count)
    xs = rng.integers(0, max(1, width - size + 1), size=count)
    return [(int(x), int(y)) for x, y in zip(xs, ys, strict=True)]


def _region_positions(
    boxes: list[Box], height: int, width: int, size: int, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """Round-robin over the regions; in each, a uniform position whose patch lies inside it."""
    out = []
    for i in range(count):
        box = _clip(boxes[i % len(boxes)], height, width)
        pw, ph = min(size, width), min(size, height)
        x = box.x + int(rng.integers(0, box.w - pw + 1))
        y = box.y + int(rng.integers(0, box.h - ph + 1))
        out.append((x, y))
    return out


def _grid(length: int, size: int, stride: int) -> np.ndarray:
    """Candidate top-left positions on a stride grid, plus the last one that fits."""
    return np.unique(np.r_[np.arange(0, length - size + 1, stride), length - size])


def _window_sums(integral: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """Sums over size x size windows at (ys, xs) from an OpenCV integral image."""
    y0, x0 = ys[:, None], xs[None, :]
    return (integral[y0 + size, x0 + size] - integral[y0, x0 + size]
            - integral[y0 + size, x0] + integral[y0, x0])


def _texture_stats(
    pixels: np.ndarray, size: int, stride: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mean gradient score, unusable mask, ys, xs) for every candidate window.

    Works through integral images one statistic at a time, so even a photo near the pixel
    limit needs only a few float32 copies of its luminance."""
    height, width = pixels.shape[:2]
    ys, xs = _grid(height, size, stride), _grid(width, size, stride)
    area = float(size * size)
    luma = (pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114).astype(np.float32)
    grad = cv2.magnitude(cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3),
                         cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3))
    scores = _window_sums(cv2.integral(grad, sdepth=cv2.CV_64F), ys, xs, size) / (8.0 * area)
    del grad
    total, squares = cv2.integral2(luma, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
    del luma
    mean = _window_sums(total, ys, xs, size) / area
    std = np.sqrt(np.maximum(_window_sums(squares, ys, xs, size) / area - mean * mean, 0.0))
    del total, squares
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]  # (min over axis 2 is slow)
    clipped = (((r >= 254.5) & (g >= 254.5) & (b >= 254.5))
               | ((r <= 0.5) & (g <= 0.5) & (b <= 0.5))).astype(np.uint8)
    clip_share = _window_sums(cv2.integral(clipped, sdepth=cv2.CV_32S), ys, xs, size) / area
    unusable = (std < FLAT_STD) | (clip_share > SATURATED_FRACTION)
    return scores, unusable, ys, xs


def texture_scores(
    pixels: np.ndarray, size: int, stride: int | None = None, *, masked: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score candidate patches for ``auto``: mean Sobel gradient magnitude of the luminance,
    ``-inf`` for flat or clipped candidates when ``masked``. Returns (scores [ny, nx], ys, xs)
    with the candidates' top-left rows ``ys`` and columns ``xs``."""
    scores, unusable, ys, xs = _texture_stats(pixels, size, stride or max(1, size // 2))
    if masked:
        scores[unusable] = -np.inf
    return scores, ys, xs


def _auto_positions(
    pixels: np.ndarray, size: int, count: int, rng: np.random.Generator
) -> list[tuple[int, int]]:
    height, width = pixels.shape[:2]
    raw, unusable, ys, xs = _texture_stats(pixels, size, max(1, size // 2))
    scores = np.where(unusable, -np.inf, raw)
    scores = scores + rng.uniform(0, 1e-9, size=scores.shape)  # ties only
    order = np.argsort(scores, axis=None)[::-1]
    valid = [int(k) for k in order if np.isfinite(scores.flat[k])]
    # Spread: a coarse grid of about `count` cells; each cell offers its best candidate and the
    # best cells win. Rows and columns follow the aspect ratio.
    rows = max(1, round(math.sqrt(count * height / width)))
    cols = max(1, math.ceil(count / rows))
    chosen: list[int] = []
    used_cells: set[tuple[int, int]] = set()

    def free(k: int) -> bool:
        iy, ix = divmod(k, len(xs))
        return all(_overlap(ys[iy], xs[ix], *divmod(c, len(xs)), ys, xs, size) < 0.5
                   for c in chosen)

    # Best candidates first, one per cell, never mostly overlapping a chosen one.
    for k in valid:
        if len(chosen) >= count:
            break
        iy, ix = divmod(k, len(xs))
        cy, cx = ys[iy] + size / 2, xs[ix] + size / 2
        cell = (min(rows - 1, int(cy * rows / height)), min(cols - 1, int(cx * cols / width)))
        if cell not in used_cells and free(k):
            used_cells.add(cell)
            chosen.append(k)
    # Fewer good cells than patches (large flat sky, small image): top up with the best
    # remaining candidates that do not mostly overlap a chosen one, then repeat the best.
    taken = set(chosen)
    for k in valid:
        if len(chosen) >= count:
            break
        if k not in taken and free(k):
            chosen.append(k)
            taken.add(k)
    if len(chosen) < count:
        if not chosen:
            # Nothing textured (a blank or clipped picture): the least flat candidates then.
            log.info("auto support: no textured area found; using the least flat patches")
            chosen = [int(k) for k in np.argsort(raw, axis=None)[::-1][:count]]
        chosen += [chosen[i % len(chosen)] for i in range(count - len(chosen))]
    out = []
    for k in chosen[:count]:
        iy, ix = divmod(k, len(xs))
        out.append((int(xs[ix]), int(ys[iy])))
    return out


def _overlap(y: int, x: int, iy: int, ix: int, ys: np.ndarray, xs: np.ndarray, size: int) -> float:
    oy = max(0, size - abs(int(ys[iy]) - int(y)))
    ox = max(0, size - abs(int(xs[ix]) - int(x)))
    return oy * ox / float(size * size)


def select_support(
    pixels: np.ndarray,
    *,
    count: int,
    size: int = DEFAULT_PATCH_SIZE,
    mode: str = "random",
    regions: Iterable[Box | Sequence[int]] = (),
    seed: int = 0,
) -> SupportSet:
    """Pick ``count`` patches of ``size`` x ``size`` from ``pixels`` ([H, W, 3], 0..255).

    ``mode``: ``random`` (seeded), ``auto`` (textured, spread out) or ``regions`` (inside the
    user's ``regions``, X,Y,W,H in input pixels). Raises ``SupportRegionError`` naming the
    first unusable region, ``ConfigError`` for a bad mode or count.
    """
    if mode not in SUPPORT_MODES:
        raise ConfigError(f"support mode must be one of {', '.join(SUPPORT_MODES)}, got {mode!r}")
    if not isinstance(count, int) or count < 1:
        raise ConfigError(f"support count must be a positive integer, got {count!r}")
    if not isinstance(size, int) or size < 2:
        raise ConfigError(f"support patch size must be an integer >= 2, got {size!r}")
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise ConfigError(f"expected [H, W, 3] pixels, got {tuple(pixels.shape)}")
    height, width = pixels.shape[:2]
    rng = np.random.default_rng(seed)
    padded = _pad_to(np.asarray(pixels, dtype=np.float32), size)
    region_list = [_as_box(r) for r in regions]
    if mode == "regions":
        if not region_list:
            raise SupportRegionError("support mode 'regions' needs at least one region")
        for i, (box, reason) in enumerate(
            zip(region_list, validate_regions(region_list, (height, width), size), strict=True)
        ):
            if reason is not None:
                raise SupportRegionError(
                    f"support region {i + 1} (x={box.x}, y={box.y}, w={box.w}, h={box.h}) "
                    f"{reason}"
                )
        positions = _region_positions(region_list, height, width, size, count, rng)
    else:
        if region_list:
            log.debug("support mode %r ignores the %d drawn regions", mode, len(region_list))
        if mode == "auto":
            positions = _auto_positions(padded, size, count, rng)
        else:
            positions = _random_positions(padded.shape[0], padded.shape[1], size, count, rng)
    patches = np.stack([padded[y:y + size, x:x + size] for x, y in positions]).astype(np.float32)
    boxes = [_clip(Box(x, y, size, size), height, width) for x, y in positions]
    return SupportSet(patches=np.ascontiguousarray(patches), boxes=boxes, mode=mode)
