"""Start CMDSR Studio: the main window, or, with no display to show it on, the headless sample
run (upscale the bundled photo and say where the result went); ``--selftest`` checks an
installed copy."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cmdsr-app",
        description="CMDSR Studio: upscale degraded photos with a model that adapts to each one.",
    )
    parser.add_argument("paths", nargs="*", help="images or folders to open")
    parser.add_argument("--gui", action="store_true",
                        help="open the window even where no display is detected "
                             "(e.g. QT_QPA_PLATFORM=offscreen)")
    parser.add_argument("--selftest", action="store_true",
                        help="check this installation (model, upscaling, training step, Qt) and exit")
    parser.add_argument("--debug", action="store_true", help="log debug messages to the terminal")
    return parser.parse_args(list(argv))


def has_display(*, force_gui: bool = False) -> bool:
    """Whether a window can be shown. Windows and macOS always have one; on Linux a display
    server must be named, and the offscreen platform counts only when ``--gui`` asks for it."""
    if sys.platform in ("win32", "darwin"):
        return True
    if force_gui:
        return True
    if os.environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return False
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _headless(name: str) -> int:
    """``cmdsr_app.headless.run_sample()`` or ``selftest()``: the packaging's console paths."""
    from cmdsr_app import headless

    return int(getattr(headless, name)())


def run(argv: Sequence[str]) -> int:
    """The app's entry point; returns the process exit code."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.selftest:
        return _headless("selftest")
    if not has_display(force_gui=args.gui):
        return _headless("run_sample")

    from PySide6.QtWidgets import QApplication

    from cmdsr_app.main_window import MainWindow
    from cmdsr_app.settings import APP_AUTHOR, APP_NAME
    from cmdsr_app.views.window_layout import app_icon

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_AUTHOR)
    app.setWindowIcon(app_icon())  # type: ignore[attr-defined]
    window = MainWindow()
    window.show()
    if args.paths:
        window.open_paths(args.paths)
    _close_on_signals(window)
    return _exec(app, window)


def _close_on_signals(window) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+C in the terminal closes the window as the close button would (asking first if a
    job runs); SIGTERM (logout, kill) stops jobs and saves settings without asking."""
    import signal

    from PySide6.QtCore import QTimer

    def terminate(*_: object) -> None:
        window.confirm_close = lambda: True
        window.close()

    signal.signal(signal.SIGINT, lambda *_: window.close())
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, terminate)
    # Python runs signal handlers only between bytecodes: a timer gives it the chance while
    # Qt's event loop waits in C++.
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def _exec(app, window) -> int:  # type: ignore[no-untyped-def]
    """Run the event loop until the window closes (tests replace this)."""
    return int(app.exec())
