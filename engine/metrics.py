"""Image quality metrics (PSNR and SSIM on the Y channel) and the evaluation table.

The numbers follow the evaluation protocol of the reference code, so they compare with the
paper's tables: BT.601 luma ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` on 0..255
RGB (Y in 16..235), ``border`` pixels cropped from every side, PSNR with peak 255, and the
MATLAB-compatible SSIM (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, 'valid' filtering).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

_Y_WEIGHTS = np.array([65.481, 128.553, 24.966], dtype=np.float64) / 255.0


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """HxWx3 RGB 0..255 (any dtype) -> HxW float64 BT.601 luma in 16..235."""
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {img.shape}")
    return img.astype(np.float64) @ _Y_WEIGHTS + 16.0


def _prepare(a: np.ndarray, b: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    if border > 0:
        if min(ya.shape) <= 2 * border:
            raise ValueError(f"image {a.shape[1]}x{a.shape[0]} too small for border {border}")
        ya = ya[border:-border, border:-border]
        yb = yb[border:-border, border:-border]
    return ya, yb


def psnr_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """PSNR (dB, peak 255) between the Y channels of two HxWx3 RGB 0..255 images after
    cropping ``border`` pixels from each side; ``inf`` for identical images. Pass the
    images as saved (rounded to 8 bits) to match published numbers."""
    ya, yb = _prepare(a, b, border)
    mse = float(np.mean((ya - yb) ** 2))
    if mse == 0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def _ssim_gray(x: np.ndarray, y: np.ndarray) -> float:
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2
    k = cv2.getGaussianKernel(11, 1.5)
    win = k @ k.T

    def filt(img: np.ndarray) -> np.ndarray:
        return cv2.filter2D(img, -1, win)[5:-5, 5:-5]  # 'valid' part, as MATLAB's filter2

    if min(x.shape) < 11:
        raise ValueError(f"SSIM needs at least 11x11 pixels after the border crop, got {x.shape}")
    mu_x, mu_y = filt(x), filt(y)
    mu_x2, mu_y2, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    s_x = filt(x * x) - mu_x2
    s_y = filt(y * y) - mu_y2
    s_xy = filt(x * y) - mu_xy
    ssim_map = ((2 * mu_xy + c1) * (2 * s_xy + c2)) / ((mu_x2 + mu_y2 + c1) * (s_x + s_y + c2))
    return float(ssim_map.mean())


def ssim_y(a: np.ndarray, b: np.ndarray, border: int = 0) -> float:
    """MATLAB-compatible SSIM between the Y channels of two HxWx3 RGB 0..255 images after
    cropping ``border`` pixels from each side (1.0 for identical images)."""
    ya, yb = _prepare(a, b, border)
    return _ssim_gray(ya, yb)


def blockiness(img: np.ndarray, scale: int) -> float:
    """How much an upscaled HxWx3 image (0..255) steps at its ``scale`` x ``scale`` output grid:
    the mean absolute luma difference across the grid lines (between pixels ``scale*k - 1`` and
    ``scale*k``, both directions) divided by the mean elsewhere. A photo or a smooth
    interpolation gives about 1.0; a network that paints each input pixel as a block gives
    clearly more (nearest neighbour on a detailed photo: several)."""
    if scale < 2:
        raise ValueError(f"blockiness needs a scale of at least 2, got {scale}")
    y = rgb_to_y(img)
    across, within = [], []
    for d in (np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0)).T):
        on_line = (np.arange(d.shape[1]) % scale) == scale - 1  # diff j spans pixels j, j+1
        across.append(d[:, on_line])
        within.append(d[:, ~on_line])
    a = float(np.mean(np.concatenate([x.ravel() for x in across])))
    w = float(np.mean(np.concatenate([x.ravel() for x in within])))
    return a / max(w, 1e-9)


def bicubic_upscale(lr: np.ndarray, scale: int) -> np.ndarray:
    """HxWx3 0..255 -> (H*scale)x(W*scale)x3 float32 bicubic, rounded and clipped to 0..255
    (the "bicubic" row of an evaluation table)."""
    h, w = lr.shape[:2]
    up = cv2.resize(lr.astype(np.float32), (w * scale, h * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(np.rint(up), 0, 255).astype(np.float32)


# ----------------------------------------------------------------------------- tables


@dataclass
class EvalRow:
    """Mean PSNR/SSIM-Y and blockiness (see ``blockiness``; NaN where not measured) of one
    method on one degradation setting over ``count`` images."""

    setting: str
    method: str
    psnr: float
    ssim: float
    count: int
    per_image: list[tuple[str, float, float]] = field(default_factory=list)
    blockiness: float = math.nan


class MeanMeter:
    """Collects per-image (PSNR, SSIM) pairs for each (setting, method)."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, str], list[tuple[str, float, float]]] = {}
        self._blocky: dict[tuple[str, str], list[float]] = {}

    def add(self, setting: str, method: str, image: str, psnr: float, ssim: float,
            block: float | None = None) -> None:
        self._values.setdefault((setting, method), []).append((image, psnr, ssim))
        if block is not None:
            self._blocky.setdefault((setting, method), []).append(block)

    def rows(self) -> list[EvalRow]:
        out = []
        for (setting, method), vals in self._values.items():
            ps = [v[1] for v in vals]
            ss = [v[2] for v in vals]
            bl = self._blocky.get((setting, method))
            out.append(EvalRow(setting, method, float(np.mean(ps)), float(np.mean(ss)), len(vals), vals,
                               float(np.mean(bl)) if bl else math.nan))
        return out


def format_markdown(rows: Sequence[EvalRow], title: str = "") -> str:
    """Markdown table: one line per setting, one PSNR / SSIM column pair per method."""
    methods: list[str] = []
    settings: list[str] = []
    for r in rows:
        if r.method not in methods:
            methods.append(r.method)
        if r.setting not in settings:
            settings.append(r.setting)
    by_key = {(r.setting, r.method): r for r in rows}
    head = ["setting"] + [f"{m} PSNR / SSIM" for m in methods]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] + ["---:"] * len(methods)) + "|")
    for s in settings:
        cells = [s]
        for m in methods:
            row = by_key.get((s, m))
            cells.append("" if row is None else f"{row.psnr:.2f} / {row.ssim:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    if len(settings) > 1:
        cells = ["**mean**"]
        for m in methods:
            rs = [by_key[(s, m)] for s in settings if (s, m) in by_key]
            cells.append(
                f"{np.mean([r.psnr for r in rs]):.2f} / {np.mean([r.ssim for r in rs]):.4f}" if rs else ""
            )
        lines.append("| " + " | ".join(cells) + " |")
    if any(math.isfinite(r.blockiness) for r in rows):
        lines += ["", "Blockiness (gradient across the output pixel grid / elsewhere; a photo: 1.0) "
                  "and photos ahead of bicubic in PSNR-Y:", ""]
        lines.append("| setting | " + " | ".join(methods) + " |")
        lines.append("|" + "|".join(["---"] + ["---:"] * len(methods)) + "|")
        for s in settings:
            cells = [s]
            bic = by_key.get((s, "bicubic"))
            for m in methods:
                row = by_key.get((s, m))
                if row is None:
                    cells.append("")
                    continue
                cell = f"{row.blockiness:.2f}" if math.isfinite(row.blockiness) else "-"
                if bic is not None and m != "bicubic":
                    ref = {name: p for name, p, _ in bic.per_image}
                    wins = sum(1 for name, p, _ in row.per_image if p > ref.get(name, math.inf))
                    cell += f", {wins}/{row.count} ahead"
                cells.append(cell)
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[EvalRow], path: str | Path) -> Path:
    """CSV with one line per (setting, method): mean PSNR-Y, SSIM-Y and the image count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["setting", "method", "psnr_y", "ssim_y", "images", "blockiness"])
        for r in rows:
            w.writerow([r.setting, r.method, f"{r.psnr:.4f}", f"{r.ssim:.6f}", r.count,
                        f"{r.blockiness:.4f}" if math.isfinite(r.blockiness) else ""])
    return path


# ----------------------------------------------------------------------------- evaluation


def evaluate(
    images: Sequence[tuple[str, np.ndarray]],
    settings: Sequence[tuple[str, object]],
    methods: Sequence[tuple[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]],
    scale: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    cancel: object | None = None,
) -> list[EvalRow]:
    """Degrade every HR image with every setting, run every method on the LR and average
    PSNR/SSIM-Y over the images.

    ``images``: (name, HxWx3 uint8/float 0..255) pairs; ``settings``: (label,
    ``DegradationParams``) for a fixed degradation or (label, ``DegradationConfig``) to draw
    one per image; ``methods``: (name, fn(lr float32 HxWx3 0..255, rng) -> SR HxWx3 0..255,
    rounded as saved). Draws are seeded from (seed, setting, image), so a rerun, and every
    method within a run, sees the same LR and the same rng. ``cancel`` is an optional
    ``threading.Event`` checked between images.
    """
    from engine.degrade import DegradationConfig, crop_to_multiple, degrade, sample_degradation
    from engine.errors import CancelledError

    meter = MeanMeter()
    total = len(images) * len(settings)
    done = 0
    for si, (label, spec) in enumerate(settings):
        for ii, (name, hr) in enumerate(images):
            if cancel is not None and getattr(cancel, "is_set", lambda: False)():
                raise CancelledError("evaluation cancelled")
            hr_c = crop_to_multiple(hr, scale).astype(np.float32)
            rng = np.random.default_rng([seed, si, ii])
            params = sample_degradation(spec, rng) if isinstance(spec, DegradationConfig) else spec
            lr = degrade(hr_c, params, scale, rng)  # type: ignore[arg-type]
            for method, fn in methods:
                sr = fn(lr, np.random.default_rng([seed, si, ii, 1]))
                meter.add(label, method, name, psnr_y(sr, hr_c, scale), ssim_y(sr, hr_c, scale),
                          blockiness(sr, scale) if scale > 1 else None)
            done += 1
            if progress is not None:
                progress(done, total)
    return meter.rows()
