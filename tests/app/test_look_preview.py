"""The Look slider previews the part of the photo in view (issue 30), with the damage knobs'
machinery: the same worker, debounce and overlay on the canvas; and Compare can show the
faithful and crisp looks side by side."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt


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


def test_moving_the_look_previews_the_part_in_view(qtbot, window, install_crisp, tiny_crisp_path, make_photo,
                                                   monkeypatch) -> None:
    install_crisp(tiny_crisp_path)
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


def test_a_look_drag_cancels_the_previews_it_overtakes(qtbot, window, install_crisp, tiny_crisp_path, make_photo,
                                                       monkeypatch) -> None:
    import threading

    import cmdsr_app.controllers.knobs as knob_module

    install_crisp(tiny_crisp_path)
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
    for move in range(1, 4):  # a drag with pauses past the debounce: each pause starts a preview
        qtbot.keyClick(slider, Qt.Key.Key_Right)
        qtbot.waitUntil(lambda move=move: len(calls) == move, timeout=5000)
    with qtbot.waitSignal(window.knobs.previewShown, timeout=20000):
        pass
    assert [look for _, look in calls] == pytest.approx([0.05, 0.10, 0.15])
    assert all(cancel.is_set() for cancel, _ in calls[:-1])  # each superseded one cancelled
    assert not calls[-1][0].is_set()
    assert window.knobs.overlay._label == "Preview · look 0.15"



def _compute(qtbot, window, key: str) -> np.ndarray:
    from cmdsr_app.imaging import from_qimage

    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == key):
        window.upscale.compute_source(key)
    assert window.upscale.outcomes[key].method == key
    return from_qimage(window.compare.result(key)).astype(np.float32)


def test_compare_shows_faithful_and_crisp_side_by_side(qtbot, window, install_crisp, tiny_crisp_path, make_photo,
                                                        monkeypatch) -> None:
    from cmdsr_app.views.compare import OPTIONAL_SOURCES, SOURCES

    install_crisp(tiny_crisp_path)
    window.look.refresh()
    compare = window.compare
    for key in ("faithful", "crisp"):
        assert key in OPTIONAL_SOURCES  # a full run each: computed only when asked
        assert compare.source_disabled_reason(key) is None
        assert not compare.left_combo.view().isRowHidden(compare.left_combo.findData(key))
    _open(qtbot, window, make_photo("p.png", 48, 64))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.run_upscale()
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=15000)
    faithful_run = window.upscale.outcomes["cmdsr"].image.pixels.copy()
    faithful, crisp = _compute(qtbot, window, "faithful"), _compute(qtbot, window, "crisp")
    compare.set_sources("faithful", "crisp")
    assert compare.left_combo.currentText() == SOURCES["faithful"] == "Faithful (look 0)"
    assert compare.right_combo.currentText() == "Crisp (look 1)"
    qtbot.waitUntil(lambda: not window.upscale.optional.busy, timeout=15000)
    assert not compare.missing_sources()  # both computed: nothing more starts
    assert faithful.shape == crisp.shape == (192, 256, 3)
    # Faithful is the CMDSR run at look 0 (the slider's default); Crisp the run at look 1.
    assert np.abs(faithful - np.clip(np.rint(faithful_run), 0, 255)).max() <= 1.0
    qtbot.keyClick(window.look_panel.slider, Qt.Key.Key_End)
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.run_upscale()
    crisp_run = window.upscale.outcomes["cmdsr"].image.pixels
    assert np.abs(crisp - np.clip(np.rint(crisp_run), 0, 255)).max() <= 1.0
    assert np.abs(crisp - faithful).mean() > 0.5


def test_without_a_crisp_model_compare_offers_no_looks(qtbot, window, install_crisp, tmp_path, monkeypatch) -> None:
    from cmdsr_app.controllers.look import NO_CRISP

    install_crisp(tmp_path / "cmdsr_x4_crisp.pt")  # not there
    window.look.refresh()
    compare = window.compare
    for key in ("faithful", "crisp"):
        assert compare.source_disabled_reason(key) == NO_CRISP.format(name="cmdsr_x4_crisp.pt")
        for combo in (compare.left_combo, compare.right_combo):
            index = combo.findData(key)
            assert combo.view().isRowHidden(index)
            assert not combo.model().item(index).isEnabled()
