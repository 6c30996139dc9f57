"""Where the shipped files (default models, sample photo) live, in a checkout and when frozen."""

from __future__ import annotations

import sys
from pathlib import Path

DEFAULT_MODEL_NAME = "cmdsr_x4.pt"
DEFAULT_BASELINE_NAME = "basenet_x4.pt"
CRISP_MODEL_NAME = "cmdsr_x4_crisp.pt"  # the default's perceptual twin (engine.look)
SAMPLE_NAME = "sample.png"


def resources_dir() -> Path:
    """``resources/`` beside the packages, or inside a PyInstaller bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root) / "resources"
    return Path(__file__).resolve().parent.parent / "resources"


def default_model_path() -> Path:
    """The shipped CMDSR x4 model, used when the user names none."""
    return resources_dir() / "models" / DEFAULT_MODEL_NAME


def default_baseline_path() -> Path:
    """The shipped conditioning-off BaseNet (same training budget), for comparisons."""
    return resources_dir() / "models" / DEFAULT_BASELINE_NAME


def crisp_model_path() -> Path:
    """The shipped crisp model the Look blends with the default (it may be absent: then only
    look 0, the faithful default, is offered)."""
    return resources_dir() / "models" / CRISP_MODEL_NAME


def sample_image_path() -> Path:
    """A degraded sample photo to try the app on."""
    return resources_dir() / "samples" / SAMPLE_NAME
