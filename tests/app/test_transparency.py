"""Photos with transparency: transparent pixels are drawn over a checkerboard, as image
editors do, in the input view and on both sides of Compare; opaque pixels as themselves."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from cmdsr_app.imaging import to_qimage
from cmdsr_app.views.canvas import ImageCanvas
from cmdsr_app.views.zoom_view import CHECKER_DARK, CHECKER_LIGHT

CHECKS = {CHECKER_LIGHT.getRgb()[:3], CHECKER_DARK.getRgb()[:3]}
ZOOM = 32  # screen pixels per image pixel: four checkerboard squares across each


def _drawn(view, x: int, y: int) -> set[tuple[int, int, int]]:
    """The colours ``view`` draws content pixel (x, y) in at ``ZOOM``: the pixel is placed at
    (64, 64) on the widget, clear of the captions, and read inside the pixel grid's lines."""
    view.set_view(ZOOM, QPointF(64 - ZOOM * x, 64 - ZOOM * y))
    shot = view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    return {shot.pixelColor(sx, sy).getRgb()[:3]
            for sx in range(66, 62 + ZOOM) for sy in range(66, 62 + ZOOM)}


def test_a_transparent_pixel_shows_the_checkerboard_and_an_opaque_one_itself(qtbot) -> None:
    pixels = np.zeros((2, 2, 3), np.float32)
    pixels[:] = (200, 30, 60)
    alpha = np.array([[0, 255], [255, 255]], np.float32)
    canvas = ImageCanvas()
    qtbot.addWidget(canvas)
    canvas.resize(200, 200)
    canvas.show()
    qtbot.waitExposed(canvas)
    canvas.set_image(to_qimage(pixels, alpha))
    assert _drawn(canvas, 0, 0) == CHECKS
    assert _drawn(canvas, 1, 0) == {(200, 30, 60)}


def test_an_opaque_alpha_keeps_the_plain_image() -> None:
    pixels = np.full((3, 4, 3), 90, np.float32)
    image = to_qimage(pixels, np.full((3, 4), 255, np.float32))
    assert not image.hasAlphaChannel()
    assert image.pixelColor(1, 1).getRgb() == (90, 90, 90, 255)


def _rgba_photo(path: Path, height: int = 72, width: int = 96) -> tuple[int, int, int]:
    """A photo whose left half is transparent; returns the colour of its opaque half."""
    rgb = (30, 140, 220)
    bgra = np.zeros((height, width, 4), np.uint8)
    bgra[:, :, :3] = rgb[::-1]
    bgra[:, width // 2:, 3] = 255
    cv2.imwrite(str(path), bgra)
    return rgb


def test_photo_and_results_with_transparency_show_the_checkerboard(qtbot, window, tmp_path) -> None:
    path = tmp_path / "sticker.png"
    rgb = _rgba_photo(path)
    with qtbot.waitSignal(window.imageLoaded, timeout=10000):
        window.open_paths([path])
    canvas = window.canvas
    assert _drawn(canvas, 0, 0) == CHECKS
    assert _drawn(canvas, 60, 10) == {rgb}

    with qtbot.waitSignal(window.upscaleFinished, timeout=60000):
        window.run_upscale()
    compare = window.compare
    compare.set_mode("side")
    qtbot.waitUntil(lambda: compare.result("bicubic") is not None, timeout=60000)
    for view, key in ((compare.left_canvas, "bicubic"), (compare.right_canvas, "cmdsr")):
        assert compare.result(key).hasAlphaChannel(), key
        assert _drawn(view, 4, 4) == CHECKS, key
        result = compare.result(key)
        inside = (result.width() * 7 // 8, result.height() // 2)  # far inside the opaque half
        expected = result.pixelColor(*inside).getRgb()
        assert expected[3] == 255, key
        assert _drawn(view, *inside) == {expected[:3]}, key
