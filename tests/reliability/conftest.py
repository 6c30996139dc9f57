"""Fixtures for the reliability suite: tiny models on disk, small photos, helpers that run
``cmdsr`` in a child process (so a kill -9 or a native crash hits the child, not pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the test modules import tests.reliability.* helpers
    sys.path.insert(0, str(ROOT))


def tiny_config(**kw: object):
    from engine import ModelConfig

    base = dict(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8)
    base.update(kw)
    return ModelConfig(**base)  # type: ignore[arg-type]


def save_tiny(path: Path, seed: int = 0, **kw: object) -> Path:
    from engine import build_model, save_model

    torch.manual_seed(seed)
    save_model(build_model(tiny_config(**kw)), path)
    return path


def photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured, photo-like uint8 RGB image (gradients, stripes, noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, (xx + yy) / (width + height) * 255], -1)
    base += 20 * np.sin(xx / 3)[..., None] + rng.normal(0, 12, (height, width, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def write_photo(path: Path, height: int = 48, width: int = 64, seed: int = 0) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo(height, width, seed)).save(path)
    return path


def child_env() -> dict[str, str]:
    """Environment for child processes: the checkout importable, one thread, offscreen Qt."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", QT_QPA_PLATFORM="offscreen",
               PYTHONDONTWRITEBYTECODE="1")
    return env


def run_cli(args: list[str], timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """``cmdsr ARGS`` in a fresh interpreter: real exit code, real stderr."""
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=child_env(),
                          capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A conditioned x4 CMDSR, 8 channels, 2 blocks, 20 support patches (as shipped)."""
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny_x4.pt")


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny_base_x4.pt", seed=1,
                     conditioning=False)


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The GUI's settings go to a folder of this test's own, never the user's."""
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("CMDSR_STUDIO_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture
def app_window(qtbot, tiny_model: Path, tiny_baseline: Path, monkeypatch: pytest.MonkeyPatch):
    """The main window (no Training tab) with the tiny models as the shipped ones."""
    import engine
    import engine.resources

    for module in (engine, engine.resources):
        monkeypatch.setattr(module, "default_model_path", lambda: tiny_model)
        monkeypatch.setattr(module, "default_baseline_path", lambda: tiny_baseline)
    from cmdsr_app.main_window import MainWindow

    win = MainWindow(with_training=False)
    win.confirm_close = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitUntil(lambda: win.models.info is not None, timeout=15000)
    yield win
    win.close()
