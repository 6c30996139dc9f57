"""The Training tab: train CMDSR on the user's own photos, watch it learn, use the result.

The engine's training loop runs in a ``TrainingWorker`` moved to a ``QThread``; its progress
callbacks reach the widgets only through queued signals. Pause and Stop both ask the engine
to stop (it writes a checkpoint first); Resume continues the run from its folder, also after
the app was closed mid-run. "Stop after" pauses the run the same way when its time is up.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.charts import LineChart
from cmdsr_app.training_state import (
    DEFAULT_STEPS,
    DEGRADATION_PRESETS,
    MAX_TIME_LIMIT_MIN,
    TRAIN_PRESETS,
    VAL_EVERY,
    CheckpointEntry,
    Phase,
    RunMetrics,
    TrainingSettings,
    TrainRequest,
    describe_progress,
    first_validation_text,
    format_time_limit,
    list_checkpoints,
    new_run_dir,
    read_bicubic_psnr,
    read_run_summary,
    run_engine,
    smooth,
)

log = logging.getLogger(__name__)

TrainFn = Callable[[TrainRequest, Callable[[Any], None], threading.Event], Any]
# Training threads still running, with their workers: a tab closed before its thread ended
# (shutdown timed out) must never free a QThread whose thread runs, which aborts the process.
_LIVE_THREADS: dict[QThread, QObject] = {}
# The charts redraw at most this often; the engine may report hundreds of steps a second.
REDRAW_INTERVAL_MS = 150


def default_runs_root() -> Path:
    """Where new runs go when the user names no folder: the user's data folder."""
    import appdirs

    return Path(appdirs.user_data_dir("CMDSR Studio", "CMDSR")) / "runs"


class TrainingWorker(QObject):
    """Runs one training job (start or resume) on a worker thread.

    Emits exactly one of ``finished(result)``, ``failed(message)`` or ``cancelled()``; a
    cancelled job never emits ``finished``. ``message`` carries log lines (the traceback of a
    failure), which belong in the log panel rather than the dialog.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    message = Signal(str)

    def __init__(self, request: TrainRequest, train_fn: TrainFn | None = None) -> None:
        super().__init__()
        self.request = request
        self._train_fn: TrainFn = train_fn or run_engine
        self._cancel = threading.Event()
        self._last: Any = None

    def cancel(self) -> None:
        """Ask the engine to stop after the current step (thread-safe)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _on_progress(self, progress: Any) -> None:
        # Called on the worker thread by the engine: only a signal may cross to the GUI.
        self._last = progress
        self.progress.emit(progress)

    def _completed(self) -> bool:
        last = self._last
        if last is None:
            return False
        step, total = getattr(last, "step", None), getattr(last, "total_steps", None)
        return isinstance(step, int) and isinstance(total, int) and step >= total

    @Slot()
    def run(self) -> None:
        from engine import CancelledError, CmdsrError

        try:
            if self.request.preset == "reference" and not self.request.resume:
                import torch

                if not torch.cuda.is_available():
                    self.message.emit(
                        "No CUDA GPU found: the GPU (reference) setup will run on the CPU and "
                        "take a very long time. The CPU setup is made for this machine."
                    )
            result = self._train_fn(self.request, self._on_progress, self._cancel)
        except CancelledError:
            self.cancelled.emit()
        except CmdsrError as exc:
            self.message.emit(traceback.format_exc())
            self.failed.emit(str(exc))
        except MemoryError:
            self.message.emit(traceback.format_exc())
            self.failed.emit(
                "Training ran out of memory. Choose the CPU preset, or close other programs."
            )
        except OSError as exc:  # a full disk or a read-only run folder, typically
            self.message.emit(traceback.format_exc())
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            self.failed.emit(
                f"Training stopped: {exc.strerror or exc}{where}. Check that the run folder "
                "is writable and the disk has space; Resume continues from the last checkpoint."
            )
        except Exception as exc:  # any engine bug must reach the user, not kill the thread
            self.message.emit(traceback.format_exc())
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if "out of memory" in text.lower():
                self.failed.emit(
                    "The GPU ran out of memory. Choose the CPU preset or a smaller batch."
                )
            else:
                self.failed.emit(
                    f"Training stopped on an unexpected error ({type(exc).__name__}: {text}). "
                    "The log panel has the details."
                )
        else:
            # A Pause pressed during the very last step still completed the run.
            if self._cancel.is_set() and not self._completed():
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            # quit() is thread-safe; called from here, shutdown() can wait on the thread
            # without needing the GUI event loop to deliver a queued quit.
            thread = self.thread()
            if thread is not None:
                thread.quit()


def _tool_button(text: str) -> QToolButton:
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
    ) -> None:
        super().__init__(parent)
        self._settings_store: dict[str, Any] = settings if settings is not None else {}
        self.state = TrainingSettings.from_dict(self._settings_store)
        self._runs_root = Path(runs_root) if runs_root is not None else None
        self._overrides = tuple(config_overrides)
        self._train_fn = train_fn
        self.metrics = RunMetrics()
        self.phase = Phase.IDLE
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._last_progress: Any = None
        self._dirty: set[str] = set()
        self._checkpoints: list[CheckpointEntry] = []
        self._bicubic: float | None = None
        self._run_val_every: int | None = None  # the shown run's validation interval
        # Seconds for the next Start/Resume's time limit instead of the "Stop after" field;
        # None uses the field. Tests set a fraction of a second here.
        self.time_limit_s: float | None = None
        self._limit_s = 0.0  # the running job's limit (0: none)
        self._limit_deadline: float | None = None  # wall-clock time it pauses, for the status
        self._limit_hit = False

        self._limit_timer = QTimer(self)
        self._limit_timer.setSingleShot(True)
        self._limit_timer.timeout.connect(self._on_time_limit)

        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_INTERVAL_MS)
        self._redraw.timeout.connect(self._flush_view)

        self._build_ui()
        self._load_settings_into_ui()
        self._connect_ui()
        self._offer_resume_of_last_run()
        self._update_validation_hint()
        self._update_buttons()

    # -- layout ---------------------------------------------------------------------------
    def _build_ui(self) -> None:
        self.hr_edit = QLineEdit()
        self.hr_edit.setPlaceholderText("Folder of sharp, high-resolution photos")
        self.hr_edit.setToolTip(
            "The photos the model learns from. Degraded copies are made from them on the fly; "
            "use sharp, clean photos (several dozen or more)."
        )
        self.hr_browse = _tool_button("…")
        self.val_edit = QLineEdit()
        self.val_edit.setPlaceholderText("Optional: photos kept apart to measure progress")
        self.val_edit.setToolTip(
            "Optional. A few photos not used for training; their PSNR is charted at each "
            "validation so you can see whether the model still improves."
        )
        self.val_browse = _tool_button("…")
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
            "CPU: a smaller batch and patches that train at a usable speed without a GPU. "
            "GPU: the paper's full setup (needs a CUDA GPU)."
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
        self.run_browse = _tool_button("…")
        self.run_new = _tool_button("New")
        self.run_new.setToolTip("Pick a fresh, empty folder for a new run")

        form = QFormLayout()
        form.addRow("Photos:", _browse_row(self.hr_edit, self.hr_browse))
        form.addRow("Validation:", _browse_row(self.val_edit, self.val_browse))
        form.addRow("Degradations:", self.degradation_combo)
        form.addRow("Setup:", self.preset_combo)
        form.addRow("Steps:", self.steps_spin)
        form.addRow("Stop after:", self.time_limit_spin)
        form.addRow("Run folder:", _browse_row(self.run_edit, self.run_browse, self.run_new))
        settings_box = QGroupBox("Training data and settings")
        settings_box.setLayout(form)

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

        self.checkpoint_list = QListWidget()
        self.checkpoint_list.setToolTip("Model files saved by this run (double-click to use one)")
        self.use_button = QPushButton("Use this model")
        self.use_button.setToolTip("Upscale with the selected checkpoint")
        self.refresh_button = _tool_button("Refresh")
        self.open_folder_button = _tool_button("Open folder")
        self.open_folder_button.setToolTip("Show the run folder (config, metrics, plot) in the file manager")
        ck_buttons = QHBoxLayout()
        ck_buttons.addWidget(self.use_button)
        ck_buttons.addStretch(1)
        ck_buttons.addWidget(self.open_folder_button)
        ck_buttons.addWidget(self.refresh_button)
        ck_box = QGroupBox("Checkpoints of this run")
        ck_lay = QVBoxLayout(ck_box)
        ck_lay.addWidget(self.checkpoint_list)
        ck_lay.addLayout(ck_buttons)

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

        self.charts: dict[str, LineChart] = {
            "l1": LineChart("L1 loss", empty_text="Starts with the first step"),
            "contrastive": LineChart("Contrastive loss", empty_text="Starts with the first step"),
            "distances": LineChart("Condition distances", empty_text="Starts with the first step"),
            "val_psnr": LineChart(
                "Validation PSNR", y_label="dB", empty_text="Choose a validation folder to see it"
            ),
        }
        self.charts["l1"].add_series("L1", "#9DC3E6")
        self.charts["l1"].add_series("trend", "#0072B2")
        self.charts["contrastive"].add_series("contrastive", "#D55E00")
        self.charts["distances"].add_series("d_inner", "#009E73")
        self.charts["distances"].add_series("d_cross", "#CC79A7")
        self.charts["val_psnr"].add_series("PSNR", "#0072B2")
        self.charts["val_psnr"].add_series("bicubic", "#999999")
        self.charts["distances"].setToolTip(
            "d_inner: distance between condition vectors of the same photo and degradation "
            "(should shrink). d_cross: between different ones (should stay large)."
        )
        grid = QGridLayout()
        grid.addWidget(self.charts["l1"], 0, 0)
        grid.addWidget(self.charts["contrastive"], 0, 1)
        grid.addWidget(self.charts["distances"], 1, 0)
        grid.addWidget(self.charts["val_psnr"], 1, 1)

        outer = QHBoxLayout(self)
        outer.addWidget(left_widget)
        outer.addLayout(grid, 1)

    def _load_settings_into_ui(self) -> None:
        s = self.state
        self.hr_edit.setText(s.hr_dir)
        self.val_edit.setText(s.val_dir)
        self.degradation_combo.setCurrentIndex(max(0, self.degradation_combo.findData(s.degradation)))
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(s.preset)))
        self.steps_spin.setValue(s.steps)
        self.time_limit_spin.setValue(s.time_limit_min)
        self.run_edit.setText(s.run_dir)
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
        s.hr_dir = self.hr_edit.text().strip()
        s.val_dir = self.val_edit.text().strip()
        s.degradation = str(self.degradation_combo.currentData())
        s.preset = str(self.preset_combo.currentData())
        s.steps = int(self.steps_spin.value())
        s.time_limit_min = int(self.time_limit_spin.value())
        s.run_dir = self.run_edit.text().strip()
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
        self._last_progress = None
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
        return self._thread is not None

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
        self._last_progress = None
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
        if self._worker is not None and self.phase is Phase.RUNNING:
            self.phase = Phase.PAUSING
            self._worker.cancel()
            self._set_status("Pausing: saving a checkpoint…")
            self._update_buttons()

    def stop(self) -> None:
        """Write a checkpoint and end the run (it can still be resumed later)."""
        if self._worker is not None and self.phase in (Phase.RUNNING, Phase.PAUSING):
            self.phase = Phase.STOPPING
            self._worker.cancel()
            self._set_status("Stopping: saving a checkpoint…")
            self._update_buttons()
        elif self.phase is Phase.PAUSED:
            self.phase = Phase.IDLE
            self._set_status("Run ended. Its checkpoints are listed below.")
            self._update_buttons()

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel a running job and wait for its thread to end (the engine saves a checkpoint,
        so the run can be resumed next time). Returns True when no thread is left running."""
        thread, worker = self._thread, self._worker
        if thread is None:
            return True
        if worker is not None:
            worker.cancel()
        self.phase = Phase.PAUSING
        self._limit_timer.stop()
        stopped = thread.wait(max(0, int(timeout_ms)))
        if stopped:
            # The worker's last signals are still queued; settle the state now, since the
            # window may close before the event loop delivers them.
            self._settle(Phase.PAUSED, "Paused when the app closed; press Resume to continue.")
            self._cleanup_thread()
        else:
            log.warning("training did not stop within %d ms", timeout_ms)
        return stopped

    def _launch(self, *, resume: bool) -> bool:
        request = TrainRequest.from_settings(self.state, resume=resume, overrides=self._overrides)
        self.state.last_run_dir = self.state.run_dir
        self._settings_store.update(self.state.to_dict())
        worker = TrainingWorker(request, self._train_fn)
        thread = QThread()
        thread.setObjectName("cmdsr-training")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.message.connect(self.logMessage)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self._thread = worker, thread
        self.phase = Phase.RUNNING
        verb = "Resuming" if resume else "Starting"
        self._set_status(f"{verb} training (loading the photos)…")
        self.logMessage.emit(
            f"{verb} training: {request.preset} preset, {request.steps:,} steps, "
            f"{request.degradation} degradations, run folder {request.run_dir}"
        )
        self._update_buttons()
        self.runningChanged.emit(True)
        _LIVE_THREADS[thread] = worker
        thread.start()
        self._start_time_limit()
        return True

    def _time_limit_seconds(self) -> float:
        if self.time_limit_s is not None:
            return max(0.0, float(self.time_limit_s))
        return 60.0 * self.state.time_limit_min

    def _start_time_limit(self) -> None:
        # The clock starts with the job (photo loading included), as the CLI's --time-limit.
        self._limit_hit = False
        self._limit_s = self._time_limit_seconds()
        self._limit_timer.stop()
        if self._limit_s <= 0:
            self._limit_deadline = None
            return
        self._limit_deadline = time.time() + self._limit_s
        self._limit_timer.start(max(1, int(round(self._limit_s * 1000))))
        self.logMessage.emit(f"Time limit: the run pauses after {format_time_limit(self._limit_s)}.")

    @Slot()
    def _on_time_limit(self) -> None:
        """The "Stop after" time is up: pause exactly as the Pause button does."""
        if self._worker is None or self.phase is not Phase.RUNNING:
            return  # the user paused or stopped first; theirs is the reason shown
        self._limit_hit = True
        self.phase = Phase.PAUSING
        self._worker.cancel()
        self._set_status(f"The {format_time_limit(self._limit_s)} time limit is up: "
                         "saving a checkpoint…")
        self._update_buttons()

    # -- worker signals -------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, progress: Any) -> None:
        if self.sender() is not self._worker:
            return  # a late signal from a job already settled by shutdown()
        self._last_progress = progress
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

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        if self.sender() is not self._worker:
            return
        where = f" The final model is {result}." if result else ""
        self.logMessage.emit(f"Training finished.{where}")
        self._settle(Phase.FINISHED, "Training finished. Select a checkpoint and press "
                     "“Use this model” to upscale with it.")
        if self._checkpoints:
            self.checkpoint_list.setCurrentRow(self.checkpoint_list.count() - 1)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.sender() is not self._worker:
            return
        self._settle(Phase.FAILED, f"Training stopped: {message}")
        self._report_error(message)

    @Slot()
    def _on_cancelled(self) -> None:
        if self.sender() is not self._worker:
            return
        step = getattr(self._last_progress, "step", None)
        at = f" at step {step:,}" if isinstance(step, int) else ""
        if self.phase is Phase.STOPPING:
            self.logMessage.emit(f"Training stopped{at}; checkpoint saved.")
            self._settle(Phase.IDLE, f"Stopped{at}. Resume continues this run; Start begins "
                         "a new one in a new folder.")
        elif self._limit_hit:
            limit = format_time_limit(self._limit_s)
            self.logMessage.emit(f"Training paused{at} after the {limit} time limit; "
                                 "checkpoint saved.")
            self._settle(Phase.PAUSED, f"Paused{at} after the {limit} time limit; "
                         "Resume continues.")
        else:
            self.logMessage.emit(f"Training paused{at}; checkpoint saved.")
            self._settle(Phase.PAUSED, f"Paused{at}. Press Resume to continue.")

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.sender() is self._thread:
            self._cleanup_thread()
            self._update_buttons()
            ended = {Phase.FINISHED: "finished", Phase.PAUSED: "paused", Phase.IDLE: "stopped",
                     Phase.FAILED: "failed"}.get(self.phase, self.phase.value)
            self.jobEnded.emit(ended)

    def _settle(self, phase: Phase, status: str) -> None:
        self._limit_timer.stop()
        self.phase = phase
        self._refresh_checkpoints()
        self._flush_view()
        self._set_status(status)
        self._update_buttons()

    def _cleanup_thread(self) -> None:
        """Drop the finished job's thread and worker (only once the thread has ended)."""
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        self._limit_timer.stop()
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            _LIVE_THREADS.pop(thread, None)
            thread.deleteLater()
            self.runningChanged.emit(False)

    # -- view -----------------------------------------------------------------------------
    def _flush_view(self) -> None:
        """Push new metric points into the charts and the status line (coalesced)."""
        charts = self.charts
        dirty, self._dirty = self._dirty, set()
        if "l1" in dirty:
            l1 = self.metrics.points("l1")
            charts["l1"].set_points("L1", l1)
            charts["l1"].set_points("trend", smooth(l1))
        if "contrastive" in dirty:
            charts["contrastive"].set_points("contrastive", self.metrics.points("contrastive"))
        if "d_inner" in dirty:
            charts["distances"].set_points("d_inner", self.metrics.points("d_inner"))
        if "d_cross" in dirty:
            charts["distances"].set_points("d_cross", self.metrics.points("d_cross"))
        if "val_psnr" in dirty:
            charts["val_psnr"].set_points("PSNR", self.metrics.points("val_psnr"))
        if "bicubic_psnr" in dirty:
            charts["val_psnr"].set_points("bicubic", self.metrics.points("bicubic_psnr"))
        p = self._last_progress
        if p is not None:
            total = int(getattr(p, "total_steps", 0) or 0)
            step = int(getattr(p, "step", 0) or 0)
            self.progress_bar.setRange(0, max(1, total))
            self.progress_bar.setValue(min(step, max(1, total)))
            line = describe_progress(p)
            self.eta_label.setText(line)
            if self.phase is Phase.RUNNING:
                until = ""
                if self._limit_deadline is not None and self._limit_timer.isActive():
                    clock = time.strftime("%H:%M", time.localtime(self._limit_deadline))
                    until = f" Pauses at {clock} (time limit)."
                self.status_label.setText(f"Training…{until} Pause keeps your progress.")

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
        chart = self.charts["val_psnr"]
        if not self.state.val_dir:
            chart.set_empty_text("Choose a validation folder to see it")
            return
        step = int(getattr(self._last_progress, "step", 0) or 0)
        if not step and self._checkpoints:
            step = self._checkpoints[-1].step or 0
        chart.set_empty_text(first_validation_text(self._val_every(), step, self.state.steps))

    def _refresh_checkpoints(self) -> None:
        selected = self.selected_checkpoint()
        run_dir = self.state.run_dir
        self._checkpoints = list_checkpoints(run_dir) if run_dir else []
        self.checkpoint_list.clear()
        for entry in self._checkpoints:
            item = QListWidgetItem(entry.label())
            item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
            item.setToolTip(str(entry.path))
            self.checkpoint_list.addItem(item)
            if selected is not None and entry.path == selected:
                self.checkpoint_list.setCurrentItem(item)
        self._update_buttons()

    def checkpoints(self) -> list[CheckpointEntry]:
        return list(self._checkpoints)

    def selected_checkpoint(self) -> Path | None:
        """The checkpoint the user selected, or None. Only a selection counts: the list makes
        its first row "current" when it takes the focus, without the user choosing it."""
        items = self.checkpoint_list.selectedItems() if hasattr(self, "checkpoint_list") else []
        if not items:
            return None
        return Path(items[0].data(Qt.ItemDataRole.UserRole))

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
