"""The Training tab's form (photos, validation photos, degradations, setup, steps, the time
limit, the run folder) and its list of the run's checkpoints."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.training.photo_count import PhotoCounter
from cmdsr_app.training.state import (
    DEGRADATION_PRESETS,
    MAX_TIME_LIMIT_MIN,
    START_CHOICES,
    TRAIN_PRESETS,
    CheckpointEntry,
    RunSummary,
    TrainingSettings,
)


def tool_button(text: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    return button


def _browse_row(edit: QLineEdit, *buttons: QToolButton) -> QWidget:
    row = QWidget()
    lay = QHBoxLayout(row)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(edit, 1)
    for button in buttons:
        lay.addWidget(button)
    return row


class TrainingForm(QGroupBox):
    """The fields of a run; :meth:`load` and :meth:`read` move them to and from
    :class:`TrainingSettings`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Training data and settings", parent)
        self.hr_edit = QLineEdit()
        self.hr_edit.setPlaceholderText("Folder of sharp, high-resolution photos")
        self.hr_edit.setToolTip(
            "The photos the model learns from. Degraded copies are made from them on the fly; "
            "use sharp, clean photos (several dozen or more)."
        )
        self.hr_browse = tool_button("…")
        self.photos_warning = QLabel("")
        self.photos_warning.setWordWrap(True)
        self.photos_warning.setStyleSheet("color: #d08030;")
        self.photos_warning.hide()
        # counted in the background once typing pauses: a big tree takes seconds to walk
        self.photo_counter = PhotoCounter(self)
        self.photo_counter.counted.connect(self._show_photo_note)
        self.hr_edit.textChanged.connect(self.photo_counter.request)
        self.start_combo = QComboBox()
        for key, label in START_CHOICES:
            self.start_combo.addItem(label, key)
        self.start_combo.setToolTip(
            "Fine-tuning starts from the shipped model, which already reads blur and noise, "
            "and adapts it to your photos: far better after a short run. Scratch trains a new "
            "network, which needs many thousands of steps to catch up."
        )
        self.val_edit = QLineEdit()
        self.val_edit.setPlaceholderText("Optional: photos kept apart to measure progress")
        self.val_edit.setToolTip(
            "Optional. A few photos not used for training; their PSNR is charted at each "
            "validation so you can see whether the model still improves."
        )
        self.val_browse = tool_button("…")
        self.degradation_combo = QComboBox()
        for key, label in DEGRADATION_PRESETS:
            self.degradation_combo.addItem(label, key)
        self.degradation_combo.setToolTip(
            "The kind of damage the model learns to undo. Match it to your photos: 'Real "
            "photos' adds JPEG artefacts and uneven blur."
        )
        self.preset_combo = QComboBox()
        for key, label in TRAIN_PRESETS:
            self.preset_combo.addItem(label, key)
        self.preset_combo.setToolTip(
            "Studio recipe: how the shipped model was trained (CPU: small batches at a usable "
            "speed without a GPU). Paper: the authors' setup (GPU: needs a CUDA GPU)."
        )
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 10_000_000)
        self.steps_spin.setSingleStep(500)
        self.steps_spin.setGroupSeparatorShown(True)
        self.steps_spin.setToolTip("Training steps. More steps train longer and usually better.")
        self.time_limit_spin = QSpinBox()
        self.time_limit_spin.setRange(0, MAX_TIME_LIMIT_MIN)
        self.time_limit_spin.setSingleStep(30)
        self.time_limit_spin.setSuffix(" min")
        self.time_limit_spin.setSpecialValueText("No limit")
        self.time_limit_spin.setToolTip(
            "Pause the run after this many minutes (e.g. 120 for 2 hours), saving a checkpoint "
            "as Pause does; Resume continues it. Each Start or Resume gets the full time. "
            "0 = no limit."
        )
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("Folder for this run's checkpoints (made for you)")
        self.run_edit.setToolTip(
            "Where the run keeps its settings, metrics and checkpoints. Point it at an "
            "earlier run's folder and press Resume to continue that run."
        )
        self.run_browse = tool_button("…")
        self.run_new = tool_button("New")
        self.run_new.setToolTip("Pick a fresh, empty folder for a new run")

        form = QFormLayout()
        form.addRow("Photos:", _browse_row(self.hr_edit, self.hr_browse))
        form.addRow("", self.photos_warning)
        form.addRow("Start from:", self.start_combo)
        form.addRow("Validation:", _browse_row(self.val_edit, self.val_browse))
        form.addRow("Degradations:", self.degradation_combo)
        form.addRow("Setup:", self.preset_combo)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Stop after:", self.time_limit_spin)
        form.addRow("Run folder:", _browse_row(self.run_edit, self.run_browse, self.run_new))
        self.setLayout(form)

    def load(self, s: TrainingSettings) -> None:
        self.hr_edit.setText(s.hr_dir)
        self.val_edit.setText(s.val_dir)
        self.degradation_combo.setCurrentIndex(max(0, self.degradation_combo.findData(s.degradation)))
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(s.preset)))
        self.start_combo.setCurrentIndex(max(0, self.start_combo.findData(s.start)))
        self.steps_spin.setValue(s.steps)
        self.time_limit_spin.setValue(s.time_limit_min)
        self.run_edit.setText(s.run_dir)

    def read(self, s: TrainingSettings) -> None:
        s.hr_dir = self.hr_edit.text().strip()
        s.val_dir = self.val_edit.text().strip()
        s.degradation = str(self.degradation_combo.currentData())
        s.preset = str(self.preset_combo.currentData())
        s.start = str(self.start_combo.currentData())
        s.steps = int(self.steps_spin.value())
        s.time_limit_min = int(self.time_limit_spin.value())
        s.run_dir = self.run_edit.text().strip()

    def show_summary(self, summary: RunSummary) -> None:
        """Fill in what a run folder's saved config says (what Resume will use). Setting the
        step count does not count as the user's edit."""
        self.steps_spin.blockSignals(True)
        self.steps_spin.setValue(summary.steps)
        self.steps_spin.blockSignals(False)
        if summary.degradation is not None:
            self.degradation_combo.setCurrentIndex(
                max(0, self.degradation_combo.findData(summary.degradation)))
        if summary.data_dir:
            self.hr_edit.setText(summary.data_dir)
        self.val_edit.setText(summary.val_dir or "")

    def _show_photo_note(self, text: str) -> None:
        self.photos_warning.setText(text)
        self.photos_warning.setVisible(bool(text))

    def set_shipped_available(self, available: bool) -> None:
        """Fine-tuning needs the shipped model; without it, only Scratch."""
        item = self.start_combo.model().item(self.start_combo.findData("shipped"))  # type: ignore[attr-defined]
        item.setEnabled(available)
        if not available:
            self.start_combo.setCurrentIndex(self.start_combo.findData("scratch"))

    def set_locked(self, locked: bool) -> None:
        """Lock every field while a run uses them."""
        for w in (self.hr_edit, self.hr_browse, self.val_edit, self.val_browse,
                  self.degradation_combo, self.preset_combo, self.start_combo, self.steps_spin,
                  self.time_limit_spin, self.run_edit, self.run_browse, self.run_new):
            w.setEnabled(not locked)


class CheckpointPanel(QGroupBox):
    """A run's checkpoints, with Use this model, Open folder and Refresh."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoints of this run", parent)
        self.checkpoint_list = QListWidget()
        self.checkpoint_list.setToolTip("Model files saved by this run (double-click to use one)")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Upscale with the selected checkpoint")
        self.refresh_button = tool_button("Refresh")
        self.open_folder_button = tool_button("Open folder")
        self.open_folder_button.setToolTip(
            "Show the run folder (config, metrics, plot) in the file manager")
        buttons = QHBoxLayout()
        buttons.addWidget(self.use_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_folder_button)
        buttons.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.checkpoint_list)
        layout.addLayout(buttons)

    def show_entries(self, entries: list[CheckpointEntry]) -> None:
        """List ``entries``, keeping the selected one selected."""
        selected = self.selected()
        self.checkpoint_list.clear()
        for entry in entries:
            item = QListWidgetItem(entry.label())
            item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
            item.setToolTip(str(entry.path))
            self.checkpoint_list.addItem(item)
            if selected is not None and entry.path == selected:
                self.checkpoint_list.setCurrentItem(item)

    def selected(self) -> Path | None:
        """The checkpoint the user selected, or None. Only a selection counts: the list makes
        its first row "current" when it takes the focus, without the user choosing it."""
        items = self.checkpoint_list.selectedItems()
        return Path(items[0].data(Qt.ItemDataRole.UserRole)) if items else None
