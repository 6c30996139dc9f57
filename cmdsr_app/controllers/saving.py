"""Saving the shown photo's result, or the two compared sides next to each other."""

from __future__ import annotations

import logging
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.controllers.photos import PhotoController, is_pasted
from cmdsr_app.controllers.upscale import UpscaleController
from cmdsr_app.jobs import nearest_upscale, output_dimensions, resize_to, side_by_side
from cmdsr_app.settings import AppSettings
from cmdsr_app.views.compare import SOURCES, CompareView
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner

log = logging.getLogger(__name__)
IMAGE_FILTER = "Images (*.png *.jpg *.webp *.tif)"


class SaveController(Controller):
    """``saved(path)`` once a file is written."""

    saved = Signal(str)

    def __init__(self, *, settings: AppSettings, photos: PhotoController, models: ModelController,
                 upscale: UpscaleController, settings_panel: SettingsPanel, compare: CompareView,
                 heavy: JobRunner, window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.photos, self.models, self.upscale = settings, photos, models, upscale
        self.panel, self.compare, self.heavy = settings_panel, compare, heavy
        self._window = window

    def folder(self) -> Path:
        """Where a save dialog opens: the last save folder, else the photo's own folder (a
        pasted photo's is the app's config folder: the Pictures folder instead)."""
        if self.settings.last_save_dir and Path(self.settings.last_save_dir).is_dir():
            return Path(self.settings.last_save_dir)
        shown = self.photos.image_path
        if shown is not None and not is_pasted(shown):
            return shown.parent
        pictures = Path.home() / "Pictures"
        return pictures if pictures.is_dir() else Path.home()

    def result_dialog(self) -> None:
        if not self.upscale.has_result:
            self.error.emit("Nothing to save", "Run an upscale first (Ctrl+R).")
            return
        problem = self.panel.size_box.problem
        if problem is not None:  # said before the file dialog, not after it
            self.error.emit("Cannot save at this size", problem)
            return
        from engine.io.imageio import format_suffix

        shown = self.photos.image_path
        stem = shown.stem if shown else "result"
        size = self.panel.output_size.label()
        start = self.folder() / f"{stem}_{size}{format_suffix(self.panel.output_format)}"
        path = self._ask_path("Save result", start)
        if path is not None:
            self.save_result(path)

    def _ask_path(self, title: str, start: Path) -> Path | None:
        """The file to save to. The dialog does not ask about replacing a file: the original
        photo is refused here in one step, and any other existing file is asked about once."""
        chosen, _ = QFileDialog.getSaveFileName(self._window, title, str(start), IMAGE_FILTER,
                                                options=QFileDialog.Option.DontConfirmOverwrite)
        if not chosen:
            return None
        path = Path(chosen)
        problem = self._original_problem(path)
        if problem is not None:
            self.error.emit(title, problem)
            return None
        if path.exists() and not self.confirm_replace(path):
            return None
        return path

    def confirm_replace(self, path: Path) -> bool:
        """Ask before replacing an existing file (tests replace this)."""
        answer = QMessageBox.question(
            self._window, "Replace the file?", f"{path.name} already exists in {path.parent}. "
            "Replace it?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def _original_problem(self, path: Path) -> str | None:
        shown = self.photos.image_path
        if shown is not None and path.resolve() == shown.resolve():
            return (f"{path} is the original photo; choose another name, so the original is "
                    "never replaced.")
        return None

    def save_result(self, path: str | Path, method: str = "cmdsr") -> None:
        """Write a result (format from the suffix, else the panel's; metadata kept)."""
        outcome = self.upscale.outcomes.get(method)
        if outcome is None:
            self.error.emit("Nothing to save", "Run an upscale first (Ctrl+R).")
            return
        image = self.photos.image
        size = self.panel.output_size
        result = outcome.image
        if image is not None and not size.is_model_scale(self.models.scale):
            try:
                width, height = output_dimensions(size, image.width, image.height,
                                                  self.models.scale)
            except ValueError as exc:
                self.error.emit("Cannot save at this size", str(exc))
                return
            result = resize_to(result, width, height)  # area-averaged from the model's scale
        self._write(result, Path(path), "Save result")

    def comparison_dialog(self) -> None:
        shown = self.photos.image_path
        stem = shown.stem if shown else "comparison"
        start = self.folder() / f"{stem}_compare.png"
        path = self._ask_path("Save comparison", start)
        if path is not None:
            self.save_comparison(path)

    def save_comparison(self, path: str | Path) -> None:
        """The two sources shown in the compare view, side by side at output size."""
        image = self.photos.image
        if image is None:
            self.error.emit("Nothing to save", "Open a photo and run an upscale first.")
            return
        arrays = []
        for key in (self.compare.left_source, self.compare.right_source):
            if key == "input":
                arrays.append(nearest_upscale(image.pixels, self.models.scale))
            elif key in self.upscale.outcomes:
                arrays.append(self.upscale.outcomes[key].image.pixels)
            else:
                self.error.emit("Nothing to compare yet",
                                f"{SOURCES[key]} has not been computed; run or pick it first.")
                return
        composite = replace(image, pixels=side_by_side(arrays[0], arrays[1]), alpha=None)
        self._write(composite, Path(path), "Save comparison")

    def _write(self, image: Any, path: Path, title: str) -> None:
        from engine.io.imageio import normalise_format, write_image

        problem = self._original_problem(path)
        if problem is not None:
            self.error.emit(title, problem)
            return

        fmt = path.suffix.lstrip(".") or self.panel.output_format
        try:
            fmt = normalise_format(fmt)
        except Exception:
            fmt = self.panel.output_format
            path = path.with_suffix(f".{fmt}")
        quality = self.panel.quality
        depth = self.panel.bit_depth or None
        if depth == 16 and fmt not in ("png", "tif"):
            depth = None

        def work(_progress: Any, _cancel: threading.Event) -> Path:
            # _ask_path already asked before replacing a file.
            return write_image(image, path, fmt=fmt, quality=quality, bit_depth=depth, overwrite=True)

        def done(written: Path) -> None:
            self.settings.last_save_dir = str(written.parent)
            self.say(f"Saved {written}", 8000)
            log.info("saved %s", written)
            self.saved.emit(str(written))

        self.heavy.submit("save", work, on_finished=done, on_failed=lambda m: self.error.emit(title, m))
