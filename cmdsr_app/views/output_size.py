"""The output-size row of the Output box: ×2, ×3, ×4 or a width or height in pixels, and a
plain note of how it is reached (the model runs at its own scale, then the result is shrunk
by area-averaging)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSpinBox, QVBoxLayout, QWidget

from cmdsr_app.state import SizeChoice

SIZE_KINDS = (("×2", "x2"), ("×3", "x3"), ("×4", "x4"), ("Fit width", "width"),
              ("Fit height", "height"))


class OutputSizeBox(QWidget):
    """``changed()`` when the size changes; ``choice`` is the current :class:`SizeChoice`."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._model_scale = 4
        self._photo: tuple[int, int] | None = None  # the shown photo's (width, height)
        self.combo = QComboBox()
        for text, data in SIZE_KINDS:
            self.combo.addItem(text, data)
        self.combo.setCurrentIndex(self.combo.findData("x4"))
        self.combo.setToolTip("How big the saved result is: a multiple of the photo, or a width "
                              "or height in pixels (the other side keeps the proportions)")
        self.pixels = QSpinBox()
        self.pixels.setRange(16, 100_000)
        self.pixels.setValue(1920)
        self.pixels.setSuffix(" px")
        self.pixels.setToolTip("The width or height of the saved result in pixels")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(mid);")
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.pixels)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.note)
        self.combo.currentIndexChanged.connect(self._update)
        self.pixels.valueChanged.connect(self._update)
        self._update()

    @property
    def choice(self) -> SizeChoice:
        data = str(self.combo.currentData())
        if data in ("width", "height"):
            return SizeChoice(data, int(self.pixels.value()))
        return SizeChoice("scale", int(data[1:]))

    def set_choice(self, choice: SizeChoice) -> None:
        if choice.kind == "scale":
            index = self.combo.findData(f"x{choice.value}")
        else:
            index = self.combo.findData(choice.kind)
            self.pixels.setValue(choice.value)
        if index >= 0:
            self.combo.setCurrentIndex(index)

    def set_model_scale(self, scale: int) -> None:
        """Sizes above the model's scale are shown but disabled, with the reason."""
        self._model_scale = scale
        model = self.combo.model()
        for i in range(self.combo.count()):
            data = str(self.combo.itemData(i))
            enabled = not data.startswith("x") or int(data[1:]) <= scale
            model.item(i).setEnabled(enabled)  # type: ignore[attr-defined]
            why = None if enabled else (f"This model upscales ×{scale}; larger results would "
                                        "only be interpolated")
            self.combo.setItemData(i, why, Qt.ItemDataRole.ToolTipRole)
        choice = self.choice
        if choice.kind == "scale" and choice.value > scale:
            self.combo.setCurrentIndex(self.combo.findData(f"x{scale}"))
        self._update()

    def set_photo_size(self, size: tuple[int, int] | None) -> None:
        """The shown photo's (width, height), so a width or height it cannot reach is said
        as it is typed rather than at save time; None: no photo."""
        self._photo = size
        self._update()

    @property
    def problem(self) -> str | None:
        """Why the shown photo cannot be saved at this size (the model's scale is the most it
        gives: a result is only ever shrunk from it), or None."""
        choice, scale = self.choice, self._model_scale
        if self._photo is None or choice.kind == "scale":
            return None
        width, height = self._photo
        most = (width if choice.kind == "width" else height) * scale
        if choice.value <= most:
            return None
        side = "wide" if choice.kind == "width" else "high"
        return (f"Too large for this {width}×{height} photo: at most {most} px {side} at the "
                f"model's ×{scale} (saving would be refused). A batch uses the size for photos "
                "large enough and lists the others as failed.")

    def _update(self) -> None:
        choice = self.choice
        self.pixels.setVisible(choice.kind != "scale")
        scale = self._model_scale
        problem = self.problem
        self.note.setStyleSheet("color: #d04040;" if problem else "color: palette(mid);")
        if problem:
            self.note.setText(problem)
        elif choice.is_model_scale(scale):
            self.note.setText("")
        else:
            self.note.setText(f"The model upscales ×{scale}; the result is then shrunk to "
                              f"{choice.describe()} by area-averaging (smooth, no jagged "
                              f"edges). Compare shows the ×{scale} result.")
        self.note.setVisible(bool(self.note.text()))  # no empty line under the choice
        self.changed.emit()
