"""The damage head: a small MLP that maps CMDSR's condition vector to (blur sigma, noise sigma),
stored inside the model file under ``damage_head`` (see ``engine.model_parts``).

Reading a photo's damage with it is ``engine.inference.damage``; fitting it to a trained model
is ``engine.training.damage_fit``. Core: imports only the model and the errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from engine.errors import CheckpointError, ConfigError
from engine.model import CMDSR

HEAD_KEY = "damage_head"
HEAD_FORMAT_VERSION = 1
DEFAULT_HIDDEN = 64
# The ranges the shipped readout is trained on: the blur of the training degradations and
# the noise a photo plausibly carries.
TRAIN_BLUR = (0.2, 4.0)
TRAIN_NOISE = (0.0, 50.0)


class DamageHead(nn.Module):
    """Condition [N, cond] -> (blur sigma, noise sigma) [N, 2], unclamped.

    Inputs and outputs are standardised with statistics fixed at training time (buffers), so
    the MLP works on well-scaled numbers whatever the condition's range.
    """

    in_mean: Tensor
    in_std: Tensor
    out_mean: Tensor
    out_std: Tensor
    out_min: Tensor
    out_max: Tensor

    def __init__(self, cond_channels: int, hidden: int = DEFAULT_HIDDEN) -> None:
        super().__init__()
        if cond_channels < 1 or hidden < 1:
            raise ConfigError(f"damage head sizes must be positive, got {cond_channels}, {hidden}")
        self.cond_channels = cond_channels
        self.hidden = hidden
        self.net = nn.Sequential(nn.Linear(cond_channels, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.register_buffer("in_mean", torch.zeros(cond_channels))
        self.register_buffer("in_std", torch.ones(cond_channels))
        self.register_buffer("out_mean", torch.zeros(2))
        self.register_buffer("out_std", torch.ones(2))
        # the range the head was trained on: a condition unlike any seen in training must not
        # produce a blur of 9 or a negative noise
        self.register_buffer("out_min", torch.zeros(2))
        self.register_buffer("out_max", torch.full((2,), 255.0))

    def normalised(self, condition: Tensor) -> Tensor:
        """The MLP's output in standardised units (what training fits)."""
        return self.net((condition - self.in_mean) / self.in_std)

    def forward(self, condition: Tensor) -> Tensor:
        """Sigmas [N, 2], kept within the range seen in training."""
        value = self.normalised(condition) * self.out_std + self.out_mean
        return torch.maximum(torch.minimum(value, self.out_max), self.out_min)


# --------------------------------------------------------------------------- model files


def damage_head_of(model: CMDSR) -> DamageHead | None:
    """The damage head a loaded model carries, or None."""
    head = getattr(model, HEAD_KEY, None)
    return head if isinstance(head, DamageHead) else None


def attach_damage_head(model: CMDSR, head: DamageHead | None) -> None:
    """Give ``model`` a damage head (moved to the model's device), or remove it with None.
    It travels with the model (``.to``, deep copies) and ``save_model`` stores it."""
    if head is None:
        if damage_head_of(model) is not None:
            delattr(model, HEAD_KEY)
        return
    if model.config.conditioning is False:
        raise ConfigError("a damage head reads the condition: this model has conditioning off")
    if head.cond_channels != model.config.cond_channels:
        raise ConfigError(f"the damage head reads {head.cond_channels}-d conditions, the model "
                          f"makes {model.config.cond_channels}-d ones")
    device = next(model.parameters()).device
    model.add_module(HEAD_KEY, head.to(device).eval())


def head_to_dict(head: DamageHead, info: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The plain dict stored under ``damage_head`` in a model file (float32 tensors only)."""
    out: dict[str, Any] = {
        "version": HEAD_FORMAT_VERSION,
        "cond_channels": head.cond_channels,
        "hidden": head.hidden,
        "params": {k: v.detach().float().cpu().clone() for k, v in head.state_dict().items()},
    }
    if info:
        out["info"] = dict(info)
    return out


def head_from_dict(obj: Any, source: str = "model file") -> DamageHead:
    """Rebuild a damage head from its stored dict; ``CheckpointError`` if it is malformed."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: the damage readout is not a dict")
    version = obj.get("version")
    if not isinstance(version, int) or version > HEAD_FORMAT_VERSION:
        raise CheckpointError(f"{source}: damage readout version {version!r} is newer than this "
                              f"program understands ({HEAD_FORMAT_VERSION}); update CMDSR Studio")
    try:
        head = DamageHead(int(obj["cond_channels"]), int(obj["hidden"]))
        params = obj["params"]
        if not isinstance(params, Mapping) or not all(isinstance(v, Tensor) for v in params.values()):
            raise CheckpointError(f"{source}: the damage readout's parameters are not tensors")
        state = {k: v.float() for k, v in params.items()}
        # heads written before the trained range was stored: clamped at 0 only
        state.setdefault("out_min", head.out_min.clone())
        state.setdefault("out_max", head.out_max.clone())
        head.load_state_dict(state, strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, ConfigError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{source}: damaged damage readout ({detail})") from None
    return head.eval()


def spread(values: Tensor) -> Tensor:
    """Per-column standard deviation of ``values`` [N, C], floored at 5% of its mean (and
    1e-6): a column that hardly varies in training must not blow up a standardisation when
    a new photo moves it."""
    std = values.std(0)
    return std.clamp_min(max(1e-6, 0.05 * float(std.mean())))
