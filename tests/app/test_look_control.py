"""The Look control (issue 30): a Faithful-Crisp slider under the damage knobs that steers runs
and batches, disabled with one line why when no crisp model is installed or another model is
chosen, and held during a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt

from cmdsr_app.controllers.look import NO_CRISP, OTHER_MODEL


def is_cmdsr(method: str) -> bool:
    return method == "cmdsr"




def _run(qtbot, window) -> np.ndarray:
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=15000)
    return window.upscale.outcomes["cmdsr"].image.pixels.copy()


def test_without_a_crisp_model_the_slider_is_off_and_says_why(qtbot, window, install_crisp, tmp_path,
                                                               monkeypatch) -> None:
    install_crisp(tmp_path / "cmdsr_x4_crisp.pt")  # not there
    window.look.refresh()
    panel = window.look_panel
    assert not panel.slider.isEnabled()
    assert panel.reason.isVisibleTo(window) and panel.reason.text() == NO_CRISP.format(
        name="cmdsr_x4_crisp.pt")
    assert window.models.run_settings().look == 0.0


def test_look_1_runs_the_crisp_model_and_0_the_faithful_one(qtbot, window, install_crisp, tiny_crisp_path,
                                                            make_photo, monkeypatch) -> None:
    install_crisp(tiny_crisp_path)
    window.look.refresh()
    panel = window.look_panel
    assert panel.slider.isEnabled() and not panel.reason.isVisibleTo(window)
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([str(make_photo())])
    faithful = _run(qtbot, window)
    qtbot.keyClick(panel.slider, Qt.Key.Key_End)  # all the way to Crisp
    assert panel.look() == 1.0 and window.models.run_settings().look == 1.0
    assert panel.value_label.text() == "1.00"
    crisp = _run(qtbot, window)
    assert np.abs(crisp - faithful).mean() > 0.5
    # the same as choosing the crisp file itself as the model (where the look does not apply)
    window.choose_model(str(tiny_crisp_path))
    qtbot.waitUntil(lambda: window.settings.model_path == str(tiny_crisp_path), timeout=15000)
    qtbot.waitUntil(lambda: not panel.slider.isEnabled(), timeout=5000)
    assert panel.reason.text() == OTHER_MODEL and window.models.run_settings().look == 0.0
    assert np.array_equal(_run(qtbot, window), crisp)


def test_the_slider_is_held_during_a_run(qtbot, window, install_crisp, tiny_crisp_path, make_photo, monkeypatch,
                                         slow_tiles) -> None:
    install_crisp(tiny_crisp_path)
    window.look.refresh()
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([str(make_photo())])
    slow_tiles(0.3)
    with qtbot.waitSignal(window.upscaleFinished, timeout=30000, check_params_cb=is_cmdsr):
        window.run_upscale()
        qtbot.waitUntil(lambda: window.heavy.busy, timeout=5000)
        assert not window.look_panel.slider.isEnabled()
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=15000)
    assert window.look_panel.slider.isEnabled()


def test_batches_record_the_look_and_old_records_still_match() -> None:
    from cmdsr_app.batch_records import batch_recipe, difference
    from cmdsr_app.jobs import BatchOutput, RunSettings, SupportChoice

    output, choice = BatchOutput(Path("out")), SupportChoice("random", (), 0)
    faithful = batch_recipe(RunSettings(model_path=None), choice, output)
    crisp = batch_recipe(RunSettings(model_path=None, look=0.5), choice, output)
    assert "look" not in faithful  # as recipes written before the look existed
    assert crisp["look"] == 0.5
    assert difference(crisp, faithful) == "other settings (look)"
    assert difference(faithful, crisp) == "other settings (look)"
