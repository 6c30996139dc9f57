"""The Look slider previews the part of the photo in view (issue 30), with the damage knobs'
machinery: the same worker, debounce and overlay on the canvas; and Compare can show the
faithful and crisp looks side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt


@pytest.fixture(scope="module")
def tiny_crisp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'crisp' twin of the tiny default: the same network, other weights."""
    import torch

    from engine import ModelConfig, build_model, save_model

    torch.manual_seed(7)
    cfg = ModelConfig(scale=4, channels=8, blocks=2, support_size=20, cond_channels=8)
    return save_model(build_model(cfg), tmp_path_factory.mktemp("crisp") / "cmdsr_x4_crisp.pt")


def _install_crisp(monkeypatch, path: Path) -> None:
    import engine
    import engine.resources

    monkeypatch.setattr(engine, "crisp_model_path", lambda: path)
    monkeypatch.setattr(engine.resources, "crisp_model_path", lambda: path)


def _open(qtbot, window, photo: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([str(photo)])
    window.canvas.fit()


def _expected(window, box, look: float) -> np.ndarray:
    """The part in view upscaled at ``look``, computed here (no worker, no overlay)."""
    from cmdsr_app.jobs import preview_damage

    settings = replace(window.models.run_settings(), look=look)
    return preview_damage(window.photos.image.pixels, box, None, settings, window.cache)


def _shown(window) -> np.ndarray:
    from cmdsr_app.imaging import from_qimage

    return from_qimage(window.knobs.overlay.image()).astype(np.float32)


def test_moving_the_look_previews_the_part_in_view(qtbot, window, tiny_crisp_path, make_photo,
                                                   monkeypatch) -> None:
    _install_crisp(monkeypatch, tiny_crisp_path)
    window.look.refresh()
    _open(qtbot, window, make_photo(height=96, width=128))
    slider = window.look_panel.slider
    assert not window.knobs.overlay.isVisible()

    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000) as shown:
        qtbot.keyClick(slider, Qt.Key.Key_End)  # all the way to Crisp
    box = shown.args[0]
    assert box == (0, 0, 128, 96)  # the whole photo is in view
    overlay = window.knobs.overlay
    assert overlay.isVisible() and overlay.shown_box == box
    assert overlay._label == "Preview · look 1.00"
    crisp = _shown(window)
    assert crisp.shape == (384, 512, 3)
    assert np.abs(crisp - _expected(window, box, 1.0)).max() <= 1.0

    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000):
        qtbot.keyClick(slider, Qt.Key.Key_Home)  # back to Faithful
    faithful = _shown(window)
    assert overlay._label == "Preview · look 0.00"
    assert np.abs(faithful - _expected(window, box, 0.0)).max() <= 1.0
    assert np.abs(crisp - faithful).mean() > 0.5


def test_a_look_drag_cancels_the_previews_it_overtakes(qtbot, window, tiny_crisp_path, make_photo,
                                                       monkeypatch) -> None:
    import threading

    import cmdsr_app.controllers.knobs as knob_module

    _install_crisp(monkeypatch, tiny_crisp_path)
    window.look.refresh()
    _open(qtbot, window, make_photo(height=96, width=128))
    calls: list[tuple[threading.Event, float]] = []
    real = knob_module.preview_damage

    def slow(pixels, box, damage, settings, cache, cancel=None):
        calls.append((cancel, settings.look))
        cancel.wait(2.0)  # a slow network: the next move overtakes it
        return real(pixels, box, damage, settings, cache, cancel)

    monkeypatch.setattr(knob_module, "preview_damage", slow)
    slider = window.look_panel.slider
    for _ in range(3):  # a drag with pauses just past the debounce: each pause starts a preview
        qtbot.keyClick(slider, Qt.Key.Key_Right)
        qtbot.waitUntil(lambda n=len(calls): len(calls) > n, timeout=5000)
    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000):
        pass
    assert [look for _, look in calls] == pytest.approx([0.05, 0.10, 0.15])
    assert all(cancel.is_set() for cancel, _ in calls[:-1])  # each superseded one cancelled
    assert not calls[-1][0].is_set()
    assert window.knobs.overlay._label == "Preview · look 0.15"

