"""Shared fixtures: seeded RNGs and tiny networks so the CPU-only suite stays fast."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(autouse=True)
def one_thread():
    # Two OpenMP threads on a busy 2-core machine run tiny convs ~10x slower than one.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
