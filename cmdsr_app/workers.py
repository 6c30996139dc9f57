"""Background jobs: a worker object moved to a QThread, and a runner that queues jobs.

A job is a plain function ``fn(progress, cancel) -> result`` (``progress(done, total)``,
``cancel`` a ``threading.Event``), so the work itself stays Qt-free and testable. The worker
reports ``progress(int, int)``, then exactly one of ``finished(object)``, ``failed(str)`` or
``cancelled()``; a cancelled job never emits ``finished``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
# Threads still running, so a runner dropped by its owner (a closed window, a test) never
# frees a QThread object while its thread runs, which would abort the process.
_LIVE_THREADS: set[QThread] = set()
JobFn = Callable[[ProgressFn, threading.Event], Any]


def user_message(exc: BaseException) -> str:
    """A message a user can act on; the traceback goes to the log only."""
    from engine import CmdsrError

    if isinstance(exc, CmdsrError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "Not enough memory for this image. Choose a smaller tile size and run again."
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        return f"{exc.strerror or exc}{where}"
    text = str(exc)
    if "out of memory" in text.lower():
        return "The device ran out of memory. Choose a smaller tile size or the CPU and run again."
    return f"Unexpected error ({type(exc).__name__}: {text}). The log panel has the details."


def is_expected(exc: BaseException) -> bool:
    """A failure users cause and can fix (a file that is not an image, a model file that is
    not one, a folder that cannot be written), as opposed to a bug worth a traceback."""
    from engine import CmdsrError

    return isinstance(exc, (CmdsrError, OSError))


class Worker(QObject):
    """Runs one job function in the thread it was moved to."""

    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()  # after any of the three outcomes: the thread may quit

    def __init__(self, fn: JobFn, name: str = "job") -> None:
        super().__init__()
        self._fn = fn
        self._cancel = threading.Event()
        self.name = name

    def cancel(self) -> None:
        """Ask the job to stop; safe from any thread."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _report(self, done: int, total: int) -> None:
        self.progress.emit(int(done), int(total))

    @Slot()
    def run(self) -> None:
        from engine import CancelledError

        try:
            result = self._fn(self._report, self._cancel)
        except CancelledError:
            log.info("%s cancelled", self.name)
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - every failure takes the one error path
            if self._cancel.is_set() and isinstance(exc, KeyboardInterrupt):
                self.cancelled.emit()
            elif is_expected(exc):
                # A bad file or a missing folder: the message says it all, and the window
                # logs it with the dialog; a traceback would only bury it.
                log.debug("%s failed: %s", self.name, exc)
                self.failed.emit(user_message(exc))
            else:
                log.error("%s failed: %s", self.name, exc, exc_info=True)
                self.failed.emit(user_message(exc))
        else:
            if self._cancel.is_set():
                log.info("%s cancelled", self.name)
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            self.done.emit()


@dataclass
class Job:
    """A submitted job and what to call (in the GUI thread) when it ends."""

    name: str
    fn: JobFn
    on_finished: Callable[[Any], object] | None = None
    on_failed: Callable[[str], None] | None = None
    on_cancelled: Callable[[], None] | None = None
    on_progress: Callable[[int, int], None] | None = None
    worker: Worker | None = None
    thread: QThread | None = None


class JobRunner(QObject):
    """Runs submitted jobs one at a time, each in a fresh QThread.

    Signals (GUI thread): ``started(name)``, ``progress(done, total)``, ``finished(name,
    result)``, ``failed(name, message)``, ``cancelled(name)``, ``busyChanged(bool)``.
    """

    started = Signal(str)
    progress = Signal(int, int)
    finished = Signal(str, object)
    failed = Signal(str, str)
    cancelled = Signal(str)
    busyChanged = Signal(bool)

    def __init__(self, name: str = "runner", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self._pending: deque[Job] = deque()
        self._current: Job | None = None

    @property
    def busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def current_name(self) -> str | None:
        return None if self._current is None else self._current.name

    def submit(
        self,
        name: str,
        fn: JobFn,
        *,
        on_finished: Callable[[Any], object] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Job:
        job = Job(name, fn, on_finished, on_failed, on_cancelled, on_progress)
        was_busy = self.busy
        self._pending.append(job)
        if self._current is None:
            self._start_next()
        if not was_busy:
            self.busyChanged.emit(True)
        return job

    def cancel(self, *, pending: bool = True) -> None:
        """Cancel the running job (and, by default, drop the queued ones)."""
        if pending:
            dropped = list(self._pending)
            self._pending.clear()
            for job in dropped:
                if job.on_cancelled:
                    job.on_cancelled()
        if self._current is not None and self._current.worker is not None:
            self._current.worker.cancel()
        if not self.busy:
            self.busyChanged.emit(False)

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the running job's thread has ended (used on close)."""
        job = self._current
        if job is None or job.thread is None:
            return True
        return bool(job.thread.wait(timeout_ms))

    def _start_next(self) -> None:
        if not self._pending:
            return
        job = self._pending.popleft()
        self._current = job
        worker = Worker(job.fn, job.name)
        thread = QThread()
        thread.setObjectName(f"{self.name}:{job.name}")
        worker.moveToThread(thread)
        job.worker, job.thread = worker, thread
        # The runner lives in the GUI thread, so these arrive there, queued, in order.
        worker.progress.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        # Direct: quit from the worker thread itself, so a GUI thread blocked in wait() on
        # close does not deadlock waiting for a queued quit.
        worker.done.connect(thread.quit, Qt.ConnectionType.DirectConnection)
        thread.started.connect(worker.run)
        thread.finished.connect(self._on_thread_finished)
        self.started.emit(job.name)
        _LIVE_THREADS.add(thread)
        thread.start()

    @Slot(int, int)
    def _on_progress(self, done: int, total: int) -> None:
        job = self._current
        if job is None or (job.worker is not None and job.worker.cancel_requested):
            return
        if job.on_progress:
            job.on_progress(done, total)
        self.progress.emit(done, total)

    @Slot(object)
    def _on_finished(self, result: object) -> None:
        job = self._current
        if job is None:
            return
        if job.on_finished:
            job.on_finished(result)
        self.finished.emit(job.name, result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        job = self._current
        if job is None:
            return
        if job.on_failed:
            job.on_failed(message)
        self.failed.emit(job.name, message)

    @Slot()
    def _on_cancelled(self) -> None:
        job = self._current
        if job is None:
            return
        if job.on_cancelled:
            job.on_cancelled()
        self.cancelled.emit(job.name)

    @Slot()
    def _on_thread_finished(self) -> None:
        job = self._current
        self._current = None
        if job is not None:
            # Python holds the last references: dropping them here frees the thread object
            # only after it has really stopped.
            if job.worker is not None:
                job.worker.deleteLater()
            if job.thread is not None:
                _LIVE_THREADS.discard(job.thread)
                job.thread.deleteLater()
        if self._pending:
            self._start_next()
        else:
            self.busyChanged.emit(False)
