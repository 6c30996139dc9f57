"""The Training tab's job control: start or resume a run on a worker thread, pause, stop, the
"Stop after" time limit, and shutting down on close. Qt-aware but widget-free: the tab shows
what this reports."""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal, Slot

from cmdsr_app.training.state import Phase, TrainRequest, format_time_limit
from cmdsr_app.training.worker import LIVE_THREADS, TrainFn, TrainingWorker

log = logging.getLogger(__name__)


class TrainingJob(QObject):
    """One training run at a time and its phase.

    Signals: ``progress(report)`` (the current job's only), ``status(text)`` while a phase
    changes (pausing, stopping), ``settled(text)`` when the job reached its resting phase,
    ``finished(result)`` after a completed run, ``failed(message)``, ``message(text)`` for
    the log, ``threadEnded(outcome)`` ("finished", "paused", "stopped" or "failed") and
    ``runningChanged(bool)``.
    """

    progress = Signal(object)
    status = Signal(str)
    settled = Signal(str)
    finished = Signal(object)
    failed = Signal(str)
    message = Signal(str)
    threadEnded = Signal(str)  # noqa: N815 (Qt signal naming)
    runningChanged = Signal(bool)  # noqa: N815

    def __init__(self, train_fn: TrainFn | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._train_fn = train_fn
        self.phase = Phase.IDLE
        self.last_progress: Any = None
        self._thread: QThread | None = None
        self._worker: TrainingWorker | None = None
        self._limit_s = 0.0  # the running job's limit (0: none)
        self._limit_deadline: float | None = None  # wall-clock time it pauses, for the status
        self._limit_hit = False
        self.limit_timer = QTimer(self)
        self.limit_timer.setSingleShot(True)
        self.limit_timer.timeout.connect(self._on_time_limit)

    @property
    def is_running(self) -> bool:
        """True while a training thread is alive (including while it writes its checkpoint)."""
        return self._thread is not None

    def pause_clock(self) -> str:
        """" Pauses at 21:30 (time limit)." while a time limit runs, else ""."""
        if self._limit_deadline is None or not self.limit_timer.isActive():
            return ""
        return f" Pauses at {time.strftime('%H:%M', time.localtime(self._limit_deadline))} (time limit)."

    def launch(self, request: TrainRequest, limit_s: float) -> None:
        worker = TrainingWorker(request, self._train_fn)
        thread = QThread()
        thread.setObjectName("cmdsr-training")
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.message.connect(self.message)
        thread.finished.connect(self._on_thread_finished)
        self._worker, self._thread = worker, thread
        self.phase = Phase.RUNNING
        verb = "Resuming" if request.resume else "Starting"
        self.status.emit(f"{verb} training (loading the photos)…")
        self.message.emit(
            f"{verb} training: {request.preset} preset, {request.steps:,} steps, "
            f"{request.degradation} degradations, run folder {request.run_dir}"
        )
        self.runningChanged.emit(True)
        LIVE_THREADS[thread] = worker
        thread.start()
        self._start_time_limit(limit_s)

    def pause(self) -> None:
        """Write a checkpoint and pause; Resume continues where it left off."""
        if self._worker is not None and self.phase is Phase.RUNNING:
            self.phase = Phase.PAUSING
            self._worker.cancel()
            self.status.emit("Pausing: saving a checkpoint…")

    def stop(self) -> None:
        """Write a checkpoint and end the run (it can still be resumed later)."""
        if self._worker is not None and self.phase in (Phase.RUNNING, Phase.PAUSING):
            self.phase = Phase.STOPPING
            self._worker.cancel()
            self.status.emit("Stopping: saving a checkpoint…")
        elif self.phase is Phase.PAUSED:
            self.phase = Phase.IDLE
            self.status.emit("Run ended. Its checkpoints are listed below.")

    def shutdown(self, timeout_ms: int = 10_000) -> bool:
        """Cancel a running job and wait for its thread to end (the engine saves a checkpoint,
        so the run can be resumed next time). Returns True when no thread is left running."""
        thread, worker = self._thread, self._worker
        if thread is None:
            return True
        if worker is not None:
            worker.cancel()
        self.phase = Phase.PAUSING
        self.limit_timer.stop()
        stopped = thread.wait(max(0, int(timeout_ms)))
        if stopped:
            # The worker's last signals are still queued; settle the state now, since the
            # window may close before the event loop delivers them.
            self._settle(Phase.PAUSED, "Paused when the app closed; press Resume to continue.")
            self._cleanup_thread()
        else:
            log.warning("training did not stop within %d ms", timeout_ms)
        return stopped

    # -- time limit -----------------------------------------------------------------------
    def _start_time_limit(self, limit_s: float) -> None:
        # The clock starts with the job (photo loading included), as the CLI's --time-limit.
        self._limit_hit = False
        self._limit_s = limit_s
        self.limit_timer.stop()
        if self._limit_s <= 0:
            self._limit_deadline = None
            return
        self._limit_deadline = time.time() + self._limit_s
        self.limit_timer.start(max(1, int(round(self._limit_s * 1000))))
        self.message.emit(f"Time limit: the run pauses after {format_time_limit(self._limit_s)}.")

    @Slot()
    def _on_time_limit(self) -> None:
        """The "Stop after" time is up: pause exactly as the Pause button does."""
        if self._worker is None or self.phase is not Phase.RUNNING:
            return  # the user paused or stopped first; theirs is the reason shown
        self._limit_hit = True
        self.phase = Phase.PAUSING
        self._worker.cancel()
        self.status.emit(f"The {format_time_limit(self._limit_s)} time limit is up: "
                         "saving a checkpoint…")

    # -- worker signals -------------------------------------------------------------------
    @Slot(object)
    def _on_progress(self, progress: Any) -> None:
        if self.sender() is not self._worker:
            return  # a late signal from a job already settled by shutdown()
        self.last_progress = progress
        self.progress.emit(progress)

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        if self.sender() is not self._worker:
            return
        where = f" The final model is {result}." if result else ""
        self.message.emit(f"Training finished.{where}")
        self._settle(Phase.FINISHED, "Training finished. Select a checkpoint and press "
                     "“Use this model” to upscale with it.")
        self.finished.emit(result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self.sender() is not self._worker:
            return
        self._settle(Phase.FAILED, f"Training stopped: {message}")
        self.failed.emit(message)

    @Slot()
    def _on_cancelled(self) -> None:
        if self.sender() is not self._worker:
            return
        step = getattr(self.last_progress, "step", None)
        at = f" at step {step:,}" if isinstance(step, int) else ""
        if self.phase is Phase.STOPPING:
            self.message.emit(f"Training stopped{at}; checkpoint saved.")
            self._settle(Phase.IDLE, f"Stopped{at}. Resume continues this run; Start begins "
                         "a new one in a new folder.")
        elif self._limit_hit:
            limit = format_time_limit(self._limit_s)
            self.message.emit(f"Training paused{at} after the {limit} time limit; "
                              "checkpoint saved.")
            self._settle(Phase.PAUSED, f"Paused{at} after the {limit} time limit; "
                         "Resume continues.")
        else:
            self.message.emit(f"Training paused{at}; checkpoint saved.")
            self._settle(Phase.PAUSED, f"Paused{at}. Press Resume to continue.")

    @Slot()
    def _on_thread_finished(self) -> None:
        if self.sender() is self._thread:
            self._cleanup_thread()
            ended = {Phase.FINISHED: "finished", Phase.PAUSED: "paused", Phase.IDLE: "stopped",
                     Phase.FAILED: "failed"}.get(self.phase, self.phase.value)
            self.threadEnded.emit(ended)

    def _settle(self, phase: Phase, status: str) -> None:
        self.limit_timer.stop()
        self.phase = phase
        self.settled.emit(status)

    def _cleanup_thread(self) -> None:
        """Drop the finished job's thread and worker (only once the thread has ended)."""
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        self.limit_timer.stop()
        if worker is not None:
            worker.deleteLater()
        if thread is not None:
            LIVE_THREADS.pop(thread, None)
            thread.deleteLater()
            self.runningChanged.emit(False)
