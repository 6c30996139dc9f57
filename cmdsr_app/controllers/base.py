"""What every controller of the main window shares: how it reports to the user."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal


class Controller(QObject):
    """A concern of the main window. ``error(title, message)`` takes the window's one error
    path (dialog and log); ``status(text, ms)`` is a passing status-bar line."""

    error = Signal(str, str)
    status = Signal(str, int)

    def say(self, text: str, ms: int = 5000) -> None:
        self.status.emit(text, ms)
