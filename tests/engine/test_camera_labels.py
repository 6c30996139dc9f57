"""A camera-noisy task is labelled with the noise it carries, not as clean: the damage readout
and the condition's pairing learn from these labels (engine.degrade.DegradationParams.noise_level)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from engine.config import apply_overrides
from engine.data import write_synthetic_photos
from engine.degrade import DegradationConfig, DegradationParams, sample_degradation
from engine.training.batches import _distinct_degradation
from engine.training.config import TrainConfig
from engine.training.damage_readout import training_damage_head
from engine.training.device_data import DevicePhotos, DeviceTaskSampler


def test_camera_tasks_carry_their_noise_level_as_label(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = apply_overrides(TrainConfig.preset("users-cpu"), [
        "model.channels=16", "model.blocks=1", "model.cond_channels=8", "model.support_size=4",
        "lr_patch=12", "device=cpu", "threads=1", "tasks_per_batch=8", "degradation=camera"])
    write_synthetic_photos(tmp_path, 2, (96, 96), seed=0)
    photos = DevicePhotos.from_folder(tmp_path, "cpu", cfg.hr_patch, cfg.hr_downscale)
    sampler = DeviceTaskSampler.from_config(photos, cfg)
    batch = sampler.batch(0)
    _, params = sampler.task_plan(0)
    assert all(p.camera and p.noise_std == 0 for p in params)
    expected = torch.tensor([p.noise_level() for p in params])
    torch.testing.assert_close(batch["noise"].float(), expected)
    assert float(batch["noise"].min()) > 0


def test_plain_noise_labels_are_unchanged() -> None:
    p = DegradationParams(15, 1.0, 1.0, 0.0, 12.0)
    assert p.noise_level() == 12.0


def test_readout_scale_and_pairing_see_camera_noise() -> None:
    cfg = apply_overrides(TrainConfig.preset("users-cpu"), ["degradation=camera", "device=cpu"])
    head = training_damage_head(cfg, draws=200)
    # every camera task is noisy: the readout's noise scale is not that of clean photos
    assert float(head.out_mean[1]) > 1.0
    rng = np.random.default_rng(0)
    first = dataclasses.replace(sample_degradation(cfg.degradation, rng), camera_shot=1e-4, camera_read=1e-7)
    other = _distinct_degradation(DegradationConfig.preset("camera"), first, rng)
    blur_apart = abs(np.log(other.sigma_x / first.sigma_x)) > np.log(1.3)
    assert blur_apart or abs(other.noise_level() - first.noise_level()) >= 8


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
