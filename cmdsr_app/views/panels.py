"""Side panels of the main window: the image queue, the support regions, the batch options
and the log (the settings are ``settings_panel``). Each shows state and offers signals; the main
window wires them."""

from __future__ import annotations

import html
import logging
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPixmap, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.state import EntryStatus, ImageQueue, RegionList, short_names

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


class QueuePanel(QWidget):
    """The opened images with thumbnails and per-image status; observes an ImageQueue."""

    currentRequested = Signal(int)
    removeRequested = Signal(int)

    def __init__(self, queue: ImageQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.list = QListWidget()
        self.list.setIconSize(QSize(56, 56))
        self.list.setMinimumHeight(48)  # short lists on a 720-pixel screen: it scrolls
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
        self._photo_shown = False  # the previews need a photo to pick patches from
        self.hint = QLabel("Drag on the photo to mark where the damage shows. "
                           "Each region must hold a 32×32 patch.")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: palette(mid);")
        self.list = QListWidget()
        self.list.setToolTip("Support regions (x, y, width × height in input pixels)")
        self.list.setMinimumHeight(40)
        self.list.setWordWrap(True)
        self.list.currentRowChanged.connect(self._on_row_changed)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected region (Del)")
        self.delete_button.clicked.connect(self._on_delete)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Delete all regions of this image")
        self.clear_button.clicked.connect(self._on_clear)
        self.auto_button = QPushButton("Auto")
        self.auto_button.clicked.connect(lambda: self.previewRequested.emit("auto"))
        self.random_button = QPushButton("Random")
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
        self.regions_button.setEnabled(has and self._photo_shown)
        for button in (self.auto_button, self.random_button):
            button.setEnabled(self._photo_shown)
        for button, tip in ((self.auto_button, self.AUTO_TIP), (self.random_button, self.RANDOM_TIP)):
            button.setToolTip(tip if self._photo_shown else f"{tip} (open a photo first)")

    AUTO_TIP = "Preview the textured patches the engine picks by itself"
    RANDOM_TIP = "Preview random patches (the paper's choice)"

    def set_photo_shown(self, shown: bool) -> None:
        """Whether a photo is shown (loaded, not failed): the previews need one."""
        self._photo_shown = shown
        self._refresh()

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
        # The same margins as the Input and Compare tabs, so switching tabs moves nothing.
        layout.setContentsMargins(4, 2, 4, 2)
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
        self.text.setMinimumHeight(40)
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
