"""The input photo's view: :class:`ImageCanvas`, a :class:`~cmdsr_app.views.zoom_view.ZoomPanView`
(zoom, pan, the pixel grid, the checkerboard) with the support-region editor
(draw, move, resize, delete rectangles on the input photo) and the preview of the patches the
engine will use. The regions themselves live in a Qt-free :class:`~cmdsr_app.state.RegionList`
that the canvas edits and observes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PySide6.QtCore import QPointF, QRectF, QSizeF, Qt
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
)
from PySide6.QtWidgets import QWidget

from cmdsr_app.state import Region, RegionList
from cmdsr_app.views.damage_overlay import paint_damage_overlay
from cmdsr_app.views.zoom_view import ZoomPanView

if TYPE_CHECKING:
    from cmdsr_app.damage_readout import DamageTile

HANDLE_PX = 7  # grab distance of a region's edge or corner, in screen pixels

VALID_COLOR = QColor(64, 200, 255)
INVALID_COLOR = QColor(240, 70, 70)


def region_label_colours(problem: bool) -> tuple[QColor, QColor]:
    """(background, text) of a region's label. A label that says why a region is unusable
    sits on a nearly opaque dark box in light red: red on a see-through box was hard to read
    on a busy photo (issue 31)."""
    if problem:
        return QColor(25, 20, 20, 235), QColor(255, 160, 160)
    return QColor(0, 0, 0, 160), VALID_COLOR
PATCH_COLOR = QColor(255, 210, 40)
# Which parts of a region a drag grabs: (moves left, moves top, moves right, moves bottom).
_EDGES = {
    "move": (True, True, True, True),
    "tl": (True, True, False, False),
    "tr": (False, True, True, False),
    "bl": (True, False, False, True),
    "br": (False, False, True, True),
    "l": (True, False, False, False),
    "r": (False, False, True, False),
    "t": (False, True, False, False),
    "b": (False, False, False, True),
}
_CURSORS = {
    "move": Qt.CursorShape.SizeAllCursor,
    "tl": Qt.CursorShape.SizeFDiagCursor,
    "br": Qt.CursorShape.SizeFDiagCursor,
    "tr": Qt.CursorShape.SizeBDiagCursor,
    "bl": Qt.CursorShape.SizeBDiagCursor,
    "l": Qt.CursorShape.SizeHorCursor,
    "r": Qt.CursorShape.SizeHorCursor,
    "t": Qt.CursorShape.SizeVerCursor,
    "b": Qt.CursorShape.SizeVerCursor,
}


EMPTY_PLACEHOLDER = "Open a photo (Ctrl+O), drop files here, or paste an image (Ctrl+V)."


class ImageCanvas(ZoomPanView):
    """The input photo, its support regions (editable), the previewed patch boxes and the
    damage map overlay (per-tile estimates, when shown).

    Left drag on empty image draws a region; on a region moves it; on its edge or corner
    resizes it. Delete removes the selected one. Middle/right drag (or Space + drag) pans.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage()
        self._regions: RegionList | None = None
        self._patch_boxes: list[tuple[int, int, int, int]] = []
        self._damage_tiles: list[DamageTile] = []
        self._regions_enabled = True
        self._placeholder = EMPTY_PLACEHOLDER
        # Drag state: what is grabbed and where the drag started (content coordinates).
        self._drag_kind: str | None = None
        self._drag_index: int | None = None
        self._drag_origin = QPointF()
        self._drag_region: Region | None = None
        self._rubber: Region | None = None
        self.setAcceptDrops(False)  # the main window takes drops

    # -- model -----------------------------------------------------------------------------
    def set_region_list(self, regions: RegionList | None) -> None:
        if self._regions is not None:
            self._regions.changed.disconnect(self.update)
            self._regions.selection_changed.disconnect(self._on_selection)
        self._regions = regions
        if regions is not None:
            regions.changed.connect(self.update)
            regions.selection_changed.connect(self._on_selection)
        self.update()

    def _on_selection(self, _index: int | None) -> None:
        self.update()

    @property
    def region_list(self) -> RegionList | None:
        return self._regions

    def set_image(self, image: QImage | None) -> None:
        self._image = QImage() if image is None else image
        self._patch_boxes = []
        self._damage_tiles = []  # they belonged to the previous photo
        self.content_changed(refit=True)

    def image(self) -> QImage:
        return self._image

    def placeholder(self) -> str:
        """The text shown while there is no image."""
        return self._placeholder

    def set_placeholder(self, text: str) -> None:
        self._placeholder = text
        self.update()

    def set_patch_boxes(self, boxes: Sequence[tuple[int, int, int, int]]) -> None:
        self._patch_boxes = [tuple(b) for b in boxes]  # type: ignore[misc]
        self.update()

    @property
    def patch_boxes(self) -> list[tuple[int, int, int, int]]:
        return list(self._patch_boxes)

    def set_damage_tiles(self, tiles: Sequence[DamageTile]) -> None:
        """The damage map overlay (an empty list hides it)."""
        self._damage_tiles = list(tiles)
        self.update()

    @property
    def damage_tiles(self) -> list[DamageTile]:
        return list(self._damage_tiles)

    def set_regions_enabled(self, enabled: bool) -> None:
        self._regions_enabled = enabled
        self.update()

    def content_size(self) -> QSizeF:
        return QSizeF(self._image.width(), self._image.height())

    def left_button_pans(self) -> bool:
        return not (self._regions_enabled and self._regions is not None)

    # -- geometry helpers -------------------------------------------------------------------
    def region_rect(self, region: Region) -> QRectF:
        """The region's rectangle in widget coordinates."""
        top_left = self.to_widget(QPointF(region.x, region.y))
        return QRectF(top_left.x(), top_left.y(), region.w * self.zoom, region.h * self.zoom)

    def _grab_at(self, pos: QPointF) -> tuple[str, int] | None:
        """Which region part (edge, corner or body) lies under a widget point."""
        if self._regions is None:
            return None
        order = list(range(len(self._regions)))
        if self._regions.selected is not None:  # the selected one wins over the ones under it
            order.remove(self._regions.selected)
            order.append(self._regions.selected)
        for index in reversed(order):
            rect = self.region_rect(self._regions[index])
            near_l = abs(pos.x() - rect.left()) <= HANDLE_PX
            near_r = abs(pos.x() - rect.right()) <= HANDLE_PX
            near_t = abs(pos.y() - rect.top()) <= HANDLE_PX
            near_b = abs(pos.y() - rect.bottom()) <= HANDLE_PX
            in_x = rect.left() - HANDLE_PX <= pos.x() <= rect.right() + HANDLE_PX
            in_y = rect.top() - HANDLE_PX <= pos.y() <= rect.bottom() + HANDLE_PX
            if not (in_x and in_y):
                continue
            vertical = "t" if near_t else "b" if near_b else ""
            horizontal = "l" if near_l else "r" if near_r else ""
            if vertical and horizontal:
                return vertical + horizontal, index
            if vertical or horizontal:
                return vertical or horizontal, index
            if rect.contains(pos):
                return "move", index
        return None

    def _image_bounds_point(self, point: QPointF) -> QPointF:
        return QPointF(
            min(max(point.x(), 0.0), float(self._image.width())),
            min(max(point.y(), 0.0), float(self._image.height())),
        )

    # -- mouse -----------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        editing = (
            event.button() == Qt.MouseButton.LeftButton
            and not self._space_held
            and self._regions is not None
            and self._regions_enabled
            and self.has_content()
        )
        if not editing:
            super().mousePressEvent(event)
            return
        assert self._regions is not None
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        grab = self._grab_at(pos)
        self._drag_origin = self.to_content(pos)
        if grab is not None:
            kind, index = grab
            self._regions.select(index)
            self._drag_kind, self._drag_index = kind, index
            self._drag_region = self._regions[index]
        else:
            self._regions.select(None)
            self._drag_kind, self._drag_index = "new", None
            start = self._image_bounds_point(self._drag_origin)
            self._drag_origin = start
            self._rubber = Region.from_corners(start.x(), start.y(), start.x(), start.y())
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_kind is None:
            if self._pan_anchor is None:
                grab = self._grab_at(event.position()) if self._regions_enabled else None
                if grab is not None:
                    self.setCursor(_CURSORS[grab[0]])
                elif not self._space_held:
                    self.unsetCursor()
            super().mouseMoveEvent(event)
            return
        point = self.to_content(event.position())
        if self._drag_kind == "new":
            end = self._image_bounds_point(point)
            self._rubber = Region.from_corners(
                self._drag_origin.x(), self._drag_origin.y(), end.x(), end.y()
            )
            self.update()
        else:
            self._apply_drag(point)
        event.accept()

    def _apply_drag(self, point: QPointF) -> None:
        assert self._regions is not None and self._drag_region is not None
        assert self._drag_index is not None and self._drag_kind is not None
        dx = round(point.x() - self._drag_origin.x())
        dy = round(point.y() - self._drag_origin.y())
        r = self._drag_region
        width, height = self._image.width(), self._image.height()
        if self._drag_kind == "move":
            moved = r.moved(dx, dy).clamped(width, height)
            self._regions.update(self._drag_index, moved)
            return
        move_l, move_t, move_r, move_b = _EDGES[self._drag_kind]
        left = r.x + dx if move_l else r.x
        top = r.y + dy if move_t else r.y
        right = r.right + dx if move_r else r.right
        bottom = r.bottom + dy if move_b else r.bottom
        left, right = (min(max(v, 0), width) for v in (left, right))
        top, bottom = (min(max(v, 0), height) for v in (top, bottom))
        self._regions.update(self._drag_index, Region.from_corners(left, top, right, bottom))

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag_kind is None:
            super().mouseReleaseEvent(event)
            return
        if self._drag_kind == "new" and self._rubber is not None and self._regions is not None:
            rubber = self._rubber
            # A click (barely any drag on screen) only clears the selection.
            if rubber.w * self.zoom >= 3 and rubber.h * self.zoom >= 3 and rubber.w and rubber.h:
                self._regions.add(rubber)
        self._drag_kind = None
        self._drag_index = None
        self._drag_region = None
        self._rubber = None
        self.update()
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (
            event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)
            and self._regions is not None
            and self._regions.selected is not None
        ):
            self._regions.remove(self._regions.selected)
            event.accept()
            return
        super().keyPressEvent(event)

    # -- painting --------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        self.paint_background(painter)
        if self._image.isNull():
            self.paint_placeholder(painter, self._placeholder)
            painter.end()
            return
        self.paint_image(painter, self._image)
        self.paint_pixel_grid(painter)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        paint_damage_overlay(painter, self._damage_tiles, self.to_widget, self.zoom)
        self._paint_patch_boxes(painter)
        if self._regions is not None and self._regions_enabled:
            self._paint_regions(painter)
        if self._rubber is not None:
            painter.setPen(QPen(VALID_COLOR, 1, Qt.PenStyle.DashLine))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(self.region_rect(self._rubber))
        painter.end()

    def _paint_patch_boxes(self, painter: QPainter) -> None:
        if not self._patch_boxes:
            return
        painter.setPen(QPen(PATCH_COLOR, 1))
        painter.setBrush(QBrush(QColor(255, 210, 40, 40)))
        for x, y, w, h in self._patch_boxes:
            painter.drawRect(self.region_rect(Region(x, y, w, h)))

    def _paint_regions(self, painter: QPainter) -> None:
        assert self._regions is not None
        metrics = painter.fontMetrics()
        for index, region in enumerate(self._regions):
            problem = self._regions.problem(index)
            color = VALID_COLOR if problem is None else INVALID_COLOR
            selected = index == self._regions.selected
            pen = QPen(color, 2 if selected else 1.5)
            if problem is not None:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            fill = QColor(color)
            fill.setAlpha(45 if selected else 25)
            painter.setBrush(fill)
            rect = self.region_rect(region)
            painter.drawRect(rect)
            label = f"{index + 1}" if problem is None else f"{index + 1} {problem}"
            text_rect = QRectF(rect.left(), rect.top() - metrics.height() - 2,
                               metrics.horizontalAdvance(label) + 8, metrics.height() + 2)
            if text_rect.top() < 0:
                text_rect.moveTop(rect.top() + 2)
            if text_rect.right() > self.width():  # keep the reason readable at the edge
                text_rect.moveRight(self.width() - 2)
            if text_rect.left() < 0:
                text_rect.moveLeft(2)
            background, text = region_label_colours(problem is not None)
            painter.fillRect(text_rect, background)
            painter.setPen(text)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignCenter, label)
            if selected:
                painter.setBrush(color)
                painter.setPen(Qt.PenStyle.NoPen)
                for corner in (rect.topLeft(), rect.topRight(), rect.bottomLeft(), rect.bottomRight()):
                    painter.drawRect(QRectF(corner.x() - 3, corner.y() - 3, 6, 6))
