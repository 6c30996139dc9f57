"""The per-tile damage overlay painted on the input canvas: each tile coloured by the blur and
noise the model reads there, its numbers when there is room, and a legend."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QLinearGradient, QPainter, QPen

if TYPE_CHECKING:
    from cmdsr_app.damage_readout import DamageTile

# The overlay's colour scales: the ranges the shipped readout is trained on.
BLUR_RANGE = (0.2, 4.0)
NOISE_RANGE = (0.0, 50.0)
TEXT_MIN_PX = (64, 34)  # a tile shows its numbers once it is this big on screen


def _share(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(1.0, max(0.0, (value - low) / (high - low)))


def tile_colour(blur_sigma: float, noise_sigma: float) -> QColor:
    """Red grows with blur, blue with noise (magenta: both); a sharp, clean tile is nearly
    transparent, so the photo shows through where nothing is wrong."""
    b, n = _share(blur_sigma, BLUR_RANGE), _share(noise_sigma, NOISE_RANGE)
    return QColor(int(40 + 215 * b), 60, int(40 + 215 * n), int(40 + 130 * max(b, n)))


def paint_damage_overlay(painter: QPainter, tiles: Sequence[DamageTile],
                         to_widget: Callable[[QPointF], QPointF], zoom: float) -> None:
    """Each tile filled with its colour, its numbers when there is room, and a legend."""
    if not tiles:
        return
    painter.save()
    metrics = painter.fontMetrics()
    outline = QPen(QColor(0, 0, 0, 70), 1)
    for t in tiles:
        corner = to_widget(QPointF(t.x, t.y))
        rect = QRectF(corner.x(), corner.y(), t.w * zoom, t.h * zoom)
        painter.fillRect(rect, tile_colour(t.blur_sigma, t.noise_sigma))
        painter.setPen(outline)  # the tiles' edges, so each number's area is clear
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(rect)
        if rect.width() >= TEXT_MIN_PX[0] and rect.height() >= TEXT_MIN_PX[1]:
            text = f"{t.blur_sigma:.1f} px\n{t.noise_sigma:.0f} lv"
            badge = QRectF(0, 0, metrics.horizontalAdvance("00.0 px") + 8, 2 * metrics.height() + 4)
            badge.moveCenter(rect.center())
            painter.fillRect(badge, QColor(0, 0, 0, 150))  # readable on any photo
            painter.setPen(QColor(255, 255, 255, 235))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
    # legend, bottom left: the two colour scales
    device = painter.device()
    height = device.height() if device is not None else 0
    line = metrics.height()
    box = QRectF(6, height - 2 * line - 16, 250, 2 * line + 10)
    painter.fillRect(box, QColor(0, 0, 0, 170))
    for row, (label, ends) in enumerate((
            (f"blur σ {BLUR_RANGE[0]:g}…{BLUR_RANGE[1]:g} px", (tile_colour(0, 0), tile_colour(9, 0))),
            (f"noise σ {NOISE_RANGE[0]:g}…{NOISE_RANGE[1]:g} levels", (tile_colour(0, 0), tile_colour(0, 99))))):
        y = box.top() + 5 + row * line
        bar = QRectF(box.left() + 6, y + 2, 70, line - 4)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        gradient.setColorAt(0, ends[0])
        gradient.setColorAt(1, ends[1])
        painter.fillRect(bar, gradient)
        painter.setPen(QColor(230, 230, 235))
        painter.drawText(QRectF(bar.right() + 8, y, 160, line),
                         Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, label)
    painter.restore()
