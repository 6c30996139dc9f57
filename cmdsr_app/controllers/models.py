"""Which model upscales: the shipped default, a trained checkpoint or any file; each is
checked in the background before it is selected."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.jobs import ModelCache, ModelInfo, RunSettings, inspect_model
from cmdsr_app.panels import SettingsPanel
from cmdsr_app.settings import AppSettings
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

    def __init__(self, *, settings: AppSettings, settings_panel: SettingsPanel, light: JobRunner,
                 cache: ModelCache, window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.panel, self.light, self.cache = settings, settings_panel, light, cache
        self._window = window
        self.info: ModelInfo | None = None
        self.ready = False  # a model check has ended (the model loaded, or it cannot be used)

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

    def run_settings(self) -> RunSettings:
        baseline = shipped_baseline_path()
        return RunSettings(
            model_path=self.model_path(),
            baseline_path=baseline if baseline.exists() else None,
            device=self.panel.device,
            tile=self.panel.tile,
            threads=self.panel.threads,
            adapt=self.panel.adapt,
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
        """A checkpoint from the Training tab becomes the model for upscaling."""
        self.choose(path)
        self.say(f"Using the trained model {Path(path).name}")

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
            self.error.emit("Cannot use this model", message)
            self._checked()

        self.light.submit("model", lambda _p, _c: inspect_model(target, self.cache),
                          on_finished=accept, on_failed=reject)
