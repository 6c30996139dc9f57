"""The zoomable image view the canvases build on: zoom around the cursor, pan by dragging,
fit / 100%, a pixel grid at high zoom, transparent pixels over a checkerboard
(:class:`ZoomPanView`). :mod:`canvas` and :mod:`compare` add what they show on it."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QResizeEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QWidget

if TYPE_CHECKING:
    pass


MIN_ZOOM = 1 / 64
MAX_ZOOM = 64.0
GRID_ZOOM = 8.0  # show the pixel grid from this many screen pixels per image pixel
WHEEL_STEP = 1.25

# Under transparent pixels, the checkerboard image editors draw: squares of this many screen
# pixels (whatever the zoom), white and light grey.
CHECKER_PX = 8
CHECKER_LIGHT = QColor(255, 255, 255)
CHECKER_DARK = QColor(204, 204, 204)


@functools.cache
def checker_brush() -> QBrush:
    """A brush tiled with two squares of each checkerboard grey."""
    tile = QImage(2 * CHECKER_PX, 2 * CHECKER_PX, QImage.Format.Format_RGB32)
    tile.fill(CHECKER_LIGHT)
    painter = QPainter(tile)
    painter.fillRect(0, 0, CHECKER_PX, CHECKER_PX, CHECKER_DARK)
    painter.fillRect(CHECKER_PX, CHECKER_PX, CHECKER_PX, CHECKER_PX, CHECKER_DARK)
    painter.end()
    return QBrush(tile)


class ZoomPanView(QWidget):
    """A widget showing content of ``content_size()`` pixels under a zoom and an offset.

    ``offset`` is where the content's origin lies in widget coordinates; ``viewChanged``
    fires with (zoom, offset) so another view can follow (the compare view's locked sides).
    """

    viewChanged = Signal(float, QPointF)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._zoom = 1.0
        self._offset = QPointF(0, 0)
        self._fit_mode = True
        self._pan_anchor: QPointF | None = None
        self._pan_start_offset = QPointF(0, 0)
        self._space_held = False
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(160, 120)
        self.setAutoFillBackground(False)

    # -- content, for subclasses ---------------------------------------------------------
    def content_size(self) -> QSizeF:
        return QSizeF(0, 0)

    def has_content(self) -> bool:
        size = self.content_size()
        return size.width() > 0 and size.height() > 0

    # -- view state ----------------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self._zoom

    @property
    def offset(self) -> QPointF:
        return QPointF(self._offset)

    @property
    def fit_mode(self) -> bool:
        return self._fit_mode

    def set_view(self, zoom: float, offset: QPointF, *, notify: bool = True) -> None:
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        if math.isclose(zoom, self._zoom) and offset == self._offset:
            return
        self._zoom = zoom
        self._offset = QPointF(offset)
        self.update()
        if notify:
            self.viewChanged.emit(self._zoom, QPointF(self._offset))

    def follow_view(self, zoom: float, offset: QPointF) -> None:
        """Take another view's zoom and offset without echoing it back."""
        self._fit_mode = False
        self.set_view(zoom, offset, notify=False)

    def to_content(self, point: QPointF) -> QPointF:
        return QPointF(
            (point.x() - self._offset.x()) / self._zoom, (point.y() - self._offset.y()) / self._zoom
        )

    def to_widget(self, point: QPointF) -> QPointF:
        return QPointF(point.x() * self._zoom + self._offset.x(), point.y() * self._zoom + self._offset.y())

    def zoom_at(self, factor: float, anchor: QPointF) -> None:
        """Zoom by ``factor`` keeping the content point under ``anchor`` (widget) in place."""
        self._fit_mode = False
        before = self.to_content(anchor)
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, self._zoom * factor))
        offset = QPointF(anchor.x() - before.x() * zoom, anchor.y() - before.y() * zoom)
        self.set_view(zoom, offset)

    def zoom_in(self) -> None:
        self.zoom_at(WHEEL_STEP, QPointF(self.width() / 2, self.height() / 2))

    def zoom_out(self) -> None:
        self.zoom_at(1 / WHEEL_STEP, QPointF(self.width() / 2, self.height() / 2))

    def fit(self) -> None:
        """Show the whole content, centred (and keep fitting as the window resizes)."""
        self._fit_mode = True
        size = self.content_size()
        if size.width() <= 0 or size.height() <= 0:
            return
        zoom = min(self.width() / size.width(), self.height() / size.height())
        zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.set_view(zoom, self._centred_offset(zoom))

    def actual_size(self) -> None:
        """One content pixel per screen pixel, centred on what is in the middle now."""
        self._fit_mode = False
        centre = self.to_content(QPointF(self.width() / 2, self.height() / 2))
        self.set_view(1.0, QPointF(self.width() / 2 - centre.x(), self.height() / 2 - centre.y()))

    def _centred_offset(self, zoom: float) -> QPointF:
        size = self.content_size()
        return QPointF(
            (self.width() - size.width() * zoom) / 2, (self.height() - size.height() * zoom) / 2
        )

    def content_changed(self, *, refit: bool = False) -> None:
        if refit or self._fit_mode:
            self.fit()
        self.update()

    # -- events --------------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps == 0 or not self.has_content():
            event.ignore()
            return
        self.zoom_at(WHEEL_STEP**steps, event.position())
        event.accept()

    def left_button_pans(self) -> bool:
        """Whether a plain left drag pans (views without an editor) or edits."""
        return True

    def _starts_pan(self, event: QMouseEvent) -> bool:
        button = event.button()
        if button in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            return True
        return button == Qt.MouseButton.LeftButton and (self._space_held or self.left_button_pans())

    def begin_pan(self, pos: QPointF) -> None:
        self._pan_anchor = QPointF(pos)
        self._pan_start_offset = QPointF(self._offset)
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.has_content() and self._starts_pan(event):
            self.begin_pan(event.position())
            event.accept()
            return
        super().mousePressEvent(event)

    def end_pan(self) -> None:
        """Stop panning: on release, or when the release went elsewhere (a dialog opened
        mid-drag), so later moves of a free mouse never drag the view."""
        if self._pan_anchor is not None:
            self._pan_anchor = None
            self.unsetCursor()

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A dialog (Save, an error) took the keyboard and the mouse: a drag or a held Space
        # in progress ended there.
        self.end_pan()
        if self._space_held:
            self._space_held = False
            self.unsetCursor()
        super().focusOutEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        # The second click of a double-click that closed a dialog over the view lands here:
        # it must not start a pan (Qt's default treats it as a press).
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_anchor is not None and event.buttons() == Qt.MouseButton.NoButton:
            self.end_pan()  # the release was lost
        if self._pan_anchor is not None:
            self._fit_mode = False
            delta = event.position() - self._pan_anchor
            self.set_view(self._zoom, self._pan_start_offset + delta)
            event.accept()
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_anchor is not None:
            self.end_pan()
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_held = False
            self.unsetCursor()
            event.accept()
            return
        super().keyReleaseEvent(event)

    # -- painting helpers ----------------------------------------------------------------
    def paint_background(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), QColor(38, 38, 42))

    def paint_image(
        self, painter: QPainter, image: QImage, factor: float = 1.0, *, smooth: bool | None = None
    ) -> None:
        """Draw ``image`` whose pixels are ``factor`` content pixels wide (an input shown at
        output scale has factor = scale). Nearest when zoomed in, so pixels stay inspectable;
        a checkerboard under an image with transparency."""
        if image.isNull():
            return
        scale = self._zoom * factor
        if smooth is None:
            smooth = scale < 1.0
        painter.save()
        if image.hasAlphaChannel():
            # The checks move with the image when it is panned, as in image editors.
            painter.setBrushOrigin(self._offset)
            painter.fillRect(QRectF(self._offset, QSizeF(image.width() * scale,
                                                         image.height() * scale)), checker_brush())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
        painter.translate(self._offset)
        painter.scale(scale, scale)
        painter.drawImage(QPointF(0, 0), image)
        painter.restore()

    def paint_pixel_grid(self, painter: QPainter, unit: float = 1.0) -> None:
        """Lines between content pixels once they are big enough to tell apart."""
        step = self._zoom * unit
        if step < GRID_ZOOM or not self.has_content():
            return
        size = self.content_size()
        top_left = self.to_widget(QPointF(0, 0))
        bottom_right = self.to_widget(QPointF(size.width(), size.height()))
        left = max(top_left.x(), 0.0)
        right = min(bottom_right.x(), float(self.width()))
        top = max(top_left.y(), 0.0)
        bottom = min(bottom_right.y(), float(self.height()))
        if left >= right or top >= bottom:
            return
        painter.save()
        painter.setPen(QPen(QColor(0, 0, 0, 90), 1))
        first = math.ceil((left - top_left.x()) / step)
        x = top_left.x() + first * step
        while x <= right:
            painter.drawLine(QPointF(x, top), QPointF(x, bottom))
            x += step
        first = math.ceil((top - top_left.y()) / step)
        y = top_left.y() + first * step
        while y <= bottom:
            painter.drawLine(QPointF(left, y), QPointF(right, y))
            y += step
        painter.restore()

    def paint_placeholder(self, painter: QPainter, text: str) -> None:
        painter.setPen(QColor(170, 170, 175))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text)
