"""Compare's optional sources (baseline, other support): computed only when the user asks,
in the background, cancellable, leaving Run and the settings free (issue 31 item 3)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt


def open_image(qtbot, window, path: Path) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([path])


def test_a_remembered_baseline_side_does_not_start_a_second_run(qtbot, window, make_photo) -> None:
    # The side was set to Baseline in an earlier session (restored before any photo).
    window.compare.set_sources("baseline", "cmdsr")
    open_image(qtbot, window, make_photo("p.png", 48, 64))
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.run_action.trigger()
    # Nothing started by itself: the side offers to compute it instead.
    qtbot.waitUntil(lambda: not window.heavy.busy, timeout=10000)
    assert window.compare.result("baseline") is None
    assert not window.upscale.optional.busy
    text = window.compare.split_canvas._left_missing
    assert "not computed" in text and "click" in text and "optional" in text
    assert window.compare.compute_button.isVisible()
    assert window.compare.compute_button.text() == "Compute Baseline (no conditioning)"
    assert window.run_action.isEnabled()
    # A click on that side computes it.
    canvas = window.compare.split_canvas
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "baseline"):
        qtbot.mouseClick(canvas, Qt.MouseButton.LeftButton, pos=QPoint(20, canvas.height() // 2))
    assert window.compare.result("baseline").width() == 256
    assert not window.compare.compute_button.isVisible()


def test_computing_the_baseline_locks_nothing_and_can_be_stopped(qtbot, window, make_photo,
                                                                 slow_tiles) -> None:
    open_image(qtbot, window, make_photo("p.png", 96, 128))
    window.settings_panel.tile_combo.setCurrentIndex(window.settings_panel.tile_combo.findData(32))
    tiles = slow_tiles(0.15)
    window.tabs.setCurrentWidget(window.compare)
    window.compare.set_sources("baseline", "bicubic")  # the user picks it: it starts
    qtbot.waitUntil(lambda: len(tiles) >= 2, timeout=30000)
    assert window.upscale.optional.busy
    assert window.run_action.isEnabled() and window.settings_panel.tile_combo.isEnabled()
    assert "optional" in window.compare.split_canvas._left_missing
    assert "tile" in window.compare.split_canvas._left_missing
    assert window.compare.compute_button.text() == "Stop Baseline (no conditioning)"
    with qtbot.waitSignal(window.upscale.optional.busyChanged, timeout=30000):
        window.compare.compute_button.click()
    assert window.compare.result("baseline") is None
    assert "click here to compute" in window.compare.split_canvas._left_missing
    assert window.last_error is None
    # Started again, then Run: the baseline stops and the run goes first.
    window.compare.compute_button.click()
    qtbot.waitUntil(lambda: window.upscale.optional.busy, timeout=5000)
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda m: m == "cmdsr"):
        window.run_action.trigger()
    assert window.compare.result("cmdsr") is not None
    assert window.compare.result("baseline") is None
    assert window.compare.compute_button.text() == "Compute Baseline (no conditioning)"
