"""CMDSR Studio's engine: the CMDSR network, training, inference and image I/O.

Pure PyTorch/NumPy/OpenCV; never imports Qt (the GUI in ``cmdsr_app`` imports from here).

The names below are imported on first use (PEP 562), so ``import engine`` and ``cmdsr --help``
do not pay for PyTorch (~2 s) until something needs it.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time see __getattr__
    from engine.checkpoint import load_model, read_checkpoint, save_model
    from engine.degrade import DegradationConfig, DegradationParams, degrade, sample_degradation
    from engine.errors import (
        CancelledError,
        CheckpointError,
        CmdsrError,
        ConfigError,
        ImageReadError,
        ImageWriteError,
        SupportRegionError,
    )
    from engine.inference.damage import DamageEstimate, NoDamageReadoutError, estimate_damage
    from engine.inference.devices import available_devices, resolve_device
    from engine.inference.local_adapt import DamageMap, damage_map, upscale_image_local
    from engine.inference.support import Box, SupportSet, select_support, validate_regions
    from engine.inference.upscaler import TileConfig, Upscaler, upscale_image
    from engine.io.fileio import atomic_write
    from engine.io.imageio import (
        SUPPORTED_READ_SUFFIXES,
        SUPPORTED_WRITE_FORMATS,
        Image,
        format_suffix,
        is_supported_image,
        normalise_format,
        output_bit_depth,
        read_image,
        write_image,
    )
    from engine.look import check_look, load_look_model
    from engine.metrics import psnr_y, ssim_y
    from engine.model import CMDSR, SUPPORTED_SCALES, FoldedSRNet, ModelConfig, build_model
    from engine.resources import (
        crisp_model_path,
        default_baseline_path,
        default_model_path,
        sample_image_path,
    )
    from engine.training.config import TrainConfig, TrainProgress
    from engine.training.loop import train

# public name -> the module that defines it, imported when the name is first used
_EXPORTS: dict[str, tuple[str, ...]] = {
    "engine.checkpoint": ("load_model", "read_checkpoint", "save_model"),
    "engine.inference.damage": ("DamageEstimate", "NoDamageReadoutError", "estimate_damage"),
    "engine.degrade": ("DegradationConfig", "DegradationParams", "degrade", "sample_degradation"),
    "engine.errors": (
        "CancelledError", "CheckpointError", "CmdsrError", "ConfigError", "ImageReadError",
        "ImageWriteError", "SupportRegionError",
    ),
    "engine.io.fileio": ("atomic_write",),
    "engine.look": ("check_look", "load_look_model"),
    "engine.io.imageio": (
        "SUPPORTED_READ_SUFFIXES", "SUPPORTED_WRITE_FORMATS", "Image", "format_suffix",
        "is_supported_image", "normalise_format", "output_bit_depth", "read_image", "write_image",
    ),
    "engine.inference.devices": ("available_devices", "resolve_device"),
    "engine.inference.upscaler": ("TileConfig", "Upscaler", "upscale_image"),
    "engine.inference.local_adapt": ("DamageMap", "damage_map", "upscale_image_local"),
    "engine.metrics": ("psnr_y", "ssim_y"),
    "engine.model": ("CMDSR", "SUPPORTED_SCALES", "FoldedSRNet", "ModelConfig", "build_model"),
    "engine.resources": ("crisp_model_path", "default_baseline_path", "default_model_path",
                         "sample_image_path"),
    "engine.inference.support": ("Box", "SupportSet", "select_support", "validate_regions"),
    "engine.training.config": ("TrainConfig", "TrainProgress"),
    "engine.training.loop": ("train",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = [
    "DamageEstimate",
    "NoDamageReadoutError",
    "estimate_damage",
    "DamageMap",
    "damage_map",
    "upscale_image_local",
    "atomic_write",
    "check_look",
    "crisp_model_path",
    "load_look_model",
    "DegradationConfig",
    "DegradationParams",
    "TrainConfig",
    "TrainProgress",
    "degrade",
    "psnr_y",
    "sample_degradation",
    "ssim_y",
    "train",
    "CMDSR",
    "Box",
    "Image",
    "SUPPORTED_READ_SUFFIXES",
    "SUPPORTED_WRITE_FORMATS",
    "format_suffix",
    "is_supported_image",
    "normalise_format",
    "output_bit_depth",
    "SupportSet",
    "TileConfig",
    "Upscaler",
    "available_devices",
    "read_image",
    "resolve_device",
    "select_support",
    "upscale_image",
    "validate_regions",
    "write_image",
    "SUPPORTED_SCALES",
    "CancelledError",
    "CheckpointError",
    "CmdsrError",
    "ConfigError",
    "FoldedSRNet",
    "ImageReadError",
    "ImageWriteError",
    "ModelConfig",
    "SupportRegionError",
    "build_model",
    "default_baseline_path",
    "default_model_path",
    "load_model",
    "read_checkpoint",
    "sample_image_path",
    "save_model",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


# ``degrade`` is a function of the same name as its module. Importing the module
# ``engine.degrade`` sets the package attribute ``degrade`` to it, which would hide the
# function; the package keeps the function, as an eager ``from engine.degrade import degrade`` did.
_SAME_AS_MODULE = frozenset(n for n in _MODULE_OF if f"engine.{n}" in _EXPORTS)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SAME_AS_MODULE and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
