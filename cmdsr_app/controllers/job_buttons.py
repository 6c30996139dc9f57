"""What starts and stops a job, enabled as the queue and the running job allow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from PySide6.QtCore import QObject

from cmdsr_app.state import ImageQueue
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner


class _Enablable(Protocol):
    def setEnabled(self, enabled: bool) -> None: ...  # noqa: N802 (Qt's name)


class JobButtons(QObject):
    """Run and batch (``start``: buttons and actions) need a photo in the queue and no job
    running, so what cannot run is disabled rather than answered with an error; Cancel
    (``cancel``) needs a running job; the settings are locked while one runs."""

    def __init__(self, *, queue: ImageQueue, heavy: JobRunner, settings_panel: SettingsPanel,
                 start: Sequence[_Enablable], cancel: Sequence[_Enablable],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue, self._heavy, self._panel = queue, heavy, settings_panel
        self._start, self._cancel = tuple(start), tuple(cancel)
        queue.added.connect(self.update)
        queue.removed.connect(self.update)
        heavy.busyChanged.connect(self._on_busy)
        for control in self._cancel:
            control.setEnabled(heavy.busy)
        self.update()

    def update(self, *_: Any) -> None:
        able = len(self._queue) > 0 and not self._heavy.busy
        for control in self._start:
            control.setEnabled(able)

    def _on_busy(self, busy: bool) -> None:
        self._panel.set_running(busy)  # enables its Run button: the queue decides after it
        for control in self._cancel:
            control.setEnabled(busy)
        self.update()
        self._panel.show_progress(busy)
