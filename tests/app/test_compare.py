"""The compare view: split slider, locked side-by-side views, sources, flashing the input."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage

from cmdsr_app.imaging import to_qimage
from cmdsr_app.views.compare import CompareView


def solid(height: int, width: int, rgb: tuple[int, int, int]) -> QImage:
    pixels = np.zeros((height, width, 3), np.float32)
    pixels[:] = rgb
    return to_qimage(pixels)


def pixel(widget, x: int, y: int) -> tuple[int, int, int]:
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    c = image.pixelColor(x, y)
    return c.red(), c.green(), c.blue()


@pytest.fixture
def view(qtbot):
    widget = CompareView()
    qtbot.addWidget(widget)
    widget.set_sources("input", "cmdsr")  # these tests draw the input against CMDSR
    widget.resize(800, 500)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_input(solid(50, 80, (255, 0, 0)), 4)  # output is 320 x 200
    widget.set_result("cmdsr", solid(200, 320, (0, 0, 255)))
    return widget


def test_split_shows_left_and_right_sources_and_the_slider_moves(qtbot, view: CompareView) -> None:
    canvas = view.split_canvas
    assert view.mode == "split"
    assert view.left_source == "input" and view.right_source == "cmdsr"
    h = canvas.height()
    # Fill the view with the image so both halves show pixels.
    canvas.set_view(4.0, QPointF(0, 0))
    assert pixel(canvas, 50, h // 3) == (255, 0, 0)
    assert pixel(canvas, canvas.width() - 50, h // 3) == (0, 0, 255)
    # Drag the slider to 25%: a point at 40% now shows the right source.
    x0 = round(canvas.split_x())
    qtbot.mousePress(canvas, Qt.MouseButton.LeftButton, pos=QPoint(x0, h // 2))
    qtbot.mouseMove(canvas, QPoint(canvas.width() // 4, h // 2))
    qtbot.mouseRelease(canvas, Qt.MouseButton.LeftButton, pos=QPoint(canvas.width() // 4, h // 2))
    assert canvas.split_fraction == pytest.approx(0.25, abs=0.01)
    assert pixel(canvas, int(canvas.width() * 0.4), h // 3) == (0, 0, 255)


def test_side_by_side_views_stay_locked(qtbot, view: CompareView) -> None:
    view.set_mode("side")
    left, right = view.left_canvas, view.right_canvas
    left.zoom_at(2.0, QPointF(30, 40))
    assert right.zoom == pytest.approx(left.zoom)
    assert right.offset == left.offset
    # Panning the right one moves the left one too.
    qtbot.mousePress(right, Qt.MouseButton.LeftButton, pos=QPoint(100, 100))
    qtbot.mouseMove(right, QPoint(140, 90))
    qtbot.mouseRelease(right, Qt.MouseButton.LeftButton, pos=QPoint(140, 90))
    assert left.offset == right.offset
    assert left.left_layer.label == "Input (nearest)" and right.left_layer.label == "CMDSR"


def test_holding_space_flashes_the_input(qtbot, view: CompareView) -> None:
    canvas = view.split_canvas
    canvas.set_view(4.0, QPointF(0, 0))
    canvas.setFocus()
    x = canvas.width() - 50
    assert pixel(canvas, x, 100) == (0, 0, 255)
    qtbot.keyPress(canvas, Qt.Key.Key_Space)
    assert view.flashing
    assert pixel(canvas, x, 100) == (255, 0, 0)
    qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    assert not view.flashing
    assert pixel(canvas, x, 100) == (0, 0, 255)


def test_choosing_a_missing_source_asks_for_it_and_disabled_ones_say_why(qtbot, view: CompareView) -> None:
    with qtbot.waitSignal(view.sourceRequested) as blocker:
        view.set_sources("bicubic", "cmdsr")
    assert blocker.args == ["bicubic"]
    view.set_pending("bicubic", "Computing Bicubic…")
    assert view.split_canvas._left_missing == "Computing Bicubic…"
    view.set_result("bicubic", solid(200, 320, (0, 255, 0)))
    assert view.split_canvas.left_layer.label == "Bicubic"
    view.set_source_enabled("baseline", False, "no baseline model is installed")
    index = view.left_combo.findData("baseline")
    assert not view.left_combo.model().item(index).isEnabled()
    assert view.source_disabled_reason("baseline") == "no baseline model is installed"
    with pytest.raises(ValueError):
        view.set_result("nonsense", None)


def test_a_smaller_result_is_drawn_at_output_scale(view: CompareView) -> None:
    view.set_result("bicubic", solid(100, 160, (0, 255, 0)))  # half size: factor 2
    view.set_sources("bicubic", "cmdsr")
    assert view.split_canvas.left_layer.factor == pytest.approx(2.0)
