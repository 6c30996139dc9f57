"""The Look control on screen: one slider from Faithful (0) to Crisp (1) under the damage
knobs, its value, and, when it cannot be used, one line saying why."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QSlider, QWidget

STEPS = 20  # slider positions: looks in steps of 0.05
LOOK_TIP = ("How the upscale looks. Faithful (0) restores only what the photo supports: "
            "safe, can look soft. Crisp (1) is the same network trained to draw photo-like "
            "texture: sharper, and it may invent fine detail that was not there. Between: the "
            "two networks' weights blended, at the same speed.")


class LookPanel(QWidget):
    """``lookEdited(value)`` when the user moves the slider (0..1)."""

    lookEdited = Signal(float)  # noqa: N815 (Qt signal naming)

    def __init__(self) -> None:
        super().__init__()
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setSingleStep(1)
        self.slider.setPageStep(STEPS // 5)
        self.slider.setToolTip(LOOK_TIP)
        self.slider.setAccessibleName("Look, from faithful to crisp")
        self.value_label = QLabel()
        self.value_label.setMinimumWidth(self.value_label.fontMetrics().horizontalAdvance("0.00") + 6)
        self.reason = QLabel()
        self.reason.setWordWrap(True)
        self.reason.setStyleSheet("color: palette(mid);")
        self.reason.setVisible(False)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(QLabel("Faithful"), 0, 0)
        grid.addWidget(self.slider, 0, 1)
        grid.addWidget(QLabel("Crisp"), 0, 2)
        grid.addWidget(self.value_label, 0, 3)
        grid.addWidget(self.reason, 1, 0, 1, 4)
        grid.setColumnStretch(1, 1)
        self._available = False
        self._locked = False
        self.slider.valueChanged.connect(self._on_slider)
        self.set_look(0.0)
        self._update_enabled()

    def look(self) -> float:
        return self.slider.value() / STEPS

    def set_look(self, value: float) -> None:
        """Show ``value`` without reporting it as the user's move."""
        self.slider.blockSignals(True)
        self.slider.setValue(round(min(max(value, 0.0), 1.0) * STEPS))
        self.slider.blockSignals(False)
        self.value_label.setText(f"{self.look():.2f}")

    def set_available(self, available: bool, reason: str = "") -> None:
        """Usable, or disabled with ``reason`` shown under the slider."""
        self._available = available
        self.reason.setText(reason)
        self.reason.setVisible(not available and bool(reason))
        self._update_enabled()

    def set_locked(self, locked: bool) -> None:
        """Held while a run or batch uses the look."""
        self._locked = locked
        self._update_enabled()

    def _update_enabled(self) -> None:
        self.slider.setEnabled(self._available and not self._locked)

    def _on_slider(self, _position: int) -> None:
        self.value_label.setText(f"{self.look():.2f}")
        self.lookEdited.emit(self.look())
