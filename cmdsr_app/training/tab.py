"""The Training tab: train CMDSR on the user's own photos, watch it learn, use the result.

The tab composes its parts and wires them in one place: the form (:class:`TrainingForm`), the
run controls (:class:`RunControls`), the run's curves (:class:`TrainingCurves` over
:class:`TrainingCharts`) and its checkpoints (:class:`RunCheckpoints`). The job itself
(worker thread, Pause/Stop, the "Stop after" limit) is a :class:`TrainingJob`, whose reports
reach the widgets only through queued signals. Pause and Stop both ask the engine to stop (it
writes a checkpoint first); Resume continues the run from its folder, also after the app was
closed mid-run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLineEdit, QSizePolicy, QVBoxLayout, QWidget

from cmdsr_app.training.charts import TrainingCharts
from cmdsr_app.training.checkpoints import RunCheckpoints
from cmdsr_app.training.controls import RunControls
from cmdsr_app.training.curves import TrainingCurves
from cmdsr_app.training.form import CheckpointPanel, TrainingForm
from cmdsr_app.training.job import TrainingJob
from cmdsr_app.training.state import (
    DEFAULT_STEPS,
    CheckpointEntry,
    Phase,
    TrainingSettings,
    TrainRequest,
    condition_chart_hint,
    is_condition_report,
    list_checkpoints,
    new_run_dir,
    preset_cond_freeze,
    preset_val_every,
    read_run_summary,
    shipped_model_file,
    validation_hint,
)
from cmdsr_app.training.worker import TrainFn

log = logging.getLogger(__name__)


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
    # (title, message) of a problem that is not the training's: a checkpoint or folder
    problemOccurred = Signal(str, str)  # noqa: N815
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
        self.job = TrainingJob(train_fn, self)
        self._run_val_every: int | None = None  # the shown run's validation interval
        # the shown run's ConditionNet: held fixed for how many steps, and is there one
        self._run_condition: tuple[int, bool] | None = None
        # Seconds for the next Start/Resume's time limit instead of the "Stop after" field;
        # None uses the field. Tests set a fraction of a second here.
        self.time_limit_s: float | None = None

        self._build_ui()
        self.form.load(self.state)
        self.form.set_shipped_available(shipped_model_file() is not None)
        self.run_checkpoints.refresh()
        self._connect_ui()
        if show_last_run:
            self.show_last_run()
        else:
            self._update_chart_hints()
            self._update_buttons()

    def show_last_run(self) -> None:
        """Show the chosen run folder's run (curves, checkpoints, step) and offer Resume.
        Reading a run needs the engine, so the main window calls this once it is loaded."""
        self._offer_resume_of_last_run()
        self._update_chart_hints()
        self._update_buttons()

    # -- layout ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.form = f = TrainingForm()
        self.hr_edit, self.hr_browse, self.val_edit, self.val_browse = (
            f.hr_edit, f.hr_browse, f.val_edit, f.val_browse)
        self.degradation_combo, self.preset_combo, self.steps_spin, self.time_limit_spin = (
            f.degradation_combo, f.preset_combo, f.steps_spin, f.time_limit_spin)
        self.run_edit, self.run_browse, self.run_new = f.run_edit, f.run_browse, f.run_new

        self.controls = c = RunControls()
        self.start_button, self.pause_button, self.resume_button, self.stop_button = (
            c.start_button, c.pause_button, c.resume_button, c.stop_button)
        self.progress_bar, self.eta_label, self.status_label = (
            c.progress_bar, c.eta_label, c.status_label)

        self.checkpoint_panel = ck = CheckpointPanel()
        self.checkpoint_list, self.use_button = ck.checkpoint_list, ck.use_button
        self.refresh_button, self.open_folder_button = ck.refresh_button, ck.open_folder_button
        self.run_checkpoints = RunCheckpoints(ck, lambda: self.state.run_dir, self)

        self.chart_panel = TrainingCharts()
        self.charts = self.chart_panel.charts
        self.curves = TrainingCurves(self.chart_panel, lambda: self.state.run_dir, self)
        self.metrics = self.curves.metrics

        left = QVBoxLayout()
        left.addWidget(f)
        left.addWidget(c)
        left.addWidget(ck, 1)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(460)
        left_widget.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        outer = QHBoxLayout(self)
        outer.addWidget(left_widget)
        outer.addWidget(self.chart_panel, 1)

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
        self.form.start_combo.currentIndexChanged.connect(self._read_ui_settings)
        self.preset_combo.currentIndexChanged.connect(self._on_preset_changed)
        self.steps_spin.valueChanged.connect(self._read_ui_settings)
        self.time_limit_spin.valueChanged.connect(self._read_ui_settings)
        self.start_button.clicked.connect(self.start)
        self.pause_button.clicked.connect(self.pause)
        self.resume_button.clicked.connect(self.resume)
        self.stop_button.clicked.connect(self.stop)
        ck = self.run_checkpoints
        self.use_button.clicked.connect(ck.use_selected)
        self.refresh_button.clicked.connect(ck.refresh)
        self.open_folder_button.clicked.connect(ck.open_folder)
        self.checkpoint_list.itemDoubleClicked.connect(lambda _item: ck.use_selected())
        ck.modelChosen.connect(self.modelChosen)
        ck.message.connect(self.logMessage)
        ck.status.connect(self.controls.set_status)
        ck.problem.connect(self._report_problem)
        ck.changed.connect(self._update_buttons)
        self.curves.redrawn.connect(self._show_progress)
        job = self.job
        job.progress.connect(self._on_progress)
        job.status.connect(self._on_status)
        job.settled.connect(self._on_settled)
        job.finished.connect(lambda _result: self.run_checkpoints.select_latest())
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
        self.form.read(self.state)
        self._settings_store.update(self.state.to_dict())
        self._update_chart_hints()

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
        self.job.last_progress = None
        summary = read_run_summary(run_dir) if run_dir else None
        self._run_val_every = summary.val_every if summary is not None else None
        self._run_condition = (None if summary is None
                               else (summary.cond_freeze_steps, summary.conditioning))
        if summary is not None:
            self.form.show_summary(summary)
            self._read_ui_settings()
            self.curves.load(run_dir)
        else:
            self.curves.clear()
        self.run_checkpoints.refresh()
        self._update_chart_hints()

    def settings_dict(self) -> dict[str, Any]:
        """A copy of the tab's persisted settings."""
        self._read_ui_settings()
        return dict(self._settings_store)

    def apply_settings(self, values: Mapping[str, Any]) -> None:
        """Set fields from a dict (same keys as ``settings_dict``); used by scripts and tests."""
        merged = {**self.state.to_dict(), **dict(values)}
        self.state = TrainingSettings.from_dict(merged)
        self.preset_combo.blockSignals(True)
        self.form.load(self.state)
        self.run_checkpoints.refresh()
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
        step = self.run_checkpoints.entries[-1].step if self.run_checkpoints.entries else None
        self.controls.show_step(step or 0, self.state.steps)
        if step is not None and step >= self.state.steps:
            self.controls.set_status("This run has finished. Its checkpoints are listed below; "
                                     "raise Steps and press Resume to train it further.")
            return
        where = f" at step {step:,}" if step is not None else ""
        if last and Path(self.state.run_dir) == Path(last):
            self.phase = Phase.PAUSED
            self.controls.set_status(
                f"Your last training run stopped{where}. Press Resume to continue it, or "
                "choose a new run folder and press Start."
            )
        else:
            self.controls.set_status(f"This run stopped{where}. Press Resume to continue it.")

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
        self.job.last_progress = None
        self._run_val_every = self._run_condition = None  # the new run's are the form's
        self.curves.clear()
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
        if not self.curves.has_history():
            self.curves.load(self.state.run_dir)
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
        start = self.run_checkpoints.latest_step() if resume else 0
        self.controls.show_starting(start, self.state.steps, resume=resume)
        self._update_chart_hints()
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
        if is_condition_report(progress):
            # the condition stage has no SR losses to chart: the progress lines say where it is
            self.controls.show_report(progress)
            self.progressed.emit(progress)
            return
        self.curves.add(progress)
        if getattr(progress, "checkpoint", None) is not None:
            self.run_checkpoints.refresh()
        self.progressed.emit(progress)

    def _on_status(self, text: str) -> None:
        self.controls.set_status(text)
        self._update_buttons()

    def _on_settled(self, status: str) -> None:
        self.run_checkpoints.refresh()
        self.curves.flush()
        self.curves.save()
        self._on_status(status)

    def _on_thread_ended(self, outcome: str) -> None:
        self._update_buttons()
        self.jobEnded.emit(outcome)

    # -- view -----------------------------------------------------------------------------
    def _show_progress(self) -> None:
        """The newest report in the progress lines (each time the charts are redrawn)."""
        p = self.job.last_progress
        if p is None:
            return
        self.controls.show_report(p)
        if self.phase is Phase.RUNNING:
            self.controls.set_status(f"Training…{self.job.pause_clock()} Pause keeps your "
                                     "progress.")

    def _update_chart_hints(self) -> None:
        """What the empty charts say: when validation comes, why the condition charts wait."""
        every = self._run_val_every or preset_val_every(self.state.preset, self._overrides)
        step = int(getattr(self.job.last_progress, "step", 0) or 0)
        step = step or self.run_checkpoints.latest_step()
        self.chart_panel.set_validation_hint(
            validation_hint(self.state.val_dir, every, step, self.state.steps))
        freeze, conditioning = self._run_condition or (
            preset_cond_freeze(self.state.preset, self._overrides), True)
        self.chart_panel.set_condition_hint(
            condition_chart_hint(freeze, self.state.steps, conditioning=conditioning))

    def model_in_use(self, path: str) -> None:
        """The model upscaling uses now ("" = the shipped model): the status line says a
        checkpoint of this run is used only once it is, and stops saying so after."""
        self.run_checkpoints.model_in_use(path)

    def model_not_used(self, path: str) -> None:
        """A checkpoint handed over with Use this model was kept out (or failed to load)."""
        self.run_checkpoints.model_not_used(path)

    def checkpoints(self) -> list[CheckpointEntry]:
        return list(self.run_checkpoints.entries)

    def _report_problem(self, title: str, message: str) -> None:
        self.logMessage.emit(f"{title}: {message}")
        self.problemOccurred.emit(title, message)

    def _report_error(self, message: str) -> None:
        self.logMessage.emit(f"Training error: {message}")
        self.errorOccurred.emit(message)

    def _update_buttons(self) -> None:
        busy = self.is_running
        has_ckpt = bool(self.run_checkpoints.entries)
        self.controls.update_buttons(busy=busy, phase=self.phase, has_checkpoint=has_ckpt)
        self.use_button.setEnabled(has_ckpt)
        self.open_folder_button.setEnabled(bool(self.state.run_dir) and Path(self.state.run_dir).is_dir())
        self.form.set_locked(busy)
