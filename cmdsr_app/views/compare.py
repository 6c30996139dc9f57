"""The compare view: the result beside the input at the same scale.

Two modes share the same sources: a *split* slider over one view (left of the line one
source, right of it the other), and *side by side* with zoom and pan locked together. Each
side shows one of: the input (nearest), bicubic, CMDSR, the conditioning-off baseline,
CMDSR with the other support choice, or the Look's two ends (Faithful and Crisp). Holding Space (or the "Hold: original" button) flashes
the input over everything.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.views.compare_canvas import SPLIT_GRAB_PX, CompareCanvas, Layer

if TYPE_CHECKING:
    from cmdsr_app.settings import AppSettings

log = logging.getLogger(__name__)

# Source keys and the names a user sees.
SOURCES: dict[str, str] = {
    "input": "Input (nearest)",
    "bicubic": "Bicubic",
    "cmdsr": "CMDSR",
    "baseline": "Baseline (no conditioning)",
    "cmdsr_alt": "CMDSR, other support",
    "faithful": "Faithful (look 0)",
    "crisp": "Crisp (look 1)",
}
# Each a full run of its own: computed only when the user asks, never behind their back.
OPTIONAL_SOURCES = ("baseline", "cmdsr_alt", "faithful", "crisp")
# The Look's two ends, side by side: the shipped model at look 0 and at look 1.
LOOK_SOURCES: dict[str, float] = {"faithful": 0.0, "crisp": 1.0}
__all__ = ["LOOK_SOURCES", "OPTIONAL_SOURCES", "SOURCES", "SPLIT_GRAB_PX", "CompareCanvas", "CompareView", "Layer"]


class CompareView(QWidget):
    """Toolbar (mode, left/right source, fit/100%, hold-original) over the split canvas or
    the locked side-by-side pair.

    ``sourceRequested(key)`` asks the window to compute a source that is not there yet.
    """

    sourceRequested = Signal(str)
    stopRequested = Signal(str)  # noqa: N815 - stop computing that source
    modeChanged = Signal(str)
    altSupportChanged = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._input: QImage | None = None
        self._scale = 1
        self._results: dict[str, QImage] = {}
        self._pending: dict[str, str] = {}  # key -> "computing…" text
        self._disabled: dict[str, str] = {}  # key -> why it cannot be chosen

        self.split_canvas = CompareCanvas(split=True)
        self.left_canvas = CompareCanvas(split=False)
        self.right_canvas = CompareCanvas(split=False)
        # Side by side: each side follows the other's zoom and pan.
        self.left_canvas.viewChanged.connect(self.right_canvas.follow_view)
        self.right_canvas.viewChanged.connect(self.left_canvas.follow_view)
        self.left_canvas.flashChanged.connect(self._set_flash)
        self.right_canvas.flashChanged.connect(self._set_flash)
        self.split_canvas.flashChanged.connect(self._set_flash)
        self.split_canvas.missingClicked.connect(
            lambda left: self._compute_clicked(self.left_source if left else self.right_source))
        self.left_canvas.missingClicked.connect(lambda _: self._compute_clicked(self.left_source))
        self.right_canvas.missingClicked.connect(lambda _: self._compute_clicked(self.right_source))

        self.split_button = QToolButton(text="Split")
        self.side_button = QToolButton(text="Side by side")
        for button in (self.split_button, self.side_button):
            button.setCheckable(True)
            button.setAutoRaise(True)
        self.split_button.setChecked(True)
        self.split_button.setToolTip("One view, drag the line to compare")
        self.side_button.setToolTip("Two views with zoom and pan locked together")
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.split_button)
        group.addButton(self.side_button)
        self.split_button.clicked.connect(lambda: self.set_mode("split"))
        self.side_button.clicked.connect(lambda: self.set_mode("side"))

        self.left_combo = QComboBox()
        self.right_combo = QComboBox()
        for combo in (self.left_combo, self.right_combo):
            for key, name in SOURCES.items():
                combo.addItem(name, key)
        # Bicubic is the honest reference: what any viewer's enlargement shows.
        self.left_combo.setCurrentIndex(self.left_combo.findData("bicubic"))
        self.right_combo.setCurrentIndex(self.right_combo.findData("cmdsr"))
        for combo in (self.left_combo, self.right_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)
        self.left_combo.setToolTip("What the left side shows")
        self.right_combo.setToolTip("What the right side shows")
        self.left_combo.currentIndexChanged.connect(self._on_source_changed)
        self.right_combo.currentIndexChanged.connect(self._on_source_changed)

        self.alt_combo = QComboBox()
        self.alt_combo.addItem("random", "random")
        self.alt_combo.addItem("auto", "auto")
        self.alt_combo.addItem("my regions", "regions")
        self.alt_combo.setToolTip("The support choice of the 'CMDSR, other support' source, "
                                  "to see how much the choice of patches matters")
        self.alt_combo.currentIndexChanged.connect(self._on_alt_changed)

        self.flash_button = QPushButton("Hold: original")
        self.flash_button.setToolTip("Hold this button, or Space over the image, to see the input")
        self.flash_button.pressed.connect(lambda: self._set_flash(True))
        self.flash_button.released.connect(lambda: self._set_flash(False))
        # Compute (or Stop) an optional source a side shows: baseline, other support.
        self.compute_button = QPushButton()
        self.compute_button.setVisible(False)
        self.compute_button.clicked.connect(self._on_compute_button)
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.clicked.connect(self.fit)
        self.actual_button = QToolButton(text="100%")
        self.actual_button.clicked.connect(self.actual_size)

        # Two rows, so the view fits beside the side panels on a laptop screen.
        sources = QHBoxLayout()
        sources.setContentsMargins(4, 2, 4, 0)
        sources.addWidget(QLabel("Left:"))
        sources.addWidget(self.left_combo, 1)
        sources.addWidget(QLabel("Right:"))
        sources.addWidget(self.right_combo, 1)
        sources.addWidget(QLabel("Other support:"))
        sources.addWidget(self.alt_combo)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 2)
        bar.addWidget(self.split_button)
        bar.addWidget(self.side_button)
        bar.addStretch(1)
        bar.addWidget(self.compute_button)
        bar.addWidget(self.flash_button)
        bar.addWidget(self.fit_button)
        bar.addWidget(self.actual_button)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.left_canvas)
        splitter.addWidget(self.right_canvas)
        splitter.setChildrenCollapsible(False)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.split_canvas)
        self.stack.addWidget(splitter)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(sources)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

    # -- public API --------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        return "split" if self.stack.currentIndex() == 0 else "side"

    def set_mode(self, mode: str) -> None:
        if mode not in ("split", "side"):
            raise ValueError(f"unknown compare mode {mode!r}")
        index = 0 if mode == "split" else 1
        if index == self.stack.currentIndex():
            return
        # Carry the view over so switching modes keeps what the user was looking at.
        source = self.split_canvas if index == 1 else self.left_canvas
        self.stack.setCurrentIndex(index)
        (self.split_button if index == 0 else self.side_button).setChecked(True)
        for canvas in self.canvases():
            if canvas is not source and not source.fit_mode:
                canvas.follow_view(source.zoom, source.offset)
            elif source.fit_mode:
                canvas.fit()
        self.modeChanged.emit(mode)

    def canvases(self) -> tuple[CompareCanvas, CompareCanvas, CompareCanvas]:
        return (self.split_canvas, self.left_canvas, self.right_canvas)

    def active_canvases(self) -> list[CompareCanvas]:
        return [self.split_canvas] if self.mode == "split" else [self.left_canvas, self.right_canvas]

    @property
    def left_source(self) -> str:
        return str(self.left_combo.currentData())

    @property
    def right_source(self) -> str:
        return str(self.right_combo.currentData())

    def set_sources(self, left: str, right: str) -> None:
        for combo, key in ((self.left_combo, left), (self.right_combo, right)):
            index = combo.findData(key)
            if index < 0:
                raise ValueError(f"unknown compare source {key!r}")
            combo.setCurrentIndex(index)

    def set_input(self, image: QImage | None, scale: int) -> None:
        """A new input (clears the results): shown at ``scale`` times its size."""
        self._input = image
        self._scale = max(1, int(scale))
        self._results.clear()
        self._pending.clear()
        self._refresh(refit=True)

    def set_scale(self, scale: int) -> None:
        if scale != self._scale:
            self._scale = max(1, int(scale))
            self._results.clear()
            self._refresh(refit=True)

    @property
    def scale(self) -> int:
        return self._scale

    def set_result(self, key: str, image: QImage | None) -> None:
        if key not in SOURCES or key == "input":
            raise ValueError(f"unknown result {key!r}")
        self._pending.pop(key, None)
        if image is None:
            self._results.pop(key, None)
        else:
            self._results[key] = image
        self._refresh()

    def set_pending(self, key: str, text: str) -> None:
        self._pending[key] = text
        self._refresh()

    def clear_pending(self, key: str) -> None:
        self._pending.pop(key, None)
        self._refresh()

    def missing_sources(self) -> list[str]:
        """Sources a side shows that can be computed now but are not there yet."""
        if self._input is None:
            return []
        keys = dict.fromkeys((self.left_source, self.right_source))
        return [k for k in keys if k not in ("input", "cmdsr") and not self.has_source(k)
                and k not in self._pending and k not in self._disabled]

    def result(self, key: str) -> QImage | None:
        return self._results.get(key)

    def has_source(self, key: str) -> bool:
        return key == "input" and self._input is not None or key in self._results

    def set_source_enabled(self, key: str, enabled: bool, why: str = "", *,
                           hide: bool = False) -> None:
        """Grey out a source the app cannot compute (e.g. no baseline model shipped); with
        ``hide``, leave it out of the lists as well (the looks, without a crisp model)."""
        if enabled:
            self._disabled.pop(key, None)
        else:
            self._disabled[key] = why
        for combo in (self.left_combo, self.right_combo):
            index = combo.findData(key)
            item = combo.model().item(index)  # type: ignore[attr-defined]
            item.setEnabled(enabled)
            combo.setItemData(index, why if not enabled else None, Qt.ItemDataRole.ToolTipRole)
            combo.view().setRowHidden(index, hide and not enabled)  # type: ignore[attr-defined]

    def source_disabled_reason(self, key: str) -> str | None:
        return self._disabled.get(key)

    def fit(self) -> None:
        for canvas in self.active_canvases():
            canvas.fit()

    def actual_size(self) -> None:
        self.active_canvases()[0].actual_size()

    def zoom_in(self) -> None:
        self.active_canvases()[0].zoom_in()

    def zoom_out(self) -> None:
        self.active_canvases()[0].zoom_out()

    @property
    def flashing(self) -> bool:
        return self.split_canvas.flashing or self.left_canvas.flashing or self.right_canvas.flashing

    @property
    def alt_support(self) -> str:
        return str(self.alt_combo.currentData())

    def set_alt_support(self, mode: str) -> None:
        index = self.alt_combo.findData(mode)
        if index >= 0:
            self.alt_combo.setCurrentIndex(index)

    def apply_settings(self, settings: AppSettings) -> None:
        """The remembered sides and other-support choice (unknown sides keep the defaults)."""
        self.set_alt_support(settings.alt_support_mode)
        try:
            self.set_sources(settings.compare_left, settings.compare_right)
        except ValueError:
            log.warning("settings: unknown compare sides %s / %s", settings.compare_left,
                        settings.compare_right)

    def read_into(self, settings: AppSettings) -> None:
        """Remember the sides (the other-support choice is stored as soon as it changes)."""
        settings.compare_left, settings.compare_right = self.left_source, self.right_source

    # -- internals ---------------------------------------------------------------------------
    def _on_alt_changed(self, _index: int) -> None:
        # The old "other support" result no longer matches the choice: drop and recompute.
        self._results.pop("cmdsr_alt", None)
        self._pending.pop("cmdsr_alt", None)
        self.altSupportChanged.emit(self.alt_support)
        self._on_source_changed(0)

    def _set_flash(self, on: bool) -> None:
        for canvas in self.canvases():
            if canvas.flashing != on:
                canvas.blockSignals(True)
                canvas.set_flashing(on)
                canvas.blockSignals(False)

    def _layer(self, key: str) -> Layer | None:
        if key == "input":
            if self._input is None:
                return None
            return Layer(self._input, float(self._scale), smooth=False, label=SOURCES["input"])
        image = self._results.get(key)
        if image is None:
            return None
        factor = self._output_width() / max(1, image.width())
        return Layer(image, factor, label=SOURCES[key])

    def _output_width(self) -> int:
        return 0 if self._input is None else self._input.width() * self._scale

    def _missing_text(self, key: str) -> str:
        if key in self._disabled:
            return f"{SOURCES[key]}: {self._disabled[key]}"
        if key in self._pending:
            return self._pending[key]
        if key == "cmdsr":
            return "Run (Ctrl+R) to see the CMDSR result."
        if key in OPTIONAL_SOURCES:
            return (f"{SOURCES[key]} not computed: click here to compute it (optional, as long "
                    "as a run).")
        return f"{SOURCES[key]} not computed yet."

    def _optional_shown(self) -> str | None:
        """The optional source a side shows that is not there yet, if any."""
        if self._input is None:
            return None
        return next((k for k in (self.left_source, self.right_source)
                     if k in OPTIONAL_SOURCES and not self.has_source(k) and k not in self._disabled),
                    None)

    def _compute_clicked(self, key: str) -> None:
        if key in OPTIONAL_SOURCES and key not in self._pending and key not in self._disabled:
            self.sourceRequested.emit(key)

    def _on_compute_button(self) -> None:
        key = self._optional_shown()
        if key is None:
            return
        if key in self._pending:
            self.stopRequested.emit(key)
        else:
            self.sourceRequested.emit(key)

    def _on_source_changed(self, _index: int) -> None:
        for key in (self.left_source, self.right_source):
            if (
                self._input is not None
                and not self.has_source(key)
                and key not in self._pending
                and key not in self._disabled
                and key != "cmdsr"
            ):
                self.sourceRequested.emit(key)
        self._refresh()

    def _refresh(self, *, refit: bool = False) -> None:
        width = self._output_width()
        height = 0 if self._input is None else self._input.height() * self._scale
        left, right = self._layer(self.left_source), self._layer(self.right_source)
        left_missing = "" if left else self._missing_text(self.left_source)
        right_missing = "" if right else self._missing_text(self.right_source)
        flash = self._layer("input")
        optional = self._optional_shown()
        self.compute_button.setVisible(optional is not None)
        if optional is not None:
            pending = optional in self._pending
            self.compute_button.setText(f"{'Stop' if pending else 'Compute'} {SOURCES[optional]}")
            self.compute_button.setToolTip(
                "Stop computing it" if pending else "Optional: takes about as long as a run")
        self.split_canvas.set_layers(left, right, left_missing=left_missing, right_missing=right_missing)
        self.left_canvas.set_layers(left, left_missing=left_missing)
        self.right_canvas.set_layers(right, left_missing=right_missing)
        for canvas in self.canvases():
            canvas.set_flash_layer(flash)
            if refit:
                canvas.set_output_size(width, height)
                canvas.fit()
            else:
                canvas.set_output_size(width, height)
