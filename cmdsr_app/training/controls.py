"""The Training tab's run controls: Start, Pause, Resume and Stop, the progress bar, the ETA
line and the status line."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

from cmdsr_app.eta import EtaEstimator
from cmdsr_app.training.state import Phase, describe_progress, is_condition_report


class RunControls(QWidget):
    """The buttons that drive a run and the lines that say how it goes; which buttons are
    enabled follows the job's phase (:meth:`update_buttons`)."""

    def __init__(self, parent: QWidget | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        # The ETA of the run under way, smoothed here: the engine's rate starts from the
        # first, slow steps (loading, first kernels) and would promise several times the
        # real time left.
        self._clock = clock
        self.eta = EtaEstimator(clock=clock)
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
        self.progress_bar.setFormat("No run yet")  # not "0 / 1 steps" before any run
        self.eta_label = QLabel("")
        self._busy = False
        self.status_label = QLabel("Choose a folder of photos, then press Start.")
        self.status_label.setWordWrap(True)
        # Room for two lines, so a wrapped message is never cut off by the list below.
        self.status_label.setMinimumHeight(2 * self.status_label.fontMetrics().lineSpacing() + 4)
        self.status_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.eta_label)
        layout.addWidget(self.status_label)

    def update_buttons(self, *, busy: bool, phase: Phase, has_checkpoint: bool) -> None:
        self._busy = busy
        if not busy:  # a stopped or paused run has no time left to show
            self.eta_label.setText(self.eta_label.text().split(" · ETA ")[0])
        self.start_button.setEnabled(not busy)
        self.pause_button.setEnabled(busy and phase is Phase.RUNNING)
        self.resume_button.setEnabled(not busy and has_checkpoint)
        # Nothing to stop while idle, paused included: the run is already saved.
        self.stop_button.setEnabled(busy and phase in (Phase.RUNNING, Phase.PAUSING))
        if phase is Phase.PAUSED:
            self.resume_button.setDefault(True)

    def show_step(self, step: int, total: int) -> None:
        """The progress bar at ``step`` of ``total`` (a run shown while idle)."""
        total = max(1, total)
        self.progress_bar.setFormat("%v / %m steps")
        self.progress_bar.setRange(0, total)
        self.progress_bar.setValue(min(step, total))

    def show_starting(self, step: int, total: int, *, resume: bool) -> None:
        """The bar between Start (or Resume) and the first step: the photos are loading."""
        self.show_step(step, total)
        self.eta.restart(max(1, total))
        verb = "Resuming" if resume else "Starting"
        self.progress_bar.setFormat(f"{verb}: loading the photos… (%v / %m steps)")
        self.eta_label.setText("")

    def show_report(self, progress: Any) -> None:
        """The progress bar and the ETA line from a ``TrainProgress``."""
        step = int(getattr(progress, "step", 0) or 0)
        total = int(getattr(progress, "total_steps", 0) or 0)
        self.show_step(step, total)
        eta_s = None
        if self._busy and not is_condition_report(progress) and total > 0:
            if self.eta.total != total:  # a run extended (Steps raised) or one not seen start
                self.eta.restart(total)
            eta_s = self.eta.update(step, self._clock())
        self.eta_label.setText(describe_progress(progress, running=self._busy, eta_s=eta_s,
                                                 steps_per_s=self.eta.rate if self._busy else None))

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)
