"""The checkpoints of the run the Training tab shows: listed in its :class:`CheckpointPanel`,
handed to the model selector with Use this model, their folder opened with Open folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from cmdsr_app.training.form import CheckpointPanel
from cmdsr_app.training.state import CheckpointEntry, list_checkpoints


class RunCheckpoints(QObject):
    """The checkpoint files of the run folder ``run_dir()`` names (the tab's setting) and
    what the user does with them.

    Signals: ``modelChosen(path)`` for the model selector, ``message(text)`` for the log,
    ``status(text)`` for the tab's status line, ``problem(title, message)`` for the one error
    path (none of these is a training failure, so each says what went wrong in its title),
    ``changed()`` after the list was read again.
    """

    modelChosen = Signal(str)  # noqa: N815 (Qt signal naming)
    message = Signal(str)
    status = Signal(str)
    problem = Signal(str, str)
    changed = Signal()

    def __init__(self, panel: CheckpointPanel, run_dir: Callable[[], str],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.run_dir = run_dir
        self.entries: list[CheckpointEntry] = []
        # The checkpoint handed to the model selector and not yet used or refused (with how
        # the status line names it), and the one upscaling uses now: the status line says a
        # checkpoint is used only once it is.
        self.pending: tuple[Path, str] | None = None
        self.in_use: Path | None = None

    def refresh(self) -> None:
        """List the run folder's checkpoints again (none while no folder is chosen)."""
        run_dir = self.run_dir()
        self.entries = list_checkpoints(run_dir) if run_dir else []
        self.panel.show_entries(self.entries)
        self.changed.emit()

    def latest_step(self) -> int:
        """The newest checkpoint's step (0 when there is none or its name gives none)."""
        return (self.entries[-1].step or 0) if self.entries else 0

    def select_latest(self) -> None:
        if self.entries:
            self.panel.checkpoint_list.setCurrentRow(self.panel.checkpoint_list.count() - 1)

    def use_selected(self) -> None:
        """Hand the selected checkpoint, else the latest, to the model selector."""
        path = self.panel.selected()
        which = "the selected checkpoint"
        if path is None:
            if not self.entries:
                return
            path, which = self.entries[-1].path, "the latest checkpoint"
        if not path.is_file():
            self.problem.emit("Cannot use this checkpoint",
                              f"{path} no longer exists; press Refresh to list the run again.")
            self.refresh()
            return
        self.message.emit(f"Checking {which}, {path.name} ({path}), before upscaling with it")
        self.pending = (path, which)
        self.status.emit(f"Checking {path.name} before upscaling with it…")
        self.modelChosen.emit(str(path))

    def model_in_use(self, path: str) -> None:
        """The model selector now uses ``path`` ("" = the shipped model)."""
        used = Path(path) if path else None
        if self.pending is not None and used == self.pending[0]:
            which = self.pending[1]
            self.pending, self.in_use = None, used
            self.status.emit(f"Upscaling now uses {which}, {used.name}.")
        elif self.in_use is not None and used != self.in_use:
            self.in_use = None
            what = used.name if used is not None else "the shipped model"
            self.status.emit(f"Upscaling uses {what} now, not this run's checkpoint.")

    def model_not_used(self, path: str) -> None:
        """The checkpoint ``path`` handed over was refused (the user kept the current model,
        or it could not be loaded)."""
        if self.pending is not None and Path(path) == self.pending[0]:
            self.pending = None
            self.status.emit(f"Kept the current model; {Path(path).name} was not used.")

    def open_folder(self) -> None:
        folder = Path(self.run_dir()) if self.run_dir() else None
        if folder is None or not folder.is_dir():
            self.problem.emit("Cannot open the run folder",
                              "The run folder does not exist yet: it is made when a run starts.")
            return
        from PySide6.QtCore import QUrl
        from PySide6.QtGui import QDesktopServices, QGuiApplication

        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            # No file manager (a bare desktop, a server): say where it is instead, and put
            # the path where the user can paste it.
            QGuiApplication.clipboard().setText(str(folder))
            self.status.emit(f"The run folder is {folder} (copied to the clipboard).")
            self.problem.emit("Cannot open the run folder",
                              f"No file manager could be opened. The run folder is {folder} "
                              "(its path is copied to the clipboard).")
