"""What the model reads in a photo: its damage estimate for the whole photo, for each support
region the user drew, and per tile (the overlay), as Qt-free job functions and the words the
window shows for them.

The numbers come from the model file's damage readout (``engine.estimate_damage``,
``engine.damage_map``); a model without one gives a :class:`DamageReading` that says so rather
than an error, since upscaling works the same without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

import engine  # its names load on first use: the window starts without PyTorch
from cmdsr_app.jobs import PATCH_SIZE, ModelCache

if TYPE_CHECKING:
    from engine import DamageEstimate

RegionBox = tuple[int, int, int, int]
ProgressFn = Callable[[int, int], None]

# Said once, in plain words: what the model cannot read, and what that means for the user.
NO_READOUT = ("This model cannot tell how blurred or noisy a photo is: it was not trained to "
              "read the damage. It upscales all the same, but it has no damage map, and "
              "Adapt: Per region gains nothing with it.")
NO_CONDITION = ("This model ignores how the photo was damaged (its conditioning is off): it "
                "reads no blur or noise, has no damage map, and Adapt: Per region gains "
                "nothing with it.")


def no_readout_text(reason: str) -> str:
    """The user's words for the engine's reason a model has no readout."""
    return NO_CONDITION if "conditioning off" in reason else NO_READOUT
# Thresholds of the plain-language words, after the degradation model's ranges (blur sigma in
# HR pixels before the downscale: 0.6 nearly sharp, 2.6 the paper's test blur, 3.6 very soft;
# noise sigma in grey levels: 5 faint, 15 clearly visible, 30+ heavy).
BLUR_WORDS = ((1.0, "nearly sharp"), (1.8, "slightly soft"), (2.8, "soft"))
NOISE_WORDS = ((3.0, "clean"), (10.0, "faint"), (25.0, "visible"))


def blur_words(sigma: float) -> str:
    return next((w for limit, w in BLUR_WORDS if sigma < limit), "very soft")


def noise_words(sigma: float) -> str:
    return next((w for limit, w in NOISE_WORDS if sigma < limit), "heavy")


# A reading at or above this is "no JPEG" (the readout's none is 100; see engine.inference.damage)
JPEG_NONE_FROM = 97.5


def jpeg_words(quality: float) -> str:
    """``JPEG 62`` or ``no JPEG``: the JPEG quality a knob or a reading stands at."""
    return "no JPEG" if quality >= JPEG_NONE_FROM else f"JPEG {quality:.0f}"


def describe(estimate: DamageEstimate) -> str:
    """``blur σ 2.1 px (soft) · noise σ 12 levels (visible)``, then ``· JPEG quality 62`` or
    ``· no JPEG seen`` when the model reads JPEG."""
    text = (f"blur σ {estimate.blur_sigma:.1f} px ({blur_words(estimate.blur_sigma)}) · "
            f"noise σ {estimate.noise_sigma:.0f} levels ({noise_words(estimate.noise_sigma)})")
    return f"{text} · {estimate.jpeg_words()}" if estimate.jpeg_quality is not None else text


def units_hint(scale: int) -> str:
    """What the two numbers measure, for a tooltip."""
    return (f"Blur σ: the Gaussian blur in high-resolution pixels before the ×{scale} "
            "downscale (about 0.6 nearly sharp, 3.6 very soft). Noise σ: the standard deviation "
            "of the noise in grey levels 0..255 on the photo (5 faint, 15 clearly visible, "
            "30+ heavy). JPEG quality: how hard the photo was compressed (30 heavy blocks, 95 "
            "light), when the model reads it. Estimates, only as good as the model's condition.")


@dataclass(frozen=True)
class RegionReading:
    """One drawn region: its estimate, or why it has none (``problem``, a clause such as
    "it lies outside the 96x72 image")."""

    box: RegionBox
    estimate: DamageEstimate | None = None
    problem: str | None = None


@dataclass(frozen=True)
class DamageReading:
    """The model's reading of one photo. ``no_readout``: why there is none ("" when there is)."""

    photo: DamageEstimate | None
    support: str  # the patches the whole-photo estimate read: "auto" or "random"
    regions: list[RegionReading] = field(default_factory=list)
    no_readout: str = ""


def _model(model_path: Path, cache: ModelCache) -> engine.CMDSR:
    # The CPU copy the model check already loaded: a condition is a small pass, and a GPU
    # stays free for the upscale.
    return cache.get(model_path, "cpu")


def read_damage(
    pixels: np.ndarray,
    regions: Sequence[RegionBox],
    model_path: Path,
    cache: ModelCache,
    *,
    support: str = "auto",
    seed: int = 0,
    problems: Sequence[str | None] = (),
    known: DamageReading | None = None,
    cancel: threading.Event | None = None,
) -> DamageReading:
    """Estimate the whole photo (``support`` auto or random patches) and each region (its
    own patches). ``problems[i]`` (the region list's reason a region is unusable) is passed
    through instead of an estimate; so is a region the engine refuses. ``known``: an earlier
    reading of the same photo, model, support and seed, whose numbers are reused (finding the
    textured patches of a big photo takes seconds; a moved region should not redo it)."""
    model = _model(model_path, cache)
    photo = known.photo if known is not None else None
    if photo is None:
        whole = engine.select_support(pixels, count=model.support_size, size=PATCH_SIZE,
                                      mode=support, seed=seed)
        try:
            photo = engine.estimate_damage(pixels, whole, model, seed=seed)
        except engine.NoDamageReadoutError as exc:
            return DamageReading(None, support, [], str(exc) or NO_READOUT)
    earlier = {r.box: r.estimate for r in known.regions} if known is not None else {}
    readings = []
    for i, box in enumerate(regions):
        if cancel is not None and cancel.is_set():
            raise engine.CancelledError("damage reading cancelled")
        problem = problems[i] if i < len(problems) else None
        if problem is not None:
            readings.append(RegionReading(box, None, f"it {problem}"))
            continue
        estimate = earlier.get(box)
        if estimate is not None:
            readings.append(RegionReading(box, estimate))
            continue
        try:
            readings.append(RegionReading(box, engine.estimate_damage(pixels, [box], model,
                                                                      seed=seed)))
        except engine.SupportRegionError as exc:
            readings.append(RegionReading(box, None, str(exc)))
    return DamageReading(photo, support, readings)


@dataclass(frozen=True)
class DamageTile:
    """One overlay tile in photo pixels with its estimate."""

    x: int
    y: int
    w: int
    h: int
    blur_sigma: float
    noise_sigma: float


def read_damage_map(
    pixels: np.ndarray,
    model_path: Path,
    cache: ModelCache,
    *,
    regions: Sequence[RegionBox] = (),
    seed: int = 0,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> list[DamageTile]:
    """Per-tile estimates (the cells ``Adapt: per region`` conditions on); cells inside a
    region read that region's patches, as the per-region run does. ``NoDamageReadoutError``
    when the model has none."""
    model = _model(model_path, cache)
    result = engine.damage_map(pixels, model, regions=list(regions), seed=seed,
                               progress=progress, cancel=cancel)
    return [DamageTile(b.x, b.y, b.w, b.h, e.blur_sigma, e.noise_sigma)
            for b, e in zip(result.boxes, result.estimates, strict=True)]
