"""The extra parts a model file may carry beside the network: the damage head
(``damage_head``) and the condition map (``condition_map``).

Each part is a small ``nn.Module`` attached to the model under its key and stored in the
file as a plain dict of float32 tensors under the same key. ``engine.checkpoint`` reads and
writes whatever parts it is given (``MODEL_PARTS`` by default) without knowing what they are.
Core: imports only the parts' own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from engine import condition_map, damage_head
from engine.errors import ConfigError
from engine.model import CMDSR, ModelConfig


@dataclass(frozen=True)
class ModelPart:
    """How one extra part travels between a model and its file.

    ``key``: the model attribute and the file's dict key; ``kind``: its module class;
    ``to_dict(part, info)`` / ``from_dict(obj, source)``: the stored dict (``from_dict``
    raises ``CheckpointError`` on a malformed one); ``attach(model, part)``: puts it on the
    model; ``check(config, part)``: ``ConfigError`` if the part does not fit a model of that
    config.
    """

    key: str
    kind: type[nn.Module]
    to_dict: Callable[[Any, Mapping[str, Any] | None], dict[str, Any]]
    from_dict: Callable[[Any, str], nn.Module]
    attach: Callable[[CMDSR, Any], None]
    check: Callable[[ModelConfig, Any], None]

    def of(self, model: nn.Module) -> nn.Module | None:
        """The part ``model`` carries, or None."""
        part = getattr(model, self.key, None)
        return part if isinstance(part, self.kind) else None


def _check_head(cfg: ModelConfig, head: damage_head.DamageHead) -> None:
    if not cfg.conditioning or head.cond_channels != cfg.cond_channels:
        raise ConfigError(f"the damage readout reads {head.cond_channels}-d conditions; this "
                          "model makes none or others")


def _check_map(cfg: ModelConfig, cmap: condition_map.ConditionMap) -> None:
    if not cfg.conditioning or cmap.cond_channels != cfg.cond_channels:
        raise ConfigError(f"the condition map makes {cmap.cond_channels}-d conditions; this "
                          "model reads none or others")


DAMAGE_HEAD = ModelPart(damage_head.HEAD_KEY, damage_head.DamageHead, damage_head.head_to_dict,
                        damage_head.head_from_dict, damage_head.attach_damage_head, _check_head)
CONDITION_MAP = ModelPart(condition_map.MAP_KEY, condition_map.ConditionMap,
                          condition_map.map_to_dict, condition_map.map_from_dict,
                          condition_map.attach_condition_map, _check_map)
MODEL_PARTS: tuple[ModelPart, ...] = (DAMAGE_HEAD, CONDITION_MAP)
