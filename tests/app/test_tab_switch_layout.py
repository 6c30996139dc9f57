"""Switching tabs moves nothing (issue 31 item 14: "the left panel shifts a few pixels"): the
side panels stay where they were, through the Training tab too, and the Input, Compare and
Batch pages start their contents at the same place."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QLabel


def test_the_side_panels_stay_put_across_tabs(qtbot, window, make_photo) -> None:
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([make_photo("p.png", 60, 80)])
    window.resizeDocks([window.left_dock, window.right_dock], [301, 333], Qt.Orientation.Horizontal)
    QApplication.processEvents()

    def where() -> tuple:
        q, d = window.queue_panel, window.damage_panel
        return (window.left_dock.geometry().getRect(), window.right_dock.geometry().getRect(),
                q.mapTo(window, q.rect().topLeft()).toTuple(), q.width(),
                d.mapTo(window, d.rect().topLeft()).toTuple(), d.width())

    first = where()
    for index in (1, 2, 3, 0, 3, 1, 0):
        window.tabs.setCurrentIndex(index)
        QApplication.processEvents()
        if window.tabs.currentWidget() is not window.training_page:
            assert where() == first, f"tab {index}"


def test_the_pages_start_at_the_same_place(window) -> None:
    corners = {}
    for page in (window.input_page, window.compare, window.batch_panel):
        window.tabs.setCurrentWidget(page)
        QApplication.processEvents()
        # The first words of each page: the hint, "Left:", "Output folder:".
        labels = [c for c in page.findChildren(QLabel) if c.isVisible() and c.text()]
        corners[type(page).__name__] = min(c.mapTo(page, c.rect().topLeft()).x() for c in labels)
    assert len(set(corners.values())) == 1, corners
