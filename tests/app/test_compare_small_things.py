"""Compare's small things (issue 31 item 14): a side's "not computed" text stays clear of the
split handle, and a drag whose release went to a dialog does not move the view afterwards."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from cmdsr_app.views.compare import CompareView


def _text_pixels_near(image: QImage, x0: int, x1: int, skip_y: tuple[int, int]) -> int:
    """Pixels in columns x0..x1 that look like the grey placeholder text."""
    count = 0
    for x in range(x0, x1):
        for y in range(image.height()):
            if skip_y[0] <= y <= skip_y[1]:
                continue  # the round handle
            c = QColor(image.pixel(x, y))
            if c.red() > 90 and abs(c.red() - c.blue()) < 20 and c.red() < 250:
                count += 1
    return count


def shown_view(qtbot) -> CompareView:  # type: ignore[no-untyped-def]
    """A shown Compare view holding a flat 64x48 photo at x4."""
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(520, 400)
    view.show()
    photo = QImage(64, 48, QImage.Format.Format_RGB888)
    photo.fill(QColor(90, 120, 150))
    view.set_input(photo, 4)
    return view


def test_the_missing_side_text_keeps_clear_of_the_split_handle(qtbot) -> None:
    view = shown_view(qtbot)
    view.set_source_enabled("baseline", False, "no baseline model is installed")
    view.set_sources("baseline", "input")
    canvas = view.split_canvas
    QApplication.processEvents()
    text = canvas._left_missing
    assert "no baseline model" in text
    # The line just wider than the text: the text would run up to the handle.
    width = canvas.fontMetrics().horizontalAdvance(text)
    canvas.set_split_fraction((width + 6) / canvas.width())
    split = int(canvas.split_x())
    shot = canvas.grab().toImage()
    # No text just left of the round handle (radius 9, outlined).
    assert _text_pixels_near(shot, split - 16, split - 11, (-1, -1)) == 0
    # ...but the text is drawn (it wraps inside its half).
    assert _text_pixels_near(shot, 0, split - 12, (-1, -1)) > 50


def test_a_lost_release_does_not_drag_the_view_later(qtbot) -> None:
    view = shown_view(qtbot)
    view.set_sources("input", "input")
    canvas = view.split_canvas
    canvas.set_view(2.0, QPointF(0, 0))
    before = canvas.offset

    def send(kind: QEvent.Type, x: float, button: Qt.MouseButton, buttons: Qt.MouseButton) -> None:
        pos = QPointF(x, 100)
        event = QMouseEvent(kind, pos, canvas.mapToGlobal(pos), button, buttons,
                            Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(canvas, event)

    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    # A press, then a Save dialog takes the release; the mouse moves freely afterwards.
    send(QEvent.Type.MouseButtonPress, 60, left, left)
    send(QEvent.Type.MouseMove, 200, none, none)
    assert canvas.offset == before
    # The second click of a double-click that closed a dialog over the view.
    send(QEvent.Type.MouseButtonDblClick, 60, left, left)
    send(QEvent.Type.MouseMove, 220, none, none)
    assert canvas.offset == before and canvas.zoom == 2.0
