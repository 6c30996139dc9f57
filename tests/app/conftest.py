"""Fixtures for the GUI tests: settings isolated per test, a tiny model on disk, small photos.

Every test in tests/app gets its own config folder (CMDSR_STUDIO_CONFIG_DIR), so nothing a test
does reaches the user's real settings or leaks into the next test.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path_factory.mktemp("config")
    monkeypatch.setenv("CMDSR_STUDIO_CONFIG_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small conditioned x4 CMDSR (20 support patches, as the real one) saved to disk."""
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(0)
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8)
    path = tmp_path_factory.mktemp("models") / "tiny_x4.pt"
    save_model(build_model(cfg), path)
    return path


@pytest.fixture(scope="session")
def tiny_baseline_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(1)
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8,
                      conditioning=False)
    path = tmp_path_factory.mktemp("models") / "tiny_base_x4.pt"
    save_model(build_model(cfg), path)
    return path


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A textured, photo-like test image (gradients plus noise), uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 200, (xx + yy) / (width + height) * 255], -1)
    base += 20 * np.sin(xx / 3)[..., None] + rng.normal(0, 12, (height, width, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


@pytest.fixture
def make_photo(tmp_path: Path):
    """make_photo(name, height, width) -> path of a PNG written with OpenCV."""
    import cv2

    def make(name: str = "photo.png", height: int = 72, width: int = 96, seed: int = 0) -> Path:
        path = tmp_path / name
        cv2.imwrite(str(path), _photo(height, width, seed)[..., ::-1])
        return path

    return make


@pytest.fixture
def window(qtbot, tiny_model_path: Path, tiny_baseline_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The main window with the tiny model as the default and the tiny baseline installed."""
    import engine
    import engine.resources

    # The package attributes first: engine loads its names on first use, and one first loaded
    # while engine.resources is patched would keep the patch after the test.
    monkeypatch.setattr(engine, "default_model_path", lambda: tiny_model_path)
    monkeypatch.setattr(engine, "default_baseline_path", lambda: tiny_baseline_path)
    monkeypatch.setattr(engine.resources, "default_model_path", lambda: tiny_model_path)
    monkeypatch.setattr(engine.resources, "default_baseline_path", lambda: tiny_baseline_path)
    from cmdsr_app.main_window import MainWindow

    win = MainWindow()
    win.confirm_close = lambda: True  # type: ignore[method-assign]
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    qtbot.waitUntil(lambda: win.models.info is not None, timeout=10000)
    yield win
    win.close()


@pytest.fixture
def slow_tiles(monkeypatch):
    """``slow_tiles(seconds)``: each tile of an upscale takes ``seconds`` longer (in the worker
    thread), so a test can act mid-run; returns the list of tiles reported so far."""
    import time

    import cmdsr_app.controllers.upscale as mw

    def install(seconds: float) -> list[int]:
        real = mw.upscale_with
        seen: list[int] = []

        def slow(image, method, settings, choice, cache, progress=None, cancel=None):
            def report(done: int, total: int) -> None:
                seen.append(done)
                if progress:
                    progress(done, total)
                time.sleep(seconds)

            return real(image, method, settings, choice, cache, report, cancel)

        monkeypatch.setattr(mw, "upscale_with", slow)
        return seen

    return install


@pytest.fixture(scope="session")
def tiny_crisp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'crisp' twin of the tiny default: the same network, other weights."""
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(7)
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8)
    return save_model(build_model(cfg), tmp_path_factory.mktemp("crisp") / "cmdsr_x4_crisp.pt")


@pytest.fixture
def install_crisp(monkeypatch: pytest.MonkeyPatch):
    """``install_crisp(path)``: the app and the engine find the crisp model at ``path``
    (a path that does not exist: no crisp model installed)."""
    import engine
    import engine.resources

    def install(path: Path) -> None:
        monkeypatch.setattr(engine, "crisp_model_path", lambda: path)
        monkeypatch.setattr(engine.resources, "crisp_model_path", lambda: path)

    return install
