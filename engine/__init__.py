"""CMDSR Studio's engine: the CMDSR network, training, inference and image I/O.

Pure PyTorch/NumPy/OpenCV; never imports Qt (the GUI in ``cmdsr_app`` imports from here).
"""

from __future__ import annotations

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
from engine.fileio import atomic_write
from engine.imageio import (
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
from engine.infer import TileConfig, Upscaler, available_devices, resolve_device, upscale_image
from engine.metrics import psnr_y, ssim_y
from engine.model import CMDSR, SUPPORTED_SCALES, FoldedSRNet, ModelConfig, build_model
from engine.resources import default_baseline_path, default_model_path, sample_image_path
from engine.support import Box, SupportSet, select_support, validate_regions
from engine.train import TrainConfig, TrainProgress, train

__all__ = [
    "atomic_write",
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
