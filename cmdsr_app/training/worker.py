"""The training job's worker: runs the engine's training loop (start or resume) on a QThread
and reports through signals; a cancelled job never emits ``finished``."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from cmdsr_app.training.state import TrainRequest, run_engine

TrainFn = Callable[[TrainRequest, Callable[[Any], None], threading.Event], Any]
# Training threads still running, with their workers: a tab closed before its thread ended
# (shutdown timed out) must never free a QThread whose thread runs, which aborts the process.
LIVE_THREADS: dict[QThread, QObject] = {}


class TrainingWorker(QObject):
    """Runs one training job (start or resume) on a worker thread.

    Emits exactly one of ``finished(result)``, ``failed(message)`` or ``cancelled()``; a
    cancelled job never emits ``finished``. ``message`` carries log lines (the traceback of a
    failure), which belong in the log panel rather than the dialog.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    message = Signal(str)

    def __init__(self, request: TrainRequest, train_fn: TrainFn | None = None) -> None:
        super().__init__()
        self.request = request
        self._train_fn: TrainFn = train_fn or run_engine
        self._cancel = threading.Event()
        self._last: Any = None

    def cancel(self) -> None:
        """Ask the engine to stop after the current step (thread-safe)."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def _on_progress(self, progress: Any) -> None:
        # Called on the worker thread by the engine: only a signal may cross to the GUI.
        self._last = progress
        self.progress.emit(progress)

    def _completed(self) -> bool:
        last = self._last
        if last is None:
            return False
        step, total = getattr(last, "step", None), getattr(last, "total_steps", None)
        return isinstance(step, int) and isinstance(total, int) and step >= total

    @Slot()
    def run(self) -> None:
        from engine import CancelledError, CmdsrError

        try:
            if self.request.preset == "reference" and not self.request.resume:
                import torch

                if not torch.cuda.is_available():
                    self.message.emit(
                        "No CUDA GPU found: the GPU (reference) setup will run on the CPU and "
                        "take a very long time. The CPU setup is made for this machine."
                    )
            result = self._train_fn(self.request, self._on_progress, self._cancel)
        except CancelledError:
            self.cancelled.emit()
        except CmdsrError as exc:
            self.message.emit(traceback.format_exc())
            self.failed.emit(str(exc))
        except MemoryError:
            self.message.emit(traceback.format_exc())
            self.failed.emit(
                "Training ran out of memory. Choose the CPU preset, or close other programs."
            )
        except OSError as exc:  # a full disk or a read-only run folder, typically
            self.message.emit(traceback.format_exc())
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            self.failed.emit(
                f"Training stopped: {exc.strerror or exc}{where}. Check that the run folder "
                "is writable and the disk has space; Resume continues from the last checkpoint."
            )
        except Exception as exc:  # any engine bug must reach the user, not kill the thread
            self.message.emit(traceback.format_exc())
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            if "out of memory" in text.lower():
                self.failed.emit(
                    "The GPU ran out of memory. Choose the CPU preset or a smaller batch."
                )
            else:
                self.failed.emit(
                    f"Training stopped on an unexpected error ({type(exc).__name__}: {text}). "
                    "The log panel has the details."
                )
        else:
            # A Pause pressed during the very last step still completed the run.
            if self._cancel.is_set() and not self._completed():
                self.cancelled.emit()
            else:
                self.finished.emit(result)
        finally:
            # quit() is thread-safe; called from here, shutdown() can wait on the thread
            # without needing the GUI event loop to deliver a queued quit.
            thread = self.thread()
            if thread is not None:
                thread.quit()
