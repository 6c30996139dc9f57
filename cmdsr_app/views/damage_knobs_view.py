"""The damage knobs on screen: Blur, Noise and JPEG sliders with spin boxes under the damage
panel, and the preview of the part of the photo in view, painted over the input canvas."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.damage_knobs import NO_JPEG, Damage, KnobRange
from cmdsr_app.damage_readout import blur_words, jpeg_words, noise_words

if TYPE_CHECKING:  # the canvas module imports the damage panel, which holds these knobs
    from cmdsr_app.views.zoom_view import ZoomPanView

BLUR_STEP, NOISE_STEP, JPEG_STEP = 0.1, 1.0, 1.0  # one slider step; the spin boxes match
BLUR_TIP = ("Blur σ the model assumes, in high-resolution pixels before the ×4 downscale "
            "(0.6 nearly sharp, 2.6 the paper's test blur, 3.6 very soft). More blur: the "
            "upscale sharpens harder.")
NOISE_TIP = ("Noise σ the model assumes, in grey levels 0..255 on the photo (5 faint, 15 "
             "clearly visible, 30+ heavy). More noise: the upscale smooths more.")
JPEG_TIP = ("JPEG quality the model assumes the photo was saved at (30 heavy blocks, 60 "
            "typical for the web, 95 light; 100: no JPEG). Lower: the upscale removes more "
            "block edges and ringing.")
NO_JPEG_KNOB = "No JPEG knob: this model's map was fitted without JPEG."


class _JpegSpinBox(QDoubleSpinBox):
    """The JPEG quality, reading "none" at 100 (quality 100 stands for no JPEG)."""

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return "none" if value >= NO_JPEG else f"{value:.0f}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        cleaned = text.strip().lower()
        if cleaned.startswith("n"):
            return NO_JPEG
        try:
            return float(cleaned)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int) -> object:
        from PySide6.QtGui import QValidator

        cleaned = text.strip().lower()
        if cleaned and "none".startswith(cleaned):
            state = QValidator.State.Acceptable if cleaned == "none" else QValidator.State.Intermediate
            return state, text, pos
        return super().validate(text, pos)


JPEG_RANGE_SHOWN = (30.0, NO_JPEG)  # before a model says its own


class _Knob:
    """One slider with its spin box, kept in step; values in the knob's own units."""

    def __init__(self, step: float, decimals: int, suffix: str, tip: str,
                 spin: QDoubleSpinBox | None = None) -> None:
        self.step = step
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.spin = spin if spin is not None else QDoubleSpinBox()
        self.spin.setDecimals(decimals)
        self.spin.setSingleStep(step)
        self.spin.setSuffix(suffix)
        self.spin.setKeyboardTracking(False)  # a number is taken when typed in full
        self.spin.setMinimumWidth(self.spin.fontMetrics().horizontalAdvance("00.0 px") + 36)
        for widget in (self.slider, self.spin):
            widget.setToolTip(tip)

    def set_range(self, low: float, high: float) -> None:
        # a range that moves the shown value is the window's doing, never the user's move:
        # before, a photo opened while the model loaded got the range's lowest values as
        # "Set by you" (issue 31)
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
        self.slider.setRange(round(low / self.step), round(high / self.step))
        self.spin.setRange(low, high)
        for widget in (self.slider, self.spin):
            widget.blockSignals(False)

    def value(self) -> float:
        return float(self.spin.value())

    def show(self, value: float) -> None:
        for widget in (self.slider, self.spin):
            widget.blockSignals(True)
        self.spin.setValue(value)
        self.slider.setValue(round(value / self.step))
        for widget in (self.slider, self.spin):
            widget.blockSignals(False)


class DamageKnobsPanel(QWidget):
    """``valuesEdited(values)`` (blur, noise[, JPEG]) when the user moves a knob (not when the
    window sets them); ``resetRequested()``: back to the estimate; ``applyAllRequested()``:
    these values for every photo in the queue."""

    valuesEdited = Signal(object)  # noqa: N815 (Qt signal naming)
    resetRequested = Signal()  # noqa: N815
    applyAllRequested = Signal()  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("<b>Steer the upscale</b>")
        self.origin = QLabel("")  # "as read from the photo", "set by you", or why no knobs
        self.origin.setWordWrap(True)
        self.origin.setMinimumHeight(2 * self.origin.fontMetrics().lineSpacing())  # a reason fits
        self.blur = _Knob(BLUR_STEP, 1, " px", BLUR_TIP)
        self.noise = _Knob(NOISE_STEP, 0, " lv", NOISE_TIP)
        self.jpeg = _Knob(JPEG_STEP, 0, "", JPEG_TIP, _JpegSpinBox())
        self.jpeg.set_range(JPEG_RANGE_SHOWN[0], JPEG_RANGE_SHOWN[1])
        self.jpeg.show(NO_JPEG)
        self.jpeg_note = QLabel("")  # why a model has no JPEG knob, in one short line
        self.jpeg_note.setWordWrap(True)
        self.jpeg_note.setStyleSheet("color: palette(mid);")
        self.jpeg_note.hide()
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Back to the damage as read from the photo: the run reads "
                                     "it from the support patches again")
        self.all_button = QPushButton("Use for all photos")
        self.all_button.setToolTip("Set these values for every photo in the queue (runs and "
                                   "batches use them)")
        self.batch_note = QLabel("")
        self.batch_note.setWordWrap(True)
        self.batch_note.setStyleSheet("color: palette(mid);")
        grid = QGridLayout()
        grid.setContentsMargins(0, 0, 0, 0)
        for row, (name, knob) in enumerate((("Blur", self.blur), ("Noise", self.noise),
                                            ("JPEG", self.jpeg))):
            grid.addWidget(QLabel(name), row, 0)
            grid.addWidget(knob.slider, row, 1)
            grid.addWidget(knob.spin, row, 2)
            knob.slider.valueChanged.connect(lambda v, k=knob: self._slid(k, v))
            knob.spin.valueChanged.connect(lambda _v: self._edited())
        grid.setColumnStretch(1, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.all_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.origin)
        layout.addLayout(grid)
        layout.addWidget(self.jpeg_note)
        layout.addLayout(buttons)
        layout.addWidget(self.batch_note)
        # its own height whatever the box's: the numbers above give up room first
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.reset_button.clicked.connect(self.resetRequested)
        self.all_button.clicked.connect(self.applyAllRequested)
        self._available = False
        self._has_jpeg = False
        self._locked = False
        self._has_photo = False
        self._queue_size = 0
        self.set_range(None, "The knobs show once the model is ready.")

    # -- what the window sets --------------------------------------------------------------
    def set_range(self, knobs: KnobRange | None, why: str = "") -> None:
        """The model's range, or None with the sentence that says why there are no knobs."""
        self._available = knobs is not None
        self._has_jpeg = knobs is not None and knobs.jpeg is not None
        if knobs is not None:
            self.blur.set_range(*knobs.blur)
            self.noise.set_range(*knobs.noise)
            tip = (f"This model's knobs go from blur {knobs.blur[0]:g} to {knobs.blur[1]:g} px "
                   f"and noise {knobs.noise[0]:g} to {knobs.noise[1]:g} levels: the damage it "
                   "was trained on")
            if knobs.jpeg is not None:
                self.jpeg.set_range(*knobs.jpeg)
                tip += f"; JPEG quality {knobs.jpeg[0]:g} to none"
            else:
                self.jpeg.show(NO_JPEG)
            for widget in (self.blur.slider, self.noise.slider, self.jpeg.slider):
                widget.setStatusTip(tip)
            self.jpeg_note.setText("" if self._has_jpeg else NO_JPEG_KNOB)
            self.jpeg_note.setVisible(not self._has_jpeg)
        else:
            self.jpeg_note.hide()
            self.show_origin(why, "It upscales all the same, reading the damage from the photo; "
                                  "a model file with a condition map has knobs.")
            self.batch_note.setText("")
        self._update_enabled()

    def show_values(self, damage: Damage, origin: tuple[str, str], *, user_set: bool) -> None:
        """Put the knobs at ``damage`` without it counting as the user's move; ``origin``:
        the line saying where the values come from, and its tooltip."""
        self.blur.show(damage[0])
        self.noise.show(damage[1])
        self.jpeg.show(damage[2] if len(damage) > 2 else NO_JPEG)
        self.show_origin(*origin)
        self.reset_button.setEnabled(user_set and self._usable())

    def show_origin(self, text: str, tip: str = "") -> None:
        self.origin.setText(text)
        self.origin.setToolTip(tip)

    def set_locked(self, locked: bool) -> None:
        """A run or batch is going: the knobs are part of its settings."""
        self._locked = locked
        self._update_enabled()

    def set_photo(self, shown: bool, queue_size: int) -> None:
        """Whether a photo is open (the knobs steer it; none, or one that failed to open:
        nothing to steer) and how many photos the queue holds ("Use for all photos")."""
        self._has_photo, self._queue_size = shown, queue_size
        self._update_enabled()

    @property
    def has_jpeg(self) -> bool:
        return self._has_jpeg

    @property
    def available(self) -> bool:
        return self._available

    def values(self) -> Damage:
        """(blur, noise), with the JPEG quality for a model whose knobs take it."""
        if self._has_jpeg:
            return self.blur.value(), self.noise.value(), self.jpeg.value()
        return self.blur.value(), self.noise.value()

    def words(self) -> str:
        values = self.values()
        blur, noise = values[0], values[1]
        text = f"blur {blur:.1f} px ({blur_words(blur)}) · noise {noise:.0f} lv ({noise_words(noise)})"
        return f"{text} · {jpeg_words(values[2])}" if len(values) > 2 else text

    # -- the user's moves ------------------------------------------------------------------
    def _slid(self, knob: _Knob, position: int) -> None:
        knob.spin.blockSignals(True)
        knob.spin.setValue(position * knob.step)
        knob.spin.blockSignals(False)
        self._edited()

    def _edited(self) -> None:
        for knob in (self.blur, self.noise, self.jpeg):  # a typed number moves its slider too
            knob.slider.blockSignals(True)
            knob.slider.setValue(round(knob.value() / knob.step))
            knob.slider.blockSignals(False)
        self.reset_button.setEnabled(True)
        self.valuesEdited.emit(self.values())

    def _usable(self) -> bool:
        return self._available and not self._locked and self._has_photo

    def _update_enabled(self) -> None:
        able = self._usable()
        for widget in (self.blur.slider, self.blur.spin, self.noise.slider, self.noise.spin):
            widget.setEnabled(able)
        for widget in (self.jpeg.slider, self.jpeg.spin):
            widget.setEnabled(able and self._has_jpeg)
            widget.setToolTip(JPEG_TIP if self._has_jpeg or not self._available else NO_JPEG_KNOB)
        self.all_button.setEnabled(able and self._queue_size > 0)
        if not able:
            self.reset_button.setEnabled(False)


class KnobPreviewOverlay(QWidget):
    """The knob preview painted over the canvas where those photo pixels are, at the canvas'
    zoom (a ×4 result: zoom in to see its detail), framed and labelled. Mouse events pass
    through to the canvas, so regions can still be drawn beneath."""

    def __init__(self, canvas: ZoomPanView) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self._image = QImage()
        self._box = QRectF()
        self._label = ""
        self.resize(canvas.size())
        canvas.installEventFilter(self)
        canvas.viewChanged.connect(lambda *_: self.update())
        self.hide()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.canvas and event.type() == QEvent.Type.Resize:
            self.resize(self.canvas.size())
        return False

    def show_preview(self, image: QImage, box: tuple[int, int, int, int], label: str) -> None:
        self._image, self._box, self._label = image, QRectF(*box), label
        self.resize(self.canvas.size())
        self.show()
        self.raise_()
        self.update()

    def clear(self) -> None:
        self._image = QImage()
        self.hide()

    @property
    def shown_box(self) -> tuple[int, int, int, int] | None:
        if self._image.isNull() or not self.isVisible():
            return None
        b = self._box
        return int(b.x()), int(b.y()), int(b.width()), int(b.height())

    def image(self) -> QImage:
        return self._image

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._image.isNull():
            return
        painter = QPainter(self)
        top_left = self.canvas.to_widget(self._box.topLeft())
        bottom_right = self.canvas.to_widget(self._box.bottomRight())
        target = QRectF(top_left, bottom_right)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.canvas.zoom < 4)
        painter.drawImage(target, self._image)
        painter.setPen(QPen(QColor(255, 210, 60), 1, Qt.PenStyle.DashLine))
        painter.drawRect(target)
        metrics = painter.fontMetrics()
        badge = QRectF(0, 0, metrics.horizontalAdvance(self._label) + 10, metrics.height() + 4)
        badge.moveTopLeft(QPointF(max(2.0, target.left()), max(2.0, target.top() - badge.height())))
        painter.fillRect(badge, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 230, 150))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, self._label)
        painter.end()
