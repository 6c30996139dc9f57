"""Widgets the main window is assembled from that hold no behaviour of their own: the input
page (canvas with its zoom bar and hint), titled boxes, scroll areas and docks for the side
panels."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QIcon, QResizeEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.views.canvas import ImageCanvas

HINT = "Drag: draw a region · Del: delete · right-drag: pan · wheel: zoom"
HINT_DETAILS = ("Drag on the photo: draw a region · drag a region: move it · its edges: resize · "
                "Del: delete the selected one · right-drag or Space+drag: pan · wheel: zoom")


class ElidedLabel(QLabel):
    """One line that ends in "…" when the room is short, so a cut hint reads as cut rather
    than running into the label beside it; ``full_text`` is the whole line."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.full_text = text
        # It may be cut on a narrow window; it must not set the window's minimum width.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideRight,
                                              max(0, self.width()))
        if shown != self.text():
            self.setText(shown)


class InputPage(QWidget):
    """The input canvas under a bar with the editing hint, the zoom level and zoom buttons."""

    def __init__(self, canvas: ImageCanvas, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = canvas
        self.zoom_label = QLabel("")
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.setToolTip("Fit the photo in the view (Ctrl+0)")
        self.actual_button = QToolButton(text="100%")
        self.actual_button.setToolTip("One photo pixel per screen pixel (Ctrl+1)")
        self.zoom_in_button = QToolButton(text="+")
        self.zoom_in_button.setToolTip("Zoom in (Ctrl+=, or the mouse wheel)")
        self.zoom_out_button = QToolButton(text="−")
        self.zoom_out_button.setToolTip("Zoom out (Ctrl+-)")
        self.hint = ElidedLabel(HINT)
        self.hint.setStyleSheet("color: palette(mid);")
        self.hint.setToolTip(HINT_DETAILS)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(self.hint, 1)
        bar.addSpacing(8)  # the hint's last word never touches the zoom level
        bar.addWidget(self.zoom_label)
        for button in (self.zoom_out_button, self.zoom_in_button, self.fit_button, self.actual_button):
            bar.addWidget(button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(canvas, 1)
        self.fit_button.clicked.connect(canvas.fit)
        self.actual_button.clicked.connect(canvas.actual_size)
        self.zoom_in_button.clicked.connect(canvas.zoom_in)
        self.zoom_out_button.clicked.connect(canvas.zoom_out)
        canvas.viewChanged.connect(self.show_zoom)

    def show_zoom(self, zoom: float, *_: object) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")


def titled(title: str, widget: QWidget) -> QWidget:
    """``widget`` under a bold title."""
    box = QWidget()
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 2, 4, 2)
    layout.setSpacing(4)
    layout.addWidget(QLabel(f"<b>{title}</b>"))
    layout.addWidget(widget, 1)
    return box


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area that resizes it."""
    scroll = QScrollArea()
    scroll.setWidget(widget)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QScrollArea.Shape.NoFrame)
    return scroll


def add_dock(window: QMainWindow, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea,
             *, movable: bool = True) -> QDockWidget:
    """A dock (named, so the window's saved state restores it) holding ``widget``."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    if movable:
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
    window.addDockWidget(area, dock)
    return dock


ICON_PATH = Path(__file__).resolve().parent.parent.parent / "resources" / "icons" / "cmdsr_studio.png"


def app_icon() -> QIcon:
    import sys

    root = Path(getattr(sys, "_MEIPASS", "")) / "resources" if getattr(sys, "_MEIPASS", None) else None
    path = root / "icons" / ICON_PATH.name if root else ICON_PATH
    return QIcon(str(path)) if path.exists() else QIcon()
