"""Steps the app tests take with the real window: open photos into the queue, run a batch."""

from __future__ import annotations

from pathlib import Path


def open_queue(qtbot, window, paths: list[Path]) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths(paths)


def run_batch(qtbot, window):  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: window.batch_panel.start_button.isEnabled(), timeout=10000)
    with qtbot.waitSignal(window.batchFinished, timeout=60000) as blocker:
        window.batch_panel.start_button.click()
    return blocker.args[0]
