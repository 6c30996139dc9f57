"""Reading a photo's damage from CMDSR's condition vector: blur sigma, noise sigma and the
JPEG quality.

CMDSR's ConditionNet turns a support set into a condition vector that steers the BaseNet; a
model trained with the task contrastive loss places the same degradation at the same spot
whatever the photo. A small *damage head* (a 2-layer MLP) maps that vector to numbers a
user can read:

* ``blur_sigma``: the Gaussian blur sigma in high-resolution pixels, before the x``scale``
  downscale (the degradation model's kernel: 0.6 is nearly sharp, 3.6 very soft);
* ``noise_sigma``: the standard deviation of Gaussian noise in grey levels 0..255 on the
  low-resolution photo itself;
* ``jpeg_quality``: the JPEG quality (30 heavy blocks .. 95 light) the photo looks saved at,
  100 when it shows no JPEG; None from a head fitted before the readout learnt JPEG.

The head is trained on synthetic tasks (photos degraded with ``engine.degrade`` at known blur
and noise) with the model frozen, and is stored inside the model file (``damage_head``); a
model file without it still upscales, it just has no readout. The estimate is only as good as
the condition: a model whose condition does not encode the degradation gives a poor readout
whatever the head.
"""


from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from engine.damage_head import NO_JPEG, DamageHead, damage_head_of
from engine.errors import CmdsrError, ConfigError
from engine.inference.support import DEFAULT_PATCH_SIZE, Box, SupportSet, select_support
from engine.model import CMDSR

log = logging.getLogger(__name__)

# A reading above this is "no JPEG seen": the head is fitted with JPEG at 30..95 and none as
# 100, so halfway between the two ends splits them.
JPEG_SEEN_BELOW = 97.5


class NoDamageReadoutError(CmdsrError):
    """The model file carries no damage head, so it cannot say how damaged a photo is."""


@dataclass(frozen=True)
class DamageEstimate:
    """What the model reads from a support set.

    ``blur_sigma``: Gaussian blur sigma in high-resolution pixels before the downscale (as in
    the degradation model; about 0.2..4). ``noise_sigma``: noise standard deviation in grey
    levels 0..255 on the low-resolution photo. Both are >= 0. ``jpeg_quality``: the JPEG
    quality read (about 30..100, 100 meaning no JPEG), None when the model's readout does not
    read JPEG.
    """

    blur_sigma: float
    noise_sigma: float
    jpeg_quality: float | None = None

    @property
    def jpeg_seen(self) -> bool:
        """Whether the readout finds JPEG compression (False when it cannot read JPEG)."""
        return self.jpeg_quality is not None and self.jpeg_quality < JPEG_SEEN_BELOW

    def jpeg_words(self) -> str:
        """"JPEG quality 62", "no JPEG seen", or "" when JPEG is not read."""
        if self.jpeg_quality is None:
            return ""
        return f"JPEG quality {self.jpeg_quality:.0f}" if self.jpeg_seen else "no JPEG seen"

    def as_dict(self) -> dict[str, float | None]:
        """The JSON shape of ``cmdsr inspect --json``: values rounded to 0.01; the JPEG
        quality (100: none seen) only when the readout reads it."""
        out: dict[str, float | None] = {"blur_sigma": round(self.blur_sigma, 2),
                                        "noise_sigma": round(self.noise_sigma, 2)}
        if self.jpeg_quality is not None:
            out["jpeg_quality"] = round(self.jpeg_quality, 1)
        return out

    def __str__(self) -> str:
        text = f"blur sigma {self.blur_sigma:.2f}, noise sigma {self.noise_sigma:.1f}"
        return f"{text}, {self.jpeg_words()}" if self.jpeg_quality is not None else text


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
    if head.reads_jpeg:  # within 1..100 whatever the head's trained range says
        return [DamageEstimate(float(b), float(n), float(min(max(q, 1.0), NO_JPEG)))
                for b, n, q in values]
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
    """Read blur and noise sigma (and the JPEG quality) from a photo as ``model`` sees it.

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
