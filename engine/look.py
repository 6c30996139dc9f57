"""The Look: one number from Faithful (0) to Crisp (1) by network interpolation.

The shipped faithful model restores what the photo supports; the crisp model is the same
network fine-tuned with a perceptual finish. Users who want something in between get the two
models' weights blended, ``w = (1 - t) * faithful + t * crisp`` for every floating-point tensor,
as ESRGAN does: one forward pass at the faithful model's speed, moving smoothly between the two
looks. The damage readout and the condition map stay the faithful model's, so the knobs and the
damage panel mean the same at every look.

Core: imports the checkpoint layer and the resource paths only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import torch

from engine import resources
from engine.checkpoint import load_model, model_from_state, read_checkpoint
from engine.errors import CheckpointError, ConfigError
from engine.model import CMDSR
from engine.model_parts import MODEL_PARTS

log = logging.getLogger(__name__)



def crisp_model_path() -> Path:
    """The shipped crisp model (``engine.resources.crisp_model_path``), looked up when asked."""
    return resources.crisp_model_path()


def check_look(look: float) -> float:
    """``look`` as a float in 0..1, or a ConfigError a user can read."""
    try:
        value = float(look)
    except (TypeError, ValueError):
        raise ConfigError(f"look must be a number from 0 (faithful) to 1 (crisp), got {look!r}") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"look must be from 0 (faithful) to 1 (crisp), got {look}")
    return value


def _describe(cfg: object) -> str:
    fields = dataclasses.asdict(cfg)  # type: ignore[call-overload]
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def blend_states(
    faithful: dict[str, torch.Tensor],
    crisp: dict[str, torch.Tensor],
    look: float,
    *,
    names: tuple[str, str] = ("faithful", "crisp"),
) -> dict[str, torch.Tensor]:
    """``(1 - look) * faithful + look * crisp`` for every floating-point tensor; other tensors
    (counters, indices) are the faithful model's. Both must hold the same names and shapes
    (CheckpointError naming both otherwise). Look 0 returns the faithful tensors exactly and
    look 1 the crisp ones exactly."""
    look = check_look(look)
    if set(faithful) != set(crisp):
        only = sorted(set(faithful) ^ set(crisp))
        raise CheckpointError(f"{names[1]} and {names[0]}: not the same network "
                              f"({len(only)} parameters differ, e.g. {only[0]}); the look "
                              "blends two models of the same architecture")
    out: dict[str, torch.Tensor] = {}
    for key, f in faithful.items():
        c = crisp[key]
        if f.shape != c.shape:
            raise CheckpointError(f"{names[1]} and {names[0]}: parameter {key} has shape "
                                  f"{list(c.shape)} in one and {list(f.shape)} in the other")
        if not f.is_floating_point():
            out[key] = f.clone()
        elif look == 0.0:
            out[key] = f.float().clone()
        elif look == 1.0:
            out[key] = c.float().clone()
        else:
            out[key] = (1.0 - look) * f.float() + look * c.float()
    return out


def load_look_model(
    faithful_path: str | Path,
    look: float,
    crisp_path: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> CMDSR:
    """The model for ``look`` in 0..1: the faithful model file itself at 0 (the crisp one is not
    read), else the blend of the two files' networks with the faithful file's damage readout and
    condition map. ``crisp_path`` defaults to the shipped ``crisp_model_path()``.

    Raises ConfigError for a look outside 0..1 or a missing crisp model, CheckpointError for a
    crisp model whose network differs from the faithful one (both files named)."""
    look = check_look(look)
    faithful_path = Path(faithful_path)
    if look == 0.0:
        return load_model(faithful_path, device)
    crisp = Path(crisp_path) if crisp_path is not None else crisp_model_path()
    if not crisp.is_file():
        raise ConfigError(f"no crisp model at {crisp}: only look 0 (faithful) is available")
    faithful = load_model(faithful_path, "cpu")
    c_cfg, c_state, _ = read_checkpoint(crisp)
    f_cfg = faithful.config
    if f_cfg != c_cfg:
        raise CheckpointError(
            f"{crisp} and {faithful_path}: the look blends two models of the same architecture, "
            f"but the crisp one is ({_describe(c_cfg)}) and the faithful one ({_describe(f_cfg)})")
    parts = tuple(part.key + "." for part in MODEL_PARTS)
    f_state = {k: v for k, v in faithful.state_dict().items() if not k.startswith(parts)}
    # the authors' files carry unused modulations in a conditioning-off network (as on load)
    c_state = {k: v for k, v in c_state.items() if k in f_state or "modulations" not in k}
    blended = blend_states(f_state, c_state, look, names=(str(faithful_path), str(crisp)))
    model = model_from_state(f_cfg, blended, str(faithful_path))
    # the readout and the knobs' map were fitted to the faithful network's condition, which
    # the crisp fine-tune keeps: they come from the faithful file at every look
    for part in MODEL_PARTS:
        value = part.of(faithful)
        if value is not None:
            part.attach(model, value)
    log.info("look %.2f: %s blended with %s", look, faithful_path.name, crisp.name)
    return model.to(device).eval()
