"""The main window: builds the panels and views, wires their signals (here and nowhere else),
and turns user actions into background jobs.

State lives in Qt-free objects (:class:`ImageQueue`, :class:`RegionList`, :class:`AppSettings`);
heavy work (reading photos, loading models, upscaling, batches, thumbnails) runs in
:class:`JobRunner` threads. Every failure reaches the user through :meth:`show_error`: one
dialog with a message they can act on, and a log panel entry (the traceback is logged by the
worker, so it appears only in the log).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QObject, Qt, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QIcon,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cmdsr_app.canvas import EMPTY_PLACEHOLDER, ImageCanvas
from cmdsr_app.compare import SOURCES, CompareView
from cmdsr_app.imaging import read_thumbnail, to_qimage
from cmdsr_app.jobs import (
    BatchItem,
    BatchOutput,
    BatchReport,
    ModelCache,
    ModelInfo,
    RunSettings,
    SupportChoice,
    UpscaleOutcome,
    batch_clash,
    inspect_model,
    nearest_upscale,
    preview_support,
    run_batch,
    side_by_side,
    upscale_with,
)
from cmdsr_app.panels import (
    BatchPanel,
    LogPanel,
    QtLogHandler,
    QueuePanel,
    RegionPanel,
    SettingsPanel,
)
from cmdsr_app.settings import CONFIG_ENV, AppSettings, SettingsStore, config_dir
from cmdsr_app.state import (
    EntryStatus,
    EtaEstimator,
    ImageQueue,
    Region,
    RegionList,
    eta_text,
    output_name,
)
from cmdsr_app.training_tab import TrainingTab
from cmdsr_app.workers import JobRunner

log = logging.getLogger(__name__)

APP_TITLE = "CMDSR Studio"
ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icons" / "cmdsr_studio.png"
CLOSE_WAIT_MS = 15000
PATCH_SIZE = 32
MAX_FOLDER_FILES = 5000
RESULTS_KEPT = 4  # photos whose results stay in memory...
RESULTS_PIXEL_BUDGET = 150_000_000  # ...as long as they hold fewer output pixels than this



def app_icon() -> QIcon:
    import sys

    root = Path(getattr(sys, "_MEIPASS", "")) / "resources" if getattr(sys, "_MEIPASS", None) else None
    path = root / "icons" / ICON_PATH.name if root else ICON_PATH
    return QIcon(str(path)) if path.exists() else QIcon()


def engine_region_problems(regions: Any, image_shape: tuple[int, int], size: int) -> list[str | None]:
    from engine import validate_regions

    return validate_regions([r.as_tuple() for r in regions], image_shape, size)


class _BatchBridge(QObject):
    """Carries a batch's per-image news from the worker thread to the window (queued)."""

    item = Signal(int, object)
    progress = Signal(int, int, int, int)


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
        self._batch_bridge = _BatchBridge(self)
        self._image: Any = None  # engine.imageio.Image of the shown entry
        self._image_path: Path | None = None
        self._outcomes: dict[str, UpscaleOutcome] = {}
        # Results of the last few photos, so going back to one shows its result again.
        self._stash: OrderedDict[Path, dict[str, tuple[UpscaleOutcome, QImage]]] = OrderedDict()
        self._model_info: ModelInfo | None = None
        self._eta = EtaEstimator()
        self._batch_paths: list[Path] = []
        self.last_error: tuple[str, str] | None = None
        self.error_dialog: QMessageBox | None = None
        self._closing = False
        self._training_running = False
        self._upscaling: Path | None = None  # the photo the running upscale job belongs to
        self._recent_candidates: set[Path] = set()  # opened by the user, not yet read

        self.setWindowTitle(APP_TITLE)
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self._build_ui(with_training)
        self._build_actions()
        self._log_handler = QtLogHandler()
        self._attach_logging()
        self._wire()
        self._restore()

    # ================================================================== building
    def _build_ui(self, with_training: bool) -> None:
        # Input view with its toolbar.
        self.canvas = ImageCanvas()
        self.canvas.set_region_list(self.regions)
        self.zoom_label = QLabel("")
        self.fit_button = QToolButton(text="Fit")
        self.fit_button.setToolTip("Fit the photo in the view (Ctrl+0)")
        self.actual_button = QToolButton(text="100%")
        self.actual_button.setToolTip("One photo pixel per screen pixel (Ctrl+1)")
        self.zoom_in_button = QToolButton(text="+")
        self.zoom_in_button.setToolTip("Zoom in (Ctrl+=, or the mouse wheel)")
        self.zoom_out_button = QToolButton(text="−")
        self.zoom_out_button.setToolTip("Zoom out (Ctrl+-)")
        hint = QLabel("Drag: draw a region · Del: delete · right-drag: pan · wheel: zoom")
        hint.setStyleSheet("color: palette(mid);")
        hint.setToolTip("Drag on the photo: draw a region · drag a region: move it · its edges: "
                        "resize · Del: delete the selected one · right-drag or Space+drag: pan · "
                        "wheel: zoom")
        self.hint_label = hint
        # The hint may be cut on a narrow window; it must not set the window's minimum width.
        hint.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 2, 4, 2)
        bar.addWidget(hint, 1)
        bar.addWidget(self.zoom_label)
        for button in (self.zoom_out_button, self.zoom_in_button, self.fit_button, self.actual_button):
            bar.addWidget(button)
        input_page = QWidget()
        input_layout = QVBoxLayout(input_page)
        input_layout.setContentsMargins(0, 0, 0, 0)
        input_layout.setSpacing(2)
        input_layout.addLayout(bar)
        input_layout.addWidget(self.canvas, 1)

        self.compare = CompareView()
        self.batch_panel = BatchPanel()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(input_page, "Input && regions")
        self.tabs.addTab(self.compare, "Compare")
        self.tabs.addTab(self.batch_panel, "Batch")
        # with_training=False leaves the tab out (quick windows in tests and scripts).
        self.training_tab: TrainingTab | None = None
        self.training_page: QWidget | None = None
        if with_training:
            runs_root = config_dir() / "runs" if _config_overridden() else None
            self.training_tab = TrainingTab(settings=self.settings.training, runs_root=runs_root)
            # In a scroll area, so its charts do not set the whole window's minimum width.
            training_scroll = QScrollArea()
            training_scroll.setWidget(self.training_tab)
            training_scroll.setWidgetResizable(True)
            training_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            self.training_page = training_scroll
            self.tabs.addTab(training_scroll, "Training")
        self.setCentralWidget(self.tabs)

        # Left: queue above regions.
        self.queue_panel = QueuePanel(self.queue)
        self.region_panel = RegionPanel()
        self.region_panel.set_region_list(self.regions)
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self._titled("Images", self.queue_panel))
        left.addWidget(self._titled("Support regions", self.region_panel))
        left.setSizes([300, 260])
        self.left_dock = QDockWidget("Queue and regions", self)
        self.left_dock.setObjectName("left_dock")
        self.left_dock.setWidget(left)
        self.left_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.left_dock)

        self.settings_panel = SettingsPanel()
        scroll = QScrollArea()
        scroll.setWidget(self.settings_panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.settings_panel.sizeHint().width() + 24)
        self.right_dock = QDockWidget("Settings", self)
        self.right_dock.setObjectName("right_dock")
        self.right_dock.setWidget(scroll)
        self.right_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.right_dock)

        self.log_panel = LogPanel()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.resizeDocks([self.log_dock], [110], Qt.Orientation.Vertical)
        self.statusBar().showMessage("Open a photo to begin (Ctrl+O).")

    @staticmethod
    def _titled(title: str, widget: QWidget) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(4, 4, 4, 4)
        label = QLabel(f"<b>{title}</b>")
        layout.addWidget(label)
        layout.addWidget(widget, 1)
        return box

    def _action(self, text: str, slot: Any, shortcut: QKeySequence | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.open_action = self._action("&Open images…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.open_folder_action = self._action("Open &folder…", self.open_folder_dialog, "Ctrl+Shift+O")
        self.paste_action = self._action("&Paste image", self.paste, QKeySequence.StandardKey.Paste)
        self.save_action = self._action("&Save result…", self.save_result_dialog, QKeySequence.StandardKey.Save)
        self.save_compare_action = self._action("Save &comparison…", self.save_comparison_dialog,
                                                "Ctrl+Shift+S")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.run_action = self._action("&Run", self.run_upscale, "Ctrl+R", "Upscale the current image")
        self.run_action.setShortcuts([QKeySequence("Ctrl+R"), QKeySequence("F5")])
        self.cancel_action = self._action("&Cancel", self.cancel_job, "Esc", "Stop the running job")
        self.cancel_action.setEnabled(False)
        self.batch_action = self._action("Run &batch", self.start_batch, "Ctrl+B")
        self.zoom_in_action = self._action("Zoom &in", self.zoom_in, QKeySequence.StandardKey.ZoomIn)
        self.zoom_in_action.setShortcuts([QKeySequence("Ctrl++"), QKeySequence("Ctrl+=")])
        self.zoom_out_action = self._action("Zoom &out", self.zoom_out, QKeySequence.StandardKey.ZoomOut)
        self.fit_action = self._action("&Fit", self.zoom_fit, "Ctrl+0")
        self.actual_action = self._action("&100%", self.zoom_actual, "Ctrl+1")

        menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.open_folder_action, self.paste_action):
            menu.addAction(action)
        self.recent_menu = menu.addMenu("Open &recent")
        menu.addSeparator()
        menu.addAction(self.save_action)
        menu.addAction(self.save_compare_action)
        menu.addSeparator()
        menu.addAction(self.quit_action)
        run_menu = self.menuBar().addMenu("&Run")
        for action in (self.run_action, self.cancel_action, self.batch_action):
            run_menu.addAction(action)
        view = self.menuBar().addMenu("&View")
        for action in (self.zoom_in_action, self.zoom_out_action, self.fit_action, self.actual_action):
            view.addAction(action)
        view.addSeparator()
        view.addAction(self.log_dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About CMDSR Studio", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)
        self._update_save_actions()

    def about_text(self) -> str:
        """Version, the shipped model's card and the licences, for the About box."""
        from cmdsr_app.about import about_html

        return about_html()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, f"About {APP_TITLE}", self.about_text(),
                          QMessageBox.StandardButton.Ok, self)
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        box.open()
        self.about_box = box

    def _attach_logging(self) -> None:
        self._log_handler.bridge.record.connect(self.log_panel.append)
        for name in ("engine", "cmdsr_app"):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET or logger.level > logging.INFO:
                logger.setLevel(logging.INFO)
            logger.addHandler(self._log_handler)

    def _detach_logging(self) -> None:
        for name in ("engine", "cmdsr_app"):
            logging.getLogger(name).removeHandler(self._log_handler)

    # ================================================================== wiring
    def _wire(self) -> None:
        """Every signal connection between panels, state and jobs."""
        q, sp = self.queue, self.settings_panel
        self.fit_button.clicked.connect(self.canvas.fit)
        self.actual_button.clicked.connect(self.canvas.actual_size)
        self.zoom_in_button.clicked.connect(self.canvas.zoom_in)
        self.zoom_out_button.clicked.connect(self.canvas.zoom_out)
        q.current_changed.connect(self._on_current_changed)
        q.added.connect(self._on_entries_added)
        self.queue_panel.currentRequested.connect(self.show_entry)
        self.queue_panel.removeRequested.connect(self.remove_entry)
        self.regions.changed.connect(self._on_regions_changed)
        self.region_panel.previewRequested.connect(self.preview_patches)
        self.canvas.viewChanged.connect(self._on_canvas_view)
        self.compare.sourceRequested.connect(self.compute_source)
        self.compare.altSupportChanged.connect(self._on_alt_support)
        sp.runRequested.connect(self.run_upscale)
        sp.cancelRequested.connect(self.cancel_job)
        sp.modelChosen.connect(self.choose_model)
        sp.browseModelRequested.connect(self.browse_model)
        sp.settingsChanged.connect(self._read_panel_settings)
        self.batch_panel.startRequested.connect(self.start_batch)
        self.batch_panel.browseRequested.connect(self._browse_batch_folder)
        self._batch_bridge.item.connect(self._on_batch_item)
        self._batch_bridge.progress.connect(self._on_batch_progress)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.heavy.busyChanged.connect(self._on_heavy_busy)
        self.heavy.progress.connect(self._on_tile_progress)
        if self.training_tab is not None:
            tab = self.training_tab
            tab.modelChosen.connect(self.use_trained_model)
            tab.logMessage.connect(lambda text: log.info("training: %s", text))
            tab.errorOccurred.connect(lambda text: self.show_error("Training failed", text))
            tab.runningChanged.connect(self._on_training_running)

    def _restore(self) -> None:
        s = self.settings
        from engine import available_devices

        try:
            devices = available_devices()
        except Exception:  # a broken GPU driver must not stop the app from opening
            log.warning("could not list devices", exc_info=True)
            devices = ["cpu"]
        self.settings_panel.set_devices(devices, s.device)
        self.settings_panel.apply(tile=s.tile, support_mode=s.support_mode, seed=s.seed,
                                  fmt=s.output_format, quality=s.quality, bit_depth=s.bit_depth)
        self.compare.set_alt_support(s.alt_support_mode)
        self.batch_panel.folder_edit.setText(s.batch_output_dir)
        self.batch_panel.pattern_edit.setText(s.batch_pattern)
        self._refresh_model_choices()
        self._refresh_recent_menu()
        self._check_baseline()
        if s.window_geometry:
            self.restoreGeometry(QByteArray.fromHex(s.window_geometry.encode()))
        else:
            self.resize(1400, 880)
        if s.window_state:
            self.restoreState(QByteArray.fromHex(s.window_state.encode()))
        # The state may have been saved while the Training tab hid the side panels.
        self._on_tab_changed(self.tabs.currentIndex())
        # Describe the chosen model without blocking the start-up.
        self.choose_model(s.model_path, quiet=True)

    def _refresh_model_choices(self) -> None:
        from engine import default_model_path

        default = default_model_path()
        label = "Shipped default (x4)" if default.exists() else "Shipped default (missing)"
        self.settings_panel.set_model_choices(label, self.settings.recent_models, self.settings.model_path)

    def _check_baseline(self) -> None:
        from engine import default_baseline_path

        path = default_baseline_path()
        if path.exists():
            self.compare.set_source_enabled("baseline", True)
        else:
            self.compare.set_source_enabled(
                "baseline", False, f"no baseline model is installed ({path.name} is missing)"
            )

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_files:
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: self.open_paths([p]))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    # ================================================================== errors
    def show_error(self, title: str, message: str) -> None:
        """The one way failures reach the user: a dialog and a log entry."""
        log.error("%s: %s", title, message)
        self.last_error = (title, message)
        self.statusBar().showMessage(f"{title}: {message}", 10000)
        if self._closing:
            return
        if self.error_dialog is not None:
            self.error_dialog.close()
        dialog = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        dialog.setInformativeText("Details are in the log panel (View → Log).")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.open()  # not exec(): the event loop and running jobs carry on
        self.error_dialog = dialog
        self.errorShown.emit(message)

    # ================================================================== opening
    def open_dialog(self) -> None:
        from engine import SUPPORTED_READ_SUFFIXES

        patterns = " ".join(f"*{s}" for s in SUPPORTED_READ_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images", self.settings.last_dir,
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.settings.last_dir)
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: Sequence[str | Path]) -> list[int]:
        """Add files (and the images inside folders) to the queue and show the first one."""
        from engine import is_supported_image

        files: list[Path] = []
        for p in paths:
            path = Path(p).expanduser().absolute()  # recent files must work from any folder
            if path.is_dir():
                found = sorted(f for f in path.rglob("*") if f.is_file() and is_supported_image(f))
                if not found:
                    self.show_error("No images found", f"{path} holds no PNG, JPEG, WebP, TIFF or BMP files.")
                    continue
                files += found[:MAX_FOLDER_FILES]
                self.settings.add_recent_file(path)  # the folder, not each file in it
                self._refresh_recent_menu()
            else:
                files.append(path)
                if not self._is_pasted(path):
                    self._recent_candidates.add(path)  # listed once it opens
        if not files:
            return []
        indices = self.queue.add_paths(files)
        if not self._is_pasted(files[0]):
            self.settings.last_dir = str(files[0].parent)
        if indices:
            self.show_entry(indices[0])
        return indices

    @staticmethod
    def _is_pasted(path: Path) -> bool:
        """A file the app made from pasted pixels (kept in its own config folder)."""
        return path.parent == config_dir() / "pasted"

    def paste(self) -> None:
        """Paste image files or pixels from the clipboard (pixels are saved as a PNG first)."""
        mime = QGuiApplication.clipboard().mimeData()
        if mime is not None and mime.hasUrls():
            local = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
            if local:
                self.open_paths(local)
                return
        image = QGuiApplication.clipboard().image()
        if image.isNull():
            self.show_error("Nothing to paste", "The clipboard holds no image or image file.")
            return
        folder = config_dir() / "pasted"
        target = folder / time.strftime("pasted-%Y%m%d-%H%M%S.png")

        def save(_progress: Any, _cancel: threading.Event) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            if not image.save(str(target), "PNG"):
                raise OSError(f"could not save the pasted image to {target}")
            return target

        self.light.submit("paste", save, on_finished=lambda p: self.open_paths([p]),
                          on_failed=lambda m: self.show_error("Cannot paste", m))

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

    def _on_entries_added(self, first: int, count: int) -> None:
        for index in range(first, first + count):
            path = self.queue[index].path
            remembered = self.settings.regions_for(path)
            if remembered and not self.queue[index].regions:
                self.queue[index].regions = [Region(*r) for r in remembered]
            self.thumbs.submit(
                "thumbnail", lambda _p, _c, path=path: read_thumbnail(path),
                on_finished=lambda image, path=path: self._set_thumbnail(path, image),
            )

    def _set_thumbnail(self, path: Path, image: QImage) -> None:
        index = self.queue.index_of(path)
        if index is not None:
            self.queue_panel.set_thumbnail(index, image)

    def remove_entry(self, index: int) -> None:
        if self.heavy.busy and self.heavy.current_name == "batch":
            self.statusBar().showMessage("Wait for the batch to finish before removing images.", 5000)
            return
        path = self.queue[index].path
        if self.heavy.busy and self._upscaling == path:
            # Its result would have nowhere to go: stop the work now, not minutes later.
            self.heavy.cancel()
            self.statusBar().showMessage(f"Stopped upscaling {path.name}: it was removed.", 5000)
        self._stash.pop(path, None)
        was_current = self.queue.current == index
        self.queue.remove(index)
        if was_current and len(self.queue):
            self.show_entry(min(index, len(self.queue) - 1))

    # ================================================================== showing an entry
    def show_entry(self, index: int) -> None:
        self.queue.set_current(index)

    def _on_current_changed(self, index: int | None) -> None:
        entry = self.queue.current_entry
        self._image = None
        self._image_path = None
        self._outcomes.clear()
        self.canvas.set_patch_boxes([])
        self._update_save_actions()
        if entry is None:
            self.regions.set_context((0, 0))
            self.regions.set_regions([])
            self.canvas.set_image(None)
            self.canvas.set_placeholder(EMPTY_PLACEHOLDER)
            self.compare.set_input(None, 1)
            self.setWindowTitle(APP_TITLE)
            return
        path = entry.path
        if entry.load_error:
            # Said once, when it failed; showing it again only names the reason.
            self.regions.set_context((0, 0))
            self.regions.set_regions([])
            self.canvas.set_image(None)
            self.canvas.set_placeholder(f"Cannot open {path.name}: {entry.load_error}")
            self.compare.set_input(None, 1)
            self.setWindowTitle(f"{path.name} — {APP_TITLE}")
            return
        # Until the photo is read, no regions are shown (and edits belong to no entry).
        self.regions.set_context((0, 0))
        self.regions.set_regions([])
        self.canvas.set_image(None)
        self.canvas.set_placeholder(f"Loading {path.name}…")
        self.compare.set_input(None, 1)
        if entry.status not in (EntryStatus.DONE, EntryStatus.FAILED):
            self.queue.set_status(index, EntryStatus.LOADING)  # type: ignore[arg-type]

        def load(_progress: Any, _cancel: threading.Event) -> tuple[Any, QImage]:
            from engine import read_image

            image = read_image(path)
            return image, to_qimage(image.pixels)

        self.light.submit("load", load, on_finished=lambda r: self._on_loaded(path, r),
                          on_failed=lambda m: self._on_load_failed(path, m))

    def _on_loaded(self, path: Path, result: tuple[Any, QImage]) -> None:
        entry = self.queue.current_entry
        if entry is None or entry.path != path:
            return  # the user moved on
        image, qimage = result
        index = self.queue.current
        assert index is not None
        if entry.status in (EntryStatus.LOADING, EntryStatus.PENDING):
            self.queue.set_status(index, EntryStatus.READY)
        self.canvas.set_image(qimage)
        # Judge the regions against this image before showing them; only then do region
        # edits count as this entry's (see _on_regions_changed).
        self.regions.set_context((image.height, image.width), PATCH_SIZE)
        self.regions.set_regions(entry.regions)
        self._image, self._image_path = image, path
        # "My regions" follows the photo: on for one with regions, Auto for one without.
        if entry.regions and self.settings_panel.support_mode != "regions":
            self.settings_panel.set_support_mode("regions")
        elif not entry.regions and self.settings_panel.support_mode == "regions":
            self.settings_panel.set_support_mode("auto")
        self.canvas.set_patch_boxes(entry.preview_boxes)
        self.compare.set_input(qimage, self._scale())
        for method, (outcome, result) in self._stash.get(path, {}).items():
            self._outcomes[method] = outcome
            self.compare.set_result(method, result)
        self.setWindowTitle(f"{path.name} — {APP_TITLE}")
        self.statusBar().showMessage(f"{path.name}: {image.width}×{image.height}", 5000)
        if path in self._recent_candidates:
            self._recent_candidates.discard(path)
            self.settings.add_recent_file(path)
            self._refresh_recent_menu()
        self._update_save_actions()
        self._on_canvas_view(self.canvas.zoom)
        self.imageLoaded.emit(str(path))

    def _on_load_failed(self, path: Path, message: str) -> None:
        index = self.queue.index_of(path)
        if index is not None:
            self.queue[index].load_error = message
            self.queue.set_status(index, EntryStatus.FAILED, message)
        if self.queue.current_entry is not None and self.queue.current_entry.path == path:
            self.canvas.set_placeholder(f"Cannot open {path.name}.")
        self.show_error("Cannot open image", message)

    def _on_regions_changed(self) -> None:
        entry = self.queue.current_entry
        if entry is None or self._image_path != entry.path:
            return
        entry.regions = self.regions.regions
        self.settings.remember_regions(entry.path, [r.as_tuple() for r in entry.regions])
        if self.regions.regions and self.settings_panel.support_mode != "regions":
            # Drawing a region says "use these": switch the support choice to match.
            self.settings_panel.set_support_mode("regions")
        elif not self.regions.regions and self.settings_panel.support_mode == "regions":
            # The last region is gone: let the engine choose rather than refuse to run.
            self.settings_panel.set_support_mode("auto")

    def _on_tab_changed(self, _index: int) -> None:
        # The queue, regions and upscale settings mean nothing to training: give it the room.
        training = self.training_tab is not None and self.tabs.currentWidget() is self.training_page
        self.left_dock.setVisible(not training)
        self.right_dock.setVisible(not training)

    def _on_canvas_view(self, zoom: float, *_: Any) -> None:
        self.zoom_label.setText(f"{zoom * 100:.0f}%")

    # ================================================================== model
    def _scale(self) -> int:
        return self._model_info.scale if self._model_info is not None else 4

    def _model_path(self) -> Path | None:
        from engine import default_model_path

        if self.settings.model_path:
            return Path(self.settings.model_path)
        default = default_model_path()
        return default if default.exists() else None

    def browse_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a model", self.settings.last_dir,
                                              "Checkpoints (*.pt *.pth *.ckpt);;All files (*)")
        if path:
            self.choose_model(path)

    def use_trained_model(self, path: str) -> None:
        """A checkpoint from the Training tab becomes the model for upscaling."""
        self.choose_model(path)
        self.statusBar().showMessage(f"Using the trained model {Path(path).name}", 5000)

    def choose_model(self, path: str, *, quiet: bool = False) -> None:
        """Check a model in the background and select it if it loads; on failure say why and
        keep the previous one. ``path`` "" means the shipped default."""
        from engine import default_model_path

        previous = self.settings.model_path
        target = Path(path) if path else default_model_path()
        if not path and not target.exists():
            self.settings.model_path = ""
            self._model_info = None
            self.settings_panel.show_model("")
            self.settings_panel.set_model_info(
                f"The shipped model is missing ({target.name}). Choose a checkpoint.", error=True
            )
            self.settings_panel.set_model_scale(None)
            return
        self.settings_panel.set_model_info(f"Checking {target.name}…")

        def accept(info: ModelInfo) -> None:
            self.settings.model_path = path
            if path:
                self.settings.add_recent_model(path)
            self._model_info = info
            self.settings_panel.show_model(path)
            self.settings_panel.set_model_info(info.describe())
            self.settings_panel.set_model_scale(info.scale)
            if self._image is not None and self.compare.scale != info.scale:
                self.compare.set_scale(info.scale)
            self._stash.clear()  # results of another model
            if self._image is not None:
                self._outcomes.clear()
                self.compare.set_input(self.canvas.image(), info.scale)
            self.modelReady.emit(path)

        def reject(message: str) -> None:
            if quiet and path == previous and path:
                # The remembered model is gone or broken: fall back to the default quietly.
                self.settings.model_path = ""
                self.settings_panel.show_model("")
                self.settings_panel.set_model_info(f"{message} Using the shipped default.", error=True)
                if default_model_path().exists():
                    self.choose_model("", quiet=True)
                return
            self.settings_panel.show_model(previous)
            still = Path(previous).name if previous else "the shipped default"
            self.settings_panel.set_model_info(f"Could not load {target.name}; still using {still}.",
                                               error=True)
            self.show_error("Cannot use this model", message)

        self.light.submit("model", lambda _p, _c: inspect_model(target, self.cache),
                          on_finished=accept, on_failed=reject)

    def _on_training_running(self, running: bool) -> None:
        self._training_running = running

    # ================================================================== settings
    def _read_panel_settings(self) -> None:
        s, p = self.settings, self.settings_panel
        s.device, s.tile, s.support_mode, s.seed = p.device, p.tile, p.support_mode, p.seed
        s.output_format, s.quality, s.bit_depth = p.output_format, p.quality, p.bit_depth

    def _on_alt_support(self, mode: str) -> None:
        self.settings.alt_support_mode = mode
        self._outcomes.pop("cmdsr_alt", None)
        for stash in self._stash.values():
            stash.pop("cmdsr_alt", None)

    def run_settings(self) -> RunSettings:
        from engine import default_baseline_path

        baseline = default_baseline_path()
        return RunSettings(
            model_path=self._model_path(),
            baseline_path=baseline if baseline.exists() else None,
            device=self.settings_panel.device,
            tile=self.settings_panel.tile,
        )

    def support_choice(self, mode: str | None = None) -> SupportChoice:
        mode = mode or self.settings_panel.support_mode
        regions = tuple(r.as_tuple() for r in self.regions.valid_regions()) if mode == "regions" else ()
        return SupportChoice(mode, regions, self.settings_panel.seed)

    def _regions_problem(self, mode: str) -> str | None:
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

    # ================================================================== patches preview
    def preview_patches(self, mode: str) -> None:
        if self._image is None:
            self.show_error("No photo", "Open a photo first (Ctrl+O).")
            return
        problem = self._regions_problem(mode)
        if problem:
            self.show_error("Cannot preview patches", problem)
            return
        count = self._model_info.support_size if self._model_info else 20
        pixels, choice, path = self._image.pixels, self.support_choice(mode), self._image_path

        def done(boxes: list[tuple[int, int, int, int]]) -> None:
            entry = self.queue.current_entry
            if entry is None or entry.path != path:
                return
            entry.preview_boxes, entry.preview_mode = boxes, mode
            self.canvas.set_patch_boxes(boxes)
            what = {"auto": "textured patches picked by Auto", "random": "random patches",
                    "regions": "patches from your regions"}[mode]
            self.statusBar().showMessage(f"{len(boxes)} {what} (yellow boxes)", 5000)
            self.previewReady.emit()

        self.light.submit("preview", lambda _p, _c: preview_support(pixels, choice, count),
                          on_finished=done, on_failed=lambda m: self.show_error("Cannot pick patches", m))

    # ================================================================== running
    def run_upscale(self) -> None:
        """Upscale the shown photo with CMDSR (and bicubic for the comparison)."""
        if self.heavy.busy:
            self.statusBar().showMessage("A job is already running.", 4000)
            return
        if self._image is None:
            entry = self.queue.current_entry
            if entry is not None and entry.load_error:
                self.show_error("Cannot upscale this image",
                                f"{entry.name} could not be opened: {entry.load_error}")
            elif entry is not None:
                self.statusBar().showMessage(f"{entry.name} is still loading; press Run again "
                                             "in a moment.", 5000)
            else:
                self.show_error("Nothing to upscale", "Open a photo first (Ctrl+O), then press Run.")
            return
        mode = self.settings_panel.support_mode
        problem = self._regions_problem(mode)
        if problem:
            self.show_error("Cannot use the support regions", problem)
            return
        index = self.queue.current
        assert index is not None
        self.queue.set_status(index, EntryStatus.RUNNING)
        self.compare.set_pending("cmdsr", "Upscaling…")
        # Only CMDSR: other sources (bicubic, baseline...) are computed when a side shows them,
        # which keeps a big photo's memory to one result.
        self._submit_methods(["cmdsr"], index)

    def compute_source(self, key: str) -> None:
        """Compute a comparison source the user picked (bicubic, baseline, other support)."""
        if self._image is None or key not in SOURCES or key in ("input", "cmdsr"):
            return
        if key in self._outcomes:
            return
        if key == "cmdsr_alt":
            problem = self._regions_problem(self.compare.alt_support)
            if problem:
                self.compare.set_pending(key, problem)
                return
        self.compare.set_pending(key, f"Computing {SOURCES[key]}…")
        self._submit_methods([key], None)

    def _submit_methods(self, methods: list[str], index: int | None) -> None:
        image, path = self._image, self._image_path
        settings = self.run_settings()
        choices = {m: self.support_choice() for m in methods}
        if "cmdsr_alt" in methods:
            choices["cmdsr_alt"] = self.support_choice(self.compare.alt_support)
        self._eta.restart()
        self._upscaling = path

        def work(progress: Any, cancel: threading.Event) -> list[tuple[UpscaleOutcome, QImage]]:
            out = []
            for method in methods:
                engine_method = "cmdsr" if method == "cmdsr_alt" else method
                outcome = upscale_with(image, engine_method, settings, choices[method], self.cache,
                                       progress, cancel)
                outcome.method = method
                out.append((outcome, to_qimage(outcome.image.pixels)))
            return out

        # The queue may change while this runs (images removed, another one shown): find the
        # entry by its path when the job ends.
        tracks_status = index is not None

        def set_status(status: EntryStatus, message: str = "") -> None:
            where = self.queue.index_of(path) if tracks_status and path is not None else None
            if where is not None:
                self.queue.set_status(where, status, message)

        def finished(results: list[tuple[UpscaleOutcome, QImage]]) -> None:
            assert path is not None
            self._upscaling = None
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
            detail = f"{cmdsr.seconds:.1f} s on {cmdsr.device}" if cmdsr else ""
            set_status(EntryStatus.DONE, detail)
            if self._image_path != path:
                return  # kept for when the user comes back to this photo
            for outcome, qimage in results:
                self._outcomes[outcome.method] = outcome
                self.compare.set_result(outcome.method, qimage)
                if outcome.method == "cmdsr":
                    self.canvas.set_patch_boxes(outcome.boxes)
            if tracks_status:
                self.tabs.setCurrentWidget(self.compare)
                self.statusBar().showMessage(f"Done: {detail}", 8000)
            self._update_save_actions()
            for outcome, _ in results:
                self.upscaleFinished.emit(outcome.method)
            for key in self.compare.missing_sources():
                self.compute_source(key)

        def failed(message: str) -> None:
            self._upscaling = None
            for method in methods:
                self.compare.clear_pending(method)
            set_status(EntryStatus.FAILED, message)
            self.show_error("Upscaling failed", message)

        def cancelled() -> None:
            self._upscaling = None
            for method in methods:
                self.compare.clear_pending(method)
            set_status(EntryStatus.CANCELLED)
            self.statusBar().showMessage("Cancelled.", 5000)
            self.jobCancelled.emit("upscale")

        self.heavy.submit("upscale", work, on_finished=finished, on_failed=failed,
                          on_cancelled=cancelled)

    def _trim_stash(self) -> None:
        """Forget the oldest photos' results beyond the count or pixel budget (the newest
        photo's results are always kept)."""

        def pixels() -> int:
            return sum(q.width() * q.height() for stash in self._stash.values() for _, q in stash.values())

        while len(self._stash) > 1 and (len(self._stash) > RESULTS_KEPT or pixels() > RESULTS_PIXEL_BUDGET):
            self._stash.popitem(last=False)

    def cancel_job(self) -> None:
        if self.heavy.busy:
            self.heavy.cancel()
            self.statusBar().showMessage("Cancelling…")

    def _on_heavy_busy(self, busy: bool) -> None:
        self.settings_panel.set_running(busy)
        self.cancel_action.setEnabled(busy)
        self.run_action.setEnabled(not busy)
        self.batch_action.setEnabled(not busy)
        self.batch_panel.start_button.setEnabled(not busy)
        self.settings_panel.show_progress(busy)
        if busy:
            self._eta.restart()

    def _on_tile_progress(self, done: int, total: int) -> None:
        if self.heavy.current_name == "batch":
            return  # the batch reports through its own bridge
        bar = self.settings_panel.tile_bar
        if total > 0:
            bar.setRange(0, total)
            bar.setValue(done)
            remaining = self._eta.remaining(done / total)
            self.settings_panel.eta_label.setText(eta_text(remaining, self._eta.elapsed()))

    # ================================================================== batch
    def _browse_batch_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.batch_panel.folder)
        if folder:
            self.batch_panel.folder_edit.setText(folder)

    def start_batch(self) -> None:
        """Apply the current settings to the whole queue; failures are listed per image."""
        if self.heavy.busy:
            self.statusBar().showMessage("A job is already running.", 4000)
            return
        if not len(self.queue):
            self.show_error("Empty queue", "Add images first (Ctrl+O, a folder, or drop files).")
            return
        folder = self.batch_panel.folder
        if not folder:
            self.show_error("No output folder", "Choose the folder the upscaled images go to.")
            return
        pattern = self.batch_panel.pattern or "{stem}_x{scale}"
        try:
            output_name(pattern, Path("photo.png"), scale=4, method="cmdsr", ext="png", index=1)
        except ValueError as exc:
            self.show_error("Bad file-name pattern", str(exc))
            return
        self.settings.batch_output_dir, self.settings.batch_pattern = folder, pattern
        fmt, bit_depth = self.settings_panel.output_format, self.settings_panel.bit_depth
        output = BatchOutput(Path(folder), pattern, fmt, self.settings_panel.quality,
                             bit_depth or None, self.batch_panel.overwrite_check.isChecked())
        paths = [entry.path for entry in self.queue]
        # Regions too small for a patch are left out; the engine checks the rest against
        # each photo and lists a photo whose regions lie outside it as failed.
        regions = {
            entry.path: tuple(r.as_tuple() for r in entry.regions
                              if r.w >= PATCH_SIZE and r.h >= PATCH_SIZE)
            for entry in self.queue if entry.regions
        }
        clash = batch_clash(paths, output, self._scale())
        if clash is not None:
            self.show_error("Two images would write the same file", clash)
            return
        settings, choice = self.run_settings(), self.support_choice()
        self._batch_paths = paths
        self.batch_panel.clear_results(paths)
        self.tabs.setCurrentWidget(self.batch_panel)
        bar = self.settings_panel.image_bar
        bar.setRange(0, len(paths))
        bar.setValue(0)
        for i in range(len(self.queue)):
            self.queue.set_status(i, EntryStatus.PENDING)
        bridge = self._batch_bridge

        def work(_progress: Any, cancel: threading.Event) -> BatchReport:
            return run_batch(paths, settings, choice, regions, output, self.cache,
                             progress=bridge.progress.emit, cancel=cancel,
                             on_item=bridge.item.emit)

        def finished(report: BatchReport) -> None:
            self.batch_panel.summary_label.setText(report.summary())
            self.statusBar().showMessage(f"Batch: {report.summary()}", 10000)
            self.batchFinished.emit(report)

        def cancelled() -> None:
            self.batch_panel.summary_label.setText("Batch cancelled; finished images are kept.")
            self.batch_panel.mark_unfinished()
            for i, entry in enumerate(self.queue):
                if entry.status in (EntryStatus.PENDING, EntryStatus.RUNNING):
                    self.queue.set_status(i, EntryStatus.CANCELLED)
            self.jobCancelled.emit("batch")

        self.heavy.submit("batch", work, on_finished=finished, on_cancelled=cancelled,
                          on_failed=lambda m: self.show_error("Batch failed", m))

    @Slot(int, int, int, int)
    def _on_batch_progress(self, image_index: int, count: int, done: int, total: int) -> None:
        from cmdsr_app.state import overall_fraction

        p = self.settings_panel
        p.image_bar.setRange(0, count)
        p.image_bar.setValue(min(image_index, count))
        if total > 0:
            p.tile_bar.setRange(0, total)
            p.tile_bar.setValue(done)
        remaining = self._eta.remaining(overall_fraction(image_index, count, done, total))
        p.eta_label.setText(f"Image {min(image_index + 1, count)} of {count} · "
                            f"{eta_text(remaining, self._eta.elapsed())}")
        if total > 0 and done == 0 and image_index < len(self._batch_paths):
            index = self.queue.index_of(self._batch_paths[image_index])
            if index is not None:
                self.queue.set_status(index, EntryStatus.RUNNING)

    @Slot(int, object)
    def _on_batch_item(self, row: int, item: BatchItem) -> None:
        if item.skipped:
            status, detail = "skipped", f"already done: {item.output}"
        elif item.ok:
            status, detail = "done", str(item.output)
        else:
            status, detail = "failed", item.error or "failed"
        self.batch_panel.set_result(row, status, detail)
        index = self.queue.index_of(item.path)
        if index is not None:
            self.queue.set_status(index, EntryStatus.DONE if item.ok else EntryStatus.FAILED,
                                  "" if item.ok else detail)
            if item.ok:
                self.queue[index].output_path = item.output

    # ================================================================== saving
    def _update_save_actions(self) -> None:
        has_result = "cmdsr" in self._outcomes
        self.save_action.setEnabled(has_result)
        self.save_compare_action.setEnabled(has_result)

    def save_result_dialog(self) -> None:
        if "cmdsr" not in self._outcomes:
            self.show_error("Nothing to save", "Run an upscale first (Ctrl+R).")
            return
        from engine import format_suffix

        fmt = self.settings_panel.output_format
        stem = self._image_path.stem if self._image_path else "result"
        start = self._save_folder() / f"{stem}_x{self._scale()}{format_suffix(fmt)}"
        path, _ = QFileDialog.getSaveFileName(self, "Save result", str(start),
                                              "Images (*.png *.jpg *.webp *.tif)")
        if path:
            self.save_result(path)

    def _save_folder(self) -> Path:
        """Where a save dialog opens: the last save folder, else the photo's own folder (a
        pasted photo's is the app's config folder: the Pictures folder instead)."""
        if self.settings.last_save_dir and Path(self.settings.last_save_dir).is_dir():
            return Path(self.settings.last_save_dir)
        if self._image_path is not None and not self._is_pasted(self._image_path):
            return self._image_path.parent
        pictures = Path.home() / "Pictures"
        return pictures if pictures.is_dir() else Path.home()

    def save_result(self, path: str | Path, method: str = "cmdsr") -> None:
        """Write a result (format from the suffix, else the panel's; metadata kept)."""
        outcome = self._outcomes.get(method)
        if outcome is None:
            self.show_error("Nothing to save", "Run an upscale first (Ctrl+R).")
            return
        self._write(outcome.image, Path(path), "Save result")

    def save_comparison_dialog(self) -> None:
        stem = self._image_path.stem if self._image_path else "comparison"
        start = self._save_folder() / f"{stem}_compare.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save comparison", str(start),
                                              "Images (*.png *.jpg *.webp *.tif)")
        if path:
            self.save_comparison(path)

    def save_comparison(self, path: str | Path) -> None:
        """The two sources shown in the compare view, side by side at output size."""
        if self._image is None:
            self.show_error("Nothing to save", "Open a photo and run an upscale first.")
            return
        arrays = []
        for key in (self.compare.left_source, self.compare.right_source):
            if key == "input":
                arrays.append(nearest_upscale(self._image.pixels, self._scale()))
            elif key in self._outcomes:
                arrays.append(self._outcomes[key].image.pixels)
            else:
                self.show_error("Nothing to compare yet",
                                f"{SOURCES[key]} has not been computed; run or pick it first.")
                return
        from dataclasses import replace

        composite = replace(self._image, pixels=side_by_side(arrays[0], arrays[1]), alpha=None)
        self._write(composite, Path(path), "Save comparison")

    def _write(self, image: Any, path: Path, title: str) -> None:
        from engine import normalise_format, write_image

        fmt = path.suffix.lstrip(".") or self.settings_panel.output_format
        try:
            fmt = normalise_format(fmt)
        except Exception:
            fmt = self.settings_panel.output_format
            path = path.with_suffix(f".{fmt}")
        quality = self.settings_panel.quality
        depth = self.settings_panel.bit_depth or None
        if depth == 16 and fmt not in ("png", "tif"):
            depth = None

        def work(_progress: Any, _cancel: threading.Event) -> Path:
            # The save dialog already asked before replacing a file.
            return write_image(image, path, fmt=fmt, quality=quality, bit_depth=depth, overwrite=True)

        def done(written: Path) -> None:
            self.settings.last_save_dir = str(written.parent)
            self.statusBar().showMessage(f"Saved {written}", 8000)
            log.info("saved %s", written)
            self.saved.emit(str(written))

        self.heavy.submit("save", work, on_finished=done, on_failed=lambda m: self.show_error(title, m))

    # ================================================================== zoom
    def _active_view(self) -> Any:
        return self.compare if self.tabs.currentWidget() is self.compare else self.canvas

    def zoom_in(self) -> None:
        self._active_view().zoom_in()

    def zoom_out(self) -> None:
        self._active_view().zoom_out()

    def zoom_fit(self) -> None:
        self._active_view().fit()

    def zoom_actual(self) -> None:
        self._active_view().actual_size()

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
        for runner in (self.heavy, self.light, self.thumbs):
            runner.cancel()
        for runner in (self.heavy, self.light, self.thumbs):
            stopped = runner.wait(timeout_ms) and stopped
        if self.training_tab is not None:
            stopped = self.training_tab.shutdown(timeout_ms) and stopped
        return stopped

    def save_settings(self) -> None:
        self._read_panel_settings()
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
        self._detach_logging()
        if self.error_dialog is not None:
            self.error_dialog.close()
        event.accept()


def _config_overridden() -> bool:
    import os

    return bool(os.environ.get(CONFIG_ENV))


__all__ = ["MainWindow", "app_icon"]
