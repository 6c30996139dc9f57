"""Batches: the current settings applied to the whole queue, each image's result listed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal, Slot
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from cmdsr_app.batch_records import OutputRecords, batch_recipe, difference
from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.controllers.photos import PATCH_SIZE
from cmdsr_app.controllers.upscale import UpscaleController
from cmdsr_app.eta import EtaEstimator
from cmdsr_app.jobs import (
    BatchItem,
    BatchOutput,
    BatchReport,
    ModelCache,
    RunSettings,
    SupportChoice,
    batch_clash,
    batch_targets,
    choice_for,
    run_batch,
)
from cmdsr_app.settings import AppSettings, config_dir
from cmdsr_app.state import EntryStatus, ImageQueue, eta_text, output_name
from cmdsr_app.views.panels import BatchPanel
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner


class _BatchBridge(QObject):
    """Carries a batch's per-image news from the worker thread to the GUI thread (queued)."""

    item = Signal(int, object)
    progress = Signal(int, int, int, int)


class BatchController(Controller):
    """``finished(report)`` after a batch; ``cancelled()`` when one was cancelled;
    ``started()`` when one begins (the window shows the Batch tab)."""

    finished = Signal(object)  # BatchReport
    cancelled = Signal()
    started = Signal()

    def __init__(self, *, settings: AppSettings, queue: ImageQueue, models: ModelController,
                 upscale: UpscaleController, settings_panel: SettingsPanel,
                 batch_panel: BatchPanel, heavy: JobRunner, cache: ModelCache,
                 window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.queue, self.models, self.upscale = settings, queue, models, upscale
        self.panel, self.batch_panel = settings_panel, batch_panel
        self.heavy, self.cache = heavy, cache
        self._window = window
        self._paths: list[Path] = []
        self._recipes: dict[Path, dict[str, Any]] = {}
        self._records: OutputRecords | None = None
        self.replace_box: QMessageBox | None = None  # "made with another model: replace?"
        self._eta = EtaEstimator()
        self._bridge = _BatchBridge(self)
        self._bridge.item.connect(self._on_item)
        self._bridge.progress.connect(self._on_progress)
        # The photos whose damage knobs the user set, with their values (set by the wiring).
        self.damage_for_paths: Callable[[list[Path]], dict[Path, tuple[float, float]]] = (
            lambda _paths: {})

    @property
    def running(self) -> bool:
        return self.heavy.busy and self.heavy.current_name == "batch"

    def browse_folder(self) -> bool:
        """Ask for the output folder; True when one was chosen."""
        folder = QFileDialog.getExistingDirectory(self._window, "Output folder for the batch",
                                                  self.batch_panel.folder or str(Path.home()))
        if folder:
            self.batch_panel.folder_edit.setText(folder)
        return bool(folder)

    def _output(self) -> BatchOutput | None:
        """The batch's output settings, or None (and the reason said) when they are unusable."""
        folder = self.batch_panel.folder
        pattern = self.batch_panel.pattern or "{stem}_{size}"
        try:
            output_name(pattern, Path("photo.png"), scale=4, method="cmdsr", ext="png", index=1)
        except ValueError as exc:
            self.error.emit("Bad file-name pattern", str(exc))
            return None
        self.settings.batch_output_dir, self.settings.batch_pattern = folder, pattern
        return BatchOutput(Path(folder), pattern, self.panel.output_format, self.panel.quality,
                           self.panel.bit_depth or None, self.batch_panel.overwrite_check.isChecked(),
                           self.panel.output_size)

    def start(self) -> None:
        """Apply the current settings to the whole queue; failures are listed per image."""
        if self.upscale.optional.busy and not self.heavy.busy:
            self.upscale.after_optional(self.start)  # a comparison being computed stops first
            return
        if self.heavy.busy:
            self.say("A job is already running.", 4000)
            return
        if not len(self.queue):
            self.say("Add images to the queue first (Ctrl+O, a folder, or drop files).")
            return
        if not self.batch_panel.folder and not self.browse_folder():
            self.say("Choose the folder the upscaled images go to, then start the batch.")
            return
        output = self._output()
        if output is None:
            return
        paths = [entry.path for entry in self.queue]
        clash = batch_clash(paths, output, self.models.scale)
        if clash is not None:
            self.error.emit("The batch cannot write these files", clash)
            return
        # Regions too small for a patch are left out; the engine checks the rest against
        # each photo and lists a photo whose regions lie outside it as failed.
        regions = {
            entry.path: tuple(r.as_tuple() for r in entry.regions
                              if r.w >= PATCH_SIZE and r.h >= PATCH_SIZE)
            for entry in self.queue if entry.regions
        }
        settings, choice = self.models.run_settings(), self.upscale.support_choice()
        damage = self.damage_for_paths(paths)
        self._recipes = {path: batch_recipe(settings, choice_for(regions.get(path, ()), choice),
                                            output, damage.get(path)) for path in paths}
        stale = self._made_differently(paths, output)
        if not stale:
            self._launch(paths, settings, choice, regions, output, frozenset(), damage)
            return
        self._ask_replace(stale, output, lambda replace: self._launch(
            paths, settings, choice, regions, output, replace, damage))

    def _made_differently(self, paths: list[Path], output: BatchOutput) -> dict[Path, str]:
        """Existing outputs this app made with another model or settings: target -> what
        differs (outputs with no record, or the same recipe, are kept and skipped)."""
        if output.overwrite:
            return {}
        self._records = OutputRecords(config_dir())
        stale: dict[Path, str] = {}
        for path, target in zip(paths, batch_targets(paths, output, self.models.scale), strict=True):
            recipe = self._records.recipe_of(target) if target.exists() else None
            if recipe is not None and recipe != self._recipes[path]:
                stale[target] = difference(recipe, self._recipes[path])
        return stale

    def _ask_replace(self, stale: dict[Path, str], output: BatchOutput,
                     then: Any) -> None:
        """Ask whether results of another model or settings are replaced; the batch starts
        after the answer (Keep: they are skipped; Cancel: no batch)."""
        reasons = sorted(set(stale.values()))
        # Named for what differs: a changed Support is no "other model".
        model = any(r.startswith("another model") for r in reasons)
        title = "Replace results of another model?" if model else (
            "Replace results made with other settings?")
        box = QMessageBox(QMessageBox.Icon.Question, title,
                          f"{len(stale)} result(s) already in {output.folder} were made with "
                          f"{'; '.join(reasons)}. Replace them with results of the current "
                          "model and settings?", QMessageBox.StandardButton.NoButton,
                          self._window)
        replace = box.addButton("Replace them", QMessageBox.ButtonRole.AcceptRole)
        keep = box.addButton("Keep them (skip)", QMessageBox.ButtonRole.RejectRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.setInformativeText("Keep leaves those files as they are and upscales only the "
                               "missing images.")

        def answered(_result: int) -> None:
            clicked = box.clickedButton()
            self.replace_box = None
            if clicked is replace:
                then(frozenset(stale))
            elif clicked is keep:
                then(frozenset())
            else:
                self.say("Batch not started.")

        box.finished.connect(answered)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        self.replace_box = box
        box.open()

    def _launch(self, paths: list[Path], settings: RunSettings, choice: SupportChoice,
                regions: dict[Path, tuple[tuple[int, int, int, int], ...]],
                output: BatchOutput, replace: frozenset[Path],
                damage: dict[Path, tuple[float, float]] | None = None) -> None:
        if self.heavy.busy:
            self.say("A job is already running.", 4000)
            return
        if self._records is None:
            self._records = OutputRecords(config_dir())
        cache = self.cache
        self._paths = paths
        self.batch_panel.clear_results(paths)
        self.started.emit()
        # Replaces whatever the status bar held (an old error would read as this batch's).
        self.say(f"Batch: upscaling {len(paths)} photo(s)…", 0)
        if damage:
            self.say(f"Batch: {len(damage)} of {len(paths)} photo(s) use the damage knobs you set; "
                     "the others are read from each photo.", 8000)
        self.panel.image_bar.setRange(0, len(paths))
        self.panel.image_bar.setValue(0)
        for i in range(len(self.queue)):
            self.queue.set_status(i, EntryStatus.PENDING)
        bridge = self._bridge
        self._eta.restart(len(paths))  # counted in photos: a tile's share of its photo

        def work(_progress: Any, cancel: threading.Event) -> BatchReport:
            return run_batch(paths, settings, choice, regions, output, cache,
                             progress=bridge.progress.emit, cancel=cancel,
                             on_item=bridge.item.emit, replace_outputs=replace,
                             damage_by_path=damage)

        def finished(report: BatchReport) -> None:
            self.batch_panel.summary_label.setText(report.summary())
            self.say(f"Batch: {report.summary()}", 10000)
            self.finished.emit(report)

        def cancelled() -> None:
            self.batch_panel.summary_label.setText("Batch cancelled; finished images are kept.")
            self.batch_panel.mark_unfinished()
            for i, entry in enumerate(self.queue):
                if entry.status in (EntryStatus.PENDING, EntryStatus.RUNNING):
                    self.queue.set_status(i, EntryStatus.CANCELLED)
            self.say("Batch cancelled; finished images are kept.", 8000)
            self.cancelled.emit()

        self.heavy.submit("batch", work, on_finished=finished, on_cancelled=cancelled,
                          on_failed=lambda m: self.error.emit("Batch failed", m))

    @Slot(int, int, int, int)
    def _on_progress(self, image_index: int, count: int, done: int, total: int) -> None:
        p = self.panel
        p.image_bar.setRange(0, count)
        p.image_bar.setValue(min(image_index, count))
        if total > 0:
            p.tile_bar.setRange(0, total)
            p.tile_bar.setValue(done)
        within = done / total if total > 0 else 0.0
        remaining = self._eta.update(min(count, image_index + within))
        p.eta_label.setText(f"Image {min(image_index + 1, count)} of {count} · "
                            f"{eta_text(remaining, self._eta.elapsed())}")
        table = self.batch_panel
        if image_index < min(count, table.table.rowCount()) and (
                table.result_text(image_index)[0] == "waiting"):
            table.set_result(image_index, "upscaling…", "")
        if total > 0 and done == 0 and image_index < len(self._paths):
            index = self.queue.index_of(self._paths[image_index])
            if index is not None:
                self.queue.set_status(index, EntryStatus.RUNNING)

    @Slot(int, object)
    def _on_item(self, row: int, item: BatchItem) -> None:
        if item.skipped:
            status, detail = "skipped", f"already done: {item.output}"
        elif item.ok:
            status, detail = "done", str(item.output)
        else:
            status, detail = "failed", item.error or "failed"
        self.batch_panel.set_result(row, status, detail)
        recipe = self._recipes.get(item.path)
        if item.ok and not item.skipped and item.output is not None and recipe is not None:
            if self._records is None:
                self._records = OutputRecords(config_dir())
            self._records.remember(item.output, recipe)
            self._records.save()
        index = self.queue.index_of(item.path)
        if index is not None:
            self.queue.set_status(index, EntryStatus.DONE if item.ok else EntryStatus.FAILED,
                                  "" if item.ok else detail)
            if item.ok:
                self.queue[index].output_path = item.output
                if item.path == self.upscale.photos.image_path:
                    self.upscale.show_batch_output(item.path)  # the shown photo: in Compare
