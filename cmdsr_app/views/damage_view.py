"""How the window shows the damage the model reads: the panel under the support regions (the
whole photo and each region, in numbers and words). The per-tile overlay painted on the input
canvas is ``damage_overlay``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.damage_readout import (
    DamageReading,
    describe,
    no_readout_text,
    units_hint,
)
from cmdsr_app.views.damage_knobs_view import DamageKnobsPanel

MIN_LIST_HEIGHT = 44  # two lines, while there are no numbers
ROWS_IN_FULL = 2  # the whole photo's line and the first region's are never cut


class DamagePanel(QWidget):
    """The model's damage estimate for the whole photo and each drawn region, and the button
    that shows the per-tile map on the photo."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setMinimumHeight(MIN_LIST_HEIGHT)  # the knobs below keep their room
        self.overlay_button = QToolButton()
        self.overlay_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.knobs = DamageKnobsPanel()  # beside the numbers: the damage the user sets
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.message)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.overlay_button)
        layout.addWidget(self.knobs)
        self.show_message("Open a photo to see how blurred and noisy the model finds it.")

    def set_overlay_action(self, action: QAction) -> None:
        self.overlay_button.setDefaultAction(action)

    def show_message(self, text: str, *, error: bool = False, keep_rows: bool = False,
                     tooltip: str = "") -> None:
        """A line above the rows: what is happening, or why there are no numbers."""
        self.message.setText(text)
        self.message.setToolTip(tooltip)
        self.message.setStyleSheet("color: #d05050;" if error else "color: palette(mid);")
        if not keep_rows:
            self.list.clear()
            self.list.setMinimumHeight(MIN_LIST_HEIGHT)
        self.list.setEnabled(not keep_rows)  # greyed: numbers of the previous state

    def show_reading(self, reading: DamageReading, scale: int) -> None:
        if reading.no_readout:
            self.show_message(no_readout_text(reading.no_readout))
            return
        self.show_message("What the model reads (estimates):", tooltip=units_hint(scale))
        self.list.setToolTip(units_hint(scale))
        if reading.photo is not None:
            self._add(f"Whole photo ({reading.support.capitalize()} patches)\n"
                      f"{describe(reading.photo)}")
        for i, region in enumerate(reading.regions):
            if region.estimate is not None:
                self._add(f"Region {i + 1}\n{describe(region.estimate)}")
            else:
                self._add(f"Region {i + 1}\nno estimate: {region.problem}", error=True)
        self._fit_rows()

    def _fit_rows(self) -> None:
        """Tall enough for the photo's line and a region's, as wrapped at this width: a
        squeezed box cut a region's line in half (issue 31). More regions scroll."""
        rows = min(self.list.count(), ROWS_IN_FULL)
        if not rows:
            return
        self.list.doItemsLayout()  # the rows' heights as wrapped at the current width
        first = self.list.visualItemRect(self.list.item(0))
        last = self.list.visualItemRect(self.list.item(rows - 1))
        needed = last.bottom() - first.top() + 1
        self.list.setMinimumHeight(max(MIN_LIST_HEIGHT, needed + 2 * self.list.frameWidth() + 2))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            self._fit_rows()  # another width wraps the rows into more or fewer lines

    def _add(self, text: str, *, error: bool = False) -> None:
        item = QListWidgetItem(text)
        if error:
            item.setForeground(QColor(220, 80, 80))
        self.list.addItem(item)

    def rows(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]
