"""The window fits a 1366x768 laptop, down to 1280x720, with nothing important cut off, and the
canvas's hint never runs into the zoom label (issue 31 item 12)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QApplication, QWidget


def clipped(widget: QWidget) -> str | None:
    """Why ``widget`` is not fully seen in its window, or None."""
    if not widget.isVisible():
        return "hidden"
    seen = widget.visibleRegion().boundingRect()
    if seen != widget.rect():
        return f"{seen.width()}x{seen.height()} of {widget.width()}x{widget.height()} seen"
    window = widget.window()
    where = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    if not window.rect().contains(where):
        return f"outside the window ({where.getRect()})"
    return None


def test_the_window_fits_1280x720(qtbot, window) -> None:
    window.resize(1280, 720)
    QApplication.processEvents()
    hint = window.minimumSizeHint()
    assert hint.width() <= 1280 and hint.height() <= 720, hint.toTuple()
    assert window.width() <= 1280 and window.height() <= 720, window.size().toTuple()
    sp, compare, batch = window.settings_panel, window.compare, window.batch_panel
    always = {
        "Run": sp.run_button, "Cancel": sp.cancel_button, "Model": sp.model_combo,
        "Size": sp.size_box.combo, "Format": sp.format_combo, "tabs": window.tabs.tabBar(),
        "queue": window.queue_panel, "Auto preview": window.region_panel.auto_button,
        "damage panel": window.damage_panel, "status bar": window.statusBar(),
    }
    pages = {
        0: {"zoom label": window.zoom_label, "Fit": window.input_page.fit_button,
            "100%": window.input_page.actual_button},
        1: {"Left": compare.left_combo, "Right": compare.right_combo,
            "Hold original": compare.flash_button, "compare Fit": compare.fit_button,
            "compare 100%": compare.actual_button, "Split": compare.split_button},
        2: {"Start batch": batch.start_button, "output folder": batch.folder_edit},
    }
    for index, widgets in pages.items():
        window.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        problems = {name: clipped(w) for name, w in {**always, **widgets}.items()}
        assert {k: v for k, v in problems.items() if v} == {}, f"tab {index}"
    # The hint ends before the zoom label and, when cut, says so with an ellipsis.
    window.tabs.setCurrentIndex(0)
    window.input_page.show_zoom(1.25)
    QApplication.processEvents()
    hint_label, zoom = window.hint_label, window.zoom_label
    assert hint_label.geometry().right() < zoom.geometry().left()
    shown = hint_label.text()
    assert hint_label.fontMetrics().horizontalAdvance(shown) <= hint_label.width()
    assert shown == hint_label.full_text or shown.endswith("…")
