"""The damage knobs of the shown photo: they start at the model's estimate for it, the user's
moves are kept per photo and steer its runs (and its batch output), and each move previews
the part of the photo in view, in a worker thread of its own: debounced, the previous preview
cancelled by the next move, so dragging never waits for the network (a move of the Look slider previews the same way).
The values set are kept
in the settings too, so a photo opened again after a restart under the same model gets them
back (never under another model, never outside the model's range)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QTimer, Signal
from PySide6.QtWidgets import QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.batch import BatchController
from cmdsr_app.controllers.damage import DamageController
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.controllers.photos import PhotoController
from cmdsr_app.controllers.upscale import UpscaleController
from cmdsr_app.damage_knobs import (
    NO_JPEG,
    NO_MAP,
    Damage,
    KnobRange,
    KnobValues,
    visible_box,
)
from cmdsr_app.damage_readout import DamageReading, jpeg_words
from cmdsr_app.imaging import to_qimage
from cmdsr_app.jobs import ModelCache, ModelInfo, preview_damage
from cmdsr_app.views.canvas import ImageCanvas
from cmdsr_app.views.damage_knobs_view import DamageKnobsPanel, KnobPreviewOverlay
from cmdsr_app.workers import JobRunner

PREVIEW_DEBOUNCE_MS = 120  # a knob being dragged previews once it pauses this long

# Short lines (the box is narrow); what they mean in full is in the tooltip.
AS_READ = ("As read from the photo.",
           "A run reads the damage from the photo's support patches, as without the knobs. "
           "Move a knob to set it yourself.")
SET_BY_YOU = ("Set by you: runs use these numbers.",
              "Runs and batches of this photo are steered by these numbers instead of reading "
              "it. Reset goes back to the photo's own reading.")
NO_ESTIMATE = ("No estimate: start from a mild blur.",
               "This model reads no damage estimate, so the knobs start at a mild blur and no "
               "noise; move one to set the damage yourself.")
READING = ("Reading the damage…", "")
NO_PHOTO = ("Open a photo to steer its upscale.", "")
FAILED_PHOTO = ("This photo could not be opened: nothing to steer.", "")
NO_CONDITION = "This model ignores the damage (its conditioning is off), so it has no damage knobs."


class KnobController(Controller):
    """``previewShown(box)`` when a preview of ``box`` (x, y, w, h in photo pixels) is on the
    canvas; ``valuesChanged()`` when the shown photo's knob values change."""

    previewShown = Signal(object)  # noqa: N815 (Qt signal naming)
    valuesChanged = Signal()  # noqa: N815

    def __init__(self, *, photos: PhotoController, models: ModelController,
                 damage: DamageController, heavy: JobRunner, panel: DamageKnobsPanel,
                 canvas: ImageCanvas, cache: ModelCache, window: QWidget,
                 upscale: UpscaleController | None = None,
                 batch: BatchController | None = None) -> None:
        super().__init__(window)
        self.photos, self.models, self.damage, self.heavy = photos, models, damage, heavy
        # Runs and batches ask the knobs which damage steers a photo (None: read it).
        if upscale is not None:
            upscale.damage_for = self.damage_for
        if batch is not None:
            batch.damage_for_paths = self.damage_for_paths
        self.panel, self.canvas, self.cache = panel, canvas, cache
        self.values = KnobValues()
        self.range: KnobRange | None = None
        self.estimate: Damage | None = None  # the model's reading of the shown photo
        self.runner = JobRunner("knob preview", self)
        self.overlay = KnobPreviewOverlay(canvas)
        self._preview_key: tuple[Any, ...] | None = None
        self._look_preview = False  # the Look slider asked for a preview of this photo
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DEBOUNCE_MS)
        self._timer.timeout.connect(self.preview)
        photos.loaded.connect(lambda _path: self._on_photo())
        photos.cleared.connect(self._on_photo)
        # the queue tells of a removal before it moves its current photo: look once it has
        photos.queue.added.connect(lambda *_: QTimer.singleShot(0, self._show))
        photos.queue.removed.connect(lambda *_: QTimer.singleShot(0, self._show))
        photos.queue.status_changed.connect(lambda *_: self._show())
        models.modelChanged.connect(self._on_model_changed)
        damage.readingShown.connect(self._on_reading)
        heavy.busyChanged.connect(self._on_busy)
        canvas.viewChanged.connect(lambda *_: self._on_view_changed())
        panel.valuesEdited.connect(self.set_values)
        panel.resetRequested.connect(self.reset)
        panel.applyAllRequested.connect(self.apply_to_all)

    # -- what runs and batches use -----------------------------------------------------------
    def damage_for(self, path: Path | None) -> Damage | None:
        """The values the user set for this photo, or None: its run reads the photo."""
        return self.values.get(path) if self.range is not None else None

    def damage_for_paths(self, paths: list[Path]) -> dict[Path, Damage]:
        return self.values.for_paths(paths) if self.range is not None else {}

    # -- the user's moves --------------------------------------------------------------------
    def set_values(self, values: Damage) -> None:
        path = self.photos.image_path
        if path is None or self.range is None:
            return
        self.values.set(path, *self.range.clamp(*values))
        self._keep(path)
        self.panel.show_origin(*SET_BY_YOU)
        self._show_batch_note()
        self.valuesChanged.emit()
        self.schedule_preview()

    def reset(self) -> None:
        """Back to the photo's own reading: runs read its support patches again."""
        path = self.photos.image_path
        if path is not None:
            self.values.clear(path)
            self._keep(path)
        self._clear_preview()
        self._show()
        self.valuesChanged.emit()

    def apply_to_all(self) -> None:
        if self.range is None or self.photos.image_path is None:
            return
        values = self.panel.values()
        paths = [entry.path for entry in self.photos.queue]
        if not paths:
            return
        self.values.set_all(paths, *values)
        for path in paths:
            self._keep(path)
        self._show()
        self.valuesChanged.emit()
        jpeg = f" · {jpeg_words(values[2])}" if len(values) > 2 else ""
        self.say(f"Blur {values[0]:.1f} px · noise {values[1]:.0f} levels{jpeg} set for all "
                 f"{len(paths)} photo(s).")

    # -- kept across restarts ----------------------------------------------------------------
    def _model_key(self) -> str | None:
        info = self.models.info
        return None if info is None else str(info.path)

    def _keep(self, path: Path) -> None:
        """Remember (or forget) this photo's values in the settings, with the model's file."""
        model = self._model_key()
        if model is not None:
            self.photos.settings.remember_knobs(path, model, self.values.get(path))

    def _restore(self) -> None:
        """The shown photo's values from an earlier session, when they were set under this
        model and fit its range; values set in this session win."""
        path, model = self.photos.image_path, self._model_key()
        if path is None or model is None or self.range is None or self.values.get(path) is not None:
            return
        kept = self.photos.settings.knobs_for(path, model)
        if kept is not None and len(kept) == (3 if self.range.jpeg else 2) \
                and self.range.contains(*kept):
            self.values.set(path, *kept)

    # -- the preview -------------------------------------------------------------------------
    def schedule_preview(self) -> None:
        self._timer.start()

    def preview_look(self) -> None:
        """The Look slider moved: preview the part in view at the new look, with the knob
        values set for the photo or else its own reading (the same worker and overlay)."""
        self._look_preview = True
        self.schedule_preview()

    def preview(self) -> None:
        """Upscale the part of the photo in view with the shown photo's knob values."""
        image, path = self.photos.image, self.photos.image_path
        damage = self.damage_for(path)
        if image is None or path is None or self.heavy.busy:
            return
        if damage is None:
            if not self._look_preview:
                return
            if self.range is not None and self.estimate is not None:
                damage = self.range.clamp(*self.estimate)  # the photo's own reading, as shown
        top_left = self.canvas.to_content(QPointF(0, 0))
        bottom_right = self.canvas.to_content(QPointF(self.canvas.width(), self.canvas.height()))
        box = visible_box((top_left.x(), top_left.y(), bottom_right.x(), bottom_right.y()),
                          image.width, image.height)
        if box is None:
            return
        pixels, settings, cache = image.pixels, self.models.run_settings(), self.cache
        key = (path, damage, box, self.models.model_path(), settings.look)
        if key == self._preview_key:
            return
        self._preview_key = key
        label = "Preview"
        if damage is not None:
            label += f" · blur {damage[0]:.1f} px · noise {damage[1]:.0f} lv"
            if len(damage) > 2:
                label += f" · {jpeg_words(damage[2])}"
        if self._look_preview or settings.look > 0:
            label += f" · look {settings.look:.2f}"

        def work(_progress: Any, cancel: threading.Event) -> Any:
            return to_qimage(preview_damage(pixels, box, damage, settings, cache, cancel))

        def done(qimage: Any) -> None:
            if key != self._preview_key:
                return  # a newer move is being previewed
            self.overlay.show_preview(qimage, box, label)
            self.previewShown.emit(box)

        def failed(message: str) -> None:
            if key == self._preview_key:
                self._preview_key = None
                self.say(f"Preview failed: {message}", 8000)

        self.runner.cancel()  # the previous move's preview is no longer wanted
        self.runner.submit("knob preview", work, on_finished=done, on_failed=failed)

    def _clear_preview(self) -> None:
        self._timer.stop()
        self.runner.cancel()
        self._preview_key = None
        self._look_preview = False
        self.overlay.clear()

    def _on_view_changed(self) -> None:
        if self.overlay.isVisible():  # panned or zoomed: preview what is in view now
            self.schedule_preview()

    # -- what the knobs show -----------------------------------------------------------------
    def _on_photo(self) -> None:
        self._clear_preview()
        self.estimate = None
        self._restore()
        self._show()

    def _on_reading(self, reading: DamageReading) -> None:
        photo = reading.photo
        if photo is None:
            self.estimate = None
        else:  # a readout without JPEG: the JPEG knob starts at none
            jpeg = NO_JPEG if photo.jpeg_quality is None else photo.jpeg_quality
            self.estimate = (photo.blur_sigma, photo.noise_sigma, jpeg)
        self._show()

    def _on_model_changed(self, info: ModelInfo) -> None:
        self._clear_preview()
        self.range = info.knobs
        self.estimate = None
        if self.range is None:
            self.panel.set_range(None, NO_MAP if info.conditioned else NO_CONDITION)
        else:
            self.values.clamp_all(self.range)
            self.panel.set_range(self.range)
            self._restore()
        self._show()

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self._timer.stop()
            self.runner.cancel()
        self.panel.set_locked(busy)
        self._show()  # the Reset button follows the lock

    def _shown_failed(self) -> bool:
        """Whether the queue's current photo is one that could not be opened."""
        queue = self.photos.queue
        index = queue.current
        return index is not None and 0 <= index < len(queue) and bool(queue[index].load_error)

    def _show_photo_state(self) -> None:
        """The knobs steer the shown photo: off with none, or one that failed to open."""
        shown = self.photos.image_path is not None and self.photos.image is not None
        self.panel.set_photo(shown, len(self.photos.queue))

    def _show(self) -> None:
        self._show_photo_state()
        if self.range is None:
            self._show_batch_note()
            return
        path = self.photos.image_path
        own = self.values.get(path)
        if own is not None:
            self.panel.show_values(own, SET_BY_YOU, user_set=True)
        elif self._shown_failed():
            self.panel.show_values(self.range.start, FAILED_PHOTO, user_set=False)
        elif path is None:
            self.panel.show_values(self.range.start, NO_PHOTO, user_set=False)
        elif self.estimate is not None:
            self.panel.show_values(self.range.clamp(*self.estimate), AS_READ, user_set=False)
        elif self.damage.no_readout:
            self.panel.show_values(self.range.start, NO_ESTIMATE, user_set=False)
        else:
            self.panel.show_values(self.range.start, READING, user_set=False)
        self._show_batch_note()

    def _show_batch_note(self) -> None:
        if self.range is None:
            self.panel.batch_note.setText("")
            return
        paths = [entry.path for entry in self.photos.queue]
        fixed = len(self.values.for_paths(paths))
        if not fixed:
            text = "Batches read each photo's damage."
        elif fixed == len(paths):
            text = "Batches use the values you set."
        else:
            text = f"Batches use your values for {fixed} of {len(paths)} photos, read the rest."
        self.panel.batch_note.setText(text)
