"""Which model upscales: the shipped default, a trained checkpoint or any file; each is
checked in the background before it is selected."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.jobs import ModelCache, ModelInfo, RunSettings, inspect_model
from cmdsr_app.settings import AppSettings
from cmdsr_app.training.checkpoint_check import CheckpointVerdict, judge_checkpoint
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner


def shipped_model_path() -> Path:
    import engine  # its names load on first use: this one needs no PyTorch

    return engine.default_model_path()


def shipped_baseline_path() -> Path:
    import engine

    return engine.default_baseline_path()


class ModelController(Controller):
    """The chosen model and what it is. ``modelReady(path)`` after a model was checked and
    selected ("" = the shipped default); ``modelChanged(info)`` with its ModelInfo;
    ``checked()`` after every check, so a Run waiting for the model can go ahead."""

    modelReady = Signal(str)  # noqa: N815 (Qt signal naming)
    modelChanged = Signal(object)  # noqa: N815
    checked = Signal()  # a model check ended, whatever its outcome
    modelNotUsed = Signal(str)  # noqa: N815 - a model asked for was refused or kept out

    def __init__(self, *, settings: AppSettings, settings_panel: SettingsPanel, light: JobRunner,
                 cache: ModelCache, window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.panel, self.light, self.cache = settings, settings_panel, light, cache
        self._window = window
        self.info: ModelInfo | None = None
        self.confirm_box: QMessageBox | None = None  # "use this early checkpoint anyway?"
        self.ready = False  # a model check has ended (the model loaded, or it cannot be used)
        # the Look control answers which look runs use (controllers.look); 0 = faithful
        self.look_for: Callable[[], float] = lambda: 0.0

    @property
    def scale(self) -> int:
        return self.info.scale if self.info is not None else 4

    @property
    def support_size(self) -> int:
        return self.info.support_size if self.info is not None else 20

    def model_path(self) -> Path | None:
        if self.settings.model_path:
            return Path(self.settings.model_path)
        default = shipped_model_path()
        return default if default.exists() else None

    def baseline_path(self) -> Path | None:
        """The conditioning-off baseline that belongs to the chosen model: the shipped one
        for the shipped model; other models have none (another network's baseline would
        compare two different trainings, not conditioning on and off)."""
        if self.settings.model_path:
            return None
        baseline = shipped_baseline_path()
        return baseline if baseline.exists() else None

    def baseline_problem(self) -> str | None:
        """Why Compare has no Baseline for the chosen model, or None."""
        if self.baseline_path() is not None:
            return None
        if self.settings.model_path:
            return (f"{Path(self.settings.model_path).name} has no conditioning-off baseline "
                    "(only the shipped model comes with one)")
        return f"no baseline model is installed ({shipped_baseline_path().name} is missing)"

    def run_settings(self) -> RunSettings:
        return RunSettings(
            model_path=self.model_path(),
            baseline_path=self.baseline_path(),
            device=self.panel.device,
            tile=self.panel.tile,
            threads=self.panel.threads,
            adapt=self.panel.adapt,
            look=self.look_for(),
        )

    def _checked(self) -> None:
        self.ready = True
        self.checked.emit()

    def refresh_choices(self) -> None:
        label = "Shipped default (x4)" if shipped_model_path().exists() else "Shipped default (missing)"
        self.panel.set_model_choices(label, self.settings.recent_models, self.settings.model_path)

    def browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self._window, "Choose a model", self.settings.last_dir,
                                              "Checkpoints (*.pt *.pth *.ckpt);;All files (*)")
        if path:
            self.choose(path)

    def use_trained_model(self, path: str) -> None:
        """A checkpoint from the Training tab becomes the model for upscaling, once checked:
        an early one, or one scoring below the shipped model on its run's validation photos,
        is said to be so, and used only if the user confirms."""
        self.say(f"Checking {Path(path).name} against the shipped model…", 0)
        shipped = shipped_model_path()

        def judged(verdict: CheckpointVerdict) -> None:
            problems = verdict.warnings()
            if not problems and not verdict.knobs_lost:
                self._use(path, verdict.knobs)
                return
            self._confirm(path, problems, verdict.knobs)

        def failed(message: str) -> None:
            self.modelNotUsed.emit(path)
            self.error.emit("Cannot use this model", message)

        self.light.submit("judge", lambda _p, _c: judge_checkpoint(path, shipped, self.cache),
                          on_finished=judged, on_failed=failed)

    def _use(self, path: str, knobs: str = "") -> None:
        self.choose(path)
        self.say(f"Using the trained model {Path(path).name}. {knobs}".strip())

    def _confirm(self, path: str, problems: list[str], knobs: str = "") -> None:
        # knobs: what became of the damage knobs of the model the run started from
        lead = (f"{Path(path).name} will likely upscale worse than the model you use now."
                if problems else f"{Path(path).name} has no damage knobs.")
        box = QMessageBox(QMessageBox.Icon.Warning, "Use this checkpoint?",
                          lead + "\n\n" + "\n\n".join([*problems, *([knobs] if knobs else [])]),
                          QMessageBox.StandardButton.NoButton, self._window)
        use = box.addButton("Use it anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep the current model", QMessageBox.ButtonRole.RejectRole)
        box.setWindowModality(Qt.WindowModality.WindowModal)

        def answered(_result: int) -> None:
            self.confirm_box = None
            if box.clickedButton() is use:
                self._use(path, knobs)
            else:
                self.say(f"Kept the current model; {Path(path).name} was not used.")
                self.modelNotUsed.emit(path)

        box.finished.connect(answered)
        self.confirm_box = box
        box.open()

    def choose(self, path: str, *, quiet: bool = False) -> None:
        """Check a model in the background and select it if it loads; on failure say why and
        keep the previous one. ``path`` "" means the shipped default."""
        previous = self.settings.model_path
        target = Path(path) if path else shipped_model_path()
        if not path and not target.exists():
            self.settings.model_path = ""
            self.info = None
            self.panel.show_model("")
            self.panel.set_model_info(
                f"The shipped model is missing ({target.name}). Choose a checkpoint.", error=True
            )
            self.panel.set_model_scale(None)
            self._checked()
            return
        self.panel.set_model_info(f"Checking {target.name}…")

        def accept(info: ModelInfo) -> None:
            self.settings.model_path = path
            if path:
                self.settings.add_recent_model(path)
            self.info = info
            self.settings.scale = info.scale
            self.panel.show_model(path)
            self.panel.set_model_info(info.describe())
            self.panel.set_model_scale(info.scale)
            self.panel.set_local_adapt_useful(info.has_readout)
            self.modelChanged.emit(info)
            self.modelReady.emit(path)
            self._checked()

        def reject(message: str) -> None:
            if quiet and path == previous and path:
                # The remembered model is gone or broken: fall back to the default quietly.
                self.settings.model_path = ""
                self.panel.show_model("")
                self.panel.set_model_info(f"{message} Using the shipped default.", error=True)
                if shipped_model_path().exists():
                    self.choose("", quiet=True)
                else:
                    self._checked()
                return
            self.panel.show_model(previous)
            still = Path(previous).name if previous else "the shipped default"
            self.panel.set_model_info(f"Could not load {target.name}; still using {still}.",
                                      error=True)
            self.modelNotUsed.emit(path)
            self.error.emit("Cannot use this model", message)
            self._checked()

        self.light.submit("model", lambda _p, _c: inspect_model(target, self.cache),
                          on_finished=accept, on_failed=reject)
