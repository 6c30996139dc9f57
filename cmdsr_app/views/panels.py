"""Side panels of the main window: the image queue, the support regions, the settings, the
batch options and the log. Each shows state and offers signals; the main window wires them."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPixmap, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.settings import OUTPUT_FORMATS, AppSettings
from cmdsr_app.state import EntryStatus, ImageQueue, RegionList, SizeChoice, short_names
from cmdsr_app.views.output_size import OutputSizeBox

STATUS_TEXT = {
    EntryStatus.PENDING: "waiting",
    EntryStatus.LOADING: "loading…",
    EntryStatus.READY: "ready",
    EntryStatus.RUNNING: "upscaling…",
    EntryStatus.DONE: "done",
    EntryStatus.FAILED: "failed",
    EntryStatus.CANCELLED: "cancelled",
}
STATUS_COLOR = {
    EntryStatus.DONE: QColor(90, 180, 90),
    EntryStatus.FAILED: QColor(220, 80, 80),
    EntryStatus.CANCELLED: QColor(200, 150, 60),
    EntryStatus.RUNNING: QColor(80, 150, 230),
}
TILE_CHOICES = (0, 128, 256, 512, 1024)


def model_label(path: str | Path) -> str:
    """A checkpoint's name in the Model list: a training run's files share names
    (step_000500.pt), so they carry their run folder's name too."""
    path = Path(path)
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    if path.parent.name == "checkpoints" or path.name in ("latest.pt", "final.pt", "last.pt"):
        return f"{path.name} ({folder.name})" if folder.name else path.name
    return path.name


class QueuePanel(QWidget):
    """The opened images with thumbnails and per-image status; observes an ImageQueue."""

    currentRequested = Signal(int)
    removeRequested = Signal(int)

    def __init__(self, queue: ImageQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.list = QListWidget()
        self.list.setIconSize(QSize(56, 56))
        self.list.setUniformItemSizes(True)
        self.list.setToolTip("Images to upscale. Drop files or folders here to add more.")
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.remove_button = QToolButton(text="Remove")
        self.remove_button.setToolTip("Take the selected image out of the queue")
        self.remove_button.clicked.connect(self._on_remove)
        self.count_label = QLabel("No images")
        bar = QHBoxLayout()
        bar.addWidget(self.count_label, 1)
        bar.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(bar)
        queue.added.connect(self._on_added)
        queue.removed.connect(self._on_removed)
        queue.status_changed.connect(self._on_status)
        queue.current_changed.connect(self._on_current)

    def _text(self, index: int) -> str:
        entry = self.queue[index]
        # Two photos of one name (from different folders) show as much of the path as tells
        # them apart.
        name = short_names([e.path for e in self.queue])[index]
        status = STATUS_TEXT[entry.status]
        return f"{name}\n{status}" if status else name

    def _refresh_texts(self) -> None:
        for index in range(self.list.count()):
            item = self.list.item(index)
            if item is not None and index < len(self.queue):
                item.setText(self._text(index))

    def _on_added(self, first: int, count: int) -> None:
        placeholder = QPixmap(56, 56)
        placeholder.fill(QColor(60, 60, 66))
        for index in range(first, first + count):
            item = QListWidgetItem(QIcon(placeholder), self._text(index))
            item.setToolTip(str(self.queue[index].path))
            self.list.addItem(item)
        self._refresh_texts()
        self._update_count()

    def _on_removed(self, index: int) -> None:
        self.list.blockSignals(True)
        self.list.takeItem(index)
        self.list.blockSignals(False)
        self._refresh_texts()
        self._update_count()

    def _on_status(self, index: int) -> None:
        item = self.list.item(index)
        if item is None:
            return
        entry = self.queue[index]
        item.setText(self._text(index))
        tooltip = str(entry.path)
        if entry.message:
            tooltip += f"\n{entry.message}"
        item.setToolTip(tooltip)
        color = STATUS_COLOR.get(entry.status)
        item.setForeground(color if color is not None else self.palette().text().color())

    def _on_current(self, index: int | None) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1 if index is None else index)
        self.list.blockSignals(False)

    def _on_row_changed(self, row: int) -> None:
        if row >= 0:
            self.currentRequested.emit(row)

    def _on_remove(self) -> None:
        row = self.list.currentRow()
        if row >= 0:
            self.removeRequested.emit(row)

    def _update_count(self) -> None:
        n = len(self.queue)
        self.count_label.setText("No images" if n == 0 else f"{n} image(s)")

    def set_thumbnail(self, index: int, image: QImage) -> None:
        item = self.list.item(index)
        if item is not None and not image.isNull():
            item.setIcon(QIcon(QPixmap.fromImage(image)))


class RegionPanel(QWidget):
    """The support regions of the current image, with coordinates and why one is unusable,
    and the buttons that preview the patches the engine would pick."""

    previewRequested = Signal(str)  # "auto" or "random"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._regions: RegionList | None = None
        self.hint = QLabel("Drag on the photo to mark where the damage shows. "
                           "Each region must hold a 32×32 patch.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.list = QListWidget()
        self.list.setToolTip("Support regions (x, y, width × height in input pixels)")
        self.list.setWordWrap(True)
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected region (Del)")
        self.delete_button.clicked.connect(self._on_delete)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Delete all regions of this image")
        self.clear_button.clicked.connect(self._on_clear)
        self.auto_button = QPushButton("Auto")
        self.auto_button.setToolTip("Preview the textured patches the engine picks by itself")
        self.auto_button.clicked.connect(lambda: self.previewRequested.emit("auto"))
        self.random_button = QPushButton("Random")
        self.random_button.setToolTip("Preview random patches (the paper's choice)")
        self.random_button.clicked.connect(lambda: self.previewRequested.emit("random"))
        self.regions_button = QPushButton("From regions")
        self.regions_button.setToolTip("Preview the patches taken from your regions")
        self.regions_button.clicked.connect(lambda: self.previewRequested.emit("regions"))
        edit_row = QHBoxLayout()
        edit_row.addWidget(self.delete_button)
        edit_row.addWidget(self.clear_button)
        preview_row = QHBoxLayout()
        preview_row.addWidget(self.auto_button)
        preview_row.addWidget(self.random_button)
        preview_row.addWidget(self.regions_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.hint)
        layout.addWidget(self.list, 1)
        layout.addLayout(edit_row)
        layout.addWidget(QLabel("Preview the patches the engine would use:"))
        layout.addLayout(preview_row)
        self._refresh()

    def set_region_list(self, regions: RegionList | None) -> None:
        if self._regions is not None:
            self._regions.changed.disconnect(self._refresh)
            self._regions.selection_changed.disconnect(self._on_selection)
        self._regions = regions
        if regions is not None:
            regions.changed.connect(self._refresh)
            regions.selection_changed.connect(self._on_selection)
        self._refresh()

    def row_text(self, index: int) -> str:
        assert self._regions is not None
        r = self._regions[index]
        text = f"{index + 1}: x {r.x}, y {r.y}, {r.w} × {r.h}"
        problem = self._regions.problem(index)
        return text if problem is None else f"{text} — unusable: it {problem}"

    def _refresh(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        if self._regions is not None:
            for index in range(len(self._regions)):
                item = QListWidgetItem(self.row_text(index))
                if self._regions.problem(index) is not None:
                    item.setForeground(QColor(220, 80, 80))
                    item.setToolTip(f"This region cannot be used: {self._regions.problem(index)}")
                self.list.addItem(item)
            if self._regions.selected is not None:
                self.list.setCurrentRow(self._regions.selected)
        self.list.blockSignals(False)
        has = self._regions is not None and len(self._regions) > 0
        self.delete_button.setEnabled(has and self._regions is not None and self._regions.selected is not None)
        self.clear_button.setEnabled(has)
        self.regions_button.setEnabled(has)

    def _on_selection(self, index: int | None) -> None:
        self.list.blockSignals(True)
        self.list.setCurrentRow(-1 if index is None else index)
        self.list.blockSignals(False)
        self.delete_button.setEnabled(index is not None)

    def _on_row_changed(self, row: int) -> None:
        if self._regions is not None:
            self._regions.select(row if row >= 0 else None)

    def _on_delete(self) -> None:
        if self._regions is not None and self._regions.selected is not None:
            self._regions.remove(self._regions.selected)

    def _on_clear(self) -> None:
        if self._regions is not None:
            self._regions.clear()


class SettingsPanel(QWidget):
    """Model, scale, device, tile, support and output choices, Run/Cancel and progress."""

    modelChosen = Signal(str)  # "" = the shipped default
    browseModelRequested = Signal()
    runRequested = Signal()
    cancelRequested = Signal()
    settingsChanged = Signal()

    BROWSE = "__browse__"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._current_model = ""
        # -- model
        self.model_combo = QComboBox()
        self.model_combo.setToolTip(
            "The network that upscales: the shipped default, a checkpoint you trained, or the "
            "authors' CMDSR_model.pth"
        )
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


class BatchPanel(QWidget):
    """Batch options (output folder, file-name pattern) and the per-image results."""

    startRequested = Signal()
    browseRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Folder for the upscaled images")
        self.browse_button = QToolButton(text="…")
        self.browse_button.setToolTip("Choose the output folder")
        self.browse_button.clicked.connect(self.browseRequested)
        self.pattern_edit = QLineEdit("{stem}_{size}")
        self.pattern_edit.setToolTip(
            "Output file name without extension. Fields: {stem} (input name), {folder} (the "
            "input's folder name), {size} (x4, x2, w1920...), {scale}, {method}, {index} "
            "(position in the queue)"
        )
        self.overwrite_check = QCheckBox("Replace existing files")
        self.start_button = QPushButton("Upscale the whole queue")
        self.start_button.setToolTip("Apply the current settings to every image in the queue")
        self.start_button.clicked.connect(self.startRequested)
        self.summary_label = QLabel("")
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Image", "Result", "Output or error"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        form = QFormLayout()
        form.addRow("Output folder:", folder_row)
        form.addRow("File name:", self.pattern_edit)
        form.addRow("", self.overwrite_check)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.start_button)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.table, 1)

    @property
    def folder(self) -> str:
        return self.folder_edit.text().strip()

    @property
    def pattern(self) -> str:
        return self.pattern_edit.text().strip()

    def clear_results(self, paths: list[Path]) -> None:
        self.table.setRowCount(len(paths))
        for row, (path, name) in enumerate(zip(paths, short_names(paths), strict=True)):
            image_item = QTableWidgetItem(name)
            image_item.setToolTip(str(path))
            self.table.setItem(row, 0, image_item)
            self.table.setItem(row, 1, QTableWidgetItem("waiting"))
            self.table.setItem(row, 2, QTableWidgetItem(""))
        self.summary_label.setText("")

    RESULT_COLORS = {"done": QColor(90, 180, 90), "skipped": QColor(90, 180, 90),
                     "failed": QColor(220, 80, 80), "cancelled": QColor(200, 150, 60)}

    def set_result(self, row: int, status: str, detail: str) -> None:
        """``status``: done, skipped (its output was already there), failed or cancelled."""
        item = QTableWidgetItem(status)
        color = self.RESULT_COLORS.get(status)
        if color is not None:
            item.setForeground(color)
        self.table.setItem(row, 1, item)
        detail_item = QTableWidgetItem(detail)
        detail_item.setToolTip(detail)
        self.table.setItem(row, 2, detail_item)

    def mark_unfinished(self, status: str = "cancelled") -> None:
        """Rows still waiting (or running) when a batch stopped."""
        for row in range(self.table.rowCount()):
            if self.result_text(row)[0] in ("waiting", "upscaling…"):
                self.set_result(row, status, "not processed; run the batch again to finish it")

    def result_text(self, row: int) -> tuple[str, str]:
        status = self.table.item(row, 1)
        detail = self.table.item(row, 2)
        return (status.text() if status else "", detail.text() if detail else "")


class _LogBridge(QObject):
    record = Signal(str, int)


class QtLogHandler(logging.Handler):
    """Forwards log records from any thread to the log panel through a queued signal."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bridge = _LogBridge()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(self.format(record), record.levelno)
        except RuntimeError:  # the panel is gone (app closing)
            pass


class LogPanel(QWidget):
    """Everything the app and the engine logged, tracebacks included."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(5000)
        self.text.setFont(QFont("monospace", 9))
        clear = QToolButton(text="Clear")
        clear.setToolTip("Empty the log panel")
        clear.clicked.connect(self.text.clear)
        side = QVBoxLayout()
        side.addWidget(clear)
        side.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text, 1)
        layout.addLayout(side)

    def append(self, message: str, level: int = logging.INFO) -> None:
        color = "#e06060" if level >= logging.ERROR else "#d0a040" if level >= logging.WARNING else ""
        escaped = html.escape(message).replace("\n", "<br>").replace("  ", "&nbsp;&nbsp;")
        if color:
            escaped = f'<span style="color:{color}">{escaped}</span>'
        self.text.appendHtml(escaped)
        self.text.moveCursor(QTextCursor.MoveOperation.End)

    def plain_text(self) -> str:
        return self.text.toPlainText()
