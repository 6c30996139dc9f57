"""The image canvas: zoom around the cursor, pan, fit/100%, and the region editor driven by
simulated mouse and key events."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QImage

from cmdsr_app.imaging import from_qimage, to_qimage
from cmdsr_app.state import Region, RegionList
from cmdsr_app.views.canvas import ImageCanvas

LEFT = Qt.MouseButton.LeftButton


def engine_validator(regions, shape, size):
    from engine.inference.support import validate_regions

    return validate_regions([r.as_tuple() for r in regions], shape, size)


@pytest.fixture
def canvas(qtbot):
    pixels = np.zeros((100, 160, 3), np.float32)
    pixels[:, :, 0] = np.arange(160)[None, :]
    widget = ImageCanvas()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_image(to_qimage(pixels))
    regions = RegionList(image_shape=(100, 160), patch_size=32, validator=engine_validator)
    widget.set_region_list(regions)
    # 2 screen pixels per image pixel, image origin at the widget's origin: easy arithmetic.
    widget.set_view(2.0, QPointF(0, 0))
    return widget


def drag(qtbot, widget, start: tuple[int, int], end: tuple[int, int], button=LEFT) -> None:
    qtbot.mousePress(widget, button, pos=QPoint(*start))
    mid = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
    qtbot.mouseMove(widget, QPoint(*mid))
    qtbot.mouseMove(widget, QPoint(*end))
    qtbot.mouseRelease(widget, button, pos=QPoint(*end))


def test_qimage_round_trip() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (7, 5, 3)).astype(np.float32)
    assert np.array_equal(from_qimage(to_qimage(pixels)), pixels)


def test_fit_and_actual_size(canvas: ImageCanvas) -> None:
    canvas.fit()
    assert canvas.zoom == pytest.approx(min(400 / 160, 300 / 100))
    assert canvas.fit_mode
    canvas.actual_size()
    assert canvas.zoom == 1.0 and not canvas.fit_mode


def test_wheel_zooms_around_the_cursor(qtbot, canvas: ImageCanvas) -> None:
    anchor = QPointF(100, 60)
    before = canvas.to_content(anchor)
    canvas.zoom_at(1.25**2, anchor)  # what two wheel notches do
    assert canvas.zoom == pytest.approx(2.0 * 1.5625)
    after = canvas.to_content(anchor)
    assert after.x() == pytest.approx(before.x()) and after.y() == pytest.approx(before.y())


def test_right_drag_pans(qtbot, canvas: ImageCanvas) -> None:
    drag(qtbot, canvas, (100, 100), (130, 80), button=Qt.MouseButton.RightButton)
    assert canvas.offset == QPointF(30, -20)
    assert len(canvas.region_list) == 0  # panning never draws


def test_draw_move_resize_and_delete_a_region(qtbot, canvas: ImageCanvas) -> None:
    regions = canvas.region_list
    # Draw: from image (10, 10) to (60, 50).
    drag(qtbot, canvas, (20, 20), (120, 100))
    assert regions.regions == [Region(10, 10, 50, 40)]
    assert regions.selected == 0
    assert regions.problem(0) is None
    # Move: grab the middle, move by (+20, +5) image pixels.
    drag(qtbot, canvas, (70, 60), (110, 70))
    assert regions[0] == Region(30, 15, 50, 40)
    # Resize: drag the bottom-right corner in by (-30, -20): too small for a 32 px patch.
    corner = canvas.region_rect(regions[0]).bottomRight()
    drag(qtbot, canvas, (round(corner.x()), round(corner.y())),
         (round(corner.x()) - 60, round(corner.y()) - 40))
    assert regions[0] == Region(30, 15, 20, 20)
    assert "smaller than a 32x32 patch" in regions.problem(0)
    # Resize the left edge outwards until it is valid again.
    left = canvas.region_rect(regions[0]).left()
    mid_y = round(canvas.region_rect(regions[0]).center().y())
    drag(qtbot, canvas, (round(left), mid_y), (round(left) - 40, mid_y))
    assert regions[0] == Region(10, 15, 40, 20)
    # Delete with the key.
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Delete)
    assert len(regions) == 0


def test_a_click_is_not_a_region_and_moves_stay_inside(qtbot, canvas: ImageCanvas) -> None:
    qtbot.mouseClick(canvas, LEFT, pos=QPoint(50, 50))
    assert len(canvas.region_list) == 0
    canvas.region_list.add(Region(100, 50, 40, 40))
    canvas.region_list.select(None)
    # Dragging far to the bottom-right keeps the region inside the 160x100 image.
    drag(qtbot, canvas, (240, 140), (390, 290))
    assert canvas.region_list[0] == Region(120, 60, 40, 40)
    # A rectangle drawn past the edge is cut at the edge.
    drag(qtbot, canvas, (10, 10), (399, 10 + 2 * 40))
    assert canvas.region_list[1] == Region(5, 5, 155, 40)


def test_patch_boxes_and_grid_are_painted(qtbot, canvas: ImageCanvas) -> None:
    canvas.set_patch_boxes([(0, 0, 32, 32)])
    canvas.set_view(10.0, QPointF(0, 0))  # grid visible
    image = canvas.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    # The patch box edge is drawn in yellow along the top-left corner.
    color = image.pixelColor(0, 150)
    assert color.red() > 200 and color.green() > 150 and color.blue() < 100
    # Grid lines darken the pixel boundaries compared with pixel centres.
    line, centre = image.pixelColor(100, 205), image.pixelColor(105, 205)
    assert line.red() < centre.red() or line.green() < centre.green()


def test_qimage_conversion_rounds_and_clips_in_row_blocks() -> None:
    rng = np.random.default_rng(1)
    pixels = rng.uniform(-20, 280, (700, 9000, 3)).astype(np.float32)  # > one 16 MB block
    expected = np.clip(np.rint(pixels), 0, 255)
    assert np.array_equal(from_qimage(to_qimage(pixels)), expected)
