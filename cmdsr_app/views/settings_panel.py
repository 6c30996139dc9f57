"""The Settings panel on the right of the main window: model, scale and output size, device,
tiles and precision, support selection, output format, Run/Cancel and progress. It shows the
settings and offers signals; the main window wires them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.settings import OUTPUT_FORMATS, AppSettings
from cmdsr_app.state import SizeChoice
from cmdsr_app.views.output_size import OutputSizeBox

TILE_CHOICES = (0, 128, 256, 512, 1024)


def model_label(path: str | Path) -> str:
    """A checkpoint's name in the Model list: a training run's files share names
    (step_000500.pt), so they carry their run folder's name too."""
    path = Path(path)
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if path.parent.name == "checkpoints" or path.name in ("latest.pt", "final.pt", "last.pt"):
        return f"{path.name} ({folder.name})" if folder.name else path.name
    return path.name


class ModelCombo(QComboBox):
    """The Model list: a name too long for the box loses its middle ("step_0000016.pt
    (run_2026…185012)"), not its end, and the open list is as wide as the longest name."""

    def _field_width(self) -> int:
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        return max(0, field.width() - 4)

    def displayed_text(self) -> str:
        return self.fontMetrics().elidedText(self.currentText(), Qt.TextElideMode.ElideMiddle,
                                             self._field_width())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = self.displayed_text()
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)

    def showPopup(self) -> None:
        widest = max((self.fontMetrics().horizontalAdvance(self.itemText(i))
                      for i in range(self.count())), default=0)
        self.view().setMinimumWidth(widest + 32)
        super().showPopup()


class SettingsPanel(QWidget):
    """Model, scale, device, tile, support and output choices, Run/Cancel and progress."""

    modelChosen = Signal(str)  # "" = the shipped default
    browseModelRequested = Signal()
    runRequested = Signal()
    cancelRequested = Signal()
    settingsChanged = Signal()

    BROWSE = "__browse__"
    MODEL_TIP = ("The network that upscales: the shipped default, a checkpoint you trained, or "
                 "the authors' CMDSR_model.pth")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._current_model = ""
        # -- model
        self.model_combo = ModelCombo()
        self.model_combo.setToolTip(self.MODEL_TIP)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.activated.connect(self._on_model_activated)
        self.model_info = QLabel("")
        self.model_info.setWordWrap(True)
        self.scale_combo = QComboBox()
        for s in (2, 3, 4):
            self.scale_combo.addItem(f"×{s}", s)
        self.scale_combo.setToolTip("The scale is fixed by the model's weights")
        self.device_combo = QComboBox()
        self.device_combo.setToolTip("Where the network runs: auto picks a GPU when there is one")
        self.tile_combo = QComboBox()
        for t in TILE_CHOICES:
            self.tile_combo.addItem("Auto" if t == 0 else f"{t} px", t)
        self.tile_combo.setToolTip("Smaller tiles use less memory; Auto fits the free memory")
        self.support_combo = QComboBox()
        self.support_combo.addItem("Auto (textured patches)", "auto")
        self.support_combo.addItem("Random (paper)", "random")
        self.support_combo.addItem("My regions", "regions")
        self.support_combo.setToolTip("Where the support patches come from")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setToolTip("Seed of the random patch choice")
        self.adapt_combo = QComboBox()
        self.adapt_combo.addItem("Whole photo", "global")
        self.adapt_combo.addItem("Per region", "local")
        self.adapt_combo.setToolTip(self.ADAPT_TIP)
        self.threads_spin = QSpinBox()
        self.threads_spin.setRange(0, 256)
        self.threads_spin.setSpecialValueText("Auto")
        self.threads_spin.setToolTip("CPU threads for upscaling; Auto uses every core. Fewer "
                                     "leave the computer responsive for other work")
        model_box = QGroupBox("Model")
        model_form = QFormLayout(model_box)
        model_form.addRow("Model:", self.model_combo)
        model_form.addRow(self.model_info)
        model_form.addRow("Scale:", self.scale_combo)
        model_form.addRow("Device:", self.device_combo)
        model_form.addRow("Tile size:", self.tile_combo)
        model_form.addRow("Support:", self.support_combo)
        model_form.addRow("Adapt:", self.adapt_combo)
        model_form.addRow("Seed:", self.seed_spin)
        model_form.addRow("Threads:", self.threads_spin)
        # -- output
        self.format_combo = QComboBox()
        for fmt in OUTPUT_FORMATS:
            self.format_combo.addItem(fmt.upper(), fmt)
        self.quality_spin = QSpinBox()
        self.quality_spin.setRange(1, 100)
        self.quality_spin.setValue(95)
        self.quality_spin.setToolTip("JPEG/WebP quality")
        self.depth_combo = QComboBox()
        self.depth_combo.addItem("As input", 0)
        self.depth_combo.addItem("8 bit", 8)
        self.depth_combo.addItem("16 bit (PNG/TIFF)", 16)
        self.size_box = OutputSizeBox()
        output_box = QGroupBox("Output")
        output_form = QFormLayout(output_box)
        output_form.addRow("Size:", self.size_box)
        output_form.addRow("Format:", self.format_combo)
        output_form.addRow("Quality:", self.quality_spin)
        output_form.addRow("Bit depth:", self.depth_combo)
        # -- run
        self.run_button = QPushButton("Run")
        self.run_button.setToolTip("Upscale the current image (Ctrl+R)")
        self.run_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running job (Esc)")
        self.cancel_button.setEnabled(False)
        self.run_button.clicked.connect(self.runRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.tile_bar = QProgressBar()
        self.tile_bar.setFormat("tiles %v / %m")
        self.image_bar = QProgressBar()
        self.image_bar.setFormat("images %v / %m")
        self.show_progress(False)
        self.eta_label = QLabel("")
        run_row = QHBoxLayout()
        run_row.addWidget(self.run_button)
        run_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(model_box)
        layout.addWidget(output_box)
        layout.addLayout(run_row)
        layout.addWidget(self.tile_bar)
        layout.addWidget(self.image_bar)
        layout.addWidget(self.eta_label)
        layout.addStretch(1)
        for combo in (self.scale_combo, self.device_combo, self.tile_combo, self.support_combo,
                      self.adapt_combo, self.format_combo, self.depth_combo):
            combo.currentIndexChanged.connect(self.settingsChanged)
        self.quality_spin.valueChanged.connect(self.settingsChanged)
        self.size_box.changed.connect(self.settingsChanged)
        self.seed_spin.valueChanged.connect(self.settingsChanged)
        self.threads_spin.valueChanged.connect(self.settingsChanged)
        self.format_combo.currentIndexChanged.connect(self._update_output_enabled)
        self._update_output_enabled()

    # -- model list ------------------------------------------------------------------------
    def set_model_choices(self, default_label: str, recent: list[str], current: str) -> None:
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        self.model_combo.addItem(default_label, "")
        for path in recent:
            self.model_combo.addItem(model_label(path), path)
            self.model_combo.setItemData(self.model_combo.count() - 1, path, Qt.ItemDataRole.ToolTipRole)
        self.model_combo.addItem("Choose a checkpoint…", self.BROWSE)
        self.model_combo.blockSignals(False)
        self.show_model(current)

    def show_model(self, path: str) -> None:
        """Select ``path`` in the list (adding it when new) without announcing a choice."""
        self.model_combo.blockSignals(True)
        index = self.model_combo.findData(path)
        if index < 0:
            self.model_combo.insertItem(1, model_label(path), path)
            self.model_combo.setItemData(1, path, Qt.ItemDataRole.ToolTipRole)
            index = 1
        self.model_combo.setCurrentIndex(index)
        self.model_combo.blockSignals(False)
        self._current_model = path
        # The whole name and where it is, however much of it the box shows.
        self.model_combo.setToolTip(f"{path or self.model_combo.currentText()}\n\n{self.MODEL_TIP}")

    @property
    def model_path(self) -> str:
        return self._current_model

    def _on_model_activated(self, index: int) -> None:
        data = self.model_combo.itemData(index)
        if data == self.BROWSE:
            self.show_model(self._current_model)  # until a file is chosen
            self.browseModelRequested.emit()
            return
        self.modelChosen.emit(str(data))

    def set_model_info(self, text: str, *, error: bool = False) -> None:
        self.model_info.setText(text)
        self.model_info.setStyleSheet("color: #d05050;" if error else "color: palette(mid);")

    def set_model_scale(self, scale: int | None) -> None:
        """Only the model's own scale can be chosen; the others say why not."""
        model = self.scale_combo.model()
        for i in range(self.scale_combo.count()):
            s = self.scale_combo.itemData(i)
            item = model.item(i)  # type: ignore[attr-defined]
            enabled = scale is None or s == scale
            item.setEnabled(enabled)
            why = None if enabled else f"This model upscales ×{scale}; choose a ×{s} checkpoint for ×{s}"
            self.scale_combo.setItemData(i, why, Qt.ItemDataRole.ToolTipRole)
        if scale is not None:
            self.scale_combo.setCurrentIndex(self.scale_combo.findData(scale))
            self.size_box.set_model_scale(scale)

    ADAPT_TIP = ("Whole photo: one reading of the damage for the whole photo. Per region: each "
                 "part of the photo (64×64 cells) is upscaled for the damage around it, and the "
                 "parts inside one of your regions for that region's damage; helps when the "
                 "damage differs across the photo, and is slower")

    def set_local_adapt_useful(self, useful: bool) -> None:
        """Per region only helps a model that reads the damage; with another it is labelled
        for what it is (slower, no gain), not taken away."""
        index = self.adapt_combo.findData("local")
        if useful:
            self.adapt_combo.setItemText(index, "Per region")
            self.adapt_combo.setItemData(index, self.ADAPT_TIP, Qt.ItemDataRole.ToolTipRole)
        else:
            self.adapt_combo.setItemText(index, "Per region (no gain with this model)")
            self.adapt_combo.setItemData(
                index, "This model cannot tell how blurred or noisy each part is, so Per region "
                "gives about the same result as Whole photo and takes about twice as long",
                Qt.ItemDataRole.ToolTipRole)

    # -- devices ---------------------------------------------------------------------------
    def set_devices(self, devices: list[str], current: str) -> None:
        self.device_combo.blockSignals(True)
        self.device_combo.clear()
        self.device_combo.addItem("Auto", "auto")
        names = {"cpu": "CPU", "mps": "Apple GPU (MPS)"}
        for d in devices:
            label = names.get(d, d.upper().replace("CUDA:", "CUDA GPU "))
            self.device_combo.addItem(label, d)
        index = self.device_combo.findData(current)
        self.device_combo.setCurrentIndex(max(0, index))
        self.device_combo.blockSignals(False)

    # -- values ----------------------------------------------------------------------------
    @staticmethod
    def _select(combo: QComboBox, value: object) -> None:
        index = combo.findData(value)
        if index >= 0:
            combo.setCurrentIndex(index)

    def apply(self, *, tile: int, support_mode: str, seed: int, fmt: str, quality: int,
              bit_depth: int, threads: int = 0, adapt: str = "global",
              size: SizeChoice | None = None) -> None:
        if size is not None:
            self.size_box.set_choice(size)
        self.threads_spin.setValue(threads)
        self._select(self.adapt_combo, adapt)
        if self.tile_combo.findData(tile) < 0:
            self.tile_combo.addItem(f"{tile} px", tile)
        self._select(self.tile_combo, tile)
        self._select(self.support_combo, support_mode)
        self.seed_spin.setValue(seed)
        self._select(self.format_combo, fmt)
        self.quality_spin.setValue(quality)
        self._select(self.depth_combo, bit_depth)

    def apply_settings(self, s: AppSettings) -> None:
        """Show the remembered choices (the device list comes later, from the engine)."""
        # Showing them is not a change of the user's: nothing is announced meanwhile.
        blocked = self.blockSignals(True)
        try:
            self._apply_settings(s)
        finally:
            self.blockSignals(blocked)

    def _apply_settings(self, s: AppSettings) -> None:
        # Until the model is checked, the scale shown is the last model's (x4 at first).
        model_scale = s.scale if s.scale in (2, 3, 4) else 4
        self.scale_combo.setCurrentIndex(self.scale_combo.findData(model_scale))
        self.size_box.set_model_scale(model_scale)
        self.apply(tile=s.tile, support_mode=s.support_mode, seed=s.seed, fmt=s.output_format,
                   quality=s.quality, bit_depth=s.bit_depth, threads=s.threads, adapt=s.adapt,
                   size=SizeChoice.parse(s.output_size, model_scale))

    def read_into(self, s: AppSettings) -> None:
        """Remember the panel's choices in ``s``."""
        s.device, s.tile, s.support_mode, s.seed = self.device, self.tile, self.support_mode, self.seed
        s.threads, s.adapt = self.threads, self.adapt
        s.output_format, s.quality, s.bit_depth = self.output_format, self.quality, self.bit_depth
        s.output_size = self.output_size.label()

    @property
    def output_size(self) -> SizeChoice:
        return self.size_box.choice

    @property
    def device(self) -> str:
        return str(self.device_combo.currentData() or "auto")

    @property
    def tile(self) -> int:
        return int(self.tile_combo.currentData() or 0)

    @property
    def threads(self) -> int:
        return int(self.threads_spin.value())

    @property
    def adapt(self) -> str:
        """``global`` (one condition for the photo) or ``local`` (per region)."""
        return str(self.adapt_combo.currentData())

    @property
    def support_mode(self) -> str:
        return str(self.support_combo.currentData())

    def set_support_mode(self, mode: str) -> None:
        self._select(self.support_combo, mode)

    @property
    def seed(self) -> int:
        return int(self.seed_spin.value())

    @property
    def output_format(self) -> str:
        return str(self.format_combo.currentData())

    @property
    def quality(self) -> int:
        return int(self.quality_spin.value())

    @property
    def bit_depth(self) -> int:
        return int(self.depth_combo.currentData())

    def _update_output_enabled(self) -> None:
        fmt = self.output_format
        self.quality_spin.setEnabled(fmt in ("jpg", "webp"))
        sixteen = fmt in ("png", "tif")
        item = self.depth_combo.model().item(2)  # type: ignore[attr-defined]
        item.setEnabled(sixteen)
        if not sixteen and self.bit_depth == 16:
            self.depth_combo.setCurrentIndex(0)

    # -- running ---------------------------------------------------------------------------
    def show_progress(self, running: bool) -> None:
        """Busy bars while a job runs (until its first report); empty and quiet when idle."""
        for bar in (self.tile_bar, self.image_bar):
            bar.setTextVisible(running)
            bar.setRange(0, 0 if running and bar is self.tile_bar else 1)
            bar.setValue(0)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for widget in (self.model_combo, self.scale_combo, self.device_combo, self.tile_combo,
                       self.support_combo, self.adapt_combo, self.seed_spin, self.threads_spin):
            widget.setEnabled(not running)
        if not running:
            self.eta_label.setText("")
