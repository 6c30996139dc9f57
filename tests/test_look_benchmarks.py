"""The Look's benchmarks: the detail measure of look_quality.py, and the tiled Real-ESRGAN runner
(checked against an untiled run where the bench extra is installed)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))  # look_quality imports its sibling realesrgan_ncnn
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_detail_is_zero_on_flat_and_falls_with_blur():
    import cv2

    quality = _load("look_quality")
    flat = np.full((40, 40, 3), 128.0, np.float32)
    assert quality.detail(flat) == 0.0
    rng = np.random.default_rng(0)
    sharp = rng.uniform(0, 255, (40, 40, 3)).astype(np.float32)
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    assert quality.detail(sharp) > 3 * quality.detail(soft) > 0


def test_tiled_realesrgan_matches_the_untiled_run():
    ncnn_runner = _load("realesrgan_ncnn")
    if isinstance(ncnn_runner.model_files(), str):
        pytest.skip(ncnn_runner.model_files())
    rng = np.random.default_rng(1)
    import cv2

    photo = cv2.GaussianBlur(rng.uniform(0, 255, (40, 52, 3)).astype(np.float32), (0, 0), 1.0)
    whole = ncnn_runner.RealESRGAN(threads=1, tile=1000).upscale(photo)
    tiled = ncnn_runner.RealESRGAN(threads=1, tile=24, margin=10).upscale(photo)
    assert whole.shape == tiled.shape == (160, 208, 3) and whole.dtype == np.uint8
    from engine.metrics import psnr_y

    # the network sees less context at a tile's margin: faint differences, never a misplaced
    # tile (which would fall to about 20 dB)
    assert psnr_y(tiled.astype(np.float32), whole.astype(np.float32)) > 38.0
