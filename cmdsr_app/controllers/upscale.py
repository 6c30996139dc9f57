"""Upscale runs of the shown photo: CMDSR on Run, the other comparison sources on demand, the
support-patch preview, and the results kept for the last few photos."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.controllers.models import ModelController
from cmdsr_app.controllers.photos import PhotoController
from cmdsr_app.damage_readout import jpeg_words
from cmdsr_app.eta import EtaEstimator, format_eta
from cmdsr_app.imaging import to_qimage
from cmdsr_app.jobs import (
    ModelCache,
    ModelInfo,
    SupportChoice,
    UpscaleOutcome,
    preview_support,
    upscale_with,
)
from cmdsr_app.settings import AppSettings
from cmdsr_app.state import EntryStatus, ImageQueue, RegionList, eta_text
from cmdsr_app.views.canvas import ImageCanvas
from cmdsr_app.views.compare import LOOK_SOURCES, OPTIONAL_SOURCES, SOURCES, CompareView
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner

RESULTS_KEPT = 4  # photos whose results stay in memory...
RESULTS_PIXEL_BUDGET = 150_000_000  # ...as long as they hold fewer output pixels than this


class UpscaleController(Controller):
    """``finished(method)`` when a result arrives for the shown photo, ``cancelled()`` when
    a run is cancelled, ``previewReady()`` after a patch preview, ``resultsChanged()`` when
    the shown photo gains or loses its CMDSR result."""

    finished = Signal(str)
    cancelled = Signal()
    previewReady = Signal()  # noqa: N815 (Qt signal naming)
    resultsChanged = Signal()  # noqa: N815
    showCompare = Signal()  # noqa: N815

    def __init__(self, *, settings: AppSettings, queue: ImageQueue, regions: RegionList,
                 photos: PhotoController, models: ModelController, settings_panel: SettingsPanel,
                 canvas: ImageCanvas, compare: CompareView, heavy: JobRunner, light: JobRunner,
                 cache: ModelCache, window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.queue, self.regions = settings, queue, regions
        self.photos, self.models, self.panel = photos, models, settings_panel
        self.canvas, self.compare = canvas, compare
        self.heavy, self.light, self.cache = heavy, light, cache
        self.outcomes: dict[str, UpscaleOutcome] = {}  # the shown photo's results
        # Results of the last few photos, so going back to one shows its result again.
        self._stash: OrderedDict[Path, dict[str, tuple[UpscaleOutcome, QImage]]] = OrderedDict()
        self._eta = EtaEstimator()
        self.upscaling: Path | None = None  # the photo the running job belongs to
        # Compare's sources (bicubic, and the optional baseline and other support) run here,
        # apart from Run's runner, so they lock neither Run nor the settings; a Run or a batch
        # stops an optional one first (:meth:`after_optional`).
        self.optional = JobRunner("compare", self)
        self._after_optional: list[Callable[[], None]] = []
        self.optional.busyChanged.connect(self._on_optional_busy)
        self._optional_eta = EtaEstimator()
        self._source_after_run: str | None = None  # asked for while a run was going
        heavy.busyChanged.connect(self._on_heavy_busy)
        # The photo a Run pressed while it or the model was still loading is for.
        self._run_when_ready: Path | None = None
        # The damage knobs' values for a photo (None: read from it), set by the window's wiring.
        self.damage_for: Callable[[Path], tuple[float, float] | None] = lambda _path: None

    @property
    def has_result(self) -> bool:
        return "cmdsr" in self.outcomes

    # -- choices -------------------------------------------------------------------------
    def support_choice(self, mode: str | None = None) -> SupportChoice:
        mode = mode or self.panel.support_mode
        regions = tuple(r.as_tuple() for r in self.regions.valid_regions()) if mode == "regions" else ()
        return SupportChoice(mode, regions, self.panel.seed)

    def regions_problem(self, mode: str) -> str | None:
        """Why the drawn regions cannot be used (for ``regions`` mode), or None."""
        if mode != "regions":
            return None
        if not len(self.regions):
            return ("Support is set to 'My regions' but there are none: drag on the photo to "
                    "draw one, or choose Auto or Random.")
        bad = [(i, p) for i, p in enumerate(self.regions.problems) if p is not None]
        if bad:
            index, problem = bad[0]
            return (f"Region {index + 1} {problem}. Move or resize it, or delete it (Del), "
                    "then run again.")
        return None

    # -- the shown photo changes ------------------------------------------------------------
    def on_photo_cleared(self) -> None:
        self._run_when_ready = None  # another photo is shown: the waiting Run was not for it
        self.optional.cancel()  # a comparison asked for the photo that is no longer shown
        self.outcomes.clear()
        self.resultsChanged.emit()

    def on_photo_loaded(self, path: str) -> None:
        for method, (outcome, result) in self._stash.get(Path(path), {}).items():
            self.outcomes[method] = outcome
            self.compare.set_result(method, result)
        self.resultsChanged.emit()
        if "cmdsr" not in self.outcomes:
            self.show_batch_output(Path(path))
        if self._run_when_ready == Path(path) and self.models.ready:
            self._run_when_ready = None
            self.run()

    def show_batch_output(self, path: Path) -> None:
        """A photo a batch finished: its saved result on the CMDSR side of Compare (read from
        the file, so it is what was written; Save stays for results of a run)."""
        index = self.queue.index_of(path)
        output = None if index is None else self.queue[index].output_path
        if output is None or not output.is_file():
            return

        def read(_progress: Any, _cancel: threading.Event) -> QImage:
            from engine.io.imageio import read_image

            image = read_image(output)
            return to_qimage(image.pixels, image.alpha)

        def done(qimage: QImage) -> None:
            if self.photos.image_path != path or "cmdsr" in self.outcomes:
                return  # another photo is shown, or a run's result came first
            self.compare.set_result("cmdsr", qimage)
            self.say(f"Compare shows the batch's result for {path.name}: {output}", 8000)
            self.finished.emit("cmdsr")

        self.light.submit("batch output", read, on_finished=done,
                          on_failed=lambda m: self.say(f"Cannot show the batch's result: {m}", 8000))

    def forget(self, path: Path) -> None:
        """A photo leaves the queue: drop its results and stop its running job, whose result
        would have nowhere to go."""
        self._stash.pop(path, None)
        if self.heavy.busy and self.upscaling == path:
            self.heavy.cancel()
            self.say(f"Stopped upscaling {path.name}: it was removed.")

    def on_model_changed(self, info: ModelInfo) -> None:
        self._stash.clear()  # results of another model
        self.optional.cancel()  # a source being computed belongs to the old model
        why = self.models.baseline_problem()
        self.compare.set_source_enabled("baseline", why is None, why or "")
        self.outcomes.pop("baseline", None)
        if self.photos.image is not None:
            self.outcomes.clear()
            self.compare.set_input(self.canvas.image(), info.scale)
            self.resultsChanged.emit()

    def on_alt_support(self, mode: str) -> None:
        self.settings.alt_support_mode = mode
        self.outcomes.pop("cmdsr_alt", None)
        for stash in self._stash.values():
            stash.pop("cmdsr_alt", None)

    # -- preview -------------------------------------------------------------------------
    def preview_patches(self, mode: str) -> None:
        image, path = self.photos.image, self.photos.image_path
        if image is None:
            self.error.emit("No photo", "Open a photo first (Ctrl+O).")
            return
        problem = self.regions_problem(mode)
        if problem:
            self.error.emit("Cannot preview patches", problem)
            return
        pixels, choice, count = image.pixels, self.support_choice(mode), self.models.support_size

        def done(boxes: list[tuple[int, int, int, int]]) -> None:
            entry = self.queue.current_entry
            if entry is None or entry.path != path:
                return
            entry.preview_boxes, entry.preview_mode = boxes, mode
            self.canvas.set_patch_boxes(boxes)
            what = {"auto": "textured patches picked by Auto", "random": "random patches",
                    "regions": "patches from your regions"}[mode]
            self.say(f"{len(boxes)} {what} (yellow boxes)")
            self.previewReady.emit()

        self.light.submit("preview", lambda _p, _c: preview_support(pixels, choice, count),
                          on_finished=done,
                          on_failed=lambda m: self.error.emit("Cannot pick patches", m))

    # -- running -------------------------------------------------------------------------
    def on_model_checked(self) -> None:
        if self._run_when_ready is not None and self._run_when_ready == self.photos.image_path:
            self._run_when_ready = None
            self.run()

    def run(self) -> None:
        """Upscale the shown photo with CMDSR; pressed while the photo or the model loads, it
        starts as soon as both are ready."""
        entry = self.queue.current_entry
        photo_loading = self.photos.image is None and entry is not None and not entry.load_error
        if entry is not None and (photo_loading or not self.models.ready):
            self._run_when_ready = entry.path
            what = f"{entry.name} is loading" if photo_loading else "Loading the model"
            self.say(f"{what}; the run starts when it is ready.", 0)
            return
        if self.optional.busy and not self.heavy.busy:
            self.say("Stopping the comparison being computed; the run starts next.", 4000)
            self.after_optional(self.run)
            return
        if self.heavy.busy:
            self.say("A job is already running.", 4000)
            return
        if self.photos.image is None:
            entry = self.queue.current_entry
            if entry is not None and entry.load_error:
                self.error.emit("Cannot upscale this image",
                                f"{entry.name} could not be opened: {entry.load_error}")
            else:
                self.error.emit("Nothing to upscale", "Open a photo first (Ctrl+O), then press Run.")
            return
        problem = self.regions_problem(self.panel.support_mode)
        if problem:
            self.error.emit("Cannot use the support regions", problem)
            return
        index = self.queue.current
        assert index is not None
        self.queue.set_status(index, EntryStatus.RUNNING)
        self.compare.set_pending("cmdsr", "Upscaling…")
        # Only CMDSR: other sources (bicubic, baseline...) are computed when a side shows them,
        # which keeps a big photo's memory to one result.
        self._submit(["cmdsr"], tracks_status=True)

    def compute_source(self, key: str) -> None:
        """Compute a comparison source the user picked (bicubic, baseline, other support):
        in the background, leaving Run and the settings free; one after another."""
        if self.photos.image is None or key not in SOURCES or key in ("input", "cmdsr"):
            return
        if key in self.outcomes:
            return
        if self.heavy.busy and self.heavy.current_name == "batch":
            self.say(f"{SOURCES[key]} can be computed once the batch has finished.", 5000)
            return
        if key == "cmdsr_alt":
            problem = self.regions_problem(self.compare.alt_support)
            if problem:
                self.compare.set_pending(key, problem)
                return
        if self.heavy.busy:
            # Not beside a run on the same device: it starts when the run ends.
            self._source_after_run = key
            self.compare.set_pending(key, f"{SOURCES[key]}: computed when the run ends.")
            return
        self.compare.set_pending(key, self._computing_text(key))
        self._submit([key], tracks_status=False, runner=self.optional)

    def _computing_text(self, key: str, progress: str = "") -> str:
        if key not in OPTIONAL_SOURCES:
            return f"Computing {SOURCES[key]}…"
        return (f"Computing {SOURCES[key]}{progress}… (optional, as long as a run; Run and the "
                "settings stay free; Stop above cancels it)")

    def stop_source(self, key: str) -> None:
        """Stop computing a comparison source (Compare's Stop button)."""
        if self._source_after_run == key:
            self._source_after_run = None
            self.compare.clear_pending(key)
            return
        if self.optional.busy:
            # Only that one when it is the one running: a queued bicubic still comes.
            self.optional.cancel(pending=self.optional.current_name != key)
            self.say(f"Stopped computing {SOURCES.get(key, key)}.", 4000)

    def after_optional(self, then: Callable[[], None]) -> None:
        """Call ``then`` once no comparison source is being computed, stopping the one that
        is: a Run or a batch goes first and never shares the device with it."""
        if not self.optional.busy:
            then()
            return
        self._after_optional.append(then)
        self.optional.cancel()

    def _on_heavy_busy(self, busy: bool) -> None:
        key, self._source_after_run = self._source_after_run, None
        if busy or key is None:
            return
        self.compare.clear_pending(key)
        if key in (self.compare.left_source, self.compare.right_source):
            self.compute_source(key)

    def _on_optional_busy(self, busy: bool) -> None:
        if busy:
            return
        waiting, self._after_optional = self._after_optional, []
        for then in waiting:
            then()

    def cancel(self) -> None:
        if self.heavy.busy:
            self.heavy.cancel()
            self.say("Cancelling…", 0)

    def on_tile_progress(self, done: int, total: int) -> None:
        if self.heavy.current_name != "upscale" or total <= 0:
            return  # a batch reports through its own bridge
        bar = self.panel.tile_bar
        bar.setRange(0, total)
        bar.setValue(done)
        if total != self._eta.total:
            self._eta.total = total  # the run's first report: the set-up stays out of the rate
        self.panel.eta_label.setText(eta_text(self._eta.update(done), self._eta.elapsed()))

    def _submit(self, methods: list[str], *, tracks_status: bool,
                runner: JobRunner | None = None) -> None:
        image, path = self.photos.image, self.photos.image_path
        assert path is not None
        # The knobs steer CMDSR only: "other support" compares support choices, as before.
        settings = self.models.run_settings()
        knobbed = replace(settings, damage=self.damage_for(path))
        choices = {m: self.support_choice() for m in methods}
        if "cmdsr_alt" in methods:
            choices["cmdsr_alt"] = self.support_choice(self.compare.alt_support)
        cache = self.cache
        runner = runner or self.heavy
        if runner is self.heavy:
            self._eta.restart(0)
            self.upscaling = path

        def work(progress: Any, cancel: threading.Event) -> list[tuple[UpscaleOutcome, QImage]]:
            out = []
            for method in methods:
                engine_method = "cmdsr" if method == "cmdsr_alt" or method in LOOK_SOURCES else method
                run_settings = knobbed if method == "cmdsr" else settings
                if method in LOOK_SOURCES:  # a run as the CMDSR side's, at one end of the look
                    run_settings = replace(knobbed, look=LOOK_SOURCES[method])
                outcome = upscale_with(image, engine_method, run_settings,
                                       choices[method], cache, progress, cancel)
                outcome.method = method
                out.append((outcome, to_qimage(outcome.image.pixels, outcome.image.alpha)))
            return out

        # The queue may change while this runs (images removed, another one shown): find the
        # entry by its path when the job ends.
        def set_status(status: EntryStatus, message: str = "") -> None:
            where = self.queue.index_of(path) if tracks_status else None
            if where is not None:
                self.queue.set_status(where, status, message)

        def finished(results: list[tuple[UpscaleOutcome, QImage]]) -> None:
            if runner is self.heavy:
                self.upscaling = None
            detail = self._keep(path, results)
            set_status(EntryStatus.DONE, detail)
            if self.photos.image_path != path:
                return  # kept for when the user comes back to this photo
            for outcome, qimage in results:
                self.outcomes[outcome.method] = outcome
                self.compare.set_result(outcome.method, qimage)
                if outcome.method == "cmdsr":
                    self.canvas.set_patch_boxes(outcome.boxes)
            if tracks_status:
                self.showCompare.emit()
                self.say(f"Done: {detail}", 8000)
            self.resultsChanged.emit()
            for outcome, _ in results:
                self.finished.emit(outcome.method)
            # Cheap sources follow a run; an optional one (a full run of its own) waits for
            # the user to ask (its side says so), even when a remembered side shows it.
            for key in self.compare.missing_sources():
                if key not in OPTIONAL_SOURCES:
                    self.compute_source(key)

        def failed(message: str) -> None:
            if runner is self.heavy:
                self.upscaling = None
            for method in methods:
                self.compare.clear_pending(method)
            set_status(EntryStatus.FAILED, message)
            self.error.emit("Upscaling failed", message)

        def cancelled() -> None:
            for method in methods:
                self.compare.clear_pending(method)
            if runner is not self.heavy:
                return  # an optional source: its side offers to compute it again
            self.upscaling = None
            set_status(EntryStatus.CANCELLED)
            self.say("Cancelled.")
            self.cancelled.emit()

        def progress(done: int, total: int) -> None:
            if total <= 0 or methods[0] not in OPTIONAL_SOURCES:
                return
            if done <= 1:
                self._optional_eta.restart(total)
            left = format_eta(self._optional_eta.update(done), "")
            text = f": tile {done} of {total}" + (f", about {left} left" if left else "")
            self.compare.set_pending(methods[0], self._computing_text(methods[0], text))

        if runner is self.heavy:
            runner.submit("upscale", work, on_finished=finished, on_failed=failed,
                          on_cancelled=cancelled)
        else:
            runner.submit(methods[0], work, on_finished=finished, on_failed=failed,
                          on_cancelled=cancelled, on_progress=progress)

    def _keep(self, path: Path, results: list[tuple[UpscaleOutcome, QImage]]) -> str:
        """Stash a photo's new results (and the patches its run used); returns the run's
        one-line summary."""
        stash = self._stash.setdefault(path, {})
        self._stash.move_to_end(path)
        self._trim_stash()
        for outcome, qimage in results:
            stash[outcome.method] = (outcome, qimage)
            if outcome.method == "cmdsr":
                entry_index = self.queue.index_of(path)
                if entry_index is not None:
                    entry = self.queue[entry_index]
                    entry.preview_boxes, entry.preview_mode = outcome.boxes, "run"
        cmdsr = next((o for o, _ in results if o.method == "cmdsr"), None)
        if cmdsr is None:
            return ""
        knobs = "" if cmdsr.damage is None else (
            f", knobs: blur {cmdsr.damage[0]:.1f} px · noise {cmdsr.damage[1]:.0f} lv"
            + ("" if len(cmdsr.damage) < 3 else f" · {jpeg_words(cmdsr.damage[2])}"))
        return f"{cmdsr.seconds:.1f} s on {cmdsr.device}" + (
            ", per region" if cmdsr.adapt == "local" else "") + knobs

    def _trim_stash(self) -> None:
        """Forget the oldest photos' results beyond the count or pixel budget (the newest
        photo's results are always kept)."""

        def pixels() -> int:
            return sum(q.width() * q.height() for stash in self._stash.values() for _, q in stash.values())

        while len(self._stash) > 1 and (len(self._stash) > RESULTS_KEPT or pixels() > RESULTS_PIXEL_BUDGET):
            self._stash.popitem(last=False)
