"""The curves of the run the Training tab shows: live reports and the run's metrics log read
back, drawn in its :class:`TrainingCharts` at a pace the screen can follow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from cmdsr_app.training.charts import TrainingCharts
from cmdsr_app.training.metrics import RunMetrics, read_bicubic_psnr

# The charts redraw at most this often; the engine may report hundreds of steps a second.
REDRAW_INTERVAL_MS = 150


class TrainingCurves(QObject):
    """The metrics of one run (``metrics``) and the charts that draw them (``view``).

    ``run_dir()`` names the run folder (the tab's setting), where the bicubic baseline is
    read once the first validation is reported. ``redrawn`` follows every redraw, so the
    tab updates its progress lines at the same pace.
    """

    redrawn = Signal()

    def __init__(self, view: TrainingCharts, run_dir: Callable[[], str],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.metrics = RunMetrics()
        self._run_dir = run_dir
        self._dirty: set[str] = set()
        self._bicubic: float | None = None
        self._redraw = QTimer(self)
        self._redraw.setSingleShot(True)
        self._redraw.setInterval(REDRAW_INTERVAL_MS)
        self._redraw.timeout.connect(self.flush)

    def clear(self) -> None:
        """No curves: a new run, or a folder that holds none."""
        self.metrics.clear()
        self._bicubic = None
        self._dirty.update(self.metrics.series)
        self.flush()

    def load(self, run_dir: str) -> int:
        """Show the run's curves as they were last drawn (kept in its folder by
        :meth:`save`), else from its metrics log; returns the log records read."""
        self._bicubic = None
        count = self.metrics.load_run(run_dir)
        self._dirty.update(self.metrics.series)
        self.flush()
        return count

    def has_history(self) -> bool:
        return any(len(s) for s in self.metrics.series.values())

    def save(self) -> None:
        """Keep the curves as drawn in the run folder: the engine's log holds only a mean
        every ``log_every`` steps, and a restart must show the run as it was."""
        self.metrics.save_curves(self._run_dir())

    def add(self, progress: Any) -> None:
        """Record one live report; the charts follow within ``REDRAW_INTERVAL_MS``. The
        curves are kept at each checkpoint, so they survive the app being killed as far
        as the run does."""
        self._dirty.update(self.metrics.add(progress))
        if getattr(progress, "val_psnr", None) is not None:
            if self._bicubic is None:
                self._bicubic = read_bicubic_psnr(self._run_dir())
            if self._bicubic is not None:
                self.metrics.series["bicubic_psnr"].append(progress.step, self._bicubic)
                self._dirty.add("bicubic_psnr")
        if getattr(progress, "checkpoint", None) is not None:
            self.save()
        if not self._redraw.isActive():
            self._redraw.start()

    def flush(self) -> None:
        """Push the new points into the charts now."""
        dirty, self._dirty = self._dirty, set()
        self.view.show_metrics(self.metrics, dirty)
        self.redrawn.emit()
