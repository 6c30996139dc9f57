"""The Look of runs and batches: faithful (0, the shipped model), crisp (1, its perceptual
twin) or a blend between, as the Look slider sets it. It applies to the shipped model only (the
crisp model is a fine-tune of it; another network's weights would blend into nonsense), and
only when the crisp model is installed; otherwise the slider says why and runs stay faithful.
Compare's Faithful and Crisp sides (the look at 0 and at 1) are there on the same terms."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.views.compare import LOOK_SOURCES, CompareView
from cmdsr_app.views.look_view import LookPanel
from cmdsr_app.workers import JobRunner

NO_CRISP = "No crisp model is installed ({name}): the upscale stays faithful."
OTHER_MODEL = "The look blends the shipped model with its crisp twin: choose the shipped default model to use it."


def crisp_model_path() -> Path:
    import engine  # this name loads without PyTorch

    return engine.crisp_model_path()


class LookController(Controller):
    """``lookChanged(value)`` when the look runs will use changes."""

    lookChanged = Signal(float)  # noqa: N815 (Qt signal naming)

    def __init__(self, *, models: ModelController, heavy: JobRunner, panel: LookPanel,
                 window: QWidget, compare: CompareView | None = None) -> None:
        super().__init__(window)
        self.models, self.panel, self.compare = models, panel, compare
        self.value = 0.0  # faithful, the default until blind comparisons say otherwise
        models.look_for = self.look
        models.modelChanged.connect(lambda _info: self.refresh())
        models.modelReady.connect(lambda _path: self.refresh())
        heavy.busyChanged.connect(panel.set_locked)
        panel.lookEdited.connect(self.set_look)
        self.refresh()

    def problem(self) -> str | None:
        """Why the look cannot be used now, or None."""
        crisp = crisp_model_path()
        if not crisp.exists():
            return NO_CRISP.format(name=crisp.name)
        if self.models.settings.model_path:
            return OTHER_MODEL
        return None

    def look(self) -> float:
        """The look runs and batches use: the slider's, or 0 when it cannot apply."""
        return self.value if self.problem() is None else 0.0

    def set_look(self, value: float) -> None:
        before = self.look()
        self.value = min(max(float(value), 0.0), 1.0)
        if self.look() != before:
            self.lookChanged.emit(self.look())
            self.say(f"Look {self.look():.2f}: the next run and batch use it.")

    def refresh(self) -> None:
        problem = self.problem()
        self.panel.set_available(problem is None, problem or "")
        self.panel.set_look(self.value if problem is None else 0.0)
        if self.compare is not None:  # no look to compare: the sides are not offered
            for key in LOOK_SOURCES:
                self.compare.set_source_enabled(key, problem is None, problem or "", hide=True)
