"""Opening photos (files, folders, drops, the clipboard), the queue, and the photo shown on
the input canvas with its support regions."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog, QWidget

from cmdsr_app.controllers.base import Controller
from cmdsr_app.imaging import read_thumbnail, to_qimage
from cmdsr_app.settings import AppSettings, config_dir
from cmdsr_app.state import EntryStatus, ImageQueue, Region, RegionList
from cmdsr_app.views.canvas import EMPTY_PLACEHOLDER, ImageCanvas
from cmdsr_app.views.compare import CompareView
from cmdsr_app.views.panels import QueuePanel
from cmdsr_app.views.settings_panel import SettingsPanel
from cmdsr_app.workers import JobRunner

PATCH_SIZE = 32
MAX_FOLDER_FILES = 5000


def is_pasted(path: Path) -> bool:
    """A file the app made from pasted pixels (kept in its own config folder)."""
    return path.parent == config_dir() / "pasted"


class PhotoController(Controller):
    """The queue and the shown photo. ``loaded(path)`` once a shown photo is read;
    ``cleared()`` when the shown photo goes (another is chosen, or none);
    ``titleChanged(name)`` ("" for none); ``recentChanged()`` when Open recent changes."""

    loaded = Signal(str)
    cleared = Signal()
    titleChanged = Signal(str)  # noqa: N815 (Qt signal naming)
    recentChanged = Signal()  # noqa: N815

    def __init__(self, *, settings: AppSettings, queue: ImageQueue, regions: RegionList,
                 canvas: ImageCanvas, compare: CompareView, queue_panel: QueuePanel,
                 settings_panel: SettingsPanel, light: JobRunner, thumbs: JobRunner,
                 scale: Callable[[], int], window: QWidget) -> None:
        super().__init__(window)
        self.settings, self.queue, self.regions = settings, queue, regions
        self.canvas, self.compare = canvas, compare
        self.queue_panel, self.panel = queue_panel, settings_panel
        self.light, self.thumbs = light, thumbs
        self._scale = scale
        self._window = window
        self.image: Any = None  # engine.io.imageio.Image of the shown entry, once read
        self.image_path: Path | None = None
        self._recent_candidates: set[Path] = set()  # opened by the user, not yet read
        queue.current_changed.connect(self._on_current_changed)
        queue.added.connect(self._on_entries_added)
        regions.changed.connect(self._on_regions_changed)

    # -- opening -----------------------------------------------------------------------------
    def start_folder(self) -> str:
        """Where Open starts: the folder last opened from, else Pictures, else home (never the
        program's own folder, the working directory of a launcher)."""
        last = self.settings.last_dir
        if last and Path(last).is_dir():
            return last
        pictures = Path.home() / "Pictures"
        return str(pictures if pictures.is_dir() else Path.home())

    def open_dialog(self) -> None:
        from engine.io.imageio import SUPPORTED_READ_SUFFIXES

        patterns = " ".join(f"*{s}" for s in SUPPORTED_READ_SUFFIXES)
        paths, _ = QFileDialog.getOpenFileNames(self._window, "Open images", self.start_folder(),
                                                f"Images ({patterns});;All files (*)")
        if paths:
            self.open_paths(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self._window, "Open a folder of images",
                                                  self.start_folder())
        if folder:
            self.open_paths([folder])

    def open_paths(self, paths: Sequence[str | Path]) -> list[int]:
        """Add files (and the images inside folders) to the queue and show the first one."""
        from engine.io.imageio import is_supported_image

        files: list[Path] = []
        for p in paths:
            path = Path(p).expanduser().absolute()  # recent files must work from any folder
            if path.is_dir():
                found = sorted(f for f in path.rglob("*") if f.is_file() and is_supported_image(f))
                if not found:
                    self.error.emit("No images found",
                                    f"{path} holds no PNG, JPEG, WebP, TIFF or BMP files.")
                    continue
                files += found[:MAX_FOLDER_FILES]
                self.settings.add_recent_file(path)  # the folder, not each file in it
                self.recentChanged.emit()
            else:
                files.append(path)
                if not is_pasted(path):
                    self._recent_candidates.add(path)  # listed once it opens
        if not files:
            return []
        indices = self.queue.add_paths(files)
        if not is_pasted(files[0]):
            self.settings.last_dir = str(files[0].parent)
        if indices:
            self.show_entry(indices[0])
        return indices

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
            self.error.emit("Nothing to paste", "The clipboard holds no image or image file.")
            return
        folder = config_dir() / "pasted"
        target = folder / time.strftime("pasted-%Y%m%d-%H%M%S.png")

        def save(_progress: Any, _cancel: threading.Event) -> Path:
            folder.mkdir(parents=True, exist_ok=True)
            if not image.save(str(target), "PNG"):
                raise OSError(f"could not save the pasted image to {target}")
            return target

        self.light.submit("paste", save, on_finished=lambda p: self.open_paths([p]),
                          on_failed=lambda m: self.error.emit("Cannot paste", m))

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

    def remove(self, index: int) -> None:
        """Take an entry out of the queue; removing the shown one shows its neighbour."""
        was_current = self.queue.current == index
        self.queue.remove(index)
        if was_current and len(self.queue):
            self.show_entry(min(index, len(self.queue) - 1))

    # -- the shown photo ---------------------------------------------------------------------
    def show_entry(self, index: int) -> None:
        self.queue.set_current(index)

    def _show_nothing(self, placeholder: str) -> None:
        self.regions.set_context((0, 0))
        self.regions.set_regions([])
        self.canvas.set_image(None)
        self.canvas.set_placeholder(placeholder)
        self.compare.set_input(None, 1)
        self.panel.size_box.set_photo_size(None)

    def _on_current_changed(self, index: int | None) -> None:
        entry = self.queue.current_entry
        self.image = None
        self.image_path = None
        self.canvas.set_patch_boxes([])
        self.cleared.emit()
        if entry is None:
            self._show_nothing(EMPTY_PLACEHOLDER)
            self.titleChanged.emit("")
            return
        path = entry.path
        self.titleChanged.emit(path.name)
        if entry.load_error:
            # Said once, when it failed; showing it again only names the reason.
            self._show_nothing(f"Cannot open {path.name}: {entry.load_error}")
            return
        # Until the photo is read, no regions are shown (and edits belong to no entry).
        self._show_nothing(f"Loading {path.name}…")
        if entry.status not in (EntryStatus.DONE, EntryStatus.FAILED):
            self.queue.set_status(index, EntryStatus.LOADING)  # type: ignore[arg-type]

        def load(_progress: Any, _cancel: threading.Event) -> tuple[Any, QImage]:
            from engine.io.imageio import read_image

            image = read_image(path)
            return image, to_qimage(image.pixels, image.alpha)

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
        self.image, self.image_path = image, path
        # "My regions" follows the photo: on for one with regions, Auto for one without.
        self._follow_regions(bool(entry.regions))
        self.canvas.set_patch_boxes(entry.preview_boxes)
        self.compare.set_input(qimage, self._scale())
        self.panel.size_box.set_photo_size((image.width, image.height))
        self.say(f"{path.name}: {image.width}×{image.height}")
        if path in self._recent_candidates:
            self._recent_candidates.discard(path)
            self.settings.add_recent_file(path)
            self.recentChanged.emit()
        self.loaded.emit(str(path))

    def _on_load_failed(self, path: Path, message: str) -> None:
        index = self.queue.index_of(path)
        if index is not None:
            self.queue[index].load_error = message
            self.queue.set_status(index, EntryStatus.FAILED, message)
        if self.queue.current_entry is not None and self.queue.current_entry.path == path:
            self.canvas.set_placeholder(f"Cannot open {path.name}: {message}")
        self.error.emit("Cannot open image", message)

    def _follow_regions(self, has_regions: bool) -> None:
        """Drawing a region says "use these"; with none left, let the engine choose rather
        than refuse to run."""
        if has_regions and self.panel.support_mode != "regions":
            self.panel.set_support_mode("regions")
        elif not has_regions and self.panel.support_mode == "regions":
            self.panel.set_support_mode("auto")

    def _on_regions_changed(self) -> None:
        entry = self.queue.current_entry
        if entry is None or self.image_path != entry.path:
            return
        entry.regions = self.regions.regions
        self.settings.remember_regions(entry.path, [r.as_tuple() for r in entry.regions])
        self._follow_regions(bool(self.regions.regions))
