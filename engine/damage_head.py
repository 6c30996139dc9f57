"""The damage head: a small MLP that maps CMDSR's condition vector to (blur sigma, noise sigma)
and, from format 2 on, the JPEG quality, stored inside the model file under ``damage_head``
(see ``engine.model_parts``).

JPEG quality is read on the encoder's 1..100 scale with ``NO_JPEG`` (100) standing for "no JPEG
step": quality 100 is as close to lossless as JPEG gets, so "none" and "100" are one end of the
same scale and the head can be fitted with one regression target.

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
# 1: (blur, noise); 2: adds ``outputs`` (2, or 3 with the JPEG quality)
HEAD_FORMAT_VERSION = 2
BLUR_NOISE, WITH_JPEG = 2, 3  # the head's outputs without and with the JPEG reading
NO_JPEG = 100.0
DEFAULT_HIDDEN = 64
# The ranges the shipped readout is trained on: the blur of the training degradations and
# the noise a photo plausibly carries.
TRAIN_BLUR = (0.2, 4.0)
TRAIN_NOISE = (0.0, 50.0)
# JPEG as photos carry it: a share of the tasks with none, the others at a quality drawn here
TRAIN_JPEG = (30, 95)
TRAIN_JPEG_SHARE = 0.6


class DamageHead(nn.Module):
    """Condition [N, cond] -> (blur sigma, noise sigma[, JPEG quality]) [N, outputs].

    Inputs and outputs are standardised with statistics fixed at training time (buffers), so
    the MLP works on well-scaled numbers whatever the condition's range.
    """

    in_mean: Tensor
    in_std: Tensor
    out_mean: Tensor
    out_std: Tensor
    out_min: Tensor
    out_max: Tensor

    def __init__(self, cond_channels: int, hidden: int = DEFAULT_HIDDEN,
                 outputs: int = BLUR_NOISE) -> None:
        super().__init__()
        if cond_channels < 1 or hidden < 1:
            raise ConfigError(f"damage head sizes must be positive, got {cond_channels}, {hidden}")
        if outputs not in (BLUR_NOISE, WITH_JPEG):
            raise ConfigError(f"a damage head reads blur, noise and maybe JPEG: {outputs} outputs")
        self.cond_channels = cond_channels
        self.hidden = hidden
        self.outputs = outputs
        self.net = nn.Sequential(nn.Linear(cond_channels, hidden), nn.ReLU(),
                                 nn.Linear(hidden, outputs))
        self.register_buffer("in_mean", torch.zeros(cond_channels))
        self.register_buffer("in_std", torch.ones(cond_channels))
        self.register_buffer("out_mean", torch.zeros(outputs))
        self.register_buffer("out_std", torch.ones(outputs))
        # the range the head was trained on: a condition unlike any seen in training must not
        # produce a blur of 9 or a negative noise
        self.register_buffer("out_min", torch.zeros(outputs))
        self.register_buffer("out_max", torch.full((outputs,), 255.0))

    @property
    def reads_jpeg(self) -> bool:
        """Whether the head reads the JPEG quality (format 2 heads fitted with JPEG)."""
        return self.outputs == WITH_JPEG

    def normalised(self, condition: Tensor) -> Tensor:
        """The MLP's output in standardised units (what training fits)."""
        return self.net((condition - self.in_mean) / self.in_std)

    def forward(self, condition: Tensor) -> Tensor:
        """Sigmas [N, 2], kept within the range seen in training."""
        value = self.normalised(condition) * self.out_std + self.out_mean
        return torch.maximum(torch.minimum(value, self.out_max), self.out_min)


def joined_heads(blur_noise: DamageHead, jpeg: DamageHead) -> DamageHead:
    """One head that reads blur and noise exactly as ``blur_noise`` does and the JPEG quality
    as ``jpeg`` (a 3-output head) does: their hidden units side by side. A readout trained
    together with the ConditionNet keeps its blur and noise when it learns JPEG afterwards."""
    if not jpeg.reads_jpeg or blur_noise.cond_channels != jpeg.cond_channels:
        raise ConfigError("joined_heads needs a JPEG-reading head for the same conditions")
    joined = DamageHead(blur_noise.cond_channels, blur_noise.hidden + jpeg.hidden, WITH_JPEG)
    first_a, last_a = blur_noise.net[0], blur_noise.net[2]
    first_b, last_b = jpeg.net[0], jpeg.net[2]
    assert isinstance(first_a, nn.Linear) and isinstance(last_a, nn.Linear)
    assert isinstance(first_b, nn.Linear) and isinstance(last_b, nn.Linear)
    first, last = joined.net[0], joined.net[2]
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    h = blur_noise.hidden
    with torch.no_grad():
        joined.in_mean.copy_(blur_noise.in_mean)
        joined.in_std.copy_(blur_noise.in_std)
        # the JPEG units saw (c - m_b) / s_b; rewritten for (c - m_a) / s_a, exactly
        ratio = blur_noise.in_std / jpeg.in_std
        shift = (blur_noise.in_mean - jpeg.in_mean) / jpeg.in_std
        first.weight.copy_(torch.cat([first_a.weight, first_b.weight * ratio]))
        first.bias.copy_(torch.cat([first_a.bias, first_b.bias + first_b.weight @ shift]))
        last.weight.zero_()
        last.weight[:2, :h].copy_(last_a.weight)
        last.weight[2, h:].copy_(last_b.weight[2])
        last.bias.copy_(torch.cat([last_a.bias, last_b.bias[2:]]))
        for name in ("out_mean", "out_std", "out_min", "out_max"):
            getattr(joined, name).copy_(torch.cat([getattr(blur_noise, name)[:2],
                                                   getattr(jpeg, name)[2:]]))
    return joined.eval()


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
        "outputs": head.outputs,
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
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{source}: the damage readout has no valid format version "
                              f"({version!r})")
    if version > HEAD_FORMAT_VERSION:
        raise CheckpointError(f"{source}: damage readout version {version} is newer than this "
                              f"program understands ({HEAD_FORMAT_VERSION}); update CMDSR Studio")
    try:
        # version 1 heads read blur and noise only
        outputs = int(obj["outputs"]) if version >= 2 else BLUR_NOISE
        head = DamageHead(int(obj["cond_channels"]), int(obj["hidden"]), outputs)
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
