"""The Training tab: train CMDSR on the user's own photos, watch it learn, use the result.

The tab holds the form, the run's curves (:class:`TrainingCharts`) and its checkpoints; the
job itself (worker thread, Pause/Stop, the "Stop after" limit) is a :class:`TrainingJob`,
whose reports reach the widgets only through queued signals. Pause and Stop both ask the
engine to stop (it writes a checkpoint first); Resume continues the run from its folder, also
after the app was closed mid-run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.training_charts import TrainingCharts
from cmdsr_app.training_form import CheckpointPanel, TrainingForm
from cmdsr_app.training_job import TrainingJob
from cmdsr_app.training_state import (
    DEFAULT_STEPS,
    VAL_EVERY,
    CheckpointEntry,
    Phase,
    RunMetrics,
    TrainingSettings,
    TrainRequest,
    describe_progress,
    first_validation_text,
    list_checkpoints,
    new_run_dir,
    read_bicubic_psnr,
    read_run_summary,
)
from cmdsr_app.training_worker import TrainFn

log = logging.getLogger(__name__)

# The charts redraw at most this often; the engine may report hundreds of steps a second.
REDRAW_INTERVAL_MS = 150


def default_runs_root() -> Path:
    """Where new runs go when the user names no folder: the user's data folder."""
    import appdirs

    return Path(appdirs.user_data_dir("CMDSR Studio", "CMDSR")) / "runs"


class TrainingTab(QWidget):
    """Choose photos and settings, start/pause/resume/stop a run, watch its curves, and pick
    one of its checkpoints for upscaling.

    ``settings`` is the main window's persisted dict for this tab: it is read at start and
    kept up to date in place (``settings_dict()`` returns a copy), so saving it on close
    remembers the last run for Resume.
    """

    modelChosen = Signal(str)  # noqa: N815 (Qt signal naming)
    logMessage = Signal(str)  # noqa: N815
    errorOccurred = Signal(str)  # noqa: N815
    runningChanged = Signal(bool)  # noqa: N815
    # Every engine progress report (a TrainProgress), e.g. for a status bar.
    progressed = Signal(object)
    # The job's thread has ended: "finished", "paused", "stopped" or "failed".
    jobEnded = Signal(str)  # noqa: N815

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        settings: dict[str, Any] | None = None,
        runs_root: str | Path | None = None,
        config_overrides: Iterable[str] = (),
        train_fn: TrainFn | None = None,
        show_last_run: bool = True,
    ) -> None:
        super().__init__(parent)
        self._settings_store: dict[str, Any] = settings if settings is not None else {}
        self.state = TrainingSettings.from_dict(self._settings_store)
        self._runs_root = Path(runs_root) if runs_root is not None else None
        self._overrides = tuple(config_overrides)
        self.metrics = RunMetrics()
        self.job = TrainingJob(train_fn, self)
        self._dirty: set[str] = set()
        self._checkpoints: list[CheckpointEntry] = []
        self._bicubic: float | None = None
        self._run_val_every: int | None = None  # the shown run's validation interval
        # Seconds for the next Start/Resume's time limit instead of the "Stop after" field;
        # None uses the field. Tests set a fraction of a second here.
        self.time_limit_s: float | None = None

        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_INTERVAL_MS)
        self._redraw.timeout.connect(self._flush_view)

        self._build_ui()
        self._load_settings_into_ui()
        self._connect_ui()
        if show_last_run:
            self.show_last_run()
        else:
            self._update_validation_hint()
            self._update_buttons()

    def show_last_run(self) -> None:
        """Show the chosen run folder's run (curves, checkpoints, step) and offer Resume.
        Reading a run needs the engine, so the main window calls this once it is loaded."""
        self._offer_resume_of_last_run()
        self._update_validation_hint()
        self._update_buttons()

    # -- layout ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = TrainingForm()
        f = self.form
        self.hr_edit, self.hr_browse, self.val_edit, self.val_browse = (
            f.hr_edit, f.hr_browse, f.val_edit, f.val_browse)
        self.degradation_combo, self.preset_combo, self.steps_spin, self.time_limit_spin = (
            f.degradation_combo, f.preset_combo, f.steps_spin, f.time_limit_spin)
        self.run_edit, self.run_browse, self.run_new = f.run_edit, f.run_browse, f.run_new
        settings_box = f

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start a new run in the run folder")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Save a checkpoint and pause; Resume continues exactly")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue the run in the run folder from its last checkpoint")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Save a checkpoint and end the run")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.pause_button, self.resume_button, self.stop_button):
            buttons.addWidget(b)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.progress_bar.setFormat("%v / %m steps")
        self.status_label = QLabel("Choose a folder of photos, then press Start.")
        self.status_label.setWordWrap(True)
        # Room for two lines, so a wrapped message is never cut off by the list below.
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.eta_label = QLabel("ETA --")

        ck_box = CheckpointPanel()
        self.checkpoint_panel = ck_box
        self.checkpoint_list, self.use_button = ck_box.checkpoint_list, ck_box.use_button
        self.refresh_button, self.open_folder_button = ck_box.refresh_button, ck_box.open_folder_button

        left = QVBoxLayout()
        left.addWidget(settings_box)
        left.addLayout(buttons)
        left.addWidget(self.progress_bar)
        left.addWidget(self.eta_label)
        left.addWidget(self.status_label)
        left.addWidget(ck_box, 1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(460)
        left_widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

        self.chart_panel = TrainingCharts()
        self.charts = self.chart_panel.charts

        outer = QHBoxLayout(self)
        outer.addWidget(left_widget)
        outer.addWidget(self.chart_panel, 1)

    def _load_settings_into_ui(self) -> None:
        self.form.load(self.state)
        self._refresh_checkpoints()

    def _connect_ui(self) -> None:
        self.hr_browse.clicked.connect(lambda: self._browse_folder(self.hr_edit, "Photos to train on"))
        self.val_browse.clicked.connect(
            lambda: self._browse_folder(self.val_edit, "Validation photos (optional)")
        )
        self.run_browse.clicked.connect(lambda: self._browse_folder(self.run_edit, "Run folder"))
        self.run_new.clicked.connect(self.choose_new_run_dir)
        for edit in (self.hr_edit, self.val_edit):
            edit.editingFinished.connect(self._read_ui_settings)
        self.run_edit.editingFinished.connect(self._on_run_dir_edited)
        self.degradation_combo.currentIndexChanged.connect(self._read_ui_settings)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.steps_spin.valueChanged.connect(self._read_ui_settings)
        self.time_limit_spin.valueChanged.connect(self._read_ui_settings)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use_selected_model)
        self.refresh_button.clicked.connect(self._refresh_checkpoints)
        self.open_folder_button.clicked.connect(self.open_run_folder)
        self.checkpoint_list.itemDoubleClicked.connect(lambda _item: self.use_selected_model())
        self.checkpoint_list.currentRowChanged.connect(lambda _row: self._update_buttons())
        job = self.job
        job.progress.connect(self._on_progress)
        job.status.connect(self._on_status)
        job.settled.connect(self._on_settled)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._report_error)
        job.message.connect(self.logMessage)
        job.threadEnded.connect(self._on_thread_ended)
        job.runningChanged.connect(self.runningChanged)

    # -- settings -------------------------------------------------------------------------
    def _browse_folder(self, edit: QLineEdit, caption: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, caption, edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)
            if edit is self.run_edit:
                self._on_run_dir_edited()
            else:
                self._read_ui_settings()

    def _read_ui_settings(self) -> None:
        s = self.state
        self.form.read(s)
        self._settings_store.update(s.to_dict())
        if hasattr(self, "charts"):
            self._update_validation_hint()

    def _on_preset_changed(self) -> None:
        # A new preset implies a different step budget; the user can still edit it after.
        preset = str(self.preset_combo.currentData())
        self.steps_spin.setValue(DEFAULT_STEPS.get(preset, self.steps_spin.value()))
        self._read_ui_settings()

    def _on_run_dir_edited(self) -> None:
        before = self.state.run_dir
        self._read_ui_settings()
        if self.state.run_dir != before and not self.is_running:
            self._show_run(self.state.run_dir)
            if self.phase is Phase.PAUSED:
                self.phase = Phase.IDLE
            self._update_buttons()

    def _show_run(self, run_dir: str) -> None:
        """Display an existing run: its settings in the form (what Resume will use), its
        curves and its checkpoints. A new folder just clears the view."""
        self.metrics.clear()
        self.job.last_progress = None
        self._bicubic = None
        summary = read_run_summary(run_dir) if run_dir else None
        self._run_val_every = summary.val_every if summary is not None else None
        if summary is not None:
            self.steps_spin.blockSignals(True)
            self.steps_spin.setValue(summary.steps)
            self.steps_spin.blockSignals(False)
            if summary.degradation is not None:
                self.degradation_combo.setCurrentIndex(
                    max(0, self.degradation_combo.findData(summary.degradation))
                )
            if summary.data_dir:
                self.hr_edit.setText(summary.data_dir)
            self.val_edit.setText(summary.val_dir or "")
            self._read_ui_settings()
            self.metrics.load_log(run_dir)
        self._dirty.update(self.metrics.series)
        self._flush_view()
        self._refresh_checkpoints()
        self._update_validation_hint()

    def settings_dict(self) -> dict[str, Any]:
        """A copy of the tab's persisted settings."""
        self._read_ui_settings()
        return dict(self._settings_store)

    def apply_settings(self, values: Mapping[str, Any]) -> None:
        """Set fields from a dict (same keys as ``settings_dict``); used by scripts and tests."""
        merged = {**self.state.to_dict(), **dict(values)}
        self.state = TrainingSettings.from_dict(merged)
        self.preset_combo.blockSignals(True)
        self._load_settings_into_ui()
        self.preset_combo.blockSignals(False)
        self._read_ui_settings()
        self._update_buttons()

    def choose_new_run_dir(self) -> Path:
        """Fill in a fresh folder: beside the current run folder, else under the runs root."""
        current = Path(self.state.run_dir) if self.state.run_dir else None
        if current is not None and current.name:
            root = current.parent
        else:
            root = self._runs_root if self._runs_root is not None else default_runs_root()
        path = new_run_dir(root)
        self.run_edit.setText(str(path))
        self._on_run_dir_edited()
        return path

    def _offer_resume_of_last_run(self) -> None:
        """At start-up: show the chosen run folder's run, and if it is the run the app was
        training when it closed, offer Resume."""
        last = self.state.last_run_dir
        if not self.state.run_dir and last and list_checkpoints(last):
            self.run_edit.setText(last)
            self._read_ui_settings()
        if not self.state.run_dir or not list_checkpoints(self.state.run_dir):
            return
        self._show_run(self.state.run_dir)
        latest = self._checkpoints[-1] if self._checkpoints else None
        step = latest.step if latest is not None else None
        self._show_step(step or 0)
        if step is not None and step >= self.state.steps:
            self._set_status("This run has finished. Its checkpoints are listed below; "
                             "raise Steps and press Resume to train it further.")
            return
        where = f" at step {step:,}" if step is not None else ""
        if last and Path(self.state.run_dir) == Path(last):
            self.phase = Phase.PAUSED
            self._set_status(
                f"Your last training run stopped{where}. Press Resume to continue it, or "
                "choose a new run folder and press Start."
            )
        else:
            self._set_status(f"This run stopped{where}. Press Resume to continue it.")

    # -- job control ----------------------------------------------------------------------
    @property
    def is_running(self) -> bool:
        """True while a training thread is alive (including while it writes its checkpoint)."""
        return self.job.is_running

    @property
    def phase(self) -> Phase:
        return self.job.phase

    @phase.setter
    def phase(self, phase: Phase) -> None:
        self.job.phase = phase

    def start(self) -> bool:
        """Start a new run with the chosen settings; returns False (and reports why) if the
        settings cannot start one."""
        if self.is_running:
            return False
        self._read_ui_settings()
        if not self.state.run_dir:
            self.choose_new_run_dir()
        elif list_checkpoints(self.state.run_dir):
            # Never overwrite a run: a new one goes into a fresh folder beside it.
            earlier = self.state.run_dir
            self.choose_new_run_dir()
            self.logMessage.emit(f"{earlier} holds an earlier run; the new run goes into "
                                 f"{self.state.run_dir}")
        problems = self.state.problems(resume=False)
        if problems:
            self._report_error(" ".join(problems))
            return False
        self.metrics.clear()
        self.job.last_progress = None
        self._bicubic = None
        self._dirty.update(self.metrics.series)
        self._flush_view()
        return self._launch(resume=False)

    def resume(self) -> bool:
        """Continue the run in the run folder from its newest checkpoint."""
        if self.is_running:
            return False
        self._read_ui_settings()
        problems = self.state.problems(resume=True)
        if problems:
            self._report_error(" ".join(problems))
            return False
        if not any(len(s) for s in self.metrics.series.values()):
            self.metrics.load_log(self.state.run_dir)
            self._dirty.update(self.metrics.series)
        return self._launch(resume=True)

    def pause(self) -> None:
        """Write a checkpoint and pause; Resume continues where it left off."""
        self.job.pause()

    def stop(self) -> None:
        """Write a checkpoint and end the run (it can still be resumed later)."""
        self.job.stop()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel a running job and wait for its thread to end (the engine saves a checkpoint,
        so the run can be resumed next time). Returns True when no thread is left running."""
        return self.job.shutdown(timeout_ms)

    def _launch(self, *, resume: bool) -> bool:
        request = TrainRequest.from_settings(self.state, resume=resume, overrides=self._overrides)
        self.state.last_run_dir = self.state.run_dir
        self._settings_store.update(self.state.to_dict())
        self.job.launch(request, self._time_limit_seconds())
        self._update_buttons()
        return True

    def _time_limit_seconds(self) -> float:
        if self.time_limit_s is not None:
            return max(0.0, float(self.time_limit_s))
        return 60.0 * self.state.time_limit_min

    # -- job reports ----------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, progress: Any) -> None:
        self._dirty.update(self.metrics.add(progress))
        if getattr(progress, "val_psnr", None) is not None:
            if self._bicubic is None:
                self._bicubic = read_bicubic_psnr(self.state.run_dir)
            if self._bicubic is not None:
                self.metrics.series["bicubic_psnr"].append(progress.step, self._bicubic)
                self._dirty.add("bicubic_psnr")
        if getattr(progress, "checkpoint", None) is not None:
            self._refresh_checkpoints()
        if not self._redraw.isActive():
            self._redraw.start()
        self.progressed.emit(progress)

    def _on_status(self, text: str) -> None:
        self._set_status(text)
        self._update_buttons()

    def _on_settled(self, status: str) -> None:
        self._refresh_checkpoints()
        self._flush_view()
        self._on_status(status)

    def _on_finished(self, _result: Any) -> None:
        if self._checkpoints:
            self.checkpoint_list.setCurrentRow(self.checkpoint_list.count() - 1)

    def _on_thread_ended(self, outcome: str) -> None:
        self._update_buttons()
        self.jobEnded.emit(outcome)

    # -- view -----------------------------------------------------------------------------
    def _flush_view(self) -> None:
        """Push new metric points into the charts and the status line (coalesced)."""
        dirty, self._dirty = self._dirty, set()
        self.chart_panel.show_metrics(self.metrics, dirty)
        p = self.job.last_progress
        if p is not None:
            total = int(getattr(p, "total_steps", 0) or 0)
            step = int(getattr(p, "step", 0) or 0)
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(step, max(1, total)))
            line = describe_progress(p)
            self.eta_label.setText(line)
            if self.phase is Phase.RUNNING:
                self.status_label.setText(f"Training…{self.job.pause_clock()} Pause keeps "
                                          "your progress.")

    def _show_step(self, step: int) -> None:
        """The progress bar at ``step`` of the run's step count (a run shown while idle)."""
        total = max(1, self.state.steps)
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(min(step, total))

    def _val_every(self) -> int | None:
        if self._run_val_every is not None:
            return self._run_val_every
        for override in reversed(self._overrides):
            key, _, value = override.partition("=")
            if key.strip() == "val_every" and value.strip().isdigit():
                return int(value)
        return VAL_EVERY.get(self.state.preset)

    def _update_validation_hint(self) -> None:
        if not self.state.val_dir:
            self.chart_panel.set_validation_hint("Choose a validation folder to see it")
            return
        step = int(getattr(self.job.last_progress, "step", 0) or 0)
        if not step and self._checkpoints:
            step = self._checkpoints[-1].step or 0
        self.chart_panel.set_validation_hint(
            first_validation_text(self._val_every(), step, self.state.steps))

    def _refresh_checkpoints(self) -> None:
        run_dir = self.state.run_dir
        self._checkpoints = list_checkpoints(run_dir) if run_dir else []
        self.checkpoint_panel.show_entries(self._checkpoints)
        self._update_buttons()

    def checkpoints(self) -> list[CheckpointEntry]:
        return list(self._checkpoints)

    def selected_checkpoint(self) -> Path | None:
        return self.checkpoint_panel.selected() if hasattr(self, "checkpoint_panel") else None

    def use_selected_model(self) -> None:
        """Hand the selected checkpoint to the main window's model selector."""
        path = self.selected_checkpoint()
        which = "the selected checkpoint"
        if path is None:
            if not self._checkpoints:
                return
            path, which = self._checkpoints[-1].path, "the latest checkpoint"
        if not path.is_file():
            self._report_error(f"{path} no longer exists; press Refresh to list the run again.")
            self._refresh_checkpoints()
            return
        self.logMessage.emit(f"Using {which}, {path.name} ({path})")
        self._set_status(f"Upscaling now uses {which}, {path.name}.")
        self.modelChosen.emit(str(path))

    def open_run_folder(self) -> None:
        folder = Path(self.state.run_dir) if self.state.run_dir else None
        if folder is None or not folder.is_dir():
            self._report_error("The run folder does not exist yet: it is made when a run starts.")
            return
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices

        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            # No file manager (a bare desktop, a server): say where it is instead.
            self._report_error(f"No file manager could be opened. The run folder is {folder}")

    def _set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def _report_error(self, message: str) -> None:
        self.logMessage.emit(f"Training error: {message}")
        self.errorOccurred.emit(message)

    def _update_buttons(self) -> None:
        busy = self.is_running
        phase = self.phase
        has_ckpt = bool(self._checkpoints)
        self.start_button.setEnabled(not busy)
        self.pause_button.setEnabled(busy and phase is Phase.RUNNING)
        self.resume_button.setEnabled(not busy and has_ckpt)
        # Nothing to stop while idle, paused included: the run is already saved.
        self.stop_button.setEnabled(busy and phase in (Phase.RUNNING, Phase.PAUSING))
        self.use_button.setEnabled(has_ckpt)
        self.open_folder_button.setEnabled(bool(self.state.run_dir) and Path(self.state.run_dir).is_dir())
        for w in (self.hr_edit, self.hr_browse, self.val_edit, self.val_browse,
                  self.degradation_combo, self.preset_combo, self.steps_spin,
                  self.time_limit_spin, self.run_edit, self.run_browse, self.run_new):
            w.setEnabled(not busy)
        if phase is Phase.PAUSED:
            self.resume_button.setDefault(True)
