"""Damage knobs: the condition CMDSR would make for a given damage, so users can set it.

CMDSR reads a photo's damage from its support set and steers the SR network with the
resulting condition vector. A model whose condition encodes the damage (the high-pass
ConditionNet, see ``engine.model``) can also be steered by numbers: a small network, the
*condition map*, turns (blur sigma, noise sigma, JPEG quality) into the condition the
ConditionNet makes for photos with that damage. JPEG quality 100 (``NO_JPEG``) stands for no
JPEG; maps fitted before the knobs learnt JPEG (format 1) take blur and noise only. It is fitted on synthetic tasks (photos degraded at known damage, the
frozen model's conditions as targets: ``engine.training.damage_fit.train_condition_map``)
and stored in the model file (``condition_map``, see ``engine.model_parts``); a file without
one still upscales, it just has no knobs.

Values outside the range the map was fitted on are refused (``check_damage``) rather than
extrapolated: a network asked for a blur it never saw answers with anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine.damage_head import BLUR_NOISE, NO_JPEG, WITH_JPEG
from engine.errors import CheckpointError, ConfigError
from engine.model import CMDSR

log = logging.getLogger(__name__)

MAP_KEY = "condition_map"
# 1: (blur, noise) in; 2: adds ``inputs`` (2, or 3 with the JPEG quality)
MAP_FORMAT_VERSION = 2
DEFAULT_HIDDEN = 128
# what the knobs offer: the range the shipped model's degradations cover
FIT_BLUR = (0.4, 4.0)
FIT_NOISE = (0.0, 50.0)
FIT_JPEG = (30.0, NO_JPEG)


class ConditionMap(nn.Module):
    """(blur sigma, noise sigma[, JPEG quality]) [N, inputs] -> condition [N, cond], with the
    fitted range kept."""

    in_mean: Tensor
    in_std: Tensor
    in_min: Tensor
    in_max: Tensor
    out_mean: Tensor
    out_std: Tensor

    def __init__(self, cond_channels: int, hidden: int = DEFAULT_HIDDEN,
                 inputs: int = BLUR_NOISE) -> None:
        super().__init__()
        if cond_channels < 1 or hidden < 1:
            raise ConfigError(f"condition map sizes must be positive, got {cond_channels}, {hidden}")
        if inputs not in (BLUR_NOISE, WITH_JPEG):
            raise ConfigError(f"a condition map takes blur, noise and maybe JPEG: {inputs} inputs")
        self.cond_channels = cond_channels
        self.hidden = hidden
        self.inputs = inputs
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                                 nn.SiLU(), nn.Linear(hidden, cond_channels))
        top = torch.tensor([4.0, 50.0, NO_JPEG])[:inputs]
        for name, value in (("in_mean", torch.zeros(inputs)), ("in_std", torch.ones(inputs)),
                            ("in_min", torch.zeros(inputs)), ("in_max", top),
                            ("out_mean", torch.zeros(cond_channels)),
                            ("out_std", torch.ones(cond_channels))):
            self.register_buffer(name, value)

    def normalised(self, damage: Tensor) -> Tensor:
        """The MLP's output in standardised condition units (what fitting minimises)."""
        return self.net((damage - self.in_mean) / self.in_std)

    def forward(self, damage: Tensor) -> Tensor:
        return self.normalised(damage) * self.out_std + self.out_mean

    @property
    def blur_range(self) -> tuple[float, float]:
        return float(self.in_min[0]), float(self.in_max[0])

    @property
    def noise_range(self) -> tuple[float, float]:
        return float(self.in_min[1]), float(self.in_max[1])

    @property
    def has_jpeg(self) -> bool:
        """Whether the map takes a JPEG quality (format 2 maps fitted with JPEG)."""
        return self.inputs == WITH_JPEG

    @property
    def jpeg_range(self) -> tuple[float, float] | None:
        """The JPEG qualities the map was fitted on (the top, 100, meaning none), or None."""
        return (float(self.in_min[2]), float(self.in_max[2])) if self.has_jpeg else None

    def check_damage(self, blur: float, noise: float, jpeg: float | None = None) -> None:
        """``ConfigError`` naming the range for a value the map was not fitted on, or for a
        JPEG quality given to a map without a JPEG input."""
        checks = [("blur sigma", blur, self.blur_range), ("noise sigma", noise, self.noise_range)]
        if jpeg is not None:
            if self.jpeg_range is None:
                raise ConfigError("this model's damage knobs have no JPEG quality (its condition "
                                  "map was fitted without JPEG)")
            checks.append(("JPEG quality", jpeg, self.jpeg_range))
        for name, value, (lo, hi) in checks:
            if not (np.isfinite(value) and lo - 1e-6 <= value <= hi + 1e-6):
                raise ConfigError(f"{name} {value:g} is outside what this model was trained on "
                                  f"({lo:g} to {hi:g})")

    def condition(self, blur: float, noise: float, jpeg: float | None = None) -> Tensor:
        """The condition [1, cond] for one damage setting (range checked). A map with a JPEG
        input takes ``jpeg`` None as no JPEG (quality 100)."""
        self.check_damage(blur, noise, jpeg)
        values = [blur, noise]
        if self.has_jpeg:
            values.append(NO_JPEG if jpeg is None else jpeg)
        device = self.in_mean.device
        with torch.no_grad():
            return self(torch.tensor([values], dtype=torch.float32, device=device))


def condition_map_of(model: CMDSR) -> ConditionMap | None:
    cmap = getattr(model, MAP_KEY, None)
    return cmap if isinstance(cmap, ConditionMap) else None


def attach_condition_map(model: CMDSR, cmap: ConditionMap | None) -> None:
    """Give ``model`` its condition map (moved to its device), or remove it with None."""
    if cmap is None:
        if condition_map_of(model) is not None:
            delattr(model, MAP_KEY)
        return
    if not model.config.conditioning or cmap.cond_channels != model.config.cond_channels:
        raise ConfigError(f"the condition map makes {cmap.cond_channels}-d conditions; this "
                          "model makes none or others")
    device = next(model.parameters()).device
    model.add_module(MAP_KEY, cmap.to(device).eval())


def map_to_dict(cmap: ConditionMap, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "version": MAP_FORMAT_VERSION,
        "cond_channels": cmap.cond_channels,
        "hidden": cmap.hidden,
        "inputs": cmap.inputs,
        "params": {k: v.detach().float().cpu().clone() for k, v in cmap.state_dict().items()},
    }
    if info:
        out["info"] = dict(info)
    return out


def map_from_dict(obj: Any, source: str = "model file") -> ConditionMap:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: the condition map is not a dict")
    version = obj.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{source}: the condition map has no valid format version "
                              f"({version!r})")
    if version > MAP_FORMAT_VERSION:
        raise CheckpointError(f"{source}: condition map version {version} is newer than this "
                              f"program understands ({MAP_FORMAT_VERSION}); update CMDSR Studio")
    try:
        # version 1 maps take blur and noise only
        inputs = int(obj["inputs"]) if version >= 2 else BLUR_NOISE
        cmap = ConditionMap(int(obj["cond_channels"]), int(obj["hidden"]), inputs)
        params = obj["params"]
        if not isinstance(params, Mapping) or not all(isinstance(v, Tensor) for v in params.values()):
            raise CheckpointError(f"{source}: the condition map's parameters are not tensors")
        cmap.load_state_dict({k: v.float() for k, v in params.items()}, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: damaged condition map ({detail})") from None
    return cmap.eval()
