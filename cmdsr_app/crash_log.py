"""Exceptions nobody caught (a bug in a Qt slot, a paint event) go to the log, where the Log
panel shows them with their traceback, instead of only to the terminal few users look at."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

log = logging.getLogger(__name__)


def install_exception_logging() -> None:
    """Log every uncaught exception as an error (traceback included), then hand it on to the
    hook that was there before (Python's printer, or a test runner's). Idempotent."""
    previous = sys.excepthook
    if getattr(previous, "logs_to_cmdsr", False):
        return

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            log.error("unexpected error (please report it): %s: %s", kind.__name__, value,
                      exc_info=(kind, value, tb))
        previous(kind, value, tb)

    hook.logs_to_cmdsr = True  # type: ignore[attr-defined]
    sys.excepthook = hook
