"""The main window: builds the panels and views, creates one controller per concern (photos,
model, upscale runs, batches, saving) and wires every signal between them, here and nowhere
else.

State lives in Qt-free objects (:class:`ImageQueue`, :class:`RegionList`, :class:`AppSettings`)
and in the controllers, which run the heavy work (reading photos, loading models, upscaling,
batches, thumbnails) in :class:`JobRunner` threads. Every failure reaches the user through
:meth:`show_error`: one dialog with a message they can act on, and a log panel entry.

Start-up: the window is built without the engine (PyTorch takes seconds to import); the
engine, the device list and the model load in the background once the window is up, and a
Run pressed meanwhile starts when the model is ready.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QMainWindow, QMessageBox, QSplitter, QTabWidget, QWidget

from cmdsr_app.controllers.batch import BatchController
from cmdsr_app.controllers.damage import DamageController
from cmdsr_app.controllers.knobs import KnobController
from cmdsr_app.controllers.log_feed import LogFeed
from cmdsr_app.controllers.look import LookController
from cmdsr_app.controllers.models import ModelController, shipped_baseline_path
from cmdsr_app.controllers.photos import PATCH_SIZE, PhotoController
from cmdsr_app.controllers.saving import SaveController
from cmdsr_app.controllers.upscale import UpscaleController
from cmdsr_app.jobs import ModelCache, engine_region_problems
from cmdsr_app.settings import CONFIG_ENV, AppSettings, SettingsStore, config_dir
from cmdsr_app.state import ImageQueue, RegionList
from cmdsr_app.training.tab import TrainingTab
from cmdsr_app.views.about import open_about_box
from cmdsr_app.views.canvas import ImageCanvas
from cmdsr_app.views.compare import CompareView
from cmdsr_app.views.damage_view import DamagePanel
from cmdsr_app.views.look_view import LookPanel
from cmdsr_app.views.panels import BatchPanel, LogPanel, QueuePanel, RegionPanel
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.views.window_layout import InputPage, add_dock, app_icon, scrolled, titled
from cmdsr_app.window_actions import build_actions
from cmdsr_app.workers import JobRunner

log = logging.getLogger(__name__)

APP_TITLE = "CMDSR Studio"
CLOSE_WAIT_MS = 15000


def probe_engine(_progress: Any, _cancel: Any) -> list[str]:
    """Import the engine (PyTorch) and list the devices; runs in a worker thread."""
    from engine.inference.devices import available_devices

    try:
        return list(available_devices())
    except Exception:  # a broken GPU driver must not stop the app from opening
        log.warning("could not list devices", exc_info=True)
        return ["cpu"]


class MainWindow(QMainWindow):
    """Open photos, mark support regions, upscale, compare, save; batch; train."""

    imageLoaded = Signal(str)
    upscaleFinished = Signal(str)  # the method whose result arrived
    jobCancelled = Signal(str)
    batchFinished = Signal(object)  # BatchReport
    errorShown = Signal(str)
    modelReady = Signal(str)
    previewReady = Signal()
    saved = Signal(str)
    engineReady = Signal()  # the engine is imported and the device list known

    def __init__(self, store: SettingsStore | None = None, *, with_training: bool = True) -> None:
        super().__init__()
        self.store = store if store is not None else SettingsStore()
        self.settings: AppSettings = self.store.load()
        self.queue = ImageQueue()
        self.regions = RegionList(validator=engine_region_problems, patch_size=PATCH_SIZE)
        self.cache = ModelCache()
        self.heavy = JobRunner("upscale", self)
        self.light = JobRunner("io", self)
        self.thumbs = JobRunner("thumbnails", self)
        self.last_error: tuple[str, str] | None = None
        self.error_dialog: QMessageBox | None = None
        self.engine_ready = False
        self._closing = False
        self._training_running = False

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build_ui(with_training)
        self._build_controllers()
        self._build_actions()
        self.log_feed = LogFeed(self.log_panel)
        self._wire()
        self._restore()
        self.light.submit("engine", probe_engine, on_finished=self._on_engine_ready,
                          on_failed=lambda m: self.show_error("Cannot start the engine", m))

    # ================================================================== building
    def _build_ui(self, with_training: bool) -> None:
        self.canvas = ImageCanvas()
        self.canvas.set_region_list(self.regions)
        self.input_page = InputPage(self.canvas)
        self.hint_label, self.zoom_label = self.input_page.hint, self.input_page.zoom_label
        self.compare = CompareView()
        self.batch_panel = BatchPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.input_page, "Input && regions")
        self.tabs.addTab(self.compare, "Compare")
        self.tabs.addTab(self.batch_panel, "Batch")
        # with_training=False leaves the tab out (quick windows in tests and scripts).
        self.training_tab: TrainingTab | None = None
        self.training_page: QWidget | None = None
        if with_training:
            runs_root = config_dir() / "runs" if os.environ.get(CONFIG_ENV) else None
            # The last run is shown once the engine is loaded (reading it needs the engine).
            self.training_tab = TrainingTab(settings=self.settings.training, runs_root=runs_root,
                                            show_last_run=False)
            # In a scroll area, so its charts do not set the whole window's minimum width.
            self.training_page = scrolled(self.training_tab)
            self.tabs.addTab(self.training_page, "Training")
        self.setCentralWidget(self.tabs)

        self.queue_panel = QueuePanel(self.queue)
        self.region_panel = RegionPanel()
        self.region_panel.set_region_list(self.regions)
        self.damage_panel = DamagePanel()
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(titled("Images", self.queue_panel))
        left.addWidget(titled("Support regions", self.region_panel))
        left.addWidget(titled("Damage the model sees", self.damage_panel))
        self.look_panel = LookPanel()
        left.addWidget(titled("Look", self.look_panel))
        left.setSizes([220, 200, 220, 60])
        # Scrolls rather than setting the window's minimum height (a 1280x720 screen).
        left_scroll = scrolled(left)
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        left_scroll.setMinimumWidth(left.minimumSizeHint().width() + 16)
        self.left_dock = add_dock(self, "left_dock", "Queue and regions", left_scroll,
                                  Qt.DockWidgetArea.LeftDockWidgetArea)
        self.settings_panel = SettingsPanel()
        scroll = scrolled(self.settings_panel)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.settings_panel.sizeHint().width() + 24)
        self.right_dock = add_dock(self, "right_dock", "Settings", scroll,
                                   Qt.DockWidgetArea.RightDockWidgetArea)
        self.log_panel = LogPanel()
        self.log_dock = add_dock(self, "log_dock", "Log", self.log_panel,
                                 Qt.DockWidgetArea.BottomDockWidgetArea, movable=False)
        self.resizeDocks([self.log_dock], [80], Qt.Orientation.Vertical)
        self.statusBar().showMessage("Open a photo to begin (Ctrl+O).")

    def _build_controllers(self) -> None:
        common = {"settings": self.settings, "window": self}
        self.models = ModelController(settings_panel=self.settings_panel, light=self.light,
                                      cache=self.cache, **common)
        self.photos = PhotoController(queue=self.queue, regions=self.regions, canvas=self.canvas,
                                      compare=self.compare, queue_panel=self.queue_panel,
                                      settings_panel=self.settings_panel, light=self.light,
                                      thumbs=self.thumbs, scale=lambda: self.models.scale, **common)
        self.upscale = UpscaleController(queue=self.queue, regions=self.regions, photos=self.photos,
                                         models=self.models, settings_panel=self.settings_panel,
                                         canvas=self.canvas, compare=self.compare, heavy=self.heavy,
                                         light=self.light, cache=self.cache, **common)
        self.batch = BatchController(queue=self.queue, models=self.models, upscale=self.upscale,
                                     settings_panel=self.settings_panel, batch_panel=self.batch_panel,
                                     heavy=self.heavy, cache=self.cache, **common)
        self.saving = SaveController(photos=self.photos, models=self.models, upscale=self.upscale,
                                     settings_panel=self.settings_panel, compare=self.compare,
                                     heavy=self.heavy, **common)
        self.damage = DamageController(photos=self.photos, models=self.models, regions=self.regions,
                                       settings_panel=self.settings_panel, canvas=self.canvas,
                                       damage_panel=self.damage_panel, cache=self.cache, window=self)
        self.knobs = KnobController(photos=self.photos, models=self.models, damage=self.damage,
                                    heavy=self.heavy, panel=self.damage_panel.knobs,
                                    canvas=self.canvas, cache=self.cache, window=self,
                                    upscale=self.upscale, batch=self.batch)
        self.look = LookController(models=self.models, heavy=self.heavy, panel=self.look_panel,
                                   window=self, compare=self.compare)
        # a look moved previews the part in view, as a knob moved does (the knobs' worker)
        self.look.lookChanged.connect(lambda _look: self.knobs.preview_look())
        # The window's own verbs, as its menus, scripts and tests call them.
        self.open_paths, self.show_entry, self.paste = (
            self.photos.open_paths, self.photos.show_entry, self.photos.paste)
        self.choose_model, self.use_trained_model = self.models.choose, self.models.use_trained_model
        self.run_upscale, self.compute_source = self.upscale.run, self.upscale.compute_source
        self.preview_patches, self.cancel_job = self.upscale.preview_patches, self.upscale.cancel
        self.start_batch = self.batch.start
        self.save_result, self.save_comparison = self.saving.save_result, self.saving.save_comparison
        self.save_result_dialog = self.saving.result_dialog
        self.save_comparison_dialog = self.saving.comparison_dialog

    def _build_actions(self) -> None:
        build_actions(self)
        self._update_save_actions()

    # ================================================================== wiring
    def _wire(self) -> None:
        """Every signal connection between panels, controllers and the window."""
        sp, photos, upscale = self.settings_panel, self.photos, self.upscale
        for controller in (photos, self.models, upscale, self.batch, self.saving, self.damage,
                           self.knobs, self.look):
            controller.error.connect(self.show_error)
            controller.status.connect(self.statusBar().showMessage)
        self.queue_panel.currentRequested.connect(photos.show_entry)
        self.queue_panel.removeRequested.connect(self.remove_entry)
        photos.cleared.connect(upscale.on_photo_cleared)
        photos.cleared.connect(lambda: self.region_panel.set_photo_shown(False))
        photos.loaded.connect(lambda _p: self.region_panel.set_photo_shown(True))
        photos.loaded.connect(upscale.on_photo_loaded)  # first: the results are back...
        photos.loaded.connect(lambda _p: self.input_page.show_zoom(self.canvas.zoom))
        photos.loaded.connect(self.imageLoaded)  # ...when the window says it is loaded
        photos.titleChanged.connect(
            lambda name: self.setWindowTitle(f"{name} — {APP_TITLE}" if name else APP_TITLE))
        photos.recentChanged.connect(self._refresh_recent_menu)
        self.region_panel.previewRequested.connect(upscale.preview_patches)
        self.compare.sourceRequested.connect(upscale.compute_source)
        self.compare.stopRequested.connect(upscale.stop_source)
        self.compare.altSupportChanged.connect(upscale.on_alt_support)
        upscale.finished.connect(self.upscaleFinished)
        upscale.cancelled.connect(lambda: self.jobCancelled.emit("upscale"))
        upscale.previewReady.connect(self.previewReady)
        upscale.resultsChanged.connect(self._update_save_actions)
        upscale.showCompare.connect(lambda: self.tabs.setCurrentWidget(self.compare))
        self.models.modelChanged.connect(self._on_model_changed)
        self.models.modelReady.connect(self.modelReady)
        self.models.checked.connect(upscale.on_model_checked)
        sp.runRequested.connect(upscale.run)
        sp.cancelRequested.connect(upscale.cancel)
        sp.modelChosen.connect(self.models.choose)
        sp.browseModelRequested.connect(self.models.browse)
        sp.settingsChanged.connect(lambda: sp.read_into(self.settings))
        self.batch_panel.startRequested.connect(self.batch.start)
        self.batch_panel.browseRequested.connect(self.batch.browse_folder)
        self.batch.started.connect(lambda: self.tabs.setCurrentWidget(self.batch_panel))
        self.batch.finished.connect(self.batchFinished)
        self.batch.cancelled.connect(lambda: self.jobCancelled.emit("batch"))
        self.saving.saved.connect(self.saved)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.heavy.progress.connect(upscale.on_tile_progress)
        if self.training_tab is not None:
            tab = self.training_tab
            tab.modelChosen.connect(self.models.use_trained_model)
            tab.logMessage.connect(lambda text: log.info("training: %s", text))
            tab.errorOccurred.connect(lambda text: self.show_error("Training failed", text))
            tab.problemOccurred.connect(self.show_error)
            self.models.modelReady.connect(tab.model_in_use)
            self.models.modelNotUsed.connect(tab.model_not_used)
            tab.runningChanged.connect(self._on_training_running)

    def _restore(self) -> None:
        """Settings that need no engine; the rest follows in :meth:`_on_engine_ready`."""
        s = self.settings
        # Until the engine lists the devices, the remembered one is shown as it was.
        self.settings_panel.set_devices([s.device] if s.device != "auto" else [], s.device)
        self.settings_panel.apply_settings(s)
        # The shipped files are only looked up here (no PyTorch): the model loads later.
        self.models.refresh_choices()
        self.settings_panel.set_model_info("Loading the model…")
        baseline = shipped_baseline_path()
        why = None if baseline.exists() else f"no baseline model is installed ({baseline.name} is missing)"
        self.compare.set_source_enabled("baseline", why is None, why or "")
        self.compare.apply_settings(s)
        self.batch_panel.folder_edit.setText(s.batch_output_dir)
        self.batch_panel.pattern_edit.setText(s.batch_pattern)
        self._refresh_recent_menu()
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(s.window_geometry.encode()))
        else:
            self.resize(1400, 880)
        if s.window_state:
            self.restoreState(QByteArray.fromHex(s.window_state.encode()))
        # The state may have been saved while the Training tab hid the side panels.
        self._on_tab_changed(self.tabs.currentIndex())

    def _on_engine_ready(self, devices: list[str]) -> None:
        self.engine_ready = True
        self.settings_panel.set_devices(devices, self.settings.device)
        if self.training_tab is not None:
            self.training_tab.show_last_run()
        self.models.choose(self.settings.model_path, quiet=True)
        self.engineReady.emit()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    # ================================================================== reactions
    def show_error(self, title: str, message: str) -> None:
        """The one way failures reach the user: a dialog and a log entry."""
        log.error("%s: %s", title, message)
        self.last_error = (title, message)
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        if self._closing:
            return
        if self.error_dialog is not None:
            self.error_dialog.close()
        # No "see the log" line: the log holds only this message, except for unexpected
        # errors, whose message already says the log has the details.
        dialog = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.open()  # not exec(): the event loop and running jobs carry on
        self.error_dialog = dialog
        self.errorShown.emit(message)

    def remove_entry(self, index: int) -> None:
        if self.batch.running:
            self.statusBar().showMessage("Wait for the batch to finish before removing images.", 5000)
            return
        self.upscale.forget(self.queue[index].path)
        self.photos.remove(index)

    def _on_model_changed(self, info: Any) -> None:
        if self.photos.image is not None and self.compare.scale != info.scale:
            self.compare.set_scale(info.scale)
        self.upscale.on_model_changed(info)

    def _update_save_actions(self) -> None:
        for action in (self.save_action, self.save_compare_action):
            action.setEnabled(self.upscale.has_result)

    def _on_tab_changed(self, _index: int) -> None:
        # The queue, regions and upscale settings mean nothing to training: give it the room.
        training = self.training_tab is not None and self.tabs.currentWidget() is self.training_page
        self.left_dock.setVisible(not training)
        self.right_dock.setVisible(not training)

    def _on_training_running(self, running: bool) -> None:
        self._training_running = running

    def about_text(self) -> str:
        """Version, the shipped model's card and the licences, for the About box."""
        from cmdsr_app.views.about import about_html

        return about_html()

    def show_about(self) -> None:
        self.about_box = open_about_box(self, f"About {APP_TITLE}", self.about_text())

    def _active_view(self) -> Any:
        return self.compare if self.tabs.currentWidget() is self.compare else self.canvas

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_paths(paths)

    # ================================================================== closing
    def is_busy(self) -> bool:
        training = self.training_tab is not None and self.training_tab.is_running
        return self.heavy.busy or training or self._training_running

    def confirm_close(self) -> bool:
        """Ask before stopping a running job (tests replace this)."""
        answer = QMessageBox.question(
            self, "Stop the running job?",
            "A job is still running. Stop it and quit? (A training run can be resumed later.)",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self, timeout_ms: int = CLOSE_WAIT_MS) -> bool:
        """Cancel every job and wait for the workers to end; True if all stopped in time."""
        stopped = True
        runners = (self.heavy, self.light, self.thumbs, self.upscale.optional, *self.damage.runners,
                   self.knobs.runner)
        for runner in runners:
            runner.cancel()
        for runner in runners:
            stopped = runner.wait(timeout_ms) and stopped
        if self.training_tab is not None:
            stopped = self.training_tab.shutdown(timeout_ms) and stopped
        return stopped

    def save_settings(self) -> None:
        self.settings_panel.read_into(self.settings)
        self.compare.read_into(self.settings)
        self.settings.window_geometry = bytes(self.saveGeometry().toHex().data()).decode()
        self.settings.window_state = bytes(self.saveState().toHex().data()).decode()
        if self.training_tab is not None:
            self.settings.training = self.training_tab.settings_dict()
        self.store.save(self.settings)

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.is_busy() and not self.confirm_close():
            event.ignore()
            return
        self._closing = True
        if not self.shutdown():
            log.warning("a background job did not stop within %d ms", CLOSE_WAIT_MS)
        self.save_settings()
        self.log_feed.detach()
        if self.error_dialog is not None:
            self.error_dialog.close()
        event.accept()


__all__ = ["MainWindow"]
