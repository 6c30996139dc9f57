"""Model files: CMDSR Studio's versioned checkpoints and the authors' plain state_dict.

Everything is read with ``torch.load(..., weights_only=True)``: a model file can never run
code on the user's machine. Anything that is not a usable CMDSR network raises
``CheckpointError`` naming the file and the problem.

A CMDSR Studio file may also carry extra parts beside the network, each a small dict of
tensors under its own key (``engine.model_parts``: the damage head, the condition map); this
module stores and reads whatever parts it is given, and files without them load as before.
"""

from __future__ import annotations

import dataclasses
import logging
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from engine.errors import CheckpointError, ConfigError
from engine.io.fileio import atomic_write
from engine.model import CMDSR, ModelConfig, build_model
from engine.model_parts import MODEL_PARTS, ModelPart

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
    cfg, tensors, meta, _parts = _read_checkpoint(Path(path))
    return cfg, tensors, meta


def read_part(path: str | Path, part: ModelPart) -> nn.Module | None:
    """The extra ``part`` (e.g. ``model_parts.DAMAGE_HEAD``) a model file carries, or None
    (older files, the authors' file)."""
    return _read_checkpoint(Path(path), (part,))[3].get(part.key)


def stored_parts(path: str | Path, parts: Sequence[ModelPart] = MODEL_PARTS) -> dict[str, Any]:
    """The extra ``parts`` a model file carries, as stored (each checked to load and to fit
    its model), so they can go into another file unchanged, their info included."""
    path = Path(path)
    found = _read_checkpoint(path, parts)[3]
    if not found:
        return {}
    obj = _read(path)
    return {key: obj[key] for key in found}


def _read_checkpoint(
    path: Path, parts: Sequence[ModelPart] = MODEL_PARTS,
) -> tuple[ModelConfig, dict[str, Tensor], dict[str, Any], dict[str, nn.Module]]:
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a model's weights")
    meta: dict[str, Any] = {}
    found: dict[str, nn.Module] = {}
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
        part_keys = {part.key for part in MODEL_PARTS} | {part.key for part in parts}
        meta = {k: v for k, v in obj.items()
                if k not in ("params", "optim", "config") and k not in part_keys}
        for part in parts:
            if part.key in obj:
                found[part.key] = part.from_dict(obj[part.key], str(path))
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
    for part in parts:
        if part.key in found:
            try:
                part.check(cfg, found[part.key])
            except ConfigError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
    return cfg, tensors, meta, found


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


def load_model(
    path: str | Path,
    device: str | torch.device = "cpu",
    *,
    parts: Sequence[ModelPart] = MODEL_PARTS,
) -> CMDSR:
    """Load a CMDSR Studio checkpoint or the authors' ``CMDSR_model.pth``, ready for inference,
    with the extra ``parts`` its file carries attached."""
    cfg, state, meta, found = _read_checkpoint(Path(path), parts)
    model = model_from_state(cfg, state, str(path))
    for part in parts:
        if part.key in found:
            part.attach(model, found[part.key])  # checked to fit when read
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
    parts: Sequence[ModelPart] = MODEL_PARTS,
) -> dict[str, Any]:
    """The versioned dict CMDSR Studio saves (optionally with fp16 weights to ship). The extra
    ``parts`` attached to ``model`` (damage head, condition map) are stored apart, each under
    its key and always float32, so programs that do not know them still read the network's
    parameters."""
    prefixes = tuple(part.key + "." for part in parts)
    params = {
        k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
        for k, v in model.state_dict().items()
        if not k.startswith(prefixes)
    }
    out: dict[str, Any] = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": dataclasses.asdict(model.config),
        "params": params,
        "step": int(step),
    }
    for part in parts:
        value = part.of(model)
        if value is not None:
            out[part.key] = part.to_dict(value, None)
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


def save_part(
    source: str | Path,
    part: ModelPart,
    value: nn.Module,
    out: str | Path,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``source``'s model file to ``out`` with ``value`` as its ``part``.

    A CMDSR Studio file keeps everything it holds (parameters and their precision, step,
    metadata, other parts) and gains or replaces ``part``; the authors' plain state_dict is
    converted to CMDSR Studio's format first. ``info`` (e.g. the part's measured errors) is
    stored with it. ``CheckpointError`` if the part does not fit the model.
    """
    source = Path(source)
    cfg = _read_checkpoint(source, ())[0]
    try:
        part.check(cfg, value)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    obj = _read(source)
    if isinstance(obj, Mapping) and obj.get("format") == FORMAT:
        saved = dict(obj)
    else:
        saved = checkpoint_dict(load_model(source))
    saved[part.key] = part.to_dict(value, info)
    return atomic_torch_save(saved, out)
