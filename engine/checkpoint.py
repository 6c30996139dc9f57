"""Model files: CMDSR Studio's versioned checkpoints and the authors' plain state_dict.

Everything is read with ``torch.load(..., weights_only=True)``: a model file can never run
code on the user's machine. Anything that is not a usable CMDSR network raises
``CheckpointError`` naming the file and the problem.

A CMDSR Studio file may also carry a damage readout (``damage_head``: a small dict of tensors,
see ``engine.damage``); files without one load as before, with no readout.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from engine.condition_map import (
    MAP_KEY,
    ConditionMap,
    attach_condition_map,
    map_from_dict,
    map_to_dict,
)
from engine.damage import HEAD_KEY, DamageHead, attach_damage_head, head_from_dict, head_to_dict
from engine.errors import CheckpointError, ConfigError
from engine.fileio import atomic_write
from engine.model import CMDSR, ModelConfig, build_model

log = logging.getLogger(__name__)

FORMAT = "cmdsr-studio-checkpoint"
FORMAT_VERSION = 1


def config_from_state_dict(state: Mapping[str, Tensor], source: str = "state_dict") -> ModelConfig:
    """Infer the architecture (scale, channels, blocks, support size, the ConditionNet's input
    view) from tensor shapes and names."""
    try:
        w_in = state["sr_net.input_conv.weight"]
        channels = int(w_in.shape[0])
        blocks = 0
        while f"sr_net.backbone.{blocks}.conv1.weight" in state:
            blocks += 1
        up0 = state["sr_net.upsampler.0.weight"]
        if up0.shape[0] == 9 * channels:
            scale = 3
        elif up0.shape[0] == 4 * channels:
            scale = 4 if "sr_net.upsampler.2.weight" in state else 2
        else:
            raise CheckpointError(
                f"{source}: upsampler has {up0.shape[0]} output channels, "
                f"expected {4 * channels} or {9 * channels}"
            )
        conditioning = "condition_net.condition.0.weight" in state
        support_size, cond_channels, view = 20, 128, "raw"
        if conditioning:
            c0 = state["condition_net.condition.0.weight"]
            if c0.shape[1] % 3:
                raise CheckpointError(
                    f"{source}: ConditionNet takes {c0.shape[1]} channels, not a multiple of 3"
                )
            support_size = int(c0.shape[1]) // 3
            cond_channels = int(state["condition_net.condition.7.weight"].shape[0])
        # only the high-pass view standardises its condition (stored statistics)
        view = "highpass" if "condition_net.cond_shift" in state else "raw"
    except KeyError as exc:
        raise CheckpointError(
            f"{source}: not a CMDSR network (missing parameter {exc.args[0]!r})"
        ) from None
    try:
        return ModelConfig(
            scale=scale,
            channels=channels,
            blocks=blocks,
            support_size=support_size,
            cond_channels=cond_channels,
            conditioning=conditioning,
            condition_input=view,
        )
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _normalise_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Accept the authors' full model, a bare BaseNet (``sr_net`` without prefix) and
    DataParallel's ``module.`` prefix."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if not isinstance(key, str):
            continue
        if key.startswith("module."):
            key = key[len("module.") :]
        if not key.startswith(("sr_net.", "condition_net.")):
            key = "sr_net." + key
        out[key] = value
    return out


def _read(path: Path) -> Any:
    if not path.exists():
        raise CheckpointError(f"{path}: model file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, not a model file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(
                f"{path}: refused to load: the file contains code or objects that are not "
                "plain weights (only tensors are accepted for safety)"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch model file ({first})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: the file is truncated or corrupt ({detail})") from None
    except Exception as exc:  # torch raises assorted types for garbage input
        raise CheckpointError(f"{path}: not a PyTorch model file ({type(exc).__name__})") from None


def read_checkpoint(path: str | Path) -> tuple[ModelConfig, dict[str, Tensor], dict[str, Any]]:
    """Read a model file: returns (config, float32 state_dict, metadata)."""
    cfg, tensors, meta, _head = _read_checkpoint(Path(path))
    return cfg, tensors, meta


def read_condition_map(path: str | Path) -> ConditionMap | None:
    """The condition map (damage knobs) a model file carries, or None."""
    obj = _read(Path(path))
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT and MAP_KEY in obj:
        return map_from_dict(obj[MAP_KEY], str(path))
    return None


def read_damage_head(path: str | Path) -> DamageHead | None:
    """The damage readout a model file carries, or None (older files, the authors' file)."""
    return _read_checkpoint(Path(path))[3]


def _read_checkpoint(
    path: Path,
) -> tuple[ModelConfig, dict[str, Tensor], dict[str, Any], DamageHead | None]:
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a model's weights")
    meta: dict[str, Any] = {}
    head: DamageHead | None = None
    if obj.get("format") == FORMAT:
        version = obj.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise CheckpointError(
                f"{path}: checkpoint format version {version!r} is newer than this program "
                f"understands ({FORMAT_VERSION}); update CMDSR Studio"
            )
        params = obj.get("params")
        if not isinstance(params, Mapping):
            raise CheckpointError(f"{path}: checkpoint has no parameters")
        state = _normalise_keys(params)
        cfg_dict = obj.get("config")
        try:
            cfg = ModelConfig(**cfg_dict) if isinstance(cfg_dict, Mapping) else None
        except (TypeError, ConfigError) as exc:
            raise CheckpointError(f"{path}: invalid model config in checkpoint ({exc})") from None
        meta = {k: v for k, v in obj.items() if k not in ("params", "optim", "config", HEAD_KEY, MAP_KEY)}
        if HEAD_KEY in obj:
            head = head_from_dict(obj[HEAD_KEY], str(path))
        if cfg is None:
            cfg = config_from_state_dict(state, str(path))
    else:
        if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
            obj = obj["state_dict"]
        state = _normalise_keys(obj)
        cfg = config_from_state_dict(state, str(path))
        meta = {"format": "authors-state-dict"}
    tensors: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise CheckpointError(f"{path}: parameter {key!r} is not a tensor")
        tensors[key] = value.float() if value.is_floating_point() else value
    if head is not None and (not cfg.conditioning or head.cond_channels != cfg.cond_channels):
        raise CheckpointError(f"{path}: the damage readout does not fit this model "
                              f"({head.cond_channels}-d conditions)")
    return cfg, tensors, meta, head


def model_from_state(
    cfg: ModelConfig, state: Mapping[str, Tensor], source: str = "state_dict"
) -> CMDSR:
    """Build ``cfg``'s network and load ``state`` into it strictly."""
    model = build_model(cfg)
    own = model.state_dict()
    # Modulations of a conditioned-off model are never used: the authors' BaseNet carries
    # them anyway, so drop them instead of refusing the file.
    state = {k: v for k, v in state.items() if k in own or "modulations" not in k}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} parameters (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected parameters (e.g. {unexpected[0]})")
        raise CheckpointError(f"{source}: not a CMDSR network: " + ", ".join(parts))
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{source}: parameter {key} has shape {list(value.shape)}, "
                f"expected {list(own[key].shape)}"
            )
    model.load_state_dict(state, strict=True)
    return model


def load_model(path: str | Path, device: str | torch.device = "cpu") -> CMDSR:
    """Load a CMDSR Studio checkpoint or the authors' ``CMDSR_model.pth``, ready for inference."""
    cfg, state, meta, head = _read_checkpoint(Path(path))
    model = model_from_state(cfg, state, str(path))
    if head is not None:
        attach_damage_head(model, head)
    cmap = read_condition_map(path)
    if cmap is not None:
        try:
            attach_condition_map(model, cmap)
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
    log.info(
        "loaded %s: x%d, support %d, conditioning %s (%s)",
        path, cfg.scale, cfg.support_size, "on" if cfg.conditioning else "off",
        meta.get("format", "?"),
    )
    return model.to(device).eval()


def checkpoint_dict(
    model: CMDSR,
    *,
    step: int = 0,
    half: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The versioned dict CMDSR Studio saves (optionally with fp16 weights to ship). A damage
    head attached to ``model`` is stored apart (``damage_head``, always float32), so programs
    that do not know it still read the network's parameters."""
    params = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
        if not k.startswith((HEAD_KEY + ".", MAP_KEY + "."))
    }
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(model.config),
        "params": params,
        "step": int(step),
    }
    head = getattr(model, HEAD_KEY, None)
    if isinstance(head, DamageHead):
        out[HEAD_KEY] = head_to_dict(head)
    cmap = getattr(model, MAP_KEY, None)
    if isinstance(cmap, ConditionMap):
        out[MAP_KEY] = map_to_dict(cmap)
    if extra:
        out.update(extra)
    return out


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` with torch.save to a temp file beside ``path``, then rename: a crash
    mid-write never leaves a half-written file under the final name."""
    return atomic_write(path, lambda fh: torch.save(obj, fh), overwrite=True)


def save_model(
    model: CMDSR,
    path: str | Path,
    *,
    step: int = 0,
    half: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save ``model`` in CMDSR Studio's checkpoint format (atomically)."""
    return atomic_torch_save(checkpoint_dict(model, step=step, half=half, extra=extra), path)


def save_damage_head(
    source: str | Path,
    head: DamageHead,
    out: str | Path,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``source``'s model file to ``out`` with ``head`` as its damage readout.

    A CMDSR Studio file keeps everything it holds (parameters and their precision, step,
    metadata) and gains or replaces ``damage_head``; the authors' plain state_dict is
    converted to CMDSR Studio's format first. ``info`` (e.g. the readout's measured errors)
    is stored with the head.
    """
    source = Path(source)
    cfg, _state, _meta, _old = _read_checkpoint(source)
    if not cfg.conditioning or head.cond_channels != cfg.cond_channels:
        raise CheckpointError(f"{source}: the damage readout reads {head.cond_channels}-d "
                              "conditions; this model makes none or others")
    obj = _read(source)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        saved = dict(obj)
    else:
        saved = checkpoint_dict(load_model(source))
    saved[HEAD_KEY] = head_to_dict(head, info)
    return atomic_torch_save(saved, out)


def save_condition_map(
    source: str | Path,
    cmap: ConditionMap,
    out: str | Path,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``source``'s model file to ``out`` with ``cmap`` as its condition map (damage
    knobs), keeping everything else it holds (as ``save_damage_head`` does for a readout)."""
    source = Path(source)
    cfg, _state, _meta, _head = _read_checkpoint(source)
    if not cfg.conditioning or cmap.cond_channels != cfg.cond_channels:
        raise CheckpointError(f"{source}: the condition map makes {cmap.cond_channels}-d "
                              "conditions; this model reads none or others")
    obj = _read(source)
    saved = dict(obj) if isinstance(obj, Mapping) and obj.get("format") == FORMAT else checkpoint_dict(load_model(source))
    saved[MAP_KEY] = map_to_dict(cmap, info)
    return atomic_torch_save(saved, out)
