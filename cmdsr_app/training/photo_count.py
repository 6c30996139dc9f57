"""How many photos the Training tab's Photos folder holds, counted without freezing the window.

Counting walks a folder tree, which on a big tree ("/", a network share) takes seconds: it
runs after typing pauses (:data:`DEBOUNCE_MS`), on a thread of its own, stops at the number
the warning needs, and the next keystroke cancels it (its result is then ignored). A walk
that fails (a folder vanishing mid-walk, permission denied) reads "not counted" with the
reason, never a traceback.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from cmdsr_app.training.state import ADVISED_PHOTOS, FEW_PHOTOS

log = logging.getLogger(__name__)

# Typing pauses this long before the folder is counted.
DEBOUNCE_MS = 400


class CountCancelled(Exception):
    """The count was cancelled (the user typed on)."""


def count_photos(folder: str | Path, *, limit: int | None = None,
                 cancel: threading.Event | None = None) -> int:
    """Images a training folder holds (subfolders included, links to folders not followed),
    as the engine reads them; at most ``limit``. 0 for a path that is not a folder.

    Raises ``OSError`` when the walk fails and :class:`CountCancelled` once ``cancel`` is set.
    """
    from engine.io.imageio import SUPPORTED_READ_SUFFIXES

    root = Path(folder)
    if not root.is_dir():
        return 0
    found = 0
    pending = [root]
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                if cancel is not None and cancel.is_set():
                    raise CountCancelled
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                elif Path(entry.name).suffix.lower() in SUPPORTED_READ_SUFFIXES and entry.is_file():
                    found += 1
                    if limit is not None and found >= limit:
                        return found
    return found


def photos_note(count: int) -> str:
    """The warning for a folder far smaller than advised, else ""."""
    if count == 0 or count >= FEW_PHOTOS:
        return ""
    return (f"Only {count} photo(s) here; {ADVISED_PHOTOS} or more are advised. With so few "
            "the model learns these photos rather than photos in general, and may get worse.")


def not_counted_note(exc: OSError) -> str:
    """One line for a walk that failed: what went wrong and where."""
    where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
    return f"Photos not counted: {exc.strerror or exc}{where}."


class _Relay(QObject):
    """Carries a finished count from its walking thread to the GUI thread. It is never
    deleted, so a walk that ends after its form was closed emits into no freed object."""

    walked = Signal(object, int, str)  # counter id, generation, note


_RELAY: _Relay | None = None
_COUNTER_IDS = itertools.count(1)  # one per counter, never reused (unlike id())


def _relay() -> _Relay:
    global _RELAY
    if _RELAY is None:
        _RELAY = _Relay()  # made by the first counter, in the GUI thread
    return _RELAY


class PhotoCounter(QObject):
    """Counts the photos of the folder last asked for, once typing pauses.

    ``request(text)`` after each edit; ``counted(note)`` (in the GUI thread) with the note to
    show, "" for none. Each request cancels the walk before it and hides its note.
    """

    counted = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._id = next(_COUNTER_IDS)
        self._folder = ""
        self._generation = 0
        self._cancel = threading.Event()
        self._cancel.set()  # no walk under way
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._start_walk)
        _relay().walked.connect(self._on_walked)

    def request(self, folder: str) -> None:
        """Count ``folder`` once typing pauses; the walk under way (if any) is cancelled."""
        self.cancel()
        self._folder = folder.strip()
        self.counted.emit("")  # the last note was about another path
        if self._folder:
            self._timer.start()

    def cancel(self) -> None:
        """Forget the pending count and stop the walk under way."""
        self._timer.stop()
        self._generation += 1
        self._cancel.set()

    @property
    def pending(self) -> bool:
        """True while a count is waiting for typing to pause or walking."""
        return self._timer.isActive() or not self._cancel.is_set()

    def _start_walk(self) -> None:
        self._cancel = cancel = threading.Event()
        args = (self._id, self._folder, self._generation, cancel)
        threading.Thread(target=_walk, args=args, name="cmdsr-photo-count", daemon=True).start()

    def _on_walked(self, counter: int, generation: int, note: str) -> None:
        # another counter's walk, or one a later keystroke made moot
        if counter == self._id and generation == self._generation:
            self._cancel.set()
            self.counted.emit(note)


def _walk(counter: int, folder: str, generation: int, cancel: threading.Event) -> None:
    """Runs on the walking thread: counts, then hands the note to the GUI thread."""
    try:
        note = photos_note(count_photos(folder, limit=FEW_PHOTOS, cancel=cancel))
    except CountCancelled:
        return
    except OSError as exc:
        log.info("photos under %s not counted: %s", folder, exc)
        note = not_counted_note(exc)
    _relay().walked.emit(counter, generation, note)
