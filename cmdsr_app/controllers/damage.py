"""The damage the model reads in the shown photo: its estimate for the whole photo and for
each drawn region, refreshed (debounced) when the photo, its regions, the model or the support
choice change, and the per-tile damage map on the input canvas. Both run in their own worker
threads, so reading never waits for a photo to load or an upscale to end, and a newer request
cancels an older one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QWidget

import engine  # its names load on first use (in the worker threads)
from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.controllers.photos import PhotoController
from cmdsr_app.damage_readout import (
    DamageReading,
    DamageTile,
    no_readout_text,
    read_damage,
    read_damage_map,
)
from cmdsr_app.jobs import ModelCache
from cmdsr_app.state import RegionList
from cmdsr_app.views.canvas import ImageCanvas
from cmdsr_app.views.damage_view import DamagePanel
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner

DEBOUNCE_MS = 300  # a region being dragged is read once it rests
MAP_TIP = ("Colour each 64×64 tile of the photo by the damage the model reads there (red: "
           "blur, blue: noise; the numbers show when zoomed in): what Adapt: per region "
           "adapts to")


class DamageController(Controller):
    """``readingShown(DamageReading)`` once a reading is in the panel; ``mapShown(tiles)``
    when the overlay changes (0: hidden). ``overlay_action`` toggles the overlay."""

    readingShown = Signal(object)  # noqa: N815 (Qt signal naming)
    mapShown = Signal(int)  # noqa: N815

    def __init__(self, *, photos: PhotoController, models: ModelController, regions: RegionList,
                 settings_panel: SettingsPanel, damage_panel: DamagePanel, canvas: ImageCanvas,
                 cache: ModelCache, window: QWidget) -> None:
        super().__init__(window)
        self.photos, self.models, self.regions = photos, models, regions
        self.settings_panel, self.panel, self.canvas, self.cache = (
            settings_panel, damage_panel, canvas, cache)
        self.estimates = JobRunner("damage", self)
        self.maps = JobRunner("damage map", self)
        self.reading: DamageReading | None = None
        self.no_readout = ""  # why the chosen model reads no damage ("" while it may)
        self._reading_key: tuple[Any, ...] | None = None  # what the coming reading is of
        self._shown_key: tuple[Any, ...] | None = None  # what ``reading`` is of
        self._map_key: tuple[Any, ...] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self.refresh)
        self.overlay_action = QAction("Damage &map", window)
        self.overlay_action.setCheckable(True)
        self.overlay_action.setShortcut(QKeySequence("Ctrl+D"))
        self.overlay_action.setToolTip(MAP_TIP)
        self.overlay_action.setStatusTip(MAP_TIP)
        self.overlay_action.toggled.connect(self._on_overlay_toggled)
        damage_panel.set_overlay_action(self.overlay_action)
        photos.loaded.connect(lambda _path: self.schedule())
        photos.cleared.connect(self.clear)
        photos.queue.status_changed.connect(self._on_entry_status)
        regions.changed.connect(self.schedule)
        models.modelChanged.connect(self._on_model_changed)
        settings_panel.settingsChanged.connect(self.schedule)

    @property
    def runners(self) -> tuple[JobRunner, JobRunner]:
        return self.estimates, self.maps

    def schedule(self) -> None:
        """Read again once the changes have rested for ``DEBOUNCE_MS``."""
        self._timer.start()

    def clear(self) -> None:
        """The shown photo goes: its numbers and map go with it."""
        self._timer.stop()
        for runner in self.runners:
            runner.cancel()
        self._reading_key = self._map_key = self._shown_key = None
        self.reading = None
        self.canvas.set_damage_tiles([])
        entry = self.photos.queue.current_entry
        if entry is not None and entry.load_error:
            self._show_unopened(entry.name)
        elif entry is not None:
            self.panel.show_message("Loading the photo…")
        else:
            self.panel.show_message("Open a photo to see how blurred and noisy the model finds it.")

    def _show_unopened(self, name: str) -> None:
        self.panel.show_message(f"{name} could not be opened, so there is nothing to read.")

    def _on_entry_status(self, index: int) -> None:
        """A photo that failed to open never keeps a "Loading" line."""
        entry = self.photos.queue.current_entry
        if entry is not None and index == self.photos.queue.current and entry.load_error:
            self._show_unopened(entry.name)

    def _on_model_changed(self, _info: object) -> None:
        self.no_readout = ""  # until this model is known to have no readout
        self.overlay_action.setToolTip(MAP_TIP)
        self._reading_key = self._map_key = self._shown_key = None
        self.reading = None
        self.canvas.set_damage_tiles([])  # the previous model's
        self.schedule()

    def refresh(self) -> None:
        """Read the shown photo (and its map, when shown) unless the reading is current."""
        image, path = self.photos.image, self.photos.image_path
        if image is None or path is None:
            return
        model_path = self.models.model_path()
        if self.models.info is None or model_path is None:
            self.panel.show_message("The damage is read once the model is ready.")
            return
        mode, seed = self.settings_panel.support_mode, self.settings_panel.seed
        boxes = [r.as_tuple() for r in self.regions]
        problems = self.regions.problems
        support = mode if mode in ("auto", "random") else "auto"
        key = (path, model_path, support, seed, tuple(boxes), tuple(problems))
        if key != self._reading_key:
            # the same photo, model and patches as the shown reading: reuse its numbers
            shown = self._shown_key
            known = self.reading if shown is not None and shown[:4] == key[:4] else None
            self._read(key, image.pixels, boxes, problems, model_path, support, seed, known)
        if self.overlay_action.isChecked():
            # cells inside a region read its patches only when the run uses the regions
            used = [b for b, p in zip(boxes, problems, strict=True) if p is None] if mode == "regions" else []
            self._read_map((path, model_path, seed, tuple(used)), image.pixels, used, model_path, seed)

    def _read(self, key: tuple[Any, ...], pixels: Any, boxes: list[tuple[int, int, int, int]],
              problems: list[str | None], model_path: Path, support: str, seed: int,
              known: DamageReading | None) -> None:
        self._reading_key = key
        self.panel.show_message("Reading the damage…", keep_rows=True)
        cache, scale = self.cache, self.models.scale

        def work(_progress: Any, cancel: threading.Event) -> DamageReading:
            return read_damage(pixels, boxes, model_path, cache, support=support, seed=seed,
                               problems=problems, known=known, cancel=cancel)

        def done(reading: DamageReading) -> None:
            if key != self._reading_key:
                return  # something changed meanwhile: a newer reading is coming
            self.reading, self._shown_key = reading, key
            self.panel.show_reading(reading, scale)
            if reading.no_readout:
                self._no_readout(reading.no_readout)
            self.readingShown.emit(reading)

        def failed(message: str) -> None:
            if key == self._reading_key:
                self._reading_key = None  # the next change tries again
                self.panel.show_message(f"Cannot read the damage: {message}", error=True)
                self.say(f"Damage estimate failed: {message}", 8000)

        self.estimates.cancel()
        self.estimates.submit("damage", work, on_finished=done, on_failed=failed)

    def _read_map(self, key: tuple[Any, ...], pixels: Any, regions: list[tuple[int, int, int, int]],
                  model_path: Path, seed: int) -> None:
        if key == self._map_key:
            return
        self._map_key = key
        cache = self.cache

        def work(progress: Any, cancel: threading.Event) -> list[DamageTile] | str:
            try:
                return read_damage_map(pixels, model_path, cache, regions=regions, seed=seed,
                                       progress=progress, cancel=cancel)
            except engine.NoDamageReadoutError as exc:
                return str(exc)

        def done(result: list[DamageTile] | str) -> None:
            if key != self._map_key or not self.overlay_action.isChecked():
                return
            if isinstance(result, str):
                self._no_readout(result)
                return
            self.canvas.set_damage_tiles(result)
            self.say(f"Damage map: {len(result)} tiles of the photo", 5000)
            self.mapShown.emit(len(result))

        def failed(message: str) -> None:
            if key == self._map_key:
                self._map_key = None
                self.say(f"Damage map failed: {message}", 8000)

        self.maps.cancel()
        self.say("Reading the damage map…", 4000)
        self.maps.submit("damage map", work, on_finished=done, on_failed=failed,
                         on_progress=lambda d, t: self.say(f"Reading the damage map… {d}/{t}", 4000))

    def _no_readout(self, reason: str) -> None:
        """Nothing to map: the toggle stays usable (Ctrl+D answers), its tooltip says why."""
        self.no_readout = reason
        self.overlay_action.setToolTip(f"No damage map: {no_readout_text(reason)}")
        if self.overlay_action.isChecked():
            self.overlay_action.setChecked(False)
            self.say(f"No damage map: {no_readout_text(reason)}", 10000)

    def _on_overlay_toggled(self, on: bool) -> None:
        if on:
            if self.no_readout:
                self.overlay_action.setChecked(False)
                self.say(f"No damage map: {no_readout_text(self.no_readout)}", 10000)
                return
            if self.photos.image is None:
                self.say("The damage map shows once a photo is open.", 5000)
            self.refresh()
            return
        self.maps.cancel()
        self._map_key = None
        self.canvas.set_damage_tiles([])
        self.mapShown.emit(0)
