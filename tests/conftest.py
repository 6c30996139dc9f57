"""Shared fixtures: seeded RNGs and tiny networks so the CPU-only suite stays fast."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def seeded() -> None:
    torch.manual_seed(1234)


@pytest.fixture
def tiny_config():
    from engine import ModelConfig

    return ModelConfig(scale=4, channels=8, blocks=2, support_size=3, cond_channels=8)
