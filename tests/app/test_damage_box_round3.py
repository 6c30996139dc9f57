"""The damage box and the region labels, round 3 (issue 31 item 14): the box is tall enough
for the whole photo's line and a region's line, JPEG included, at the window sizes people
have; the label of a region too small for a patch reads clearly on a busy photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from cmdsr_app.state import Region
from tests.app.test_knobs_round3 import knob_model

LIGHTEST, DARKEST = QColor(255, 255, 255), QColor(0, 0, 0)


@pytest.fixture(scope="module")
def jpeg_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return knob_model(tmp_path_factory.mktemp("models") / "tiny_box_x4.pt")


@pytest.mark.parametrize("size", [(1200, 800), (1280, 720)])
def test_the_damage_box_shows_the_photo_and_a_regions_line_in_full(
        qtbot, window, jpeg_model: Path, make_photo, size: tuple[int, int]) -> None:
    window.resize(*size)
    with qtbot.waitSignal(window.modelReady, timeout=15000):
        window.choose_model(str(jpeg_model))
    with qtbot.waitSignal(window.damage.readingShown, timeout=20000):
        window.open_paths([make_photo("busy.png", 96, 128)])
    with qtbot.waitSignal(window.damage.readingShown, timeout=20000,
                          check_params_cb=lambda r: len(r.regions) == 1):
        window.regions.add(Region(4, 4, 60, 50))
    qtbot.wait(10)  # the layout settles
    box = window.damage_panel.list
    rows = window.damage_panel.rows()
    assert rows[1].startswith("Region 1\n") and "JPEG" in rows[1]
    view = box.viewport().rect()
    for row in (0, 1):  # the photo's line and the region's, each whole, without scrolling
        rect = box.visualItemRect(box.item(row))
        assert view.contains(rect), f"row {row} {rect} is cut in a {view} box at {size}"
        assert rect.height() >= 3 * box.fontMetrics().lineSpacing() - 2  # wrapped, not clipped


def contrast(a: QColor, b: QColor) -> float:
    """WCAG contrast ratio of two colours (1: none, 21: black on white)."""
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return 0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF()) + 0.0722 * channel(c.blueF())
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def over(fill: QColor, photo: QColor) -> QColor:
    alpha = fill.alphaF()
    mix = [alpha * f + (1 - alpha) * p for f, p in zip(
        (fill.redF(), fill.greenF(), fill.blueF()), (photo.redF(), photo.greenF(), photo.blueF()),
        strict=True)]
    return QColor.fromRgbF(*mix)


def test_the_region_too_small_label_reads_on_any_photo(qtbot, window, make_photo) -> None:
    from cmdsr_app.views.canvas import region_label_colours

    background, text = region_label_colours(problem=True)
    # whatever the photo under it (white sky or black shadow), the words stand out
    for photo in (LIGHTEST, DARKEST, QColor(240, 70, 70)):
        assert contrast(text, over(background, photo)) >= 4.5
    # and the label is painted so: on a busy photo, its box is one calm colour
    with qtbot.waitSignal(window.damage.readingShown, timeout=20000):
        window.open_paths([make_photo("busy.png", 96, 128)])
    window.canvas.set_view(4.0, window.canvas.to_content(window.canvas.rect().topLeft()))
    window.regions.add(Region(20, 30, 10, 10))
    qtbot.waitUntil(lambda: window.regions.problem(0) is not None, timeout=5000)
    image = window.canvas.grab().toImage()
    corner = window.canvas.to_widget(QPointF(20, 30))  # the label sits just above the region
    height = window.canvas.fontMetrics().height()
    samples = [QColor(image.pixel(int(corner.x()) + dx, int(corner.y()) - height + dy))
               for dx in (1, 2) for dy in (0, 1)]  # its left margin, clear of the words
    pixels = np.array([[c.red(), c.green(), c.blue()] for c in samples], dtype=float)
    expected = over(background, QColor(128, 128, 128))
    assert np.abs(pixels - [expected.red(), expected.green(), expected.blue()]).max() < 20
