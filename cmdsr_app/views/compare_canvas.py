"""The compare view's canvas: one source, or two split by a draggable line, with Space
flashing the input over them (see :mod:`cmdsr_app.views.compare`)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeyEvent, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

from cmdsr_app.views.zoom_view import ZoomPanView

SPLIT_GRAB_PX = 8
TEXT_CLEARANCE = 16  # a side's "not computed" text keeps this far from the split handle


@dataclass(frozen=True)
class Layer:
    """An image on the compare canvas; ``factor`` = output pixels per image pixel."""

    image: QImage
    factor: float = 1.0
    smooth: bool | None = None  # None: nearest when zoomed in, smooth when zoomed out
    label: str = ""


class CompareCanvas(ZoomPanView):
    """Paints one layer, or two split by a draggable vertical line; Space flashes the input."""

    splitMoved = Signal(float)
    flashChanged = Signal(bool)
    missingClicked = Signal(bool)  # noqa: N815 - a click on a side with no image (True: left)

    def __init__(self, parent: QWidget | None = None, *, split: bool = True) -> None:
        super().__init__(parent)
        self._split_mode = split
        self._left: Layer | None = None
        self._right: Layer | None = None
        self._left_missing = ""
        self._right_missing = ""
        self._flash: Layer | None = None
        self._flashing = False
        self._split = 0.5
        self._dragging_split = False
        self._press: QPointF | None = None  # where a click began, to tell it from a pan
        self._size = QSizeF(0, 0)

    # -- content -----------------------------------------------------------------------------
    def set_output_size(self, width: int, height: int) -> None:
        refit = (width, height) != (int(self._size.width()), int(self._size.height()))
        self._size = QSizeF(width, height)
        self.content_changed(refit=refit)

    def content_size(self) -> QSizeF:
        return QSizeF(self._size)

    def set_layers(
        self,
        left: Layer | None,
        right: Layer | None = None,
        *,
        left_missing: str = "",
        right_missing: str = "",
    ) -> None:
        self._left, self._right = left, right
        self._left_missing, self._right_missing = left_missing, right_missing
        self.update()

    def set_flash_layer(self, layer: Layer | None) -> None:
        self._flash = layer

    @property
    def left_layer(self) -> Layer | None:
        return self._left

    @property
    def right_layer(self) -> Layer | None:
        return self._right

    # -- split ---------------------------------------------------------------------------------
    @property
    def split_fraction(self) -> float:
        return self._split

    def set_split_fraction(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        if fraction != self._split:
            self._split = fraction
            self.update()
            self.splitMoved.emit(fraction)

    def split_x(self) -> float:
        return self._split * self.width()

    def left_button_pans(self) -> bool:
        return True

    # -- flash -----------------------------------------------------------------------------
    @property
    def flashing(self) -> bool:
        return self._flashing

    def set_flashing(self, on: bool) -> None:
        if on != self._flashing:
            self._flashing = on
            self.update()
            self.flashChanged.emit(on)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.set_flashing(True)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self.set_flashing(False)
            event.accept()
            return
        super().keyReleaseEvent(event)

    # -- mouse ----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        self._press = event.position() if event.button() == Qt.MouseButton.LeftButton else None
        if (
            self._split_mode
            and event.button() == Qt.MouseButton.LeftButton
            and abs(event.position().x() - self.split_x()) <= SPLIT_GRAB_PX
        ):
            self._dragging_split = True
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            self.set_split_fraction(event.position().x() / max(1, self.width()))
            event.accept()
            return
        if self._split_mode and self._pan_anchor is None:
            near = abs(event.position().x() - self.split_x()) <= SPLIT_GRAB_PX
            if near:
                self.setCursor(Qt.CursorShape.SplitHCursor)
            else:
                self.unsetCursor()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._dragging_split:
            self._dragging_split = False
            event.accept()
            return
        press, self._press = self._press, None
        super().mouseReleaseEvent(event)
        if press is not None and (event.position() - press).manhattanLength() < 4:
            left = not self._split_mode or event.position().x() < self.split_x()
            if (self._left if left else self._right) is None and self.has_content():
                self.missingClicked.emit(left)

    # -- painting ---------------------------------------------------------------------------
    def _paint_layer(self, painter: QPainter, layer: Layer) -> None:
        self.paint_image(painter, layer.image, layer.factor, smooth=layer.smooth)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        self.paint_background(painter)
        if not self.has_content():
            self.paint_placeholder(painter, "Run an upscale (Ctrl+R) to compare the result here.")
            painter.end()
            return
        if self._flashing and self._flash is not None:
            self._paint_layer(painter, self._flash)
            self.paint_pixel_grid(painter)
            self._paint_caption(painter, "Original (holding Space)", left=True)
            painter.end()
            return
        if not self._split_mode:
            if self._left is not None:
                self._paint_layer(painter, self._left)
                self.paint_pixel_grid(painter)
                self._paint_caption(painter, self._left.label, left=True)
            else:
                self.paint_placeholder(painter, self._left_missing)
            painter.end()
            return
        split_x = self.split_x()
        height = float(self.height())
        if self._right is not None:
            painter.save()
            painter.setClipRect(QRectF(split_x, 0, self.width() - split_x, height))
            self._paint_layer(painter, self._right)
            painter.restore()
        else:
            painter.save()
            painter.setPen(QColor(170, 170, 175))
            painter.drawText(QRectF(split_x + TEXT_CLEARANCE, 0,
                                    self.width() - split_x - 2 * TEXT_CLEARANCE, height),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._right_missing)
            painter.restore()
        if self._left is not None:
            painter.save()
            painter.setClipRect(QRectF(0, 0, split_x, height))
            self._paint_layer(painter, self._left)
            painter.restore()
        else:
            painter.save()
            painter.setPen(QColor(170, 170, 175))
            painter.drawText(QRectF(TEXT_CLEARANCE, 0, split_x - 2 * TEXT_CLEARANCE, height),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._left_missing)
            painter.restore()
        self.paint_pixel_grid(painter)
        # The slider: a line and a round handle in the middle.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(255, 255, 255, 220), 2))
        painter.drawLine(QPointF(split_x, 0), QPointF(split_x, height))
        painter.setBrush(QColor(255, 255, 255, 230))
        painter.setPen(QPen(QColor(40, 40, 40), 1))
        painter.drawEllipse(QPointF(split_x, height / 2), 9, 9)
        painter.setPen(QPen(QColor(40, 40, 40), 2))
        cy = height / 2
        painter.drawLine(QPointF(split_x - 4, cy), QPointF(split_x - 1, cy - 3))
        painter.drawLine(QPointF(split_x - 4, cy), QPointF(split_x - 1, cy + 3))
        painter.drawLine(QPointF(split_x + 4, cy), QPointF(split_x + 1, cy - 3))
        painter.drawLine(QPointF(split_x + 4, cy), QPointF(split_x + 1, cy + 3))
        if self._left is not None:
            self._paint_caption(painter, self._left.label, left=True)
        if self._right is not None:
            self._paint_caption(painter, self._right.label, left=False)
        painter.end()

    def _paint_caption(self, painter: QPainter, text: str, *, left: bool) -> None:
        if not text:
            return
        metrics = painter.fontMetrics()
        width = metrics.horizontalAdvance(text) + 12
        rect = QRectF(8 if left else self.width() - width - 8, 8, width, metrics.height() + 6)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 170))
        painter.drawRoundedRect(rect, 4, 4)
        painter.setPen(QColor(235, 235, 235))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()
